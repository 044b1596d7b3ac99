//! Copies shaped per rule, against the real broker: each copy holds exactly the value and key
//! `eval` predicts (projection: kept, dropped, masked and hashed fields; a Rhai transform; a key
//! taken from a field), masked values never reach the target topic, and rules without a shape
//! still copy the record byte for byte.

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

fn shapes_copies(broker: &Broker) {
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, slim, private, whole, summary, by_user, exceptions] = [
        "proj-src",
        "proj-slim",
        "proj-private",
        "proj-whole",
        "proj-summary",
        "proj-by-user",
        "proj-exc",
    ]
    .map(unique_name);
    broker
        .create_topics(&[
            (&source, 2),
            (&slim, 1),
            (&private, 1),
            (&whole, 1),
            (&summary, 1),
            (&by_user, 1),
            (&exceptions, 1),
        ])
        .unwrap();
    write_rule(
        &rules_dir,
        "summary",
        "record.seq % 3 == 0",
        &summary,
        "  transform: '#{seq: record.seq, user: record.user.id, from: meta.topic, key: meta.key}'\n",
    );
    write_rule(
        &rules_dir,
        "by-user",
        "record.seq % 2 == 0",
        &by_user,
        "  key: {field: user.id}\n",
    );
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
    // Envelopes with the key and source topic, as the router sees them.
    let envelopes: Vec<Vec<u8>> = records
        .iter()
        .map(|r| {
            serde_json::to_vec(&serde_json::json!({
                "rawValue": String::from_utf8(r.value.clone()).unwrap(),
                "key": String::from_utf8(r.key.clone().unwrap()).unwrap(),
                "topic": source,
            }))
            .unwrap()
        })
        .collect();
    let predictions = predict_lines(&rules_dir, &envelopes, "envelope");
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

    for topic in [&slim, &private, &summary] {
        let mut expected: Vec<serde_json::Value> = predictions
            .iter()
            .filter_map(|p| p.values.get(topic.as_str()).cloned())
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
    // The transform's copies carry the record's metadata; re-keyed copies their user id.
    let summary_copy: serde_json::Value = serde_json::from_slice(
        broker.read_all(&summary).unwrap()[0]
            .value
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(summary_copy["from"], source.as_str());
    assert!(summary_copy["key"].as_str().unwrap().starts_with('k'));
    let mut expected_keys: Vec<(String, String)> = predictions
        .iter()
        .zip(&values)
        .filter_map(|(p, v)| {
            let key = p.keys.get(by_user.as_str())?;
            Some((String::from_utf8(v.clone()).unwrap(), key.clone()))
        })
        .collect();
    assert_eq!(expected_keys.len(), RECORDS / 2);
    let mut actual_keys: Vec<(String, String)> = broker
        .read_all(&by_user)
        .unwrap()
        .iter()
        .map(|c| {
            (
                String::from_utf8(c.value.clone().unwrap()).unwrap(),
                String::from_utf8(c.key.clone().unwrap()).unwrap(),
            )
        })
        .collect();
    expected_keys.sort();
    actual_keys.sort();
    assert_eq!(
        actual_keys, expected_keys,
        "re-keyed copies differ from eval's keys"
    );
    assert!(actual_keys.iter().all(|(_, key)| key.starts_with('u')));
    assert!(broker.read_all(&exceptions).unwrap().is_empty());
    router.process.terminate(Duration::from_secs(30)).unwrap();
}

#[test]
fn shaped_copies_hold_exactly_what_eval_predicts() {
    shapes_copies(Broker::shared());
}

#[test]
fn shaped_copies_hold_exactly_what_eval_predicts_on_nisshi() {
    shapes_copies(Broker::nisshi());
}
