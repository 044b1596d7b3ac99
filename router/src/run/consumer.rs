//! The source consumer's rebalance handling: before partitions are taken away, everything queued
//! is flushed and the finished part committed, so the next owner starts where this one stopped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::health::Health;
use super::offsets::{OffsetTracker, PartitionKey};
use super::producers::Producers;
use crate::metrics::Metrics;

/// Context of the source consumer.
pub struct RouterConsumerContext {
    /// Commit progress.
    pub tracker: Arc<OffsetTracker>,
    /// Flushed on revoke.
    pub producers: Arc<Producers>,
    /// Assignment gauge.
    pub metrics: Metrics,
    /// Consumer lag for the stall check.
    pub health: Arc<Health>,
    /// Longest wait for in-flight copies when partitions are revoked.
    pub revoke_flush_timeout: Duration,
    /// Set at shutdown: no flush, on revoke or otherwise, waits past it.
    pub shutdown_deadline: Mutex<Option<Instant>>,
}

impl RouterConsumerContext {
    /// When a flush on revoke must end: the revoke timeout, cut short by shutdown.
    fn revoke_deadline(&self) -> Instant {
        let own = Instant::now() + self.revoke_flush_timeout;
        let shutdown = *self
            .shutdown_deadline
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        shutdown.map_or(own, |deadline| own.min(deadline))
    }

    /// Bounds every later flush by `deadline`.
    pub fn set_shutdown_deadline(&self, deadline: Instant) {
        *self
            .shutdown_deadline
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(deadline);
    }
}

impl ClientContext for RouterConsumerContext {
    /// Connection-level errors (TLS handshake, SASL authentication, all brokers down) are what
    /// an operator must see when a router never gets partitions: logged, and shown by /readyz.
    /// librdkafka keeps retrying; nothing is consumed, so nothing is committed or lost.
    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::SSL,
            ) => {
                tracing::error!(%error, reason, "cannot connect to Kafka");
                self.health.kafka_unavailable(reason.to_string());
            }
            // The consequence of the errors above, or of brokers being unreachable: it must not
            // hide the cause.
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                tracing::error!(%error, reason, "cannot connect to Kafka");
                if self.health.kafka_problem().is_none() {
                    self.health.kafka_unavailable(reason.to_string());
                }
            }
            _ => tracing::warn!(%error, reason, "Kafka client error"),
        }
    }

    /// librdkafka statistics (every `statistics.interval.ms`): the consumer lag per partition,
    /// i.e. how far the committed position is behind the partition's high watermark.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut total = 0;
        for (topic_name, topic) in &statistics.topics {
            for (partition, stats) in &topic.partitions {
                if *partition < 0 || stats.consumer_lag < 0 {
                    continue;
                }
                total += stats.consumer_lag;
                self.metrics
                    .consumer_lag
                    .with_label_values(&[topic_name.as_str(), partition.to_string().as_str()])
                    .set(stats.consumer_lag);
            }
        }
        self.health.set_consumer_lag(total);
    }
}

fn partition_keys(list: &TopicPartitionList) -> Vec<PartitionKey> {
    list.elements()
        .iter()
        .map(|e| (Arc::from(e.topic()), e.partition()))
        .collect()
}

/// Builds the offset list for a commit.
pub fn commit_list(commits: &[(PartitionKey, i64)]) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in commits {
        // The offset is a plain number produced by the tracker; adding it cannot fail.
        let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*offset));
    }
    list
}

impl ConsumerContext for RouterConsumerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let keys = partition_keys(list);
        tracing::info!(
            partitions = keys.len(),
            "partitions revoked; flushing and committing"
        );
        self.producers.flush_until(self.revoke_deadline());
        let committed = self.tracker.revoke_and_commit(&keys, |commits| {
            consumer.commit(&commit_list(commits), CommitMode::Sync)
        });
        if let Err(error) = committed {
            tracing::warn!(%error, "commit on revoke failed; the next owner re-reads those records");
        }
        for (topic, partition) in &keys {
            let partition = partition.to_string();
            let labels = [&**topic, partition.as_str()];
            let _ = self.metrics.commit_lag.remove_label_values(&labels);
            let _ = self.metrics.consumer_lag.remove_label_values(&labels);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let keys = partition_keys(list);
                tracing::info!(partitions = keys.len(), "partitions assigned");
                self.health.kafka_available();
                self.tracker.assign(keys);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
        }
        // What this router holds now: after an eager revoke nothing, after a cooperative
        // (incremental) revoke the partitions it keeps.
        let assigned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        self.metrics.assigned_partitions.set(assigned as i64);
    }
}
