//! Bytes, not only records, bound the router's memory: with large records and a stalled
//! critical target, in-flight copies stop at `--max-in-flight-bytes` and consumption waits,
//! instead of the router growing until its pod is killed.

mod common;

use std::time::{Duration, Instant};

use common::*;
use streamsplit_e2e::{http_get, sample_value, unique_name, wait_until, Broker, TestRecord};

fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn large_records_to_a_stalled_critical_target_stay_within_the_byte_budget() {
    const RECORD: usize = 900 * 1024;
    const RECORDS: usize = 240;
    const BUDGET_MIB: u64 = 32;
    // The router's own footprint (debug build, librdkafka, buffers) and the consumer's
    // prefetch queue (16 MiB), measured with an empty run; see README "Delivery guarantees".
    const BASE_MIB: u64 = 80;

    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, stalled, exceptions] = ["src", "stalled", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 1), (&exceptions, 1)])
        .unwrap();
    write_rule(&rules_dir, "crit", "true", &stalled, "  tier: critical\n");
    let args = vec![
        "--rules".to_string(),
        rules_dir.display().to_string(),
        "--producer-property".to_string(),
        "topic.metadata.propagation.max.ms=300000".to_string(),
        "--max-in-flight-bytes".to_string(),
        format!("{BUDGET_MIB}Mi"),
    ];
    let mut router = start_router(broker, &source, &group, &exceptions, &args);
    let pid = router.process.pid();
    wait_until(
        "the router to serve /metrics",
        Duration::from_secs(30),
        || http_get(&router.metrics_addr, "/metrics").ok(),
    )
    .unwrap();

    // Produced at a steady 45 MB/s, one record at a time: noida-db answers a fetch with
    // everything new (it ignores fetch size limits), so a paced stream keeps each fetch small,
    // as a real broker's fetch limits would.
    let blob = format!(r#"{{"blob": "{}"}}"#, "x".repeat(RECORD));
    let record = [TestRecord {
        value: blob.into_bytes(),
        ..TestRecord::default()
    }];
    let mut peak = 0;
    for _ in 0..RECORDS {
        let started = Instant::now();
        broker.produce(&source, &record).unwrap();
        peak = peak.max(rss_bytes(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20).saturating_sub(started.elapsed()));
    }
    let settle = Instant::now() + Duration::from_secs(5);
    while Instant::now() < settle {
        peak = peak.max(rss_bytes(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, metrics) = http_get(&router.metrics_addr, "/metrics").unwrap();
    let consumed = sample_value(&metrics, "streamsplit_records_consumed_total", &[]).unwrap();
    assert!(
        (consumed as usize) < RECORDS,
        "consumption waits for the stalled copies: consumed {consumed} of {RECORDS}"
    );
    let peak_mib = peak / (1024 * 1024);
    eprintln!("peak RSS {peak_mib} MiB with a {BUDGET_MIB} MiB budget");
    assert!(
        peak_mib <= BUDGET_MIB + BASE_MIB,
        "peak RSS {peak_mib} MiB exceeds budget {BUDGET_MIB} MiB + base {BASE_MIB} MiB"
    );
    router.process.kill();
}
