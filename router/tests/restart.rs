//! Killing the router mid-stream loses nothing: after a restart every record arrives (at least
//! once); duplicates are allowed by at-least-once delivery and counted.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use streamsplit_e2e::{unique_name, wait_until, Broker, TestRecord};

const RECORDS: usize = 10_000;
const BATCH: usize = 200;

#[test]
fn crash_and_restart_mid_stream_loses_no_record() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, all, exceptions] = ["src", "all", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 2), (&all, 2), (&exceptions, 1)])
        .unwrap();
    write_rule(&rules_dir, "everything", "true", &all, "  tier: critical\n");
    // Static membership: the restarted router (same instance id, as a restarted container in the
    // same pod would have) takes the partitions back at once. See the README on why the test
    // broker needs it after a crash.
    let rules_args = [
        "--rules".to_string(),
        rules_dir.display().to_string(),
        "--instance-id".to_string(),
        unique_name("router"),
    ];

    let records: Vec<TestRecord> = (0..RECORDS)
        .map(|i| TestRecord {
            key: Some(format!("k{}", i % 17).into_bytes()),
            value: format!(r#"{{"seq": {i}}}"#).into_bytes(),
            headers: Vec::new(),
        })
        .collect();

    // A steady producer keeps writing while the router is killed and restarted.
    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let (records, source, producing) =
            (records.clone(), source.clone(), Arc::clone(&producing));
        std::thread::spawn(move || {
            for batch in records.chunks(BATCH) {
                Broker::shared().produce(&source, batch).unwrap();
                std::thread::sleep(Duration::from_millis(40));
            }
            producing.store(false, Ordering::SeqCst);
        })
    };

    let mut first = start_router(broker, &source, &group, &exceptions, &rules_args);
    wait_until(
        "the first router to commit some records",
        Duration::from_secs(60),
        || {
            let committed: i64 = broker.committed(&group, &source).ok()?.values().sum();
            (committed > 0).then_some(())
        },
    )
    .unwrap();
    first.process.kill();
    assert!(
        producing.load(Ordering::SeqCst),
        "the crash must happen while records are still being produced"
    );

    let mut second = start_router(broker, &source, &group, &exceptions, &rules_args);
    producer.join().unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(120));

    let copies = broker.read_all(&all).unwrap();
    let counts = multiset(
        copies
            .iter()
            .map(|r| r.value.as_deref().unwrap_or_default()),
    );
    let expected = multiset(records.iter().map(|r| r.value.as_slice()));
    let missing: Vec<_> = expected
        .keys()
        .filter(|v| !counts.contains_key(*v))
        .collect();
    assert!(
        missing.is_empty(),
        "{} records lost after the crash",
        missing.len()
    );
    assert_eq!(
        counts.len(),
        RECORDS,
        "no record outside the source appeared"
    );
    let duplicates = copies.len() - RECORDS;
    println!("crash + restart: {RECORDS} records, {duplicates} duplicates");
    assert!(broker.read_all(&exceptions).unwrap().is_empty());

    let status = second.process.terminate(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "{}", second.process.output());
}

#[test]
fn graceful_shutdown_commits_what_was_routed_and_a_restart_routes_only_new_records() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, all, exceptions] = ["src", "all", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 1), (&all, 1), (&exceptions, 1)])
        .unwrap();
    write_rule(&rules_dir, "everything", "true", &all, "");
    let rules_args = ["--rules".to_string(), rules_dir.display().to_string()];
    let batch = |from: usize| -> Vec<TestRecord> {
        (from..from + 500)
            .map(|i| TestRecord {
                value: format!(r#"{{"seq": {i}}}"#).into_bytes(),
                ..TestRecord::default()
            })
            .collect()
    };

    broker.produce(&source, &batch(0)).unwrap();
    let mut router = start_router(broker, &source, &group, &exceptions, &rules_args);
    wait_until("500 copies", Duration::from_secs(60), || {
        (broker.high_watermarks(&all).ok()?.values().sum::<i64>() == 500).then_some(())
    })
    .unwrap();
    let status = router.process.terminate(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "{}", router.process.output());
    assert_eq!(
        broker.committed(&group, &source).unwrap().get(&0),
        Some(&500),
        "SIGTERM commits everything routed"
    );

    broker.produce(&source, &batch(500)).unwrap();
    let mut router = start_router(broker, &source, &group, &exceptions, &rules_args);
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));
    let copies = broker.read_all(&all).unwrap();
    assert_eq!(
        copies.len(),
        1000,
        "after a graceful restart nothing is routed twice"
    );
    assert!(router
        .process
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}
