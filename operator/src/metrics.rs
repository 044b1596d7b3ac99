//! Prometheus metrics of the operator.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

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
    /// Bundle ConfigMaps written.
    pub bundle_publishes: IntCounter,
    /// 1 while this replica holds the leader lease.
    pub leader: IntGauge,
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
        .unwrap_or_else(|e| unreachable!("{e}"));
        let reconcile_errors = IntCounterVec::new(
            Opts::new(
                "streamsplit_operator_reconcile_errors_total",
                "Failed reconciles by reason.",
            ),
            &["reason"],
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let reconcile_duration = Histogram::with_opts(HistogramOpts::new(
            "streamsplit_operator_reconcile_duration_seconds",
            "Time to reconcile one SplitRule.",
        ))
        .unwrap_or_else(|e| unreachable!("{e}"));
        let bundle_publishes = IntCounter::new(
            "streamsplit_operator_bundle_publishes_total",
            "Rule-bundle ConfigMaps written.",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let leader = IntGauge::new(
            "streamsplit_operator_leader",
            "1 while this replica holds the leader lease.",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        for collector in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(reconcile_errors.clone()),
            Box::new(reconcile_duration.clone()),
            Box::new(bundle_publishes.clone()),
            Box::new(leader.clone()),
        ] {
            registry
                .register(collector)
                .unwrap_or_else(|e| unreachable!("metric names are unique: {e}"));
        }
        for result in ["success", "error"] {
            reconciles.with_label_values(&[result]);
        }
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            bundle_publishes,
            leader,
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
