//! Rules change while the router runs: kubelet-style ConfigMap swaps under load, quarantine of
//! broken rules, rejection of garbage, the local fallback copy, and the metrics that report it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use streamsplit_e2e::{
    http_get, sample_value, unique_name, wait_until, Broker, ProjectedConfigMap,
};
use streamsplit_rules::{
    Mode, RuleBundle, RuleDefinition, RuleId, RuleSet, Tier, BUNDLE_FILE_NAME,
};

fn rule(name: &str, condition: &str, topic: &str) -> RuleDefinition {
    RuleDefinition {
        id: RuleId::new(Some("test"), name),
        condition: condition.into(),
        target_topic: topic.into(),
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

fn publish(volume: &mut ProjectedConfigMap, bundle: &RuleBundle) {
    volume
        .publish(&[(BUNDLE_FILE_NAME, bundle.to_json().as_bytes())])
        .unwrap();
}

fn config_args(volume: &ProjectedConfigMap, state: &Path) -> Vec<String> {
    vec![
        "--config-dir".into(),
        volume.dir().display().to_string(),
        "--state-dir".into(),
        state.display().to_string(),
    ]
}

fn metric(router: &RouterProcess, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let (_, text) = http_get(&router.metrics_addr, "/metrics").ok()?;
    sample_value(&text, name, labels)
}

fn count(broker: &Broker, topic: &str) -> i64 {
    broker
        .high_watermarks(topic)
        .map(|m| m.values().sum())
        .unwrap_or(0)
}

#[test]
fn swaps_under_load_route_each_record_by_exactly_one_rule_set() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let [source, ta, tb, tc, td, exceptions] =
        ["src", "ta", "tb", "tc", "td", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[
            (&source, 2),
            (&ta, 1),
            (&tb, 1),
            (&tc, 1),
            (&td, 1),
            (&exceptions, 1),
        ])
        .unwrap();
    let a = rule("a", "record.seq % 2 == 0", &ta);
    let b = rule("b", "record.seq % 3 == 0", &tb);
    let c = rule("c", "record.seq % 5 == 0", &tc);
    let d = rule("d", "record.seq % 7 == 0", &td);
    // Each swap adds a rule (b, c, d) and the last two remove one (a, then b).
    let versions = [
        RuleBundle::build("default", [a.clone()]),
        RuleBundle::build("default", [a.clone(), b.clone()]),
        RuleBundle::build("default", [b.clone(), c.clone()]),
        RuleBundle::build("default", [c.clone(), d.clone()]),
    ];
    let added_topics = [&ta, &tb, &tc, &td];

    let mut volume = ProjectedConfigMap::new(&work.path().join("config")).unwrap();
    publish(&mut volume, &versions[0]);
    let mut router = start_router(
        broker,
        &source,
        &group,
        &exceptions,
        &config_args(&volume, &work.path().join("state")),
    );

    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let (source, producing) = (source.clone(), Arc::clone(&producing));
        std::thread::spawn(move || {
            let mut next = 0;
            while producing.load(Ordering::SeqCst) {
                Broker::shared()
                    .produce(&source, &seq_records(next..next + 50))
                    .unwrap();
                next += 50;
                std::thread::sleep(Duration::from_millis(25));
            }
            next
        })
    };
    wait_until("the first rule to route", Duration::from_secs(60), || {
        (count(broker, &ta) > 0).then_some(())
    })
    .unwrap();
    for (version, topic) in versions.iter().zip(added_topics).skip(1) {
        publish(&mut volume, version);
        let swapped = Instant::now();
        wait_until(
            &format!("{topic} to receive records within 2 s of the swap"),
            Duration::from_secs(2),
            || (count(broker, topic) > 0).then_some(()),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", router.process.output()));
        println!(
            "swap to {} live on {topic} after {:?}",
            version.version,
            swapped.elapsed()
        );
        // Let the new set route for a while before the next swap.
        let start = count(broker, topic);
        wait_until(
            "more records on the new topic",
            Duration::from_secs(30),
            || (count(broker, topic) > start + 50).then_some(()),
        )
        .unwrap();
    }
    producing.store(false, Ordering::SeqCst);
    let produced = producer.join().unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(120));

    // Where each record actually went; no record twice on one topic.
    let mut landed: BTreeMap<Vec<u8>, BTreeSet<String>> = BTreeMap::new();
    for topic in [&ta, &tb, &tc, &td] {
        for record in broker.read_all(topic).unwrap() {
            let value = record.value.unwrap();
            assert!(
                landed
                    .entry(value.clone())
                    .or_default()
                    .insert(topic.to_string()),
                "duplicate on {topic}: {}",
                String::from_utf8_lossy(&value)
            );
        }
    }
    // Per source partition, in offset order, the versions that routed the records never go back.
    let compiled: Vec<RuleSet> = versions.iter().map(|v| v.compile().0).collect();
    let predict = |set: &RuleSet, value: &[u8]| -> BTreeSet<String> {
        let evaluation = set.evaluate(value).unwrap();
        set.copies(&evaluation, value, &Default::default())
            .into_iter()
            .map(|c| c.outcome.unwrap().topic.into_owned())
            .collect()
    };
    let source_records = broker.read_all(&source).unwrap();
    assert_eq!(source_records.len(), produced);
    let mut by_partition: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
    for record in source_records {
        by_partition
            .entry(record.partition)
            .or_default()
            .push(record.value.unwrap());
    }
    for (partition, values) in &by_partition {
        let mut earliest = 0;
        for value in values {
            let actual = landed.get(value).cloned().unwrap_or_default();
            earliest = (earliest..versions.len())
                .find(|&v| predict(&compiled[v], value) == actual)
                .unwrap_or_else(|| panic!(
                    "partition {partition}: {} landed on {actual:?}, which no rule set at or after version {earliest} predicts",
                    String::from_utf8_lossy(value)
                ));
        }
        assert_eq!(
            earliest,
            versions.len() - 1,
            "partition {partition} ends on the last rule set"
        );
    }
    assert!(router
        .process
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}

#[test]
fn a_broken_rule_is_quarantined_and_the_rest_go_live() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let [source, good, broken, exceptions] = ["src", "good", "broken", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 1), (&good, 1), (&broken, 1), (&exceptions, 1)])
        .unwrap();
    let mut volume = ProjectedConfigMap::new(&work.path().join("config")).unwrap();
    publish(
        &mut volume,
        &RuleBundle::build(
            "default",
            [
                rule("good", "true", &good),
                rule("broken", "record.seq >", &broken),
            ],
        ),
    );
    let mut router = start_router(
        broker,
        &source,
        &group,
        &exceptions,
        &config_args(&volume, &work.path().join("state")),
    );
    broker.produce(&source, &seq_records(0..100)).unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));
    assert_eq!(count(broker, &good), 100);
    assert_eq!(count(broker, &broken), 0);
    assert_eq!(
        metric(&router, "streamsplit_rules_quarantined", &[]),
        Some(1.0)
    );
    assert_eq!(metric(&router, "streamsplit_rules_active", &[]), Some(1.0));
    assert_eq!(
        metric(
            &router,
            "streamsplit_config_reloads_total",
            &[("result", "partial")]
        ),
        Some(1.0)
    );
    assert!(router.process.output().contains("rule quarantined"));
    assert!(router
        .process
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}

