//! A missing exception topic stalls routing on purpose (no record may be skipped), and says so:
//! the router is not ready with the cause, `/healthz` fails once the stall outlasts
//! `--stall-timeout`, the failure is logged summarised rather than once per attempt, and
//! everything flows the moment the topic exists.

mod common;

use std::time::{Duration, Instant};

use common::*;
use streamsplit_e2e::{http_get, unique_name, wait_until, Broker, TestRecord};

#[test]
fn a_missing_exception_topic_makes_the_router_unready_then_unhealthy_and_loses_nothing() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, target, exceptions] = ["src", "target", "exc"].map(unique_name);
    let group = unique_name("group");
    broker.create_topics(&[(&source, 1), (&target, 1)]).unwrap();
    write_rule(&rules_dir, "all", "true", &target, "");
    let mut records: Vec<TestRecord> = (0..50)
        .map(|i| TestRecord {
            value: format!("not json {i}").into_bytes(),
            ..TestRecord::default()
        })
        .collect();
    records.push(TestRecord {
        value: br#"{"seq": 50}"#.to_vec(),
        ..TestRecord::default()
    });
    broker.produce(&source, &records).unwrap();
    let args = vec![
        "--rules".to_string(),
        rules_dir.display().to_string(),
        "--producer-property".to_string(),
        "topic.metadata.propagation.max.ms=500".to_string(),
        "--stall-timeout".to_string(),
        "3s".to_string(),
    ];
    let mut router = start_router(broker, &source, &group, &exceptions, &args);

    let (_, body) = wait_until(
        "/readyz to name the exception topic",
        Duration::from_secs(30),
        || {
            let (status, body) = http_get(&router.metrics_addr, "/readyz").ok()?;
            (status == 503 && body.contains("exception topic")).then_some((status, body))
        },
    )
    .unwrap();
    assert!(body.contains(&exceptions), "{body}");
    let stalled_since = Instant::now();
    let (_, health) = wait_until(
        "/healthz to report the stall",
        Duration::from_secs(30),
        || {
            let (status, body) = http_get(&router.metrics_addr, "/healthz").ok()?;
            (status == 503).then_some((status, body))
        },
    )
    .unwrap();
    assert!(health.contains("stalled"), "{health}");
    // Let the retries run a while: each of the 50 records is retried many times.
    let observe_until = stalled_since + Duration::from_secs(8);
    while Instant::now() < observe_until {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        broker.committed(&group, &source).unwrap().is_empty(),
        "no record is skipped while its exception record cannot be written"
    );
    let failure_lines = router
        .process
        .output()
        .lines()
        .filter(|l| l.contains("produce failed"))
        .count();
    assert!(
        failure_lines <= 6,
        "repeated failures are summarised, not logged per attempt: {failure_lines} lines"
    );

    broker.create_topics(&[(&exceptions, 1)]).unwrap();
    wait_for_full_commit(broker, &group, &source, Duration::from_secs(60));
    assert_eq!(broker.read_all(&target).unwrap().len(), 1);
    let written = broker.read_all(&exceptions).unwrap();
    let mut offsets: Vec<i64> = written
        .iter()
        .map(|r| {
            r.header("streamsplit.source.offset")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    offsets.sort();
    offsets.dedup();
    assert_eq!(offsets, (0..50).collect::<Vec<i64>>(), "every bad record");
    wait_until("/readyz to recover", Duration::from_secs(30), || {
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
