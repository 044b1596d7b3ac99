//! Roll-out acknowledgement end to end: routers renew Leases naming the bundle they run; each
//! SplitRule reports how many routers of its pool run its current generation (`RolledOut`,
//! the `kubectl get sr` column), the RouterPool lists each router's version, a router stuck on
//! an old bundle or gone is visible within its Lease duration, and a stopped router leaves.

mod support;

use std::time::Duration;

use streamsplit_e2e::{
    free_port, http_get, router_run_args, sample_value, unique_name, wait_until, workspace_binary,
    ChildProcess,
};
use support::*;

/// Renewal period of the test routers: the Lease holds three of them.
const INTERVAL: &str = "1s";

fn lease_args(stack: &Stack, identity: &str) -> Vec<String> {
    [
        "--rollout-lease-namespace",
        &stack.namespace,
        "--pool",
        POOL,
        "--rollout-lease-interval",
        INTERVAL,
        "--instance-id",
        identity,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `(RolledOut status, reason, routers column)` of a rule.
fn rollout(stack: &Stack, name: &str) -> Option<(String, String, String)> {
    let rule = stack.rule(name);
    let (status, reason, _) = stack.condition(name, "RolledOut")?;
    let routers = rule["status"]["routers"].as_str()?.to_string();
    Some((status, reason, routers))
}

fn wait_rollout(stack: &Stack, name: &str, want: (&str, &str, &str), within: Duration) {
    wait_until(&format!("{name} RolledOut {want:?}"), within, || {
        let (status, reason, routers) = rollout(stack, name)?;
        (status == want.0 && reason == want.1 && routers == want.2).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: now {:?}", rollout(stack, name)));
}

/// `(name, version, state)` of each router in the RouterPool's status.
fn pool_routers(stack: &Stack) -> Vec<(String, String, String)> {
    let pool = stack
        .cluster
        .get_json(&["routerpool", "-n", &stack.namespace, POOL])
        .unwrap_or_default();
    pool["status"]["routers"]
        .as_array()
        .map(|routers| {
            routers
                .iter()
                .map(|r| {
                    let text = |key: &str| r[key].as_str().unwrap_or_default().to_string();
                    (text("name"), text("bundleVersion"), text("state"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn rules_report_which_routers_run_them_and_stuck_or_gone_routers_show_within_a_lease() {
    let mut stack = Stack::start();
    let topic = unique_name("rollout");
    stack.start_operator();
    stack.apply(&rule_yaml("watched", r#"record.kind == "a""#, &topic, ""));
    stack.wait_ready("watched", "True");
    // No router has reported yet: published, but on no router.
    wait_rollout(
        &stack,
        "watched",
        ("False", "NoRouters", "0/0"),
        Duration::from_secs(20),
    );

    stack.router_args = lease_args(&stack, "router-one");
    stack.start_router();
    let (_, bundle) = stack.bundle().unwrap();
    let first = bundle["version"].as_str().unwrap().to_string();
    wait_rollout(
        &stack,
        "watched",
        ("True", "RolledOut", "1/1"),
        Duration::from_secs(30),
    );
    let table = stack
        .cluster
        .kubectl(&["get", "sr", "-n", &stack.namespace])
        .unwrap();
    let header = table.lines().next().unwrap_or_default();
    let row = table.lines().find(|l| l.starts_with("watched")).unwrap();
    assert!(
        header.contains("ROUTERS") && row.contains(" 1/1 "),
        "{table}"
    );

    // A new rule whose router is quick is reported once: Ready and RolledOut in one write.
    let status_writes = || {
        let operator = stack.operator.as_ref().unwrap();
        let (_, metrics) = http_get(&operator.metrics_addr, "/metrics").ok()?;
        let by = |writer| {
            sample_value(
                &metrics,
                "streamsplit_operator_status_writes_total",
                &[("writer", writer)],
            )
        };
        Some(by("reconcile")? + by("rollout")?)
    };
    let before = status_writes().unwrap();
    stack.apply(&rule_yaml("newcomer", r#"record.kind == "n""#, &topic, ""));
    wait_rollout(
        &stack,
        "newcomer",
        ("True", "RolledOut", "1/1"),
        Duration::from_secs(30),
    );
    assert_eq!(stack.condition("newcomer", "Ready").unwrap().0, "True");
    assert_eq!(
        status_writes().unwrap() - before,
        1.0,
        "one status write for the new rule, none for the others"
    );

    // A second router whose bundle directory is never updated: it will get stuck on `first`.
    let frozen = stack.work.path().join("frozen-bundle");
    std::fs::create_dir_all(&frozen).unwrap();
    std::fs::write(frozen.join("bundle.json"), bundle.to_string()).unwrap();
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let mut args = router_run_args(
        &stack.broker.bootstrap,
        &stack.source,
        &stack.group,
        &stack.exceptions,
        &metrics_addr,
    );
    args.extend(["--config-dir".to_string(), frozen.display().to_string()]);
    args.extend(lease_args(&stack, "router-two"));
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name("router-two"));
    let mut stuck = ChildProcess::spawn_with_env(
        &workspace_binary("streamsplit-router"),
        &args,
        &log,
        &[("KUBECONFIG", stack.cluster.kubeconfig.to_str().unwrap())],
    )
    .unwrap();
    wait_rollout(
        &stack,
        "watched",
        ("True", "RolledOut", "2/2"),
        Duration::from_secs(30),
    );

    // An edit reaches router-one only: the rule says 1 of 2, the pool names the laggard.
    stack.apply(&rule_yaml("watched", r#"record.kind == "b""#, &topic, ""));
    let second = wait_until("the edited bundle", Duration::from_secs(30), || {
        let (_, bundle) = stack.bundle()?;
        let version = bundle["version"].as_str()?.to_string();
        (version != first).then_some(version)
    })
    .unwrap();
    wait_rollout(
        &stack,
        "watched",
        ("False", "RollingOut", "1/2"),
        Duration::from_secs(30),
    );
    wait_until(
        "the pool to show router-two behind",
        Duration::from_secs(30),
        || {
            let routers = pool_routers(&stack);
            (routers
                == [
                    (
                        "router-one".to_string(),
                        second.clone(),
                        "Current".to_string(),
                    ),
                    (
                        "router-two".to_string(),
                        first.clone(),
                        "Behind".to_string(),
                    ),
                ])
            .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", pool_routers(&stack)));
    let operator = stack.operator.as_ref().unwrap();
    let (_, metrics) = http_get(&operator.metrics_addr, "/metrics").unwrap();
    assert_eq!(
        sample_value(
            &metrics,
            "streamsplit_operator_pool_routers",
            &[("pool", POOL), ("state", "Behind")]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample_value(
            &metrics,
            "streamsplit_operator_pool_bundle_versions",
            &[("pool", POOL)]
        ),
        Some(2.0)
    );

    // Killed (no goodbye): gone once its Lease (3 renewal periods) expires, and the rule is
    // rolled out on every live router again.
    stuck.kill();
    wait_rollout(
        &stack,
        "watched",
        ("True", "RolledOut", "1/1"),
        Duration::from_secs(10),
    );
    assert!(pool_routers(&stack).contains(&(
        "router-two".to_string(),
        first.clone(),
        "Gone".to_string()
    )));

    // A graceful stop deletes the Lease: the router leaves the pool at once.
    let mut router = stack.router.take().unwrap();
    let status = router.child.terminate(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "{}", router.child.output());
    wait_rollout(
        &stack,
        "watched",
        ("False", "NoRouters", "0/0"),
        Duration::from_secs(10),
    );
    assert!(!pool_routers(&stack).iter().any(|r| r.0 == "router-one"));
}
