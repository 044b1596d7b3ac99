//! Prometheus metrics of the router. Every label value comes from a bounded set (rule identity,
//! topic, tier, error kind), never from record contents.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// All router metrics, registered in their own registry.
#[derive(Clone)]
pub struct Metrics {
    /// Registry served at `/metrics`.
    pub registry: Registry,
    /// Records read from source topics.
    pub records_consumed: IntCounter,
    /// Records decoded and evaluated (the rest are decode exceptions): at any quiet point
    /// `consumed = evaluated + exceptions{kind="decode"}`.
    pub records_evaluated: IntCounter,
    /// Copies acknowledged by the broker, by rule, topic and tier.
    pub records_routed: IntCounterVec,
    /// Condition matches by rule and mode (shadow rules count here only).
    pub rule_matches: IntCounterVec,
    /// Records a rule failed on.
    pub rule_errors: IntCounterVec,
    /// Evaluations stopped by the time budget or the operation limit (they count towards
    /// quarantine).
    pub rule_overruns: IntCounterVec,
    /// Matches a rule's `sample` left out (counted, not copied).
    pub rule_sampled_out: IntCounterVec,
    /// Matches an earlier rule of the same exclusive group took (counted, not copied).
    pub rule_excluded: IntCounterVec,
    /// Matches past a rule's `maxRecordsPerSecond` (dropped and counted).
    pub rule_throttled: IntCounterVec,
    /// Best-effort copies of a rule that were dropped.
    pub rule_copies_dropped: IntCounterVec,
    /// Copies of a rule that went to the exception topic because they could not be produced.
    pub rule_copies_failed: IntCounterVec,
    /// Producers replaced after a fatal error, by producer.
    pub producer_replacements: IntCounterVec,
    /// Records written to the exception topic, by kind (decode, rule, produce).
    pub exceptions: IntCounterVec,
    /// Failed produce attempts, by tier and reason.
    pub produce_errors: IntCounterVec,
    /// Best-effort copies dropped because their queue was full.
    pub dropped: IntCounterVec,
    /// Bundle loads by result (success, rejected, partial).
    pub config_reloads: IntCounterVec,
    /// Always 1, labelled with the live bundle version and where it came from.
    pub config_version_info: IntGaugeVec,
    /// Rules in the live set.
    pub rules_active: IntGauge,
    /// Rules left out of the live set because they do not compile.
    pub rules_quarantined: IntGauge,
    /// Time from receiving a record to having queued all its copies.
    pub record_processing_seconds: Histogram,
    /// Records consumed but not yet committed, by source topic and partition.
    pub commit_lag: IntGaugeVec,
    /// Records in the partition not yet consumed and committed (high watermark minus committed
    /// offset), from librdkafka statistics.
    pub consumer_lag: IntGaugeVec,
    /// Partitions currently assigned to this router.
    pub assigned_partitions: IntGauge,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("metric {name} is well-formed: {e}"));
    register(registry, metric)
}

fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    // Names are unique constants in this file, so registration cannot collide.
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| unreachable!("metric names are unique: {e}"));
    metric
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        let gauge = |name: &str, help: &str| {
            register(
                r,
                IntGauge::new(name, help).unwrap_or_else(|e| unreachable!("{e}")),
            )
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            register(
                r,
                IntGaugeVec::new(Opts::new(name, help), labels)
                    .unwrap_or_else(|e| unreachable!("{e}")),
            )
        };
        Metrics {
            records_consumed: register(
                r,
                IntCounter::new(
                    "streamsplit_records_consumed_total",
                    "Records read from source topics.",
                )
                .unwrap_or_else(|e| unreachable!("{e}")),
            ),
            records_routed: counter_vec(
                r,
                "streamsplit_records_routed_total",
                "Copies acknowledged by the broker.",
                &["rule", "topic", "tier"],
            ),
            rule_matches: counter_vec(
                r,
                "streamsplit_rule_matches_total",
                "Records a rule's condition matched.",
                &["rule", "mode"],
            ),
            rule_errors: counter_vec(
                r,
                "streamsplit_rule_errors_total",
                "Records a rule's condition failed on.",
                &["rule"],
            ),
            records_evaluated: register(
                r,
                IntCounter::new(
                    "streamsplit_records_evaluated_total",
                    "Records decoded and evaluated against the rules (the others are decode exceptions).",
                )
                .unwrap_or_else(|e| unreachable!("{e}")),
            ),
            rule_copies_dropped: counter_vec(
                r,
                "streamsplit_rule_copies_dropped_total",
                "Best-effort copies of a rule that were dropped.",
                &["rule"],
            ),
            rule_copies_failed: counter_vec(
                r,
                "streamsplit_rule_copies_failed_total",
                "Copies of a rule sent to the exception topic because they could not be produced.",
                &["rule"],
            ),
            rule_overruns: counter_vec(
                r,
                "streamsplit_rule_overruns_total",
                "Evaluations stopped by the time budget or the operation limit; 5 in a row quarantine the rule.",
                &["rule"],
            ),
            rule_sampled_out: counter_vec(
                r,
                "streamsplit_rule_sampled_out_total",
                "Matches of a sampling rule that its sample left out (not copied).",
                &["rule"],
            ),
            rule_excluded: counter_vec(
                r,
                "streamsplit_rule_excluded_total",
                "Matches of a rule that an earlier rule of its exclusive group took (not copied).",
                &["rule"],
            ),
            rule_throttled: counter_vec(
                r,
                "streamsplit_rule_throttled_total",
                "Matches of a rule past its maxRecordsPerSecond, dropped (not copied).",
                &["rule"],
            ),
            producer_replacements: counter_vec(
                r,
                "streamsplit_producer_replacements_total",
                "Producers replaced after a fatal error (e.g. idempotence state lost in a broker restart).",
                &["producer"],
            ),
            exceptions: counter_vec(
                r,
                "streamsplit_exceptions_total",
                "Records written to the exception topic.",
                &["kind"],
            ),
            produce_errors: counter_vec(
                r,
                "streamsplit_produce_errors_total",
                "Failed produce attempts.",
                &["tier", "reason"],
            ),
            dropped: counter_vec(
                r,
                "streamsplit_dropped_total",
                "Best-effort copies dropped: their lane was full or their delivery timed out.",
                &["tier"],
            ),
            config_reloads: counter_vec(
                r,
                "streamsplit_config_reloads_total",
                "Rule bundle loads by result.",
                &["result"],
            ),
            config_version_info: gauge_vec(
                "streamsplit_config_version_info",
                "The live rule bundle version (value is always 1).",
                &["version", "source"],
            ),
            rules_active: gauge("streamsplit_rules_active", "Rules in the live rule set."),
            rules_quarantined: gauge(
                "streamsplit_rules_quarantined",
                "Rules left out because they do not compile.",
            ),
            record_processing_seconds: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "streamsplit_record_processing_seconds",
                        "Time from receiving a record to queuing all its copies.",
                    )
                    .buckets(vec![
                        0.000_01, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
                        0.01, 0.05, 0.1, 0.5,
                    ]),
                )
                .unwrap_or_else(|e| unreachable!("{e}")),
            ),
            commit_lag: gauge_vec(
                "streamsplit_commit_lag",
                "Records consumed but not yet committed.",
                &["topic", "partition"],
            ),
            consumer_lag: gauge_vec(
                "streamsplit_consumer_lag",
                "Records behind the partition's high watermark (from librdkafka statistics).",
                &["topic", "partition"],
            ),
            assigned_partitions: gauge(
                "streamsplit_assigned_partitions",
                "Source partitions assigned to this router.",
            ),
            registry,
        }
        .with_known_label_sets()
    }

    /// Exposes the bounded label sets from the start, so dashboards and alerts see zeros
    /// instead of missing series.
    fn with_known_label_sets(self) -> Self {
        for kind in crate::run::source_record::ExceptionKind::ALL {
            self.exceptions.with_label_values(&[kind.as_str()]);
        }
        for result in ["success", "rejected", "partial"] {
            self.config_reloads.with_label_values(&[result]);
        }
        self.dropped
            .with_label_values(&[streamsplit_rules::Tier::BestEffort.as_str()]);
        for role in crate::run::kafka_config::ProducerRole::ALL {
            self.producer_replacements
                .with_label_values(&[role.label()]);
        }
        self
    }

    /// Counts one dropped best-effort copy.
    pub fn dropped_best_effort(&self) {
        self.dropped
            .with_label_values(&[streamsplit_rules::Tier::BestEffort.as_str()])
            .inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        if let Err(err) = encoder.encode_utf8(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %err, "cannot encode metrics");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
