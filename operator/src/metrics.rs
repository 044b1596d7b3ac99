//! Prometheus metrics of the operator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// All operator metrics.
#[derive(Clone)]
pub struct Metrics {
    /// Registry served at `/metrics`.
    pub registry: Registry,
    /// Reconciles by result (success, error).
    pub reconciles: IntCounterVec,
    /// Failed reconciles by reason.
    pub reconcile_errors: IntCounterVec,
    /// Reconcile duration.
    pub reconcile_duration: Histogram,
    /// Reconciles running now: a busy (or stuck) operator shows here before anywhere else.
    pub reconciles_in_flight: IntGauge,
    /// Bundle ConfigMaps written.
    pub bundle_publishes: IntCounter,
    /// SplitRule status writes by writer (`reconcile`, `rollout`): the operator's main load on
    /// the apiserver; about one per rule and change when routers acknowledge promptly.
    pub status_writes: IntCounterVec,
    /// 1 while this replica holds the leader lease.
    pub leader: IntGauge,
    /// 1 when a SplitRule is Ready, 0 when not, by `namespace/name` and the Ready reason.
    pub rule_ready: IntGaugeVec,
    /// Routers per pool and state (`Current`, `Behind`, `NoRules`, `Gone`), from their
    /// roll-out Leases.
    pub pool_routers: IntGaugeVec,
    /// Distinct bundle versions live among a pool's routers: above 1 for long, the pool is
    /// split (a router stuck on an old bundle).
    pub pool_bundle_versions: IntGaugeVec,
    /// The reason label currently exported per rule, so a changed reason replaces its series.
    rule_reasons: Arc<Mutex<HashMap<String, String>>>,
}

fn unreachable_error(error: prometheus::Error) -> ! {
    unreachable!("metric definitions are constant and valid: {error}")
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "streamsplit_operator_reconciles_total",
                "SplitRule reconciles by result.",
            ),
            &["result"],
        )
        .unwrap_or_else(|e| unreachable_error(e));
        let reconcile_errors = IntCounterVec::new(
            Opts::new(
                "streamsplit_operator_reconcile_errors_total",
                "Failed reconciles by reason.",
            ),
            &["reason"],
        )
        .unwrap_or_else(|e| unreachable_error(e));
        let reconcile_duration = Histogram::with_opts(HistogramOpts::new(
            "streamsplit_operator_reconcile_duration_seconds",
            "Time to reconcile one SplitRule.",
        ))
        .unwrap_or_else(|e| unreachable_error(e));
        let reconciles_in_flight = IntGauge::new(
            "streamsplit_operator_reconciles_in_flight",
            "SplitRule reconciles running now.",
        )
        .unwrap_or_else(|e| unreachable_error(e));
        let bundle_publishes = IntCounter::new(
            "streamsplit_operator_bundle_publishes_total",
            "Rule-bundle ConfigMaps written.",
        )
        .unwrap_or_else(|e| unreachable_error(e));
        let status_writes = IntCounterVec::new(
            Opts::new(
                "streamsplit_operator_status_writes_total",
                "SplitRule status writes by writer (reconcile, rollout).",
            ),
            &["writer"],
        )
        .unwrap_or_else(|e| unreachable_error(e));
        let leader = IntGauge::new(
            "streamsplit_operator_leader",
            "1 while this replica holds the leader lease.",
        )
        .unwrap_or_else(|e| unreachable_error(e));
        let rule_ready = IntGaugeVec::new(
            Opts::new(
                "streamsplit_operator_rule_ready",
                "1 when the SplitRule is Ready, else 0.",
            ),
            &["rule", "reason"],
        )
        .unwrap_or_else(|e| unreachable_error(e));
        let pool_routers = IntGaugeVec::new(
            Opts::new(
                "streamsplit_operator_pool_routers",
                "Routers of a pool by state (Current, Behind, NoRules, Gone), from their roll-out Leases.",
            ),
            &["pool", "state"],
        )
        .unwrap_or_else(|e| unreachable_error(e));
        let pool_bundle_versions = IntGaugeVec::new(
            Opts::new(
                "streamsplit_operator_pool_bundle_versions",
                "Distinct bundle versions live among a pool's live routers.",
            ),
            &["pool"],
        )
        .unwrap_or_else(|e| unreachable_error(e));
        let collectors: [Box<dyn prometheus::core::Collector>; 10] = [
            Box::new(status_writes.clone()),
            Box::new(pool_routers.clone()),
            Box::new(pool_bundle_versions.clone()),
            Box::new(reconciles.clone()),
            Box::new(reconcile_errors.clone()),
            Box::new(reconcile_duration.clone()),
            Box::new(reconciles_in_flight.clone()),
            Box::new(bundle_publishes.clone()),
            Box::new(leader.clone()),
            Box::new(rule_ready.clone()),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .unwrap_or_else(|e| unreachable_error(e));
        }
        for result in ["success", "error"] {
            reconciles.with_label_values(&[result]);
        }
        for writer in ["reconcile", "rollout"] {
            status_writes.with_label_values(&[writer]);
        }
        // The reasons are a small fixed set (ReconcileError::reason): expose them as zeros.
        for reason in ["KubeApi", "TopicDeletion", "Finalizer", "Publish"] {
            reconcile_errors.with_label_values(&[reason]);
        }
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            reconciles_in_flight,
            bundle_publishes,
            status_writes,
            leader,
            rule_ready,
            pool_routers,
            pool_bundle_versions,
            rule_reasons: Arc::default(),
        }
    }

    /// Records a rule's readiness.
    pub fn set_rule_ready(&self, rule: &str, ready: bool, reason: &str) {
        let mut reasons = self.rule_reasons.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(previous) = reasons.insert(rule.to_string(), reason.to_string()) {
            if previous != reason {
                let _ = self.rule_ready.remove_label_values(&[rule, &previous]);
            }
        }
        self.rule_ready
            .with_label_values(&[rule, reason])
            .set(i64::from(ready));
    }

    /// Drops a deleted rule's series.
    pub fn forget_rule(&self, rule: &str) {
        let mut reasons = self.rule_reasons.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(previous) = reasons.remove(rule) {
            let _ = self.rule_ready.remove_label_values(&[rule, &previous]);
        }
    }

    /// Text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(error) =
            prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out)
        {
            tracing::warn!(%error, "cannot encode metrics");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
