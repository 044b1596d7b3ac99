//! SIGTERM drains within one deadline (`--drain-timeout`), whatever is stuck: not one flush
//! timeout per producer, on revoke and again at close. What did not finish stays uncommitted.

mod common;

use std::time::{Duration, Instant};

use common::*;
use streamsplit_e2e::{unique_name, wait_until, Broker};

#[test]
fn shutdown_with_stuck_copies_ends_within_the_drain_timeout() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, exceptions] = ["src", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 1), (&exceptions, 1)])
        .unwrap();
    // Copies to a topic that does not exist wait in every producer for two minutes.
    for (name, tier) in [
        ("crit", "critical"),
        ("std", "standard"),
        ("be", "best-effort"),
    ] {
        let topic = unique_name(&format!("missing-{name}"));
        write_rule(
            &rules_dir,
            name,
            "true",
            &topic,
            &format!("  tier: {tier}\n"),
        );
    }
    let records = seq_records(0..20);
    broker.produce(&source, &records).unwrap();
    let args = vec![
        "--rules".to_string(),
        rules_dir.display().to_string(),
        "--producer-property".to_string(),
        "topic.metadata.propagation.max.ms=120000".to_string(),
        "--drain-timeout".to_string(),
        "3s".to_string(),
    ];
    let mut router = start_router(broker, &source, &group, &exceptions, &args);
    wait_until(
        "the records to be consumed",
        Duration::from_secs(30),
        || {
            let (_, text) = streamsplit_e2e::http_get(&router.metrics_addr, "/metrics").ok()?;
            let consumed =
                streamsplit_e2e::sample_value(&text, "streamsplit_records_consumed_total", &[])?;
            (consumed >= 20.0).then_some(())
        },
    )
    .unwrap();
    let stopping = Instant::now();
    let status = router.process.terminate(Duration::from_secs(60)).unwrap();
    let took = stopping.elapsed();
    assert!(status.success());
    assert!(
        took < Duration::from_secs(8),
        "drain bounded by --drain-timeout 3s, took {took:?}"
    );
    assert!(
        broker
            .committed(&group, &source)
            .unwrap()
            .values()
            .all(|offset| *offset == 0),
        "unfinished records stay uncommitted"
    );
}
