//! A broker stopped mid-stream (crash or graceful) and restarted with its data is survived by
//! the router alone: idempotent producers that the broker no longer recognises are replaced,
//! every copy arrives (duplicates allowed), no copy is misrouted to the exception topic, and
//! the commit point reaches the end.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use streamsplit_e2e::{unique_name, wait_until, PrivateBroker, StopSignal};

fn seqs(values: &[streamsplit_e2e::ReadRecord]) -> BTreeSet<u64> {
    values
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(r.value.as_ref()?).ok())
        .filter_map(|v| v["seq"].as_u64())
        .collect()
}

fn bounce(signal: StopSignal) {
    let work = tempfile::tempdir().unwrap();
    let private = PrivateBroker::start(&work.path().join("broker")).unwrap();
    let broker = &private.broker;
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, critical, standard, exceptions] =
        ["src", "critical", "standard", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[
            (&source, 2),
            (&critical, 2),
            (&standard, 2),
            (&exceptions, 1),
        ])
        .unwrap();
    write_rule(&rules_dir, "crit", "true", &critical, "  tier: critical\n");
    write_rule(&rules_dir, "even", "record.seq % 2 == 0", &standard, "");
    broker.produce(&source, &seq_records(0..4000)).unwrap();
    // The crash tests the router, not the broker's durability: its state must be on disk first.
    private
        .wait_until_persisted(&[&source, &critical, &standard, &exceptions])
        .unwrap();
    let args = vec!["--rules".to_string(), rules_dir.display().to_string()];
    let mut router = start_router(broker, &source, &group, &exceptions, &args);
    wait_until("routing to be under way", Duration::from_secs(60), || {
        let copies: i64 = broker.high_watermarks(&critical).ok()?.values().sum();
        (copies >= 500).then_some(())
    })
    .unwrap();

    private.stop(signal).unwrap();
    let stopped = Instant::now();
    while stopped.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    private.restart().unwrap();
    let restarted = Instant::now();
    broker.produce(&source, &seq_records(4000..5000)).unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(180));
    eprintln!(
        "{signal:?}: recovered and committed everything {:?} after the restart",
        restarted.elapsed()
    );

    let all: BTreeSet<u64> = (0..5000).collect();
    assert_eq!(seqs(&broker.read_all(&critical).unwrap()), all, "critical");
    let even: BTreeSet<u64> = all.iter().copied().filter(|s| s % 2 == 0).collect();
    assert_eq!(seqs(&broker.read_all(&standard).unwrap()), even, "standard");
    let misrouted = broker
        .read_all(&exceptions)
        .unwrap()
        .iter()
        .filter(|r| r.header("streamsplit.exception.kind").as_deref() == Some("produce"))
        .count();
    assert_eq!(
        misrouted, 0,
        "no copy goes to the exception topic for a bounce"
    );
    assert!(router.process.is_running(), "recovered by itself");
    assert!(router
        .process
        .terminate(Duration::from_secs(60))
        .unwrap()
        .success());
}

#[test]
fn a_broker_crash_mid_stream_is_survived_without_loss() {
    bounce(StopSignal::Kill);
}

#[test]
fn a_graceful_broker_restart_mid_stream_is_survived_without_loss() {
    bounce(StopSignal::Term);
}
