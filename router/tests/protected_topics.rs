//! Defence in depth against loops: a bundle (hand-edited, or from a misbehaving operator) with
//! rules that copy into the router's own source or exception topic gets those rules refused
//! with reason ProtectedTopic, and routing of the other rules goes on. Without the refusal,
//! every copy into the source topic would be consumed and copied again, forever.

mod common;

use std::time::Duration;

use common::*;
use streamsplit_e2e::{http_get, sample_value, unique_name, wait_until, Broker};
use streamsplit_rules::{Mode, RuleBundle, RuleDefinition, RuleId, Tier, BUNDLE_FILE_NAME};

fn rule(name: &str, target: &str) -> RuleDefinition {
    RuleDefinition {
        id: RuleId::new(Some("team"), name),
        condition: "true".into(),
        target_topic: target.to_string(),
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
    }
}

fn rules_targeting_the_routers_own_topics_are_refused(broker: &Broker) {
    let work = tempfile::tempdir().unwrap();
    let [source, target, exceptions] = ["src", "target", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 2), (&target, 1), (&exceptions, 1)])
        .unwrap();
    let config_dir = work.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let bundle = RuleBundle::build(
        "default",
        [
            rule("loop", &source),
            rule("into-exceptions", &exceptions),
            rule("fine", &target),
        ],
    );
    std::fs::write(config_dir.join(BUNDLE_FILE_NAME), bundle.to_json()).unwrap();
    let args = vec!["--config-dir".to_string(), config_dir.display().to_string()];
    let mut router = start_router(broker, &source, &group, &exceptions, &args);
    let metric = |name: &str| {
        let (_, text) = http_get(&router.metrics_addr, "/metrics").ok()?;
        sample_value(&text, name, &[])
    };
    wait_until("the bundle to go live", Duration::from_secs(30), || {
        (metric("streamsplit_rules_quarantined")? == 2.0).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", router.process.output()));
    assert_eq!(metric("streamsplit_rules_active"), Some(1.0));

    broker.produce(&source, &seq_records(0..20)).unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));
    assert_eq!(broker.read_all(&target).unwrap().len(), 20);
    let source_records: i64 = broker.high_watermarks(&source).unwrap().values().sum();
    assert_eq!(
        source_records, 20,
        "nothing was copied back into the source"
    );
    assert_eq!(broker.read_all(&exceptions).unwrap().len(), 0);

    let log = router.process.output();
    for (rule, role) in [
        ("team/loop", "a source topic of this router"),
        ("team/into-exceptions", "the exception topic of this router"),
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(rule) && l.contains("ProtectedTopic") && l.contains(role)),
            "no ProtectedTopic quarantine of {rule} in the log:\n{log}"
        );
    }
    assert!(router
        .process
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}

#[test]
fn noida_rules_targeting_the_routers_own_topics_are_refused() {
    rules_targeting_the_routers_own_topics_are_refused(Broker::shared());
}

#[test]
fn nisshi_rules_targeting_the_routers_own_topics_are_refused() {
    rules_targeting_the_routers_own_topics_are_refused(Broker::nisshi());
}
