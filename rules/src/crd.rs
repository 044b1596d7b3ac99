//! Status of the `SplitRule` custom resource (the resource itself is derived from
//! [`crate::SplitRuleSpec`]). Only built with the `kube` feature.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::spec::SplitRule;

/// What the operator reports about a rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SplitRuleStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Valid`, `TopicReady`, `RolledOut`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<RuleCondition>,
    /// The target topic as found in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<TopicStatus>,
    /// The bundle that first published this generation of the rule (later bundles of the pool
    /// carry it too; the status is not rewritten for them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_version: Option<String>,
    /// Routers of the pool running a bundle with this generation, of the pool's live routers,
    /// as `updated/total` (the `kubectl get sr` column; `RolledOut` says the same in words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routers: Option<String>,
    /// The same counts, for tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,
}

/// How far a rule's current generation has rolled out to its pool's routers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// Live routers whose bundle carries this generation.
    pub updated: u32,
    /// Live routers of the pool (reported within their Lease duration).
    pub total: u32,
}

/// A status condition in the standard Kubernetes shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleCondition {
    /// `Ready`, `Valid`, `TopicReady` or `RolledOut`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    /// Generation the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The target topic as it exists in Kafka.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    /// Topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
}
