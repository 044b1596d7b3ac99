//! Which topics the operator created, and for which rule: the ledger behind ownership-safe
//! deletion. `deletionPolicy: Delete` deletes a topic only when this ledger says the operator
//! created it for that very rule (same uid); adopted topics are never deleted.
//!
//! The ledger is a set of ConfigMaps in the operator's namespace (rule authors cannot edit it,
//! and it survives operator restarts). Topics are spread over [`SHARDS`] ConfigMaps by a
//! stable hash so it holds far more topics than one object's 1 MiB. Kafka topic names are
//! valid ConfigMap keys as they are.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Number of ledger ConfigMaps.
pub const SHARDS: u32 = 16;
/// Label on every ledger ConfigMap.
pub const LEDGER_LABEL: &str = "streamsplit.io/topic-owners";

/// The rule a topic was created for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicOwner {
    /// `namespace/name` of the rule, for humans.
    pub rule: String,
    /// The rule object's uid: a rule deleted and re-created under the same name is another
    /// rule and does not inherit the topic.
    pub uid: String,
}

/// Reads and writes the ledger.
pub struct TopicOwners {
    api: Api<ConfigMap>,
    prefix: String,
}

/// FNV-1a: stable across releases and platforms, unlike `DefaultHasher`.
fn shard_of(topic: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in topic.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % SHARDS
}

impl TopicOwners {
    /// The ledger in `namespace`, in ConfigMaps `<prefix>topic-owners-<shard>`.
    pub fn new(client: Client, namespace: &str, prefix: &str) -> Self {
        TopicOwners {
            api: Api::namespaced(client, namespace),
            prefix: prefix.to_string(),
        }
    }

    fn shard_name(&self, topic: &str) -> String {
        format!("{}topic-owners-{:x}", self.prefix, shard_of(topic))
    }

    /// The rule `topic` was created for, if the operator created it.
    pub async fn owner(&self, topic: &str) -> Result<Option<TopicOwner>, kube::Error> {
        let Some(configmap) = self.api.get_opt(&self.shard_name(topic)).await? else {
            return Ok(None);
        };
        let entry = configmap.data.as_ref().and_then(|d| d.get(topic));
        Ok(entry.and_then(|text| match serde_json::from_str(text) {
            Ok(owner) => Some(owner),
            Err(error) => {
                // Treated as not owned: the safe reading (the topic is kept).
                tracing::warn!(topic, %error, "unreadable topic-owner entry; treating the topic as adopted");
                None
            }
        }))
    }

    /// Records that the operator just created `topic` for `owner`.
    pub async fn record(&self, topic: &str, owner: &TopicOwner) -> Result<(), kube::Error> {
        let value = serde_json::to_string(owner).unwrap_or_default();
        self.merge(topic, json!(value)).await
    }

    /// Forgets `topic` (it was deleted).
    pub async fn forget(&self, topic: &str) -> Result<(), kube::Error> {
        self.merge(topic, serde_json::Value::Null).await
    }

    /// A merge patch touches one key, so concurrent reconciles of different topics never
    /// overwrite each other; the shard is created on first use.
    async fn merge(&self, topic: &str, value: serde_json::Value) -> Result<(), kube::Error> {
        let name = self.shard_name(topic);
        let patch = json!({ "data": { topic: value } });
        match self
            .api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Err(kube::Error::Api(response)) if response.code == 404 => {
                if value.is_null() {
                    return Ok(());
                }
                let configmap: ConfigMap = serde_json::from_value(json!({
                    "metadata": {
                        "name": name,
                        "labels": {
                            LEDGER_LABEL: "true",
                            "app.kubernetes.io/managed-by": crate::publisher::FIELD_MANAGER,
                            "app.kubernetes.io/part-of": "streamsplit",
                        },
                    },
                    "data": { topic: value },
                }))
                .map_err(kube::Error::SerdeError)?;
                match self.api.create(&PostParams::default(), &configmap).await {
                    // Another reconcile created the shard meanwhile: patch it.
                    Err(kube::Error::Api(response)) if response.code == 409 => self
                        .api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(drop),
                    other => other.map(drop),
                }
            }
            other => other.map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        // Fixed values: a change here would orphan every recorded owner.
        assert_eq!(
            (shard_of("orders"), shard_of("clicks"), shard_of("a")),
            (12, 4, 12)
        );
        let used: std::collections::BTreeSet<u32> = (0..200)
            .map(|i| shard_of(&format!("team.topic-{i}")))
            .collect();
        assert_eq!(used.len(), SHARDS as usize);
    }
}