#[test]
fn a_garbage_or_tampered_bundle_is_rejected_and_routing_continues_on_the_old_set() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let [source, ta, exceptions] = ["src", "ta", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 1), (&ta, 1), (&exceptions, 1)])
        .unwrap();
    let mut volume = ProjectedConfigMap::new(&work.path().join("config")).unwrap();
    let good = RuleBundle::build("default", [rule("a", "record.seq % 2 == 0", &ta)]);
    publish(&mut volume, &good);
    let mut router = start_router(
        broker,
        &source,
        &group,
        &exceptions,
        &config_args(&volume, &work.path().join("state")),
    );
    broker.produce(&source, &seq_records(0..100)).unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));

    volume
        .publish(&[(BUNDLE_FILE_NAME, b"{ this is not a bundle")])
        .unwrap();
    wait_until(
        "the garbage bundle to be rejected",
        Duration::from_secs(10),
        || {
            (metric(
                &router,
                "streamsplit_config_reloads_total",
                &[("result", "rejected")],
            )? == 1.0)
                .then_some(())
        },
    )
    .unwrap();
    let tampered = good.to_json().replace("% 2 == 0", "% 1 == 0");
    volume
        .publish(&[(BUNDLE_FILE_NAME, tampered.as_bytes())])
        .unwrap();
    wait_until(
        "the tampered bundle to be rejected",
        Duration::from_secs(10),
        || {
            (metric(
                &router,
                "streamsplit_config_reloads_total",
                &[("result", "rejected")],
            )? == 2.0)
                .then_some(())
        },
    )
    .unwrap();

    broker.produce(&source, &seq_records(100..200)).unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));
    assert_eq!(
        count(broker, &ta),
        100,
        "the old rule set (even seq) kept routing"
    );
    assert!(
        router.process.is_running(),
        "a bad config never stops the router"
    );
    assert_eq!(
        metric(
            &router,
            "streamsplit_config_version_info",
            &[("version", &good.version), ("source", "mounted")]
        ),
        Some(1.0)
    );
    assert!(router
        .process
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}

