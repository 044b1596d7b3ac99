//! The `SplitRule` spec exactly as users write it in `streamsplit.io/v1alpha1` manifests.
//!
//! These types are the single source of truth: the operator derives the CRD schema from them
//! (schemars), the router loads manifests with them, and the bundle carries them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Kubernetes API group of every streamsplit resource.
pub const API_GROUP: &str = "streamsplit.io";
/// API version of the `SplitRule` resource.
pub const API_VERSION: &str = "streamsplit.io/v1alpha1";
/// Kind of the rule resource.
pub const KIND: &str = "SplitRule";
/// Router pool a rule belongs to when it names none.
pub const DEFAULT_POOL: &str = "default";

/// What a `SplitRule` asks for: records matching `condition` are copied to `targetTopic`.
// Each `printcolumn(...)` repeats `type_`; clippy mistakes those for duplicated attributes.
#[cfg_attr(feature = "kube", allow(clippy::duplicated_attributes))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "kube", derive(kube::CustomResource))]
#[cfg_attr(
    feature = "kube",
    kube(
        group = "streamsplit.io",
        version = "v1alpha1",
        kind = "SplitRule",
        namespaced,
        shortname = "sr",
        status = "crate::crd::SplitRuleStatus",
        printcolumn(name = "Topic", type_ = "string", json_path = ".spec.targetTopic"),
        printcolumn(name = "Tier", type_ = "string", json_path = ".spec.tier"),
        printcolumn(name = "Router", type_ = "string", json_path = ".spec.router"),
        printcolumn(
            name = "Ready",
            type_ = "string",
            json_path = ".status.conditions[?(@.type==\"Ready\")].status"
        ),
        printcolumn(
            name = "Reason",
            type_ = "string",
            json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
        ),
        printcolumn(name = "Routers", type_ = "string", json_path = ".status.routers"),
        printcolumn(
            name = "Age",
            type_ = "date",
            json_path = ".metadata.creationTimestamp"
        )
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SplitRuleSpec {
    /// Rhai expression evaluated with the decoded JSON record bound as `record` and its key,
    /// headers, topic, partition, offset and timestamp as `meta`; must return a bool.
    pub condition: String,
    /// Kafka topic that receives a copy of every matching record; a template such as
    /// `logs.{record.app}` picks the topic per record within `targetTopicPattern`.
    pub target_topic: String,
    /// Delivery guarantees of the copies; critical traffic is never blocked by lower tiers.
    #[serde(default)]
    pub tier: Tier,
    /// Router pool (one ConfigMap bundle and one router Deployment per pool).
    #[serde(default = "default_pool")]
    pub router: String,
    /// A suspended rule is published but neither evaluated nor counted.
    #[serde(default)]
    pub suspend: bool,
    /// `shadow` evaluates and counts matches without producing anything.
    #[serde(default)]
    pub mode: Mode,
    /// Copy only this fraction (0 < sample <= 1) of the matching records, chosen by a hash of
    /// the record key (of the value when there is no key): a key is always in or always out.
    /// Sampled-out matches are counted, not copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sample: Option<f64>,
    /// What the copies keep of the record: `keep`, `drop`, `mask` or `hash` dotted field paths.
    /// Copies are the whole record when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<crate::projection::Projection>,
    /// Rhai expression over `record` and `meta` whose result is the copies' value: a map or
    /// array is written as JSON, a string as it is. Exclusive with `project`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    /// Where the copies' key comes from (`field` or `expression`); the record's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<crate::copy_shape::KeySource>,
    /// Rules of one namespace that name the same group are exclusive: a record goes to the
    /// first matching active rule of the group only, in evaluation order (tier, then name).
    /// Rules without a group, and shadow rules, see every record as usual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_group: Option<String>,
    /// Copy at most this many records per second (per router pod, with a burst of one
    /// second); matches past it are dropped and counted in `streamsplit_rule_throttled_total`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_records_per_second: Option<u32>,
    /// Topics a templated `targetTopic` (one with `{record.field}` or `{meta.…}` placeholders)
    /// may render to, as a pattern where `*` stands for any text, e.g. `logs.*`. Required with
    /// a template; must lie within the pool's policy. The router never creates topics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_topic_pattern: Option<String>,
    /// Example records the condition must (not) match; run by `check` and the operator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<RuleTest>,
    /// How the operator creates the target topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<TopicSpec>,
}

fn default_pool() -> String {
    DEFAULT_POOL.to_string()
}

/// Priority tier; decides the producer a copy goes through.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// acks=all, idempotent, retried until delivered.
    Critical,
    /// acks=all, bounded retries, then the exception topic.
    #[default]
    Standard,
    /// acks=1, dropped (and counted) when its own queue is full.
    BestEffort,
}

impl Tier {
    /// All tiers in evaluation order.
    pub const ALL: [Tier; 3] = [Tier::Critical, Tier::Standard, Tier::BestEffort];

    /// The name used in manifests, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Critical => "critical",
            Tier::Standard => "standard",
            Tier::BestEffort => "best-effort",
        }
    }
}

/// Whether matches produce copies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Matching records are copied to the target topic.
    #[default]
    Active,
    /// Matches are only counted: a safe way to try a condition on live traffic.
    Shadow,
}

impl Mode {
    /// The name used in manifests and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Active => "active",
            Mode::Shadow => "shadow",
        }
    }
}

/// An example record and whether the condition must match it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleTest {
    /// Shown when the test fails.
    pub name: String,
    /// The record, as it would arrive decoded from JSON.
    #[schemars(schema_with = "any_object_schema")]
    pub record: serde_json::Value,
    /// The record's key, as the condition reads it in `meta.key` (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The record's headers by name, as the condition reads them in `meta.headers`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Expected outcome.
    pub expect: Expectation,
}

impl RuleTest {
    /// The metadata the condition sees for this test: its key and headers, on topic `""`,
    /// partition 0, offset 0, without timestamp.
    pub fn meta(&self) -> crate::metadata::RecordMeta<'_> {
        crate::metadata::RecordMeta {
            key: self.key.as_deref().map(str::as_bytes),
            headers: self
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), Some(value.as_bytes())))
                .collect(),
            ..Default::default()
        }
    }
}

/// Expected outcome of a rule test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    /// The condition must return true.
    Match,
    /// The condition must return false.
    NoMatch,
}

/// Settings for the target topic, applied by the operator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    /// Partition count; the operator's default when absent. Can only grow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Replication factor; the operator's default when absent. Cannot change after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i32>,
    /// Topic-level configuration such as `retention.ms`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Whether deleting the rule deletes the topic.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// What happens to the target topic when its rule is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the topic and its data (safe default).
    #[default]
    Retain,
    /// Delete the topic with the rule.
    Delete,
}

/// Schema of a free-form JSON object (Kubernetes needs a type and keeps unknown fields).
fn any_object_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
