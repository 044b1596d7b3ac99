//! Which copies a record gets, against the real broker: an exclusive group sends each record
//! to its first matching rule only, a templated target topic sends it to the topic its fields
//! name (and to the exception topic, with the reason, when that topic is illegal, unnamed or
//! absent: the router never creates topics), and `maxRecordsPerSecond` drops and counts what is
//! past the limit. `eval` predicts everything but existence and rates, which only `run` sees.

mod common;

use std::time::{Duration, Instant};

use common::*;
use streamsplit_e2e::{http_get, sample_value, unique_name, Broker, TestRecord};

const RECORDS: usize = 200;
const APPS: [Option<&str>; 5] = [
    Some("shop"),
    Some("ads"),
    Some("missing"),
    Some("a b"),
    None,
];

fn metric(router: &RouterProcess, name: &str, rule: &str) -> f64 {
    let (_, text) = http_get(&router.metrics_addr, "/metrics").unwrap();
    sample_value(&text, name, &[("rule", rule)]).unwrap_or(0.0)
}

fn groups_and_templates(broker: &Broker) {
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, gold, silver, bronze, exceptions, prefix] = [
        "choice-src",
        "gold",
        "silver",
        "bronze",
        "choice-exc",
        "logs",
    ]
    .map(unique_name);
    let [shop_logs, ads_logs] = ["shop", "ads"].map(|app| format!("{prefix}.{app}"));
    broker
        .create_topics(&[
            (&source, 2),
            (&gold, 1),
            (&silver, 1),
            (&bronze, 1),
            (&exceptions, 1),
            (&shop_logs, 1),
            (&ads_logs, 1),
        ])
        .unwrap();
    let group = "  exclusiveGroup: value-tier\n";
    write_rule(&rules_dir, "a-gold", "record.amount >= 100", &gold, group);
    write_rule(
        &rules_dir,
        "b-silver",
        "record.amount >= 10",
        &silver,
        group,
    );
    write_rule(&rules_dir, "c-bronze", "record.amount >= 0", &bronze, group);
    write_rule(
        &rules_dir,
        "by-app",
        "true",
        &format!("'{prefix}.{{record.app}}'"),
        &format!("  targetTopicPattern: '{prefix}.*'\n"),
    );
    let records: Vec<TestRecord> = (0..RECORDS)
        .map(|i| {
            let app = APPS[i % APPS.len()].map_or(String::new(), |a| format!(r#", "app": "{a}""#));
            TestRecord {
                value: format!(r#"{{"seq": {i}, "amount": {i}{app}}}"#).into_bytes(),
                ..TestRecord::default()
            }
        })
        .collect();
    let values: Vec<Vec<u8>> = records.iter().map(|r| r.value.clone()).collect();
    let predictions = predict(&rules_dir, &values);
    broker.produce(&source, &records).unwrap();
    let consumer_group = unique_name("choice-group");
    let mut router = start_router(
        broker,
        &source,
        &consumer_group,
        &exceptions,
        &["--rules".into(), rules_dir.display().to_string()],
    );
    wait_for_full_commit(broker, &consumer_group, &source, Duration::from_secs(120));

    // The group: every record in exactly one of its topics, the one eval names.
    let predicted = |topic: &str| {
        predictions
            .iter()
            .filter(|p| p.targets.iter().any(|t| t == topic))
            .count()
    };
    let mut in_group = 0;
    for (topic, expected) in [(&gold, 100), (&silver, 90), (&bronze, 10)] {
        let copies = broker.read_all(topic).unwrap().len();
        assert_eq!(copies, expected, "copies on {topic}");
        assert_eq!(copies, predicted(topic), "eval predicts {topic}");
        in_group += copies;
    }
    assert_eq!(
        in_group, RECORDS,
        "each record in exactly one topic of the group"
    );
    let excluded = |rule: &str| {
        predictions
            .iter()
            .filter(|p| p.excluded.iter().any(|r| r == rule))
            .count()
    };
    assert_eq!(excluded("test/b-silver"), 100);
    assert_eq!(excluded("test/c-bronze"), 190);
    for rule in ["test/b-silver", "test/c-bronze"] {
        assert_eq!(
            metric(&router, "streamsplit_rule_excluded_total", rule),
            excluded(rule) as f64,
            "{rule}"
        );
    }

    // The template: copies on the topics the records name, the rest refused with the reason.
    for topic in [&shop_logs, &ads_logs] {
        let copies = broker.read_all(topic).unwrap();
        assert_eq!(copies.len(), RECORDS / APPS.len(), "copies on {topic}");
        assert_eq!(copies.len(), predicted(topic), "eval predicts {topic}");
    }
    let refusals: Vec<String> = broker
        .read_all(&exceptions)
        .unwrap()
        .iter()
        .filter(|r| r.header("streamsplit.exception.rule").as_deref() == Some("test/by-app"))
        .filter_map(|r| r.header("streamsplit.exception.message"))
        .collect();
    assert_eq!(refusals.len(), 3 * RECORDS / APPS.len(), "{refusals:?}");
    for reason in [
        "does not exist",
        "not a legal topic name",
        "record.app is missing",
    ] {
        let count = refusals.iter().filter(|m| m.contains(reason)).count();
        assert_eq!(count, RECORDS / APPS.len(), "{reason}: {refusals:?}");
    }
    // eval names the absent topic (it cannot know what exists) and errors on the others.
    assert_eq!(
        predicted(&format!("{prefix}.missing")),
        RECORDS / APPS.len()
    );
    assert_eq!(
        predictions
            .iter()
            .filter(|p| p.rule_errors.iter().any(|r| r == "test/by-app"))
            .count(),
        2 * RECORDS / APPS.len()
    );
    assert!(
        broker
            .high_watermarks(&format!("{prefix}.missing"))
            .is_err(),
        "the router never creates topics"
    );
    router.process.terminate(Duration::from_secs(30)).unwrap();
}

fn rate_limits(broker: &Broker) {
    const LIMIT: usize = 20;
    const PRODUCED: usize = 600;
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, limited, unlimited, exceptions] =
        ["rate-src", "rate-limited", "rate-all", "rate-exc"].map(unique_name);
    broker
        .create_topics(&[
            (&source, 1),
            (&limited, 1),
            (&unlimited, 1),
            (&exceptions, 1),
        ])
        .unwrap();
    write_rule(
        &rules_dir,
        "limited",
        "true",
        &limited,
        &format!("  maxRecordsPerSecond: {LIMIT}\n"),
    );
    write_rule(&rules_dir, "unlimited", "true", &unlimited, "");
    broker.produce(&source, &seq_records(0..PRODUCED)).unwrap();
    let group = unique_name("rate-group");
    let started = Instant::now();
    let mut router = start_router(
        broker,
        &source,
        &group,
        &exceptions,
        &["--rules".into(), rules_dir.display().to_string()],
    );
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(120));
    let elapsed = started.elapsed().as_secs_f64();

    let copies = broker.read_all(&limited).unwrap().len();
    // One second of burst, then the rate, over at most the router's whole life.
    let ceiling = LIMIT + (LIMIT as f64 * elapsed).ceil() as usize;
    assert!(
        (LIMIT..=ceiling).contains(&copies),
        "{copies} copies, expected {LIMIT}..={ceiling} after {elapsed:.1} s"
    );
    assert!(
        copies < PRODUCED,
        "the limit dropped nothing: the test proves nothing"
    );
    assert_eq!(
        metric(&router, "streamsplit_rule_throttled_total", "test/limited") as usize,
        PRODUCED - copies,
        "every dropped match is counted"
    );
    assert_eq!(
        broker.read_all(&unlimited).unwrap().len(),
        PRODUCED,
        "other rules are not limited"
    );
    assert!(broker.read_all(&exceptions).unwrap().is_empty());
    router.process.terminate(Duration::from_secs(30)).unwrap();
}

#[test]
fn exclusive_groups_and_templated_topics_route_as_eval_predicts() {
    groups_and_templates(Broker::shared());
}

#[test]
fn exclusive_groups_and_templated_topics_route_as_eval_predicts_on_nisshi() {
    groups_and_templates(Broker::nisshi());
}

#[test]
fn rate_limits_drop_and_count_past_the_limit() {
    rate_limits(Broker::shared());
}

#[test]
fn rate_limits_drop_and_count_past_the_limit_on_nisshi() {
    rate_limits(Broker::nisshi());
}