#[test]
fn starts_from_the_fallback_copy_then_switches_to_the_mounted_bundle() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let [source, from_fallback, from_mounted, exceptions] =
        ["src", "fb", "mnt", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[
            (&source, 1),
            (&from_fallback, 1),
            (&from_mounted, 1),
            (&exceptions, 1),
        ])
        .unwrap();
    let state = work.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let fallback = RuleBundle::build("default", [rule("fb", "true", &from_fallback)]);
    std::fs::write(state.join(BUNDLE_FILE_NAME), fallback.to_json()).unwrap();
    let mut volume = ProjectedConfigMap::new(&work.path().join("config")).unwrap();

    let mut router = start_router(
        broker,
        &source,
        &group,
        &exceptions,
        &config_args(&volume, &state),
    );
    broker.produce(&source, &seq_records(0..50)).unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));
    assert_eq!(count(broker, &from_fallback), 50);
    assert_eq!(
        metric(
            &router,
            "streamsplit_config_version_info",
            &[("version", &fallback.version), ("source", "fallback")]
        ),
        Some(1.0)
    );

    let mounted = RuleBundle::build("default", [rule("mnt", "true", &from_mounted)]);
    publish(&mut volume, &mounted);
    wait_until(
        "the mounted bundle to take over",
        Duration::from_secs(10),
        || {
            (metric(
                &router,
                "streamsplit_config_version_info",
                &[("version", &mounted.version), ("source", "mounted")],
            )? == 1.0)
                .then_some(())
        },
    )
    .unwrap();
    broker.produce(&source, &seq_records(50..100)).unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));
    assert_eq!(
        count(broker, &from_fallback),
        50,
        "the fallback rules stopped"
    );
    assert_eq!(count(broker, &from_mounted), 50);
    let saved = RuleBundle::parse(&std::fs::read(state.join(BUNDLE_FILE_NAME)).unwrap()).unwrap();
    assert_eq!(
        saved.version, mounted.version,
        "the fallback copy now holds the mounted bundle"
    );
    assert!(router
        .process
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}

#[test]
fn without_any_bundle_the_router_stays_up_routes_nothing_and_is_not_ready() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let [source, ta, exceptions] = ["src", "ta", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 1), (&ta, 1), (&exceptions, 1)])
        .unwrap();
    let mut volume = ProjectedConfigMap::new(&work.path().join("config")).unwrap();
    let mut router = start_router(
        broker,
        &source,
        &group,
        &exceptions,
        &config_args(&volume, &work.path().join("state")),
    );
    wait_until("/readyz to answer", Duration::from_secs(30), || {
        http_get(&router.metrics_addr, "/readyz").ok()
    })
    .map(|(status, body)| {
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("rule set loaded false"), "{body}");
    })
    .unwrap();
    assert!(router.process.is_running());
    publish(
        &mut volume,
        &RuleBundle::build("default", [rule("a", "true", &ta)]),
    );
    wait_until("/readyz to turn ready", Duration::from_secs(30), || {
        (http_get(&router.metrics_addr, "/readyz").ok()?.0 == 200).then_some(())
    })
    .unwrap();
    assert_eq!(http_get(&router.metrics_addr, "/healthz").unwrap().0, 200);
    assert!(router
        .process
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}

