//! Command-line interface of `streamsplit-router`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use streamsplit_rules::client_properties::parse_property;

/// Routes each record of Kafka source topics to the topic of every SplitRule whose condition
/// matches it, and changes rules without restarting.
#[derive(Debug, Parser)]
#[command(name = "streamsplit-router", version, about, long_about = None)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "STREAMSPLIT_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile every rule and run its tests; one line per rule, non-zero exit if any fails.
    ///
    /// Example: streamsplit-router check examples/rules/
    Check {
        /// SplitRule YAML files or directories (multi-document files allowed).
        #[arg(required = true)]
        rules: Vec<PathBuf>,
        /// Wall-clock time one condition may take on one record, as in `run`.
        #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
        eval_budget: Duration,
    },
    /// Show where each JSON line would be routed, without Kafka.
    ///
    /// Prints one JSON line per input line:
    /// {"line": N, "targets": [...], "errors": [{"rule", "message"}], "exception": null | {"kind", "message"}}
    Eval {
        /// SplitRule YAML files or directories.
        #[arg(required = true)]
        rules: Vec<PathBuf>,
        /// JSON-lines input; standard input when absent.
        #[arg(long)]
        input: Option<PathBuf>,
        /// What each input line is: the record's value, or an envelope with value, key, headers,
        /// topic, partition, offset and timestamp (see the README, "The router").
        #[arg(long, value_enum, default_value_t = InputFormat::Value)]
        format: InputFormat,
        /// How conditions are evaluated.
        #[arg(long, value_enum, default_value_t = Engine::Fast)]
        engine: Engine,
        /// Wall-clock time one condition may take on one record, as in `run`.
        #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
        eval_budget: Duration,
    },
    /// Consume the source topics and route records until SIGTERM/SIGINT.
    Run(Box<RunArgs>),
}

pub use crate::commands::eval::InputFormat;

/// How conditions are evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Compiled fast path and rule index where they apply, Rhai for the rest.
    Fast,
    /// Rhai for every rule and record (for comparison).
    Rhai,
}

