//! A router that starts before its bundle exists consumes nothing until the bundle is mounted:
//! otherwise it would commit records it never copied. The config directory itself may appear
//! after start-up (a ConfigMap projected late) and is noticed within a second.

mod common;

use std::time::{Duration, Instant};

use common::*;
use streamsplit_e2e::{
    http_get, sample_value, unique_name, wait_until, Broker, ProjectedConfigMap, TestRecord,
};
use streamsplit_rules::{Mode, RuleBundle, RuleDefinition, RuleId, Tier, BUNDLE_FILE_NAME};

#[test]
fn nothing_is_consumed_until_a_bundle_is_mounted_and_a_late_directory_is_noticed_within_a_second() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let [source, target, exceptions] = ["src", "target", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 2), (&target, 1), (&exceptions, 1)])
        .unwrap();
    let records = seq_records(0..10);
    broker.produce(&source, &records).unwrap();

    // Neither the config directory nor a fallback copy exists yet.
    let config_dir = work.path().join("config");
    let args = vec![
        "--config-dir".to_string(),
        config_dir.display().to_string(),
        "--state-dir".to_string(),
        work.path().join("state").display().to_string(),
    ];
    let mut router = start_router(broker, &source, &group, &exceptions, &args);
    let consumed = |router: &RouterProcess| {
        let (_, text) = http_get(&router.metrics_addr, "/metrics").ok()?;
        sample_value(&text, "streamsplit_records_consumed_total", &[])
    };
    wait_until(
        "the router to serve /metrics",
        Duration::from_secs(30),
        || consumed(&router),
    )
    .unwrap();
    // Absence can only be observed over a window: the old router had consumed and committed
    // everything well within it.
    let window = Instant::now() + Duration::from_secs(3);
    while Instant::now() < window {
        assert_eq!(consumed(&router), Some(0.0), "consumed without rules");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        broker.committed(&group, &source).unwrap().is_empty(),
        "nothing may be committed without rules"
    );
    let (status, body) = http_get(&router.metrics_addr, "/readyz").unwrap();
    assert_eq!(status, 503, "{body}");

    let bundle = RuleBundle::build(
        "default",
        [RuleDefinition {
            id: RuleId::new(Some("test"), "all"),
            condition: "true".into(),
            target_topic: target.clone(),
            tier: Tier::Standard,
            mode: Mode::Active,
            suspend: false,
            sample: None,
            project: None,
            transform: None,
            key: None,
            exclusive_group: None,
            max_records_per_second: None,
            target_topic_pattern: None,
        }],
    );
    let mut volume = ProjectedConfigMap::new(&config_dir).unwrap();
    let published = Instant::now();
    volume
        .publish(&[(BUNDLE_FILE_NAME, bundle.to_json().as_bytes())])
        .unwrap();
    let noticed = wait_until("the bundle to go live", Duration::from_secs(10), || {
        let (_, text) = http_get(&router.metrics_addr, "/metrics").ok()?;
        sample_value(
            &text,
            "streamsplit_config_version_info",
            &[("version", &bundle.version), ("source", "mounted")],
        )
        .map(|_| published.elapsed())
    })
    .unwrap();
    assert!(
        noticed <= Duration::from_secs(1),
        "a late config directory must be noticed within 1 s, took {noticed:?}"
    );

    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));
    let copies = broker.read_all(&target).unwrap();
    assert_eq!(copies.len(), 10, "every record routed by the bundle");
    assert!(router
        .process
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}

#[test]
fn a_router_stopped_before_any_bundle_exits_cleanly_having_consumed_nothing() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let [source, exceptions] = ["src", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 1), (&exceptions, 1)])
        .unwrap();
    broker
        .produce(
            &source,
            &[TestRecord {
                value: b"{}".to_vec(),
                ..TestRecord::default()
            }],
        )
        .unwrap();
    let args = vec![
        "--config-dir".to_string(),
        work.path().join("missing").display().to_string(),
    ];
    let mut router = start_router(broker, &source, &group, &exceptions, &args);
    wait_until("/readyz to answer", Duration::from_secs(30), || {
        http_get(&router.metrics_addr, "/readyz").ok()
    })
    .unwrap();
    assert!(router
        .process
        .terminate(Duration::from_secs(10))
        .unwrap()
        .success());
    assert!(broker.committed(&group, &source).unwrap().is_empty());
}
