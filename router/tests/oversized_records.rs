//! A record too large to produce never blocks its partition: its copy goes to the exception
//! topic, and when even the exception record is refused for its size, a truncated exception
//! record (headers plus a bounded prefix, marked) is written instead. The commit point moves on.

mod common;

use std::time::Duration;

use common::*;
use streamsplit_e2e::{unique_name, Broker, TestRecord};

#[test]
fn an_oversized_record_becomes_a_truncated_exception_and_the_partition_moves_on() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, target, exceptions] = ["src", "target", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 1), (&target, 1), (&exceptions, 1)])
        .unwrap();
    write_rule(&rules_dir, "all", "true", &target, "");
    let big_json = format!(r#"{{"seq": 1, "blob": "{}"}}"#, "x".repeat(300_000));
    let big_garbage = vec![b'#'; 300_000];
    let small = |seq: usize| TestRecord {
        value: format!(r#"{{"seq": {seq}}}"#).into_bytes(),
        ..TestRecord::default()
    };
    let records = vec![
        small(0),
        TestRecord {
            value: big_json.clone().into_bytes(),
            ..TestRecord::default()
        },
        small(2),
        TestRecord {
            value: big_garbage.clone(),
            ..TestRecord::default()
        },
        small(4),
    ];
    broker.produce(&source, &records).unwrap();
    // The router's producers accept at most 100 kB; its consumer reads the records fine.
    let args = vec![
        "--rules".to_string(),
        rules_dir.display().to_string(),
        "--producer-property".to_string(),
        "message.max.bytes=100000".to_string(),
    ];
    let mut router = start_router(broker, &source, &group, &exceptions, &args);
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));

    assert_eq!(broker.read_all(&target).unwrap().len(), 3, "small records");
    let exceptions_read = broker.read_all(&exceptions).unwrap();
    assert_eq!(exceptions_read.len(), 2, "{exceptions_read:?}");
    let produce = exceptions_read
        .iter()
        .find(|r| r.header("streamsplit.exception.kind").as_deref() == Some("produce"))
        .expect("the big JSON record's copy failed for its size");
    let decode = exceptions_read
        .iter()
        .find(|r| r.header("streamsplit.exception.kind").as_deref() == Some("decode"))
        .expect("the big garbage record is a decode exception");
    for (exception, original) in [(produce, big_json.as_bytes()), (decode, &big_garbage[..])] {
        assert_eq!(
            exception
                .header("streamsplit.exception.truncated")
                .as_deref(),
            Some("true")
        );
        let size: usize = exception
            .header("streamsplit.exception.original-size")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(size, original.len());
        let value = exception.value.as_deref().unwrap();
        assert!(value.len() <= 4096 && original.starts_with(value));
    }
    assert_eq!(
        produce.header("streamsplit.source.offset").as_deref(),
        Some("1")
    );
    assert_eq!(
        decode.header("streamsplit.source.offset").as_deref(),
        Some("3")
    );
    assert!(router
        .process
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}
