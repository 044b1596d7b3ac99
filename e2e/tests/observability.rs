//! Every metric the alerts and the Grafana dashboard use is really exposed by the router or the
//! operator after a short real run: no panel or alert points at a metric that does not exist.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use streamsplit_e2e::prom::parse_samples;
use streamsplit_e2e::{http_get, repo_root, unique_name, wait_until};
use support::*;

/// `streamsplit_*` identifiers in a text, minus the label names that share the prefix.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(found) = text[i..].find("streamsplit_") {
        let start = i + found;
        let preceded_by_ident =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |e| start + e);
        if !preceded_by_ident && !text[end..].trim_start().starts_with('=') {
            names.insert(text[start..end].to_string());
        }
        i = end;
    }
    names.remove("streamsplit_io_pool"); // the pool target label, not a metric
    names
}

#[test]
fn every_metric_used_by_alerts_and_dashboard_is_exposed() {
    let mut stack = Stack::start();
    let [ok, lost_topic] = ["ok", "missing"].map(unique_name);
    // No drift check during the test: it would re-create the topic deleted below on purpose.
    stack.operator =
        Some(stack.spawn_operator("operator-under-test", &["--resync-interval", "1h"]));
    stack.apply(
        &(rule_yaml("routes", r#"record.kind == "a""#, &ok, "")
            + &rule_yaml("errors", r#"record.kind.starts_with(1)"#, &ok, "")),
    );
    stack.wait_ready("routes", "True");
    stack.wait_ready("errors", "True");
    stack.start_router();
    stack.wait_router_on(stack.bundle().unwrap().1["version"].as_str().unwrap());
    // A rule whose topic vanishes behind the operator's back makes the router report produce errors.
    stack.apply(&rule_yaml(
        "lost",
        "true",
        &lost_topic,
        "  tier: critical\n",
    ));
    stack.wait_ready("lost", "True");
    let version = wait_until(
        "the bundle with the lost rule",
        Duration::from_secs(30),
        || {
            let (_, bundle) = stack.bundle()?;
            (bundle["rules"].as_array()?.len() == 3)
                .then(|| bundle["version"].as_str().map(String::from))
                .flatten()
        },
    )
    .unwrap();
    stack.wait_router_on(&version);
    stack.broker.delete_topic(&lost_topic).unwrap();
    stack.produce_kinds(&["a", "b"], 5);
    stack
        .broker
        .produce(
            &stack.source,
            &[streamsplit_e2e::TestRecord {
                value: b"garbage".to_vec(),
                ..Default::default()
            }],
        )
        .unwrap();
    stack.wait_routed();

    let router = stack.router.as_ref().unwrap();
    let operator = stack.operator.as_ref().unwrap();
    // Consumer lag comes from librdkafka statistics every 5 s.
    let router_metrics = wait_until(
        "consumer lag in the router's metrics",
        Duration::from_secs(20),
        || {
            let (_, text) = http_get(&router.metrics_addr, "/metrics").ok()?;
            text.contains("streamsplit_consumer_lag{").then_some(text)
        },
    )
    .unwrap();
    let (_, operator_metrics) = http_get(&operator.metrics_addr, "/metrics").unwrap();
    let exposed: BTreeSet<String> = parse_samples(&router_metrics)
        .into_iter()
        .chain(parse_samples(&operator_metrics))
        .map(|s| s.name)
        .collect();

    let root = repo_root();
    let alerts = std::fs::read_to_string(
        root.join("charts/streamsplit/templates/monitoring/prometheusrule.yaml"),
    )
    .unwrap();
    let dashboard =
        std::fs::read_to_string(root.join("charts/streamsplit/files/dashboard.json")).unwrap();
    let used: BTreeSet<String> = metric_names(&alerts)
        .into_iter()
        .chain(metric_names(&dashboard))
        .collect();
    assert!(
        used.len() >= 15,
        "the alerts and dashboard use only {used:?}"
    );
    let missing: Vec<&String> = used
        .iter()
        .filter(|name| !exposed.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "used by alerts or dashboard but not exposed: {missing:?}\nexposed: {exposed:?}"
    );
}
