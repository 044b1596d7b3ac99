//! With cooperative (incremental) rebalancing, a router that gives up some partitions keeps the
//! others, and stays ready throughout: its assignment gauge never drops to zero.
//!
//! The test waits for the incremental revoke only: noida-db never runs the second rebalance
//! round that hands the revoked partitions to the newcomer (see README, broker notes).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use streamsplit_e2e::{http_get, sample_value, unique_name, wait_until, Broker};

fn assigned(router: &str) -> Option<f64> {
    let (_, text) = http_get(router, "/metrics").ok()?;
    sample_value(&text, "streamsplit_assigned_partitions", &[])
}

#[test]
fn an_incremental_revoke_keeps_the_router_ready() {
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let rules_dir = work.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let [source, target, exceptions] = ["src", "target", "exc"].map(unique_name);
    let group = unique_name("group");
    broker
        .create_topics(&[(&source, 4), (&target, 1), (&exceptions, 1)])
        .unwrap();
    write_rule(&rules_dir, "all", "true", &target, "");
    let args = vec![
        "--rules".to_string(),
        rules_dir.display().to_string(),
        "--consumer-property".to_string(),
        "partition.assignment.strategy=cooperative-sticky".to_string(),
    ];
    let mut first = start_router(broker, &source, &group, &exceptions, &args);
    wait_until(
        "the first router to own all partitions",
        Duration::from_secs(60),
        || (assigned(&first.metrics_addr)? == 4.0).then_some(()),
    )
    .unwrap();

    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (addr, sampling) = (first.metrics_addr.clone(), Arc::clone(&sampling));
        std::thread::spawn(move || {
            let mut lowest = f64::MAX;
            let mut not_ready = 0;
            while sampling.load(Ordering::SeqCst) {
                if let Some(value) = assigned(&addr) {
                    lowest = lowest.min(value);
                }
                if http_get(&addr, "/readyz").is_ok_and(|(status, _)| status != 200) {
                    not_ready += 1;
                }
            }
            (lowest, not_ready)
        })
    };
    let mut second = start_router(broker, &source, &group, &exceptions, &args);
    wait_until(
        "the first router to give up partitions incrementally",
        Duration::from_secs(60),
        || (assigned(&first.metrics_addr)? < 4.0).then_some(()),
    )
    .unwrap();
    sampling.store(false, Ordering::SeqCst);
    let (lowest, not_ready) = sampler.join().unwrap();
    assert!(
        lowest > 0.0,
        "the first router kept some partitions: {lowest}"
    );
    assert_eq!(not_ready, 0, "the first router stayed ready");
    for router in [&mut first, &mut second] {
        assert!(router
            .process
            .terminate(Duration::from_secs(30))
            .unwrap()
            .success());
    }
}
