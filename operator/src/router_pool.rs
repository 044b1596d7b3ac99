//! The `RouterPool` custom resource: a pool of routers (one consumer group, one bundle
//! ConfigMap, one Deployment) and the policy of who may route what through it.
//!
//! Pools live in the operator's namespace, which only the platform team can write: rule authors
//! in their own namespaces can read the policy that applies to them, never change it.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use streamsplit_rules::crd::RuleCondition;

/// The pattern a tenant may write when its entry names none: topics prefixed by its namespace.
pub const DEFAULT_TARGET_PATTERN: &str = "{namespace}.*";

/// What a pool consumes, where its faulty records go, and who may add rules to it.
// Each `printcolumn(...)` repeats `type_`; clippy mistakes those for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "streamsplit.io",
    version = "v1alpha1",
    kind = "RouterPool",
    namespaced,
    shortname = "rp",
    status = "RouterPoolStatus",
    printcolumn(name = "Sources", type_ = "string", json_path = ".spec.sourceTopics"),
    printcolumn(
        name = "Exceptions",
        type_ = "string",
        json_path = ".spec.exceptionTopic"
    ),
    printcolumn(name = "Rules", type_ = "integer", json_path = ".status.rules"),
    printcolumn(
        name = "Routers",
        type_ = "string",
        json_path = ".status.routersUpdated"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct RouterPoolSpec {
    /// Topics the pool's routers consume. No rule of any pool may target them (a loop).
    #[schemars(length(min = 1))]
    pub source_topics: Vec<String>,
    /// Topic of the pool's faulty records. No rule of any pool may target it.
    pub exception_topic: String,
    /// Which namespaces may add rules to this pool and which topics each may write; a
    /// namespace matched by no entry may not use the pool.
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    /// Whether rules may grow the partitions of topics the operator did not create for them
    /// (adopted topics). Off by default: more partitions break the owner's key ordering.
    #[serde(default)]
    pub allow_adopted_topic_changes: bool,
}

/// Namespaces allowed to use a pool, and the target topics they may write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// A namespace, or `*` for every namespace.
    pub namespace: String,
    /// Topic patterns: `*` matches any run of characters and `{namespace}` is the rule's own
    /// namespace. Default: `{namespace}.*`.
    #[serde(default = "default_target_topics")]
    pub target_topics: Vec<String>,
}

fn default_target_topics() -> Vec<String> {
    vec![DEFAULT_TARGET_PATTERN.to_string()]
}

/// What the operator reports about a pool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouterPoolStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the pool's bundle is published.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<RuleCondition>,
    /// Rules the published bundle carries.
    #[serde(default)]
    pub rules: u32,
    /// Version of the published bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_version: Option<String>,
    /// Name of the bundle ConfigMap (in the pool's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    /// Live routers on the published bundle, of all live routers: `updated/total`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routers_updated: Option<String>,
    /// Every router that reported through its roll-out Lease, live or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routers: Vec<RouterStatus>,
}

/// One router of a pool, as its roll-out Lease reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouterStatus {
    /// The router's identity (pod name).
    pub name: String,
    /// Bundle version it has live (absent while it has no rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_version: Option<String>,
    /// `Current` (on the published bundle), `Behind` (on another), `NoRules`, or `Gone` (its
    /// Lease expired: stopped, stuck or cut off).
    pub state: String,
}
