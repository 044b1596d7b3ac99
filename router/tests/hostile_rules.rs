//! No rule can hurt routing: a condition calling `sleep` never compiles, and a condition that
//! burns time is stopped by the evaluation budget, then quarantined, while the other rules keep
//! routing every record.

mod common;

use std::time::Duration;

use common::*;
use streamsplit_e2e::{http_get, sample_value, unique_name, Broker};

#[test]
fn slow_and_sleeping_rules_cannot_stall_the_pool() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, good, sleepy, slow, exceptions] =
        ["src", "good", "sleepy", "slow", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[
            (&source, 2),
            (&good, 1),
            (&sleepy, 1),
            (&slow, 1),
            (&exceptions, 1),
        ])
        .unwrap();
    write_rule(&rules_dir, "good", "record.seq >= 0", &good, "");
    write_rule(
        &rules_dir,
        "sleepy",
        "sleep(1); record.seq >= 0",
        &sleepy,
        "",
    );
    write_rule(
        &rules_dir,
        "slow",
        r#"for i in 0..1000 { let s = ""; s.pad(1000000, "x"); } true"#,
        &slow,
        "",
    );
    let records = seq_records(0..200);
    broker.produce(&source, &records).unwrap();
    let args = vec![
        "--rules".to_string(),
        rules_dir.display().to_string(),
        "--eval-budget".to_string(),
        "5ms".to_string(),
    ];
    let mut router = start_router(broker, &source, &group, &exceptions, &args);
    // At 1 s per record (sleep) or ~0.3 s (the string loop) the old engine needed minutes.
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));

    assert_eq!(broker.read_all(&good).unwrap().len(), 200, "good rule");
    assert!(broker.read_all(&sleepy).unwrap().is_empty());
    assert!(broker.read_all(&slow).unwrap().is_empty());
    let exceptions_read = broker.read_all(&exceptions).unwrap();
    let of_slow: Vec<_> = exceptions_read
        .iter()
        .filter(|r| r.header("streamsplit.exception.rule").as_deref() == Some("test/slow"))
        .collect();
    assert_eq!(
        of_slow.len(),
        200,
        "every record the slow rule could not decide is in the exception topic"
    );
    let messages: Vec<String> = of_slow
        .iter()
        .filter_map(|r| r.header("streamsplit.exception.message"))
        .collect();
    assert!(messages.iter().any(|m| m.contains("time budget")));
    assert!(messages.iter().any(|m| m.contains("quarantined")));

    let (_, metrics) = http_get(&router.metrics_addr, "/metrics").unwrap();
    let overruns = sample_value(
        &metrics,
        "streamsplit_rule_overruns_total",
        &[("rule", "test/slow")],
    );
    assert_eq!(
        overruns,
        Some(streamsplit_rules::rule_set::QUARANTINE_AFTER_OVERRUNS as f64),
        "quarantined after the configured number of overruns"
    );
    assert_eq!(
        sample_value(&metrics, "streamsplit_rules_quarantined", &[]),
        Some(2.0),
        "the sleeping rule at load, the slow one at run time"
    );
    let log = router.process.output();
    assert!(log.contains("function 'sleep' is not available"), "{log}");
    assert!(router
        .process
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}
