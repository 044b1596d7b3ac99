//! Per-rule projection against the real broker: each copy holds exactly the value `eval`
//! predicts (kept, dropped, masked and hashed fields), masked values never reach the target
//! topic, and rules without projection still copy the record byte for byte.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use streamsplit_e2e::{unique_name, Broker, TestRecord};

const RECORDS: usize = 300;

fn records() -> Vec<TestRecord> {
    (0..RECORDS)
        .map(|i| TestRecord {
            key: Some(format!("k{i}").into_bytes()),
            value: format!(
                r#"{{"seq": {i}, "page": "{}", "session": "s-{i}", "user": {{"id": "u{}", "email": "user{i}@example.com"}}, "tags": [1, 2]}}"#,
                ["Home", "Cart"][i % 2],
                i % 7
            )
            .into_bytes(),
            headers: Vec::new(),
        })
        .collect()
}

fn projects_copies(broker: &Broker) {
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, slim, private, whole, exceptions] = [
        "proj-src",
        "proj-slim",
        "proj-private",
        "proj-whole",
        "proj-exc",
    ]
    .map(unique_name);
    broker
        .create_topics(&[
            (&source, 2),
            (&slim, 1),
            (&private, 1),
            (&whole, 1),
            (&exceptions, 1),
        ])
        .unwrap();
    write_rule(
        &rules_dir,
        "slim",
        "record.seq >= 0",
        &slim,
        "  project: {keep: [seq, user.id]}\n",
    );
    write_rule(
        &rules_dir,
        "private",
        r#"record.page == "Home""#,
        &private,
        "  project: {drop: [session], mask: [user.email], hash: [user.id]}\n",
    );
    write_rule(&rules_dir, "whole", r#"record.page == "Cart""#, &whole, "");
    let records = records();
    let values: Vec<Vec<u8>> = records.iter().map(|r| r.value.clone()).collect();
    let predictions = predict(&rules_dir, &values);
    broker.produce(&source, &records).unwrap();
    let group = unique_name("proj-group");
    let mut router = start_router(
        broker,
        &source,
        &group,
        &exceptions,
        &["--rules".into(), rules_dir.display().to_string()],
    );
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(120));

    for topic in [&slim, &private] {
        let mut expected: Vec<serde_json::Value> = predictions
            .iter()
            .filter_map(|p| p.projected.get(topic.as_str()).cloned())
            .collect();
        let copies = broker.read_all(topic).unwrap();
        let mut actual: Vec<serde_json::Value> = copies
            .iter()
            .map(|c| serde_json::from_slice(c.value.as_deref().unwrap()).unwrap())
            .collect();
        assert!(!expected.is_empty());
        let by_seq = |v: &serde_json::Value| v["seq"].as_i64();
        expected.sort_by_key(by_seq);
        actual.sort_by_key(by_seq);
        assert_eq!(
            actual, expected,
            "copies on {topic} differ from eval's prediction"
        );
        for copy in &copies {
            let text = String::from_utf8(copy.value.clone().unwrap()).unwrap();
            assert!(!text.contains("@example.com"), "an email escaped: {text}");
            assert!(!text.contains("session"), "{text}");
        }
    }
    let slim_copy: serde_json::Value =
        serde_json::from_slice(broker.read_all(&slim).unwrap()[0].value.as_deref().unwrap())
            .unwrap();
    assert_eq!(
        slim_copy.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["seq", "user"]
    );
    let private_copy: serde_json::Value = serde_json::from_slice(
        broker.read_all(&private).unwrap()[0]
            .value
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(private_copy["user"]["email"], "***");
    assert!(private_copy["user"]["id"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    // Without projection the copy is the record, byte for byte.
    let originals: BTreeMap<&[u8], ()> = values.iter().map(|v| (v.as_slice(), ())).collect();
    let whole_copies = broker.read_all(&whole).unwrap();
    assert_eq!(whole_copies.len(), RECORDS / 2);
    assert!(whole_copies
        .iter()
        .all(|c| originals.contains_key(c.value.as_deref().unwrap())));
    assert!(broker.read_all(&exceptions).unwrap().is_empty());
    router.process.terminate(Duration::from_secs(30)).unwrap();
}

#[test]
fn projected_copies_hold_exactly_what_eval_predicts() {
    projects_copies(Broker::shared());
}

#[test]
fn projected_copies_hold_exactly_what_eval_predicts_on_nisshi() {
    projects_copies(Broker::nisshi());
}
