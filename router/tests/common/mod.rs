//! Shared pieces of the router's integration tests: rule files, a router process, predictions.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use streamsplit_e2e::{free_port, router_run_args, unique_name, Broker, ChildProcess, TestRecord};

/// The router binary under test: this build's, or `STREAMSPLIT_ROUTER_BIN` (to show that a
/// regression test fails on an older build).
pub fn router_bin() -> PathBuf {
    std::env::var_os("STREAMSPLIT_ROUTER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_streamsplit-router")))
}

/// A router process and the address of its metrics endpoint.
pub struct RouterProcess {
    pub process: ChildProcess,
    pub metrics_addr: String,
}

/// Starts `streamsplit-router run` with fast group and commit settings.
pub fn start_router(
    broker: &Broker,
    source: &str,
    group: &str,
    exception_topic: &str,
    rules_args: &[String],
) -> RouterProcess {
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let mut args = router_run_args(
        &broker.bootstrap,
        source,
        group,
        exception_topic,
        &metrics_addr,
    );
    args.extend([
        "--consumer-property".into(),
        "heartbeat.interval.ms=500".into(),
    ]);
    args.extend(rules_args.iter().cloned());
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.log", unique_name("router")));
    let process = ChildProcess::spawn(&router_bin(), &args, &log)
        .unwrap_or_else(|e| panic!("cannot start the router: {e}"));
    RouterProcess {
        process,
        metrics_addr,
    }
}

/// Records `{"seq": i}` for every `i` in `range`.
pub fn seq_records(range: std::ops::Range<usize>) -> Vec<TestRecord> {
    range
        .map(|i| TestRecord {
            value: format!(r#"{{"seq": {i}}}"#).into_bytes(),
            ..TestRecord::default()
        })
        .collect()
}

/// Writes a SplitRule manifest file.
pub fn write_rule(dir: &Path, name: &str, condition: &str, topic: &str, extra: &str) {
    let yaml = format!(
        "apiVersion: streamsplit.io/v1alpha1\nkind: SplitRule\nmetadata:\n  name: {name}\n  namespace: test\nspec:\n  condition: '{condition}'\n  targetTopic: {topic}\n{extra}"
    );
    std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
}

/// What `streamsplit-router eval` predicts for each input line.
pub struct Prediction {
    pub targets: Vec<String>,
    /// Shaped copy values by target topic.
    pub values: BTreeMap<String, serde_json::Value>,
    /// Re-keyed copy keys by target topic.
    pub keys: BTreeMap<String, String>,
    pub rule_errors: Vec<String>,
    /// Rules an earlier rule of their exclusive group took the record from.
    pub excluded: Vec<String>,
    pub decode_error: bool,
}

/// Runs the real `eval` subcommand on the values, one per line.
pub fn predict(rules_dir: &Path, values: &[Vec<u8>]) -> Vec<Prediction> {
    predict_lines(rules_dir, values, "value")
}

/// Runs the real `eval` subcommand on input lines of `format` (`value` or `envelope`).
pub fn predict_lines(rules_dir: &Path, lines: &[Vec<u8>], format: &str) -> Vec<Prediction> {
    let input = rules_dir.with_extension("input.jsonl");
    let mut text = Vec::new();
    for line in lines {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    std::fs::write(&input, text).unwrap();
    let output = Command::new(router_bin())
        .args([
            "eval".as_ref(),
            rules_dir.as_os_str(),
            "--input".as_ref(),
            input.as_os_str(),
            "--format".as_ref(),
            format.as_ref(),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            Prediction {
                values: v["values"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                keys: v["keys"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
                targets: v["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect(),
                rule_errors: v["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["rule"].as_str().unwrap().to_string())
                    .collect(),
                excluded: v["excluded"]
                    .as_array()
                    .map(|a| a.iter().map(|r| r.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
                decode_error: !v["exception"].is_null(),
            }
        })
        .collect()
}

/// Waits until `group` has committed everything produced to `topic` so far.
pub fn wait_for_full_commit(broker: &Broker, group: &str, topic: &str, timeout: Duration) {
    broker
        .wait_for_commit(group, topic, timeout)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Counts occurrences of each value.
pub fn multiset<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> BTreeMap<Vec<u8>, usize> {
    let mut counts = BTreeMap::new();
    for value in values {
        *counts.entry(value.to_vec()).or_insert(0) += 1;
    }
    counts
}
