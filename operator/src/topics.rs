//! Target topics in Kafka: create, adopt, grow, delete.
//!
//! Defaults (partitions, replication factor) apply only when the operator creates a topic; an
//! existing topic is adopted as it is and changed only where the rule asks explicitly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use streamsplit_rules::TopicSpec;
use thiserror::Error;

const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a topic is not as the rule asks.
#[derive(Debug, Error)]
pub enum TopicError {
    /// Kafka cannot do what is asked (shrink partitions, change replication factor).
    #[error("{0}")]
    NotSupported(String),
    /// The rule asks to change a topic that was not created for it, and its pool does not allow
    /// changing adopted topics.
    #[error("{0}")]
    Adopted(String),
    /// The broker failed or is unreachable.
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The admin call returned a per-topic error.
    #[error("Kafka refused {operation} of topic {topic}: {code}")]
    Refused {
        /// What was attempted.
        operation: &'static str,
        /// Topic.
        topic: String,
        /// Broker error.
        code: RDKafkaErrorCode,
    },
}

impl TopicError {
    /// Condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            TopicError::NotSupported(_) => "NotSupported",
            TopicError::Adopted(_) => "PolicyViolation",
            TopicError::Kafka(_) | TopicError::Refused { .. } => "KafkaError",
        }
    }
}

/// A topic as found in Kafka.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    /// Partitions.
    pub partitions: i32,
    /// Replicas of partition 0.
    pub replication_factor: i32,
}

/// What ensuring a topic did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicChange {
    /// Created now.
    Created,
    /// Partitions increased.
    Grown,
    /// Already as asked.
    Unchanged,
}

/// Topic defaults from the operator's flags.
#[derive(Clone, Debug)]
pub struct TopicDefaults {
    /// Partitions of a new topic when the rule names none.
    pub partitions: i32,
    /// Replication factor of a new topic when the rule names none.
    pub replication_factor: i32,
}

/// Kafka admin operations for target topics.
pub struct TopicManager {
    admin: Arc<AdminClient<DefaultClientContext>>,
    defaults: TopicDefaults,
    /// Recent answers of `describe`: many rules share few topics, and a cold start with
    /// 50 000 rules must not ask Kafka 50 000 times about the same 50 topics.
    recent: std::sync::Mutex<HashMap<String, (Instant, TopicInfo)>>,
}

/// How long a described topic's shape is trusted. Drift (a topic deleted behind the operator's
/// back) is also caught by the periodic drift check.
const DESCRIBE_CACHE: Duration = Duration::from_secs(10);

