//! The router against the real broker: every record lands on exactly the topics `eval` predicts,
//! faulty records land on the exception topic with their original bytes and the error headers,
//! and committed offsets cover everything.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use streamsplit_e2e::{http_get, unique_name, Broker, TestRecord};

const RECORDS: usize = 10_000;

/// Deterministic records: mostly JSON objects of a few shapes, some garbage, some that make a
/// rule fail (a string where a number is expected).
fn generate_records() -> Vec<TestRecord> {
    let pages = ["Home", "Search", "Checkout", "Home", "Profile"];
    let mut state: u64 = 0x5eed;
    (0..RECORDS)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = (state >> 33) % 1000;
            let value = if i % 500 == 7 {
                format!("garbage line {i}").into_bytes()
            } else {
                let score = if i % 97 == 3 {
                    "\"n/a\"".to_string()
                } else {
                    ((state >> 20) % 100).to_string()
                };
                format!(
                    r#"{{"seq": {i}, "id": {id}, "page": "{}", "score": {score}}}"#,
                    pages[(state >> 40) as usize % pages.len()]
                )
                .into_bytes()
            };
            TestRecord {
                key: Some(format!("user-{}", id % 50).into_bytes()),
                value,
                headers: vec![("trace".into(), format!("t{i}").into_bytes())],
            }
        })
        .collect()
}

#[test]
fn routes_every_record_to_exactly_the_predicted_topics() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, high, home, both, errors, shadow, exceptions] =
        ["src", "high", "home", "both", "errs", "shadow", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[
            (&source, 3),
            (&high, 2),
            (&home, 1),
            (&both, 1),
            (&errors, 1),
            (&shadow, 1),
            (&exceptions, 1),
        ])
        .unwrap();
    write_rule(
        &rules_dir,
        "high-ids",
        "record.id > 300",
        &high,
        "  tier: critical\n",
    );
    write_rule(&rules_dir, "home", r#"record.page == "Home""#, &home, "");
    write_rule(
        &rules_dir,
        "home-and-high",
        r#"record.id > 300 && record.page == "Home""#,
        &both,
        "  tier: best-effort\n",
    );
    write_rule(
        &rules_dir,
        "score-abs",
        "record.score.abs() > 90",
        &errors,
        "",
    );
    write_rule(
        &rules_dir,
        "shadow",
        "record.id > 0",
        &shadow,
        "  mode: shadow\n",
    );

    let records = generate_records();
    let values: Vec<Vec<u8>> = records.iter().map(|r| r.value.clone()).collect();
    let predictions = predict(&rules_dir, &values);
    assert_eq!(predictions.len(), RECORDS);
    broker.produce(&source, &records).unwrap();

    let mut router = start_router(
        broker,
        &source,
        &group,
        &exceptions,
        &["--rules".into(), rules_dir.display().to_string()],
    );
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(120));

    // Each target topic holds exactly the records eval predicted for it, once each.
    for topic in [&high, &home, &both, &errors, &shadow] {
        let expected = multiset(
            values
                .iter()
                .zip(&predictions)
                .filter(|(_, p)| p.targets.contains(topic))
                .map(|(v, _)| v.as_slice()),
        );
        let read = broker.read_all(topic).unwrap();
        let actual = multiset(read.iter().map(|r| r.value.as_deref().unwrap_or_default()));
        assert_eq!(actual.len(), expected.len(), "distinct records on {topic}");
        assert!(
            actual == expected,
            "records on {topic} differ from eval's prediction"
        );
        if topic == &shadow {
            assert!(read.is_empty(), "a shadow rule produced records");
        }
    }
    // Keys and headers travel unchanged.
    let originals: BTreeMap<&[u8], &TestRecord> =
        records.iter().map(|r| (r.value.as_slice(), r)).collect();
    for copy in broker.read_all(&high).unwrap() {
        let original = originals[copy.value.as_deref().unwrap()];
        assert_eq!(copy.key, original.key);
        assert_eq!(
            copy.header("trace").as_deref(),
            Some(std::str::from_utf8(&original.headers[0].1).unwrap())
        );
    }

    // Exceptions: one per undecodable record and one per (record, failing rule), original bytes.
    let exceptions_read = broker.read_all(&exceptions).unwrap();
    let decode_expected = multiset(
        values
            .iter()
            .zip(&predictions)
            .filter(|(_, p)| p.decode_error)
            .map(|(v, _)| v.as_slice()),
    );
    let rule_expected = multiset(
        values
            .iter()
            .zip(&predictions)
            .flat_map(|(v, p)| p.rule_errors.iter().map(move |_| v.as_slice())),
    );
    assert!(
        !decode_expected.is_empty() && !rule_expected.is_empty(),
        "the corpus must exercise both kinds"
    );
    let kind_of = |kind: &str| {
        multiset(
            exceptions_read
                .iter()
                .filter(|r| r.header("streamsplit.exception.kind").as_deref() == Some(kind))
                .map(|r| r.value.as_deref().unwrap_or_default()),
        )
    };
    assert!(
        kind_of("decode") == decode_expected,
        "decode exceptions differ from eval's prediction"
    );
    assert!(
        kind_of("rule") == rule_expected,
        "rule exceptions differ from eval's prediction"
    );
    for exception in &exceptions_read {
        assert_eq!(
            exception.header("streamsplit.source.topic").as_deref(),
            Some(source.as_str())
        );
        assert!(exception.header("streamsplit.source.partition").is_some());
        assert!(exception
            .header("streamsplit.source.offset")
            .unwrap()
            .parse::<i64>()
            .is_ok());
        assert!(!exception
            .header("streamsplit.exception.message")
            .unwrap()
            .is_empty());
        assert!(
            exception.header("trace").is_some(),
            "original headers are kept"
        );
        if exception.header("streamsplit.exception.kind").as_deref() == Some("rule") {
            assert_eq!(
                exception.header("streamsplit.exception.rule").as_deref(),
                Some("test/score-abs")
            );
        }
    }

    // Metrics agree with what was routed.
    let (status, metrics) = http_get(&router.metrics_addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains(&format!("streamsplit_records_consumed_total {RECORDS}")),
        "{metrics}"
    );

    let status = router.process.terminate(Duration::from_secs(30)).unwrap();
    assert!(
        status.success(),
        "router did not exit cleanly: {status:?}\n{}",
        router.process.output()
    );
}
