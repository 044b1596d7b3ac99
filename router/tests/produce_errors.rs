//! A copy that can never be produced (its topic does not exist) is not retried forever: the
//! record goes to the exception topic with kind `produce`, and the source offset is committed.

mod common;

use std::time::Duration;

use common::*;
use streamsplit_e2e::{unique_name, Broker, TestRecord};

#[test]
fn copies_to_a_missing_topic_become_produce_exceptions_for_every_tier() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, present, missing_std, missing_crit, exceptions] =
        ["src", "present", "missing-std", "missing-crit", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 1), (&present, 1), (&exceptions, 1)])
        .unwrap();
    write_rule(&rules_dir, "present", "true", &present, "");
    write_rule(&rules_dir, "missing-std", "true", &missing_std, "");
    write_rule(
        &rules_dir,
        "missing-crit",
        "true",
        &missing_crit,
        "  tier: critical\n",
    );

    let records: Vec<TestRecord> = (0..20)
        .map(|i| TestRecord {
            value: format!(r#"{{"seq": {i}}}"#).into_bytes(),
            ..TestRecord::default()
        })
        .collect();
    broker.produce(&source, &records).unwrap();
    let mut args = vec!["--rules".to_string(), rules_dir.display().to_string()];
    // librdkafka waits this long for a topic to appear in metadata before failing the copy.
    args.extend([
        "--producer-property".into(),
        "topic.metadata.propagation.max.ms=1000".into(),
    ]);
    let mut router = start_router(broker, &source, &group, &exceptions, &args);
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(90));

    assert_eq!(
        broker.read_all(&present).unwrap().len(),
        20,
        "the healthy rule still routes"
    );
    let exceptions_read = broker.read_all(&exceptions).unwrap();
    for rule in ["test/missing-std", "test/missing-crit"] {
        let of_rule: Vec<_> = exceptions_read
            .iter()
            .filter(|r| r.header("streamsplit.exception.rule").as_deref() == Some(rule))
            .collect();
        assert_eq!(
            of_rule.len(),
            20,
            "one produce exception per record for {rule}"
        );
        for exception in of_rule {
            assert_eq!(
                exception.header("streamsplit.exception.kind").as_deref(),
                Some("produce")
            );
            let message = exception.header("streamsplit.exception.message").unwrap();
            assert!(message.contains("cannot produce to"), "{message}");
        }
    }
    let (_, metrics) = streamsplit_e2e::http_get(&router.metrics_addr, "/metrics").unwrap();
    assert!(
        metrics.contains(r#"streamsplit_exceptions_total{kind="produce"} 40"#),
        "{metrics}"
    );
    assert!(router
        .process
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}