#[test]
fn a_rule_the_router_cannot_compile_keeps_its_previous_version_also_in_the_fallback_copy() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let [source, kept, other, exceptions] = ["src", "kept", "other", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 1), (&kept, 1), (&other, 1), (&exceptions, 1)])
        .unwrap();
    let state = work.path().join("state");
    let mut volume = ProjectedConfigMap::new(&work.path().join("config")).unwrap();
    let first = RuleBundle::build(
        "default",
        [rule("edited", "true", &kept), rule("other", "true", &other)],
    );
    publish(&mut volume, &first);
    let mut router = start_router(
        broker,
        &source,
        &group,
        &exceptions,
        &config_args(&volume, &state),
    );
    broker.produce(&source, &seq_records(0..50)).unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));
    // A hand-edited (or newer-engine) bundle whose edit of `edited` this router cannot compile.
    let second = RuleBundle::build(
        "default",
        [
            rule("edited", "record.seq >", &kept),
            rule("other", "record.seq >= 0", &other),
        ],
    );
    publish(&mut volume, &second);
    wait_until(
        "the second bundle to go live",
        Duration::from_secs(30),
        || {
            metric(
                &router,
                "streamsplit_config_version_info",
                &[("version", &second.version), ("source", "mounted")],
            )
        },
    )
    .unwrap();
    broker.produce(&source, &seq_records(50..100)).unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));
    assert_eq!(
        count(broker, &kept),
        100,
        "the previous version kept routing"
    );
    assert_eq!(count(broker, &other), 100);
    assert!(router
        .process
        .output()
        .contains("its previous version keeps routing"));
    let fallback: RuleBundle =
        serde_json::from_slice(&std::fs::read(state.join(BUNDLE_FILE_NAME)).unwrap()).unwrap();
    let edited = fallback
        .rules
        .iter()
        .find(|r| r.id.name == "edited")
        .expect("the fallback copy still holds the rule");
    assert_eq!(
        edited.condition, "true",
        "as it runs, not as it was mounted"
    );
    assert!(router
        .process
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}

#[test]
fn metric_series_of_removed_rules_are_deleted() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let [source, ta, tb, exceptions] = ["src", "ta", "tb", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 1), (&ta, 1), (&tb, 1), (&exceptions, 1)])
        .unwrap();
    let mut volume = ProjectedConfigMap::new(&work.path().join("config")).unwrap();
    publish(
        &mut volume,
        &RuleBundle::build("default", [rule("a", "true", &ta), rule("b", "true", &tb)]),
    );
    let mut router = start_router(
        broker,
        &source,
        &group,
        &exceptions,
        &config_args(&volume, &work.path().join("state")),
    );
    broker.produce(&source, &seq_records(0..10)).unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));
    let has_series = |rule: &str| {
        let (_, text) = http_get(&router.metrics_addr, "/metrics").unwrap();
        text.lines()
            .any(|l| !l.starts_with('#') && l.contains(&format!("rule=\"{rule}\"")))
    };
    assert!(has_series("test/b"));
    let second = RuleBundle::build("default", [rule("a", "true", &ta)]);
    publish(&mut volume, &second);
    wait_until(
        "the second bundle to go live",
        Duration::from_secs(30),
        || {
            metric(
                &router,
                "streamsplit_config_version_info",
                &[("version", &second.version), ("source", "mounted")],
            )
        },
    )
    .unwrap();
    assert!(
        !has_series("test/b"),
        "series of a removed rule are deleted"
    );
    assert!(has_series("test/a"));
    assert!(router
        .process
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}
