//! The routing-relevant part of a rule: what bundles carry and rule sets compile.

use serde::{Deserialize, Serialize};

use crate::copy_shape::KeySource;
use crate::projection::Projection;
use crate::rule_id::RuleId;
use crate::spec::{Mode, SplitRuleSpec, Tier};

/// One rule as the router needs it. Built from a `SplitRule` by the operator or manifest loader.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleDefinition {
    /// `namespace/name` of the SplitRule.
    pub id: RuleId,
    /// Rhai condition over `record`.
    pub condition: String,
    /// Topic receiving copies of matching records.
    pub target_topic: String,
    /// Producer tier of the copies.
    pub tier: Tier,
    /// Active or shadow.
    pub mode: Mode,
    /// Suspended rules are carried but never evaluated.
    pub suspend: bool,
    /// Fraction of matching records copied, by a hash of the key (see [`crate::sampling`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<f64>,
    /// What the copies keep of the record (see [`crate::projection`]); whole when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<Projection>,
    /// Rhai expression computing the copies' value (see [`crate::copy_shape`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    /// Where the copies' key comes from; the record's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeySource>,
    /// Exclusive group within the rule's namespace (see [`crate::exclusive_group`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_group: Option<String>,
    /// Copies per second per router (see [`crate::rate_limit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_records_per_second: Option<u32>,
    /// Where a templated target topic may render to (see [`crate::topic_template`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_topic_pattern: Option<String>,
}

impl RuleDefinition {
    /// Takes the routing fields of a spec.
    pub fn from_spec(id: RuleId, spec: &SplitRuleSpec) -> Self {
        RuleDefinition {
            id,
            condition: spec.condition.clone(),
            target_topic: spec.target_topic.clone(),
            tier: spec.tier,
            mode: spec.mode,
            suspend: spec.suspend,
            sample: spec.sample,
            project: spec.project.clone(),
            transform: spec.transform.clone(),
            key: spec.key.clone(),
            exclusive_group: spec.exclusive_group.clone(),
            max_records_per_second: spec.max_records_per_second,
            target_topic_pattern: spec.target_topic_pattern.clone(),
        }
    }
}
