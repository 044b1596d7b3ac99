//! A stalled best-effort target never holds back critical copies: best-effort copies beyond
//! their lane's budget are dropped and counted, and critical copies keep flowing.

mod common;

use std::time::Duration;

use common::*;
use streamsplit_e2e::{http_get, sample_value, unique_name, wait_until, Broker};

#[test]
fn critical_copies_flow_while_the_best_effort_target_is_stalled() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, critical, stalled, exceptions] =
        ["src", "critical", "stalled", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 2), (&critical, 1), (&exceptions, 1)])
        .unwrap();
    write_rule(&rules_dir, "crit", "true", &critical, "  tier: critical\n");
    // The best-effort target does not exist, and librdkafka waits two minutes for it to appear:
    // every best-effort copy sits in its queue, stalled.
    write_rule(
        &rules_dir,
        "noisy",
        "true",
        &stalled,
        "  tier: best-effort\n",
    );
    let records = seq_records(0..3000);
    broker.produce(&source, &records).unwrap();
    let args = vec![
        "--rules".to_string(),
        rules_dir.display().to_string(),
        "--producer-property".to_string(),
        "topic.metadata.propagation.max.ms=120000".to_string(),
        "--max-in-flight".to_string(),
        "200".to_string(),
        // Room for more best-effort copies than records in flight: in the old design, records
        // holding stalled best-effort copies used up the shared budget long before the
        // best-effort queue was full, and consumption stopped for every tier.
        "--best-effort-queue".to_string(),
        "1000".to_string(),
    ];
    let mut router = start_router(broker, &source, &group, &exceptions, &args);
    wait_until("all 3000 critical copies", Duration::from_secs(60), || {
        let copies: i64 = broker.high_watermarks(&critical).ok()?.values().sum();
        (copies >= 3000).then_some(())
    })
    .unwrap();
    let (_, metrics) = http_get(&router.metrics_addr, "/metrics").unwrap();
    let dropped = sample_value(
        &metrics,
        "streamsplit_dropped_total",
        &[("tier", "best-effort")],
    )
    .unwrap();
    assert!(
        dropped >= 1900.0,
        "best-effort copies beyond their budget are dropped and counted: {dropped}"
    );
    router.process.kill();
}