impl TopicManager {
    /// Connects an admin client (lazily; errors surface per call).
    pub fn new(mut config: ClientConfig, defaults: TopicDefaults) -> Result<Self, KafkaError> {
        config.set("allow.auto.create.topics", "false");
        Ok(TopicManager {
            admin: Arc::new(config.create()?),
            defaults,
            recent: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Drops what is remembered about a topic (it changed, or is known to be gone).
    pub fn forget(&self, topic: &str) {
        let mut cache = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        cache.remove(topic);
    }

    fn options() -> AdminOptions {
        AdminOptions::new()
            .operation_timeout(Some(ADMIN_TIMEOUT))
            .request_timeout(Some(ADMIN_TIMEOUT))
    }

    /// The topic's shape, or `None` when it does not exist.
    pub async fn describe(&self, topic: &str) -> Result<Option<TopicInfo>, TopicError> {
        let admin = Arc::clone(&self.admin);
        let name = topic.to_string();
        let metadata = tokio::task::spawn_blocking(move || {
            admin.inner().fetch_metadata(Some(&name), ADMIN_TIMEOUT)
        })
        .await
        .map_err(|e| TopicError::NotSupported(format!("metadata task failed: {e}")))??;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        match found.error().map(RDKafkaErrorCode::from) {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) => Ok(None),
            Some(code) => Err(TopicError::Refused {
                operation: "describe",
                topic: topic.into(),
                code,
            }),
            None if found.partitions().is_empty() => Ok(None),
            None => Ok(Some(TopicInfo {
                partitions: found.partitions().len() as i32,
                replication_factor: found.partitions()[0].replicas().len() as i32,
            })),
        }
    }

    /// Names of every topic the cluster has, in one metadata request: the periodic drift check
    /// of all rules costs one call, not one describe per rule.
    pub async fn existing_topics(&self) -> Result<std::collections::HashSet<String>, TopicError> {
        let admin = Arc::clone(&self.admin);
        let metadata =
            tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(None, ADMIN_TIMEOUT))
                .await
                .map_err(|e| TopicError::NotSupported(format!("metadata task failed: {e}")))??;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.name().to_string())
            .collect())
    }

    /// Makes the topic exist as the rule asks; returns its partition count and what changed.
    /// An existing topic is grown only if `may_change_existing` (the operator created it for
    /// this rule, or the pool allows changing adopted topics).
    pub async fn ensure(
        &self,
        topic: &str,
        spec: Option<&TopicSpec>,
        may_change_existing: bool,
    ) -> Result<(i32, TopicChange), TopicError> {
        let wanted_partitions = spec.and_then(|s| s.partitions);
        let wanted_replication = spec.and_then(|s| s.replication_factor);
        let recent = {
            let cache = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(topic)
                .filter(|(at, _)| at.elapsed() < DESCRIBE_CACHE)
                .map(|(_, info)| *info)
        };
        let described = match recent {
            Some(info) => Some(info),
            None => self.describe(topic).await?,
        };
        if let Some(info) = described {
            let mut cache = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .entry(topic.to_string())
                .or_insert((Instant::now(), info));
        }
        match described {
            None => {
                let partitions = wanted_partitions.unwrap_or(self.defaults.partitions);
                let replication = wanted_replication.unwrap_or(self.defaults.replication_factor);
                let config: BTreeMap<&str, &str> = spec
                    .map(|s| {
                        s.config
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut new =
                    NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
                for (key, value) in &config {
                    new = new.set(key, value);
                }
                self.forget(topic);
                let results = self.admin.create_topics([&new], &Self::options()).await?;
                let mut change = TopicChange::Created;
                for result in results {
                    match result {
                        Ok(_) => {}
                        // Someone else created it meanwhile: it is not ours.
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                            change = TopicChange::Unchanged
                        }
                        Err((_, code)) => {
                            return Err(TopicError::Refused {
                                operation: "creation",
                                topic: topic.into(),
                                code,
                            })
                        }
                    }
                }
                Ok((partitions, change))
            }
            Some(info) => {
                if let Some(replication) = wanted_replication {
                    if replication != info.replication_factor {
                        return Err(TopicError::NotSupported(format!(
                            "topic {topic} has replication factor {}; changing it to {replication} is not supported",
                            info.replication_factor
                        )));
                    }
                }
                match wanted_partitions {
                    Some(wanted) if wanted < info.partitions => {
                        Err(TopicError::NotSupported(format!(
                        "topic {topic} has {} partitions; Kafka cannot decrease them to {wanted}",
                        info.partitions
                    )))
                    }
                    Some(wanted) if wanted > info.partitions && !may_change_existing => {
                        Err(TopicError::Adopted(format!(
                            "topic {topic} has {} partitions and was not created for this rule; its pool does not allow changing adopted topics (RouterPool spec.allowAdoptedTopicChanges), so it is not grown to {wanted}",
                            info.partitions
                        )))
                    }
                    Some(wanted) if wanted > info.partitions => {
                        self.forget(topic);
                        let grow = NewPartitions::new(topic, wanted as usize);
                        for result in self
                            .admin
                            .create_partitions([&grow], &Self::options())
                            .await?
                        {
                            if let Err((_, code)) = result {
                                return Err(TopicError::Refused {
                                    operation: "partition increase",
                                    topic: topic.into(),
                                    code,
                                });
                            }
                        }
                        Ok((wanted, TopicChange::Grown))
                    }
                    _ => Ok((info.partitions, TopicChange::Unchanged)),
                }
            }
        }
    }

    /// Deletes the topic; a topic that is already gone is fine.
    pub async fn delete(&self, topic: &str) -> Result<(), TopicError> {
        self.forget(topic);
        for result in self.admin.delete_topics(&[topic], &Self::options()).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((_, code)) => {
                    return Err(TopicError::Refused {
                        operation: "deletion",
                        topic: topic.into(),
                        code,
                    })
                }
            }
        }
        Ok(())
    }
}
