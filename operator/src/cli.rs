//! Command-line interface of `streamsplit-operator`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use streamsplit_rules::client_properties::parse_property;

/// Reconciles SplitRule resources into Kafka topics and one rule-bundle ConfigMap per router pool.
#[derive(Debug, Parser)]
#[command(name = "streamsplit-operator", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "STREAMSPLIT_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `run` (also accepted without the subcommand name).
    #[command(flatten)]
    pub run: RunArgs,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reconcile SplitRules until SIGTERM (the default).
    Run,
    /// Print a CustomResourceDefinition as YAML (the source of crds/<kind>.yaml).
    Crdgen {
        /// Which resource.
        #[arg(value_enum, default_value_t = CrdKind::SplitRule)]
        kind: CrdKind,
    },
}

/// The custom resources the operator defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CrdKind {
    /// `SplitRule`: one rule, written by rule authors in their namespaces.
    #[value(name = "splitrule")]
    SplitRule,
    /// `RouterPool`: a pool of routers and its policy, written by the platform team.
    #[value(name = "routerpool")]
    RouterPool,
}

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "STREAMSPLIT_BROKERS", default_value = "localhost:9092")]
    pub brokers: String,
    /// librdkafka property for the admin client (TLS, SASL, ...); repeatable. Never secrets:
    /// see `--kafka-properties-file` and `--kafka-property-file`.
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
    /// Watch SplitRules in this namespace only (default: all namespaces).
    #[arg(long, env = "STREAMSPLIT_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Namespace of the bundle ConfigMaps and the leader Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Bundle ConfigMap name prefix; the pool name is appended.
    #[arg(long, default_value = "streamsplit-rules-")]
    pub configmap_prefix: String,
    /// Partitions of a topic the operator creates when the rule names none.
    #[arg(long, default_value_t = 3)]
    pub default_partitions: i32,
    /// Replication factor of a topic the operator creates when the rule names none.
    #[arg(long, default_value_t = 3)]
    pub default_replication_factor: i32,
    /// How long a rule with deletionPolicy Delete waits for Kafka to delete its topic before it
    /// is released anyway (with a Warning event).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub topic_deletion_timeout: Duration,
    /// How often every pool's bundle is recomputed even without changes (self-healing).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub resync_interval: Duration,
    /// Address of /metrics, /healthz, /readyz.
    #[arg(long, default_value = "0.0.0.0:8080", env = "STREAMSPLIT_METRICS_ADDR")]
    pub metrics_addr: SocketAddr,
    /// Elect a leader through a Lease so several replicas can run (disable for a single replica).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = "streamsplit-operator")]
    pub lease_name: String,
    /// Identity in the Lease (default: the pod name or host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Uncompressed bytes of rules per bundle shard (bundles over 512 KiB are sharded).
    #[arg(long, hide = true, default_value_t = streamsplit_rules::bundle_shards::TARGET_RAW_SHARD_BYTES)]
    pub bundle_shard_target_bytes: usize,
    /// Lease duration: how long a dead leader blocks a takeover.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,
}
