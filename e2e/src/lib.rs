//! Harness for tests against real parts: the Kafka-protocol broker started by
//! `e2e/kafka/up.sh` (or any cluster named in `STREAMSPLIT_TEST_BROKERS`), and router processes.
//!
//! Tests never skip silently: if no broker can be started, they fail with the reason.

pub mod broker;
pub mod checker;
pub mod cluster;
pub mod configmap_volume;
pub mod http_probe;
pub mod poll;
pub mod process;
pub mod prom;
pub mod secure_broker;

pub use broker::{unique_name, Broker, PrivateBroker, ReadRecord, StopSignal, TestRecord};
pub use cluster::{workspace_binary, Cluster, Projection};
pub use configmap_volume::ProjectedConfigMap;
pub use http_probe::http_get;
pub use poll::{wait_until, wait_until_every};
pub use process::ChildProcess;
pub use prom::sample_value;
pub use secure_broker::SecureKafka;

use std::path::PathBuf;

/// The repository root (for scripts and examples).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Runs one of the `up.sh` scripts (paths relative to the repository root) and returns the
/// value of the `export NAME=value` line it prints.
pub fn run_up_script(script: &str, name: &str) -> anyhow::Result<String> {
    run_up_script_with(script, name, &[])
}

/// [`run_up_script`] with extra environment variables.
pub fn run_up_script_with(
    script: &str,
    name: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<String> {
    use anyhow::Context;
    let script = repo_root().join(script);
    let output = std::process::Command::new("bash")
        .arg(&script)
        .envs(env.iter().copied())
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let prefix = format!("export {name}=");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::to_string)
        .with_context(|| format!("{} printed no {name}", script.display()))
}

/// Arguments of `streamsplit-router run` as the tests and benchmarks start it: fast commits and
/// group joins. Callers append the rule source and their own extras.
pub fn router_run_args(
    bootstrap: &str,
    source: &str,
    group: &str,
    exception_topic: &str,
    metrics_addr: &str,
) -> Vec<String> {
    [
        "run",
        "--brokers",
        bootstrap,
        "--source-topic",
        source,
        "--group",
        group,
        "--exception-topic",
        exception_topic,
        "--metrics-addr",
        metrics_addr,
        "--commit-interval",
        "200ms",
        "--consumer-property",
        "session.timeout.ms=6000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}