impl Engine {
    /// The rule-set mode.
    pub fn mode(self) -> streamsplit_rules::EvalMode {
        match self {
            Engine::Fast => streamsplit_rules::EvalMode::Fast,
            Engine::Rhai => streamsplit_rules::EvalMode::RhaiOnly,
        }
    }
}

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Kafka bootstrap servers (host:port,...).
    #[arg(long, env = "STREAMSPLIT_BROKERS")]
    pub brokers: String,
    /// Topic to consume; repeat for several.
    #[arg(
        long = "source-topic",
        required = true,
        env = "STREAMSPLIT_SOURCE_TOPICS",
        value_delimiter = ','
    )]
    pub source_topics: Vec<String>,
    /// Consumer group; every router of one pool uses the same group.
    #[arg(long, env = "STREAMSPLIT_GROUP")]
    pub group: String,
    /// Topic for records that cannot be decoded, that a rule fails on, or whose copy cannot be produced.
    #[arg(long, env = "STREAMSPLIT_EXCEPTION_TOPIC")]
    pub exception_topic: String,
    /// SplitRule YAML files or directories, for standalone use without Kubernetes.
    #[arg(long = "rules", conflicts_with = "config_dir")]
    pub rules: Vec<PathBuf>,
    /// Directory holding the rule bundle published by the operator (a mounted ConfigMap).
    #[arg(long, env = "STREAMSPLIT_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// Where the last good bundle is kept as a fallback copy.
    #[arg(long, env = "STREAMSPLIT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// How often the bundle's content is re-read in case a file event was missed.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub config_poll_interval: Duration,
    /// Static group membership id (`group.instance.id`), e.g. the pod name: a restarted router
    /// takes its partitions back at once instead of waiting for the group to expire it.
    #[arg(long, env = "STREAMSPLIT_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// librdkafka property for every client, e.g. security.protocol=SASL_SSL; repeatable.
    #[arg(long = "kafka-property", value_parser = parse_property)]
    pub kafka_properties: Vec<(String, String)>,
    /// File of librdkafka properties (`key=value` lines) for every client, e.g. a Secret
    /// mounted as a volume; repeatable. Secrets belong here, never in `--kafka-property`.
    #[arg(long = "kafka-properties-file")]
    pub kafka_properties_files: Vec<PathBuf>,
    /// librdkafka property whose value is a file's content, e.g.
    /// `sasl.password=/etc/streamsplit/kafka-sasl/password` (one key of a mounted Secret);
    /// repeatable.
    #[arg(long = "kafka-property-file")]
    pub kafka_property_files: Vec<String>,
    /// librdkafka property for the source consumer only, e.g. session.timeout.ms=10000; repeatable.
    #[arg(long = "consumer-property", value_parser = parse_property)]
    pub consumer_properties: Vec<(String, String)>,
    /// librdkafka property for the producers only, e.g. compression.type=zstd; repeatable.
    #[arg(long = "producer-property", value_parser = parse_property)]
    pub producer_properties: Vec<(String, String)>,
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, default_value = "0.0.0.0:9090", env = "STREAMSPLIT_METRICS_ADDR")]
    pub metrics_addr: SocketAddr,
    /// How often finished offsets are committed.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub commit_interval: Duration,
    /// Longest wait for in-flight copies on shutdown and when partitions are revoked.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Most copies in flight at once in each of the critical (with exception records) and
    /// standard lanes; beyond it consumption waits, which bounds memory and queueing delay.
    #[arg(long, default_value_t = 10_000)]
    pub max_in_flight: usize,
    /// Most bytes (key + value + headers) of copies in flight at once: half for the critical
    /// lane, a quarter each for standard and best-effort. Size it to about a third of the
    /// container's memory limit. Accepts Ki, Mi and Gi suffixes.
    #[arg(long, default_value = "128Mi", value_parser = parse_bytes, env = "STREAMSPLIT_MAX_IN_FLIGHT_BYTES")]
    pub max_in_flight_bytes: usize,
    /// How long the router may have work (lag or copies in flight) without any progress before
    /// `/healthz` fails and Kubernetes restarts it.
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    pub stall_timeout: Duration,
    /// Wall-clock time one condition may take on one record. A condition that runs longer is
    /// stopped (a rule error for that record); one that keeps doing so is quarantined.
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    pub eval_budget: Duration,
    /// How conditions are evaluated.
    #[arg(long, value_enum, default_value_t = Engine::Fast)]
    pub engine: Engine,
    /// Copy every record to one of these topics (by source offset) without evaluating any rule:
    /// the baseline the benchmarks compare rule evaluation against (same consumer, producer and
    /// commit path); repeat to spread copies like the rules do.
    #[arg(long, hide = true, conflicts_with_all = ["rules", "config_dir"])]
    pub pass_through_topic: Vec<String>,
    /// Namespace (the operator's) where the router renews a Lease saying which bundle version it
    /// has live, so that SplitRules report `RolledOut` and RouterPools each router's version.
    /// Off when not given (standalone routers). Needs `--pool` and Kubernetes credentials
    /// (in-cluster service account or KUBECONFIG).
    #[arg(long, env = "STREAMSPLIT_ROLLOUT_LEASE_NAMESPACE", requires = "pool")]
    pub rollout_lease_namespace: Option<String>,
    /// Router pool this router serves (named in its roll-out Lease).
    #[arg(long, env = "STREAMSPLIT_POOL")]
    pub pool: Option<String>,
    /// How often the roll-out Lease is renewed (also at once on every bundle swap). A router
    /// that misses two renewals in a row is reported as gone.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub rollout_lease_interval: Duration,
    /// Whether every routed copy carries lineage headers: `streamsplit.rule`,
    /// `streamsplit.bundle.version` and `streamsplit.source.{topic,partition,offset}`, after the
    /// record's own headers. Set per pool in the chart (`routers[].lineageHeaders`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "STREAMSPLIT_LINEAGE_HEADERS")]
    pub lineage_headers: bool,
    /// Most best-effort copies in flight; beyond it best-effort copies are dropped (counted in
    /// `streamsplit_dropped_total`), never waited for.
    #[arg(long, default_value_t = crate::run::kafka_config::DEFAULT_BEST_EFFORT_QUEUE)]
    pub best_effort_queue: usize,
}

/// Parses a byte size: a plain number, or one with a `Ki`, `Mi` or `Gi` suffix.
fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(index) => text.split_at(index),
        None => (text, ""),
    };
    let multiplier: usize = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return Err(format!("expected a size like 128Mi, got {text:?}")),
    };
    number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("expected a positive size like 128Mi, got {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("128Mi"), Ok(128 << 20));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("1Gi"), Ok(1 << 30));
        assert!(parse_bytes("12MB").is_err());
        assert!(parse_bytes("0").is_err());
    }
}
