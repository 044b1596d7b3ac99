//! The rule set the router is routing with right now, plus everything per rule that the hot path
//! needs ready-made (labels and metric handles), swapped as one unit.

use std::sync::Arc;

use prometheus::IntCounter;

use super::in_flight::RouteCounters;
use streamsplit_rules::RuleSet;

use crate::metrics::Metrics;

/// Per-rule handles resolved once per rule set instead of once per record.
#[derive(Debug)]
pub struct RuleStats {
    /// `namespace/name`.
    pub id: Arc<str>,
    /// Target topic (the template, for a templated one: the `topic` label of its metrics).
    pub topic: Arc<str>,
    /// What became of the rule's copies.
    pub route: Arc<RouteCounters>,
    /// Condition matches.
    pub matches: IntCounter,
    /// Condition failures.
    pub errors: IntCounter,
    /// Evaluations stopped by the time budget.
    pub overruns: IntCounter,
    /// Matches its sample left out.
    pub sampled_out: IntCounter,
    /// Matches an earlier rule of its exclusive group took.
    pub excluded: IntCounter,
    /// Matches past its `maxRecordsPerSecond`.
    pub throttled: IntCounter,
    /// Tier label of `routed`.
    tier: &'static str,
    /// Mode label of `matches`.
    mode: &'static str,
}

/// A compiled rule set with its metric handles and provenance.
#[derive(Debug)]
pub struct LiveRules {
    /// The rules, in evaluation order.
    pub rules: RuleSet,
    /// Parallel to `rules.rules()`.
    pub stats: Vec<RuleStats>,
    /// Content version of the bundle (or manifests) it came from; shared with every copy's
    /// lineage header.
    pub version: Arc<str>,
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
                    route: Arc::new(RouteCounters {
                        routed: metrics.records_routed.with_label_values(&[
                            id.as_str(),
                            d.target_topic.as_str(),
                            d.tier.as_str(),
                        ]),
                        dropped: metrics
                            .rule_copies_dropped
                            .with_label_values(&[id.as_str()]),
                        failed: metrics.rule_copies_failed.with_label_values(&[id.as_str()]),
                    }),
                    matches: metrics
                        .rule_matches
                        .with_label_values(&[id.as_str(), d.mode.as_str()]),
                    errors: metrics.rule_errors.with_label_values(&[id.as_str()]),
                    overruns: metrics.rule_overruns.with_label_values(&[id.as_str()]),
                    sampled_out: metrics.rule_sampled_out.with_label_values(&[id.as_str()]),
                    excluded: metrics.rule_excluded.with_label_values(&[id.as_str()]),
                    throttled: metrics.rule_throttled.with_label_values(&[id.as_str()]),
                    topic: Arc::from(d.target_topic.as_str()),
                    id: Arc::from(id),
                    tier: d.tier.as_str(),
                    mode: d.mode.as_str(),
                }
            })
            .collect();
        LiveRules {
            rules,
            stats,
            version: Arc::from(version),
        }
    }

    /// Removes the per-rule metric series of rules (or rule targets) that `next` no longer has,
    /// so a pool with churning rules does not grow its `/metrics` forever.
    pub fn remove_series_missing_from(&self, next: &LiveRules, metrics: &Metrics) {
        let kept: std::collections::HashSet<(&str, &str, &str, &str)> = next
            .stats
            .iter()
            .map(|s| (&*s.id, &*s.topic, s.tier, s.mode))
            .collect();
        let kept_ids: std::collections::HashSet<&str> = next.stats.iter().map(|s| &*s.id).collect();
        for stats in &self.stats {
            if kept.contains(&(&*stats.id, &*stats.topic, stats.tier, stats.mode)) {
                continue;
            }
            let _ =
                metrics
                    .records_routed
                    .remove_label_values(&[&stats.id, &stats.topic, stats.tier]);
            let _ = metrics
                .rule_matches
                .remove_label_values(&[&stats.id, stats.mode]);
            if !kept_ids.contains(&*stats.id) {
                let _ = metrics.rule_errors.remove_label_values(&[&stats.id]);
                let _ = metrics
                    .rule_copies_dropped
                    .remove_label_values(&[&stats.id]);
                let _ = metrics.rule_copies_failed.remove_label_values(&[&stats.id]);
                let _ = metrics.rule_overruns.remove_label_values(&[&stats.id]);
                let _ = metrics.rule_sampled_out.remove_label_values(&[&stats.id]);
                let _ = metrics.rule_excluded.remove_label_values(&[&stats.id]);
                let _ = metrics.rule_throttled.remove_label_values(&[&stats.id]);
            }
        }
    }
}
