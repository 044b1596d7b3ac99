//! Conditions over key, headers and source position, and sampling by key, against the real
//! broker: every record lands on exactly the topics `eval --format envelope` predicts from the
//! records as the broker stored them, and every copy carries the lineage headers (rule, bundle
//! version, source topic, partition and offset) after the record's own headers, unless they are
//! switched off.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use streamsplit_e2e::{http_get, sample_value, unique_name, Broker, ReadRecord, TestRecord};

const RECORDS: usize = 600;

/// Rules over metadata: name, condition, extra spec. Fast path, index and Rhai (`key_json`)
/// all appear; `sampled` matches every record and copies about 30 % of them, by key.
const RULES: [(&str, &str, &str); 6] = [
    ("clicks", r#"meta.headers["type"] == "click""#, ""),
    // Records without key have `meta.key == ()`, on which `starts_with` is an error.
    (
        "vip",
        r#"meta.key != () && meta.key.starts_with("vip-")"#,
        "",
    ),
    ("traced", r#""trace" in meta.headers && record.n > 5"#, ""),
    (
        "tenant-a",
        r#"meta.key_json != () && meta.key_json.tenant == "a""#,
        "",
    ),
    (
        "partition-one",
        "meta.partition == 1 && meta.offset >= 0",
        "",
    ),
    ("sampled", "record.n >= 0", "  sample: 0.3\n"),
];

/// Records with every combination of key kind and header shape, including a repeated `type`
/// header (the last one counts) and headers without value.
fn records() -> Vec<TestRecord> {
    (0..RECORDS)
        .map(|i| {
            let key = match i % 4 {
                0 => Some(format!("vip-{i}")),
                1 => Some(format!("user-{i}")),
                2 => Some(format!(r#"{{"tenant": "{}"}}"#, ["a", "b"][i / 4 % 2])),
                _ => None,
            };
            let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
            match i % 5 {
                0 => headers.push(("type".into(), b"click".to_vec())),
                1 => headers.push(("type".into(), b"view".to_vec())),
                2 => {
                    headers.push(("type".into(), b"view".to_vec()));
                    headers.push(("type".into(), b"click".to_vec()));
                }
                3 => {
                    headers.push(("type".into(), b"click".to_vec()));
                    headers.push(("type".into(), b"view".to_vec()));
                }
                _ => {}
            }
            if i % 3 == 0 {
                headers.push(("trace".into(), format!("t{i}").into_bytes()));
            }
            TestRecord {
                key: key.map(String::into_bytes),
                value: format!(r#"{{"seq": {i}, "n": {}}}"#, i % 11).into_bytes(),
                headers,
            }
        })
        .collect()
}

/// The `eval --format envelope` line of a record as the broker stored it.
fn envelope(topic: &str, record: &ReadRecord) -> Vec<u8> {
    let text = |bytes: &Option<Vec<u8>>| {
        bytes
            .as_ref()
            .map(|b| String::from_utf8(b.clone()).expect("test records are UTF-8"))
    };
    let headers: Vec<(String, Option<String>)> = record
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), text(value)))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "rawValue": text(&record.value),
        "key": text(&record.key),
        "headers": headers,
        "topic": topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
    }))
    .unwrap()
}

