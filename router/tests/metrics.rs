//! `/metrics` after a known run: every metric the router promises, with the values that run
//! must produce.

mod common;

use std::time::Duration;

use common::*;
use streamsplit_e2e::{
    http_get, sample_value, unique_name, wait_until, Broker, ProjectedConfigMap, TestRecord,
};
use streamsplit_rules::{Mode, RuleBundle, RuleDefinition, RuleId, Tier, BUNDLE_FILE_NAME};

fn rule(name: &str, condition: &str, topic: &str, tier: Tier, mode: Mode) -> RuleDefinition {
    RuleDefinition {
        id: RuleId::new(Some("m"), name),
        condition: condition.into(),
        target_topic: topic.into(),
        tier,
        mode,
        suspend: false,
        sample: None,
        project: None,
        transform: None,
        key: None,
        exclusive_group: None,
        max_records_per_second: None,
        target_topic_pattern: None,
    }
}

#[test]
fn metrics_report_a_known_run_exactly() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let [source, even, all, shadow, missing, exceptions] =
        ["src", "even", "all", "shadow", "missing", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[
            (&source, 1),
            (&even, 1),
            (&all, 1),
            (&shadow, 1),
            (&exceptions, 1),
        ])
        .unwrap();
    let bundle = RuleBundle::build(
        "default",
        [
            rule(
                "even",
                "record.seq % 2 == 0",
                &even,
                Tier::Standard,
                Mode::Active,
            ),
            rule("all", "true", &all, Tier::BestEffort, Mode::Active),
            rule(
                "thirds",
                "record.seq % 3 == 0",
                &shadow,
                Tier::Standard,
                Mode::Shadow,
            ),
            rule(
                "fails",
                r#"record.seq.starts_with("1")"#,
                &all,
                Tier::Standard,
                Mode::Active,
            ),
            rule(
                "lost-topic",
                "record.seq < 10",
                &missing,
                Tier::Critical,
                Mode::Active,
            ),
        ],
    );
    let mut volume = ProjectedConfigMap::new(&work.path().join("config")).unwrap();
    volume
        .publish(&[(BUNDLE_FILE_NAME, bundle.to_json().as_bytes())])
        .unwrap();
    let mut args = vec![
        "--config-dir".into(),
        volume.dir().display().to_string(),
        "--state-dir".into(),
        work.path().join("state").display().to_string(),
    ];
    args.extend([
        "--producer-property".into(),
        "topic.metadata.propagation.max.ms=1000".into(),
    ]);
    let router = start_router(broker, &source, &group, &exceptions, &args);

    let mut records: Vec<TestRecord> = (0..100)
        .map(|i| TestRecord {
            value: format!(r#"{{"seq": {i}}}"#).into_bytes(),
            ..TestRecord::default()
        })
        .collect();
    records.push(TestRecord {
        value: b"not json".to_vec(),
        ..TestRecord::default()
    });
    records.push(TestRecord {
        value: b"[1, 2]".to_vec(),
        ..TestRecord::default()
    });
    broker.produce(&source, &records).unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(90));

    let partition = "0";
    let text = wait_until("commit lag to reach zero", Duration::from_secs(10), || {
        let (_, text) = http_get(&router.metrics_addr, "/metrics").ok()?;
        (sample_value(
            &text,
            "streamsplit_commit_lag",
            &[("topic", &source), ("partition", partition)],
        ) == Some(0.0))
        .then_some(text)
    })
    .unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample_value(&text, name, labels)
            .unwrap_or_else(|| panic!("{name} {labels:?} is not exposed:\n{text}"))
    };
    assert_eq!(value("streamsplit_records_consumed_total", &[]), 102.0);
    assert_eq!(
        value(
            "streamsplit_records_routed_total",
            &[("rule", "m/even"), ("topic", &even), ("tier", "standard")]
        ),
        50.0
    );
    assert_eq!(
        value(
            "streamsplit_records_routed_total",
            &[("rule", "m/all"), ("topic", &all), ("tier", "best-effort")]
        ),
        100.0
    );
    assert_eq!(
        value(
            "streamsplit_rule_matches_total",
            &[("rule", "m/thirds"), ("mode", "shadow")]
        ),
        34.0
    );
    assert_eq!(
        value(
            "streamsplit_rule_matches_total",
            &[("rule", "m/even"), ("mode", "active")]
        ),
        50.0
    );
    assert_eq!(
        value("streamsplit_rule_errors_total", &[("rule", "m/fails")]),
        100.0
    );
    assert_eq!(
        value("streamsplit_exceptions_total", &[("kind", "decode")]),
        2.0
    );
    assert_eq!(
        value("streamsplit_exceptions_total", &[("kind", "rule")]),
        100.0
    );
    assert_eq!(
        value("streamsplit_exceptions_total", &[("kind", "produce")]),
        10.0
    );
    assert!(value("streamsplit_produce_errors_total", &[("tier", "critical")]) >= 10.0);
    assert_eq!(
        value("streamsplit_dropped_total", &[("tier", "best-effort")]),
        0.0
    );
    assert_eq!(
        value("streamsplit_config_reloads_total", &[("result", "success")]),
        1.0
    );
    assert_eq!(
        value(
            "streamsplit_config_reloads_total",
            &[("result", "rejected")]
        ),
        0.0
    );
    assert_eq!(
        value(
            "streamsplit_config_version_info",
            &[("version", &bundle.version), ("source", "mounted")]
        ),
        1.0
    );
    assert_eq!(value("streamsplit_rules_active", &[]), 5.0);
    assert_eq!(value("streamsplit_rules_quarantined", &[]), 0.0);
    assert_eq!(
        value("streamsplit_record_processing_seconds_count", &[]),
        102.0
    );
    assert_eq!(value("streamsplit_assigned_partitions", &[]), 1.0);
    // Label values come from rules, topics, tiers and kinds only, never from record contents.
    assert!(
        !text.contains("not json") && !text.contains("seq"),
        "record contents leaked into labels"
    );
}
