//! The rule set the router is routing with right now, plus everything per rule that the hot path
//! needs ready-made (labels and metric handles), swapped as one unit.

use std::sync::Arc;

use prometheus::IntCounter;
use streamsplit_rules::RuleSet;

use crate::metrics::Metrics;

/// Per-rule handles resolved once per rule set instead of once per record.
#[derive(Debug)]
pub struct RuleStats {
    /// `namespace/name`.
    pub id: Arc<str>,
    /// Target topic.
    pub topic: Arc<str>,
    /// Acknowledged copies.
    pub routed: IntCounter,
    /// Condition matches.
    pub matches: IntCounter,
    /// Condition failures.
    pub errors: IntCounter,
}

/// A compiled rule set with its metric handles and provenance.
#[derive(Debug)]
pub struct LiveRules {
    /// The rules, in evaluation order.
    pub rules: RuleSet,
    /// Parallel to `rules.rules()`.
    pub stats: Vec<RuleStats>,
    /// Content version of the bundle (or manifests) it came from.
    pub version: String,
}

impl LiveRules {
    /// Wraps a rule set, resolving its metric handles.
    pub fn new(rules: RuleSet, version: String, metrics: &Metrics) -> Self {
        let stats = rules
            .rules()
            .iter()
            .map(|rule| {
                let d = &rule.definition;
                let id = d.id.to_string();
                RuleStats {
                    routed: metrics.records_routed.with_label_values(&[
                        id.as_str(),
                        d.target_topic.as_str(),
                        d.tier.as_str(),
                    ]),
                    matches: metrics
                        .rule_matches
                        .with_label_values(&[id.as_str(), d.mode.as_str()]),
                    errors: metrics.rule_errors.with_label_values(&[id.as_str()]),
                    topic: Arc::from(d.target_topic.as_str()),
                    id: Arc::from(id),
                }
            })
            .collect();
        LiveRules {
            rules,
            stats,
            version,
        }
    }
}