fn routes_by_metadata(broker: &Broker, lineage: bool) {
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let source = unique_name("meta-src");
    let exceptions = unique_name("meta-exc");
    let targets: BTreeMap<&str, String> = RULES
        .iter()
        .map(|(name, _, _)| (*name, unique_name(&format!("meta-{name}"))))
        .collect();
    let mut topics: Vec<(&str, i32)> = vec![(&source, 3), (&exceptions, 1)];
    topics.extend(targets.values().map(|t| (t.as_str(), 1)));
    broker.create_topics(&topics).unwrap();
    for (name, condition, extra) in RULES {
        write_rule(&rules_dir, name, condition, &targets[name], extra);
    }

    broker.produce(&source, &records()).unwrap();
    let stored = broker.read_all(&source).unwrap();
    assert_eq!(stored.len(), RECORDS);
    let lines: Vec<Vec<u8>> = stored.iter().map(|r| envelope(&source, r)).collect();
    let predictions = predict_lines(&rules_dir, &lines, "envelope");
    let faulty: Vec<_> = predictions
        .iter()
        .filter(|p| !p.rule_errors.is_empty() || p.decode_error)
        .map(|p| &p.rule_errors)
        .collect();
    assert!(
        faulty.is_empty(),
        "the corpus has no faulty records: {faulty:?}"
    );

    let group = unique_name("meta-group");
    let mut args = vec!["--rules".to_string(), rules_dir.display().to_string()];
    if !lineage {
        args.push("--lineage-headers=false".into());
    }
    let mut router = start_router(broker, &source, &group, &exceptions, &args);
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(120));

    let by_value: BTreeMap<&[u8], &ReadRecord> = stored
        .iter()
        .map(|r| (r.value.as_deref().unwrap_or_default(), r))
        .collect();
    let mut versions = std::collections::BTreeSet::new();
    for (name, topic) in &targets {
        let expected = multiset(
            stored
                .iter()
                .zip(&predictions)
                .filter(|(_, p)| p.targets.contains(topic))
                .map(|(r, _)| r.value.as_deref().unwrap_or_default()),
        );
        assert!(!expected.is_empty(), "rule {name} matches some records");
        let copies = broker.read_all(topic).unwrap();
        let actual = multiset(
            copies
                .iter()
                .map(|r| r.value.as_deref().unwrap_or_default()),
        );
        assert!(
            actual == expected,
            "records on {name}'s topic differ from eval's prediction ({} vs {})",
            actual.len(),
            expected.len()
        );
        for copy in &copies {
            let original = by_value[copy.value.as_deref().unwrap_or_default()];
            assert_eq!(copy.key, original.key);
            let (own, added) = copy
                .headers
                .split_at(original.headers.len().min(copy.headers.len()));
            assert_eq!(
                own, original.headers,
                "the record's own headers come first, unchanged"
            );
            if !lineage {
                assert!(added.is_empty(), "lineage switched off, yet {added:?}");
                continue;
            }
            let added: BTreeMap<&str, String> = added
                .iter()
                .map(|(k, v)| {
                    let value = String::from_utf8(v.clone().unwrap_or_default()).unwrap();
                    (k.as_str(), value)
                })
                .collect();
            assert_eq!(added.len(), 5, "{added:?}");
            assert_eq!(added["streamsplit.rule"], format!("test/{name}"));
            assert_eq!(added["streamsplit.source.topic"], source);
            assert_eq!(
                added["streamsplit.source.partition"],
                original.partition.to_string()
            );
            assert_eq!(
                added["streamsplit.source.offset"],
                original.offset.to_string()
            );
            versions.insert(added["streamsplit.bundle.version"].clone());
        }
    }
    // The sampled rule matched every record: those not copied are counted as sampled out.
    let copied = predictions
        .iter()
        .filter(|p| p.targets.contains(&targets["sampled"]))
        .count();
    let share = copied as f64 / RECORDS as f64;
    assert!((0.2..0.4).contains(&share), "sample 0.3 copied {share}");
    let (_, metrics) = http_get(&router.metrics_addr, "/metrics").unwrap();
    assert_eq!(
        sample_value(
            &metrics,
            "streamsplit_rule_sampled_out_total",
            &[("rule", "test/sampled")]
        ),
        Some((RECORDS - copied) as f64)
    );
    if lineage {
        assert_eq!(
            versions.len(),
            1,
            "one rule set routed everything: {versions:?}"
        );
        assert!(versions.iter().all(|v| v.starts_with("sha256:")));
    }
    assert!(
        broker.read_all(&exceptions).unwrap().is_empty(),
        "nothing was faulty"
    );
    router.process.terminate(Duration::from_secs(30)).unwrap();
}

#[test]
fn routes_by_key_headers_and_position_as_eval_predicts_with_lineage_on_every_copy() {
    routes_by_metadata(Broker::shared(), true);
}

#[test]
fn routes_by_key_headers_and_position_as_eval_predicts_with_lineage_on_every_copy_on_nisshi() {
    routes_by_metadata(Broker::nisshi(), true);
}

#[test]
fn copies_carry_only_their_own_headers_when_lineage_is_switched_off() {
    routes_by_metadata(Broker::shared(), false);
}
