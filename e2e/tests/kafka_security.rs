//! The operator and the router against a broker that requires TLS and SASL/SCRAM, with
//! credentials provided as files the way the chart mounts them from Secrets.

mod support;

use std::time::{Duration, Instant};

use streamsplit_e2e::{http_get, unique_name, wait_until, SecureKafka};
use support::*;

#[test]
fn tls_and_sasl_credentials_route_and_the_secret_is_written_nowhere() {
    let secure = SecureKafka::shared();
    let mut stack = Stack::start_on(&secure.broker);
    let flags = secure.flags(stack.work.path(), &secure.ca(), &secure.password_file());
    let extra: Vec<&str> = flags.iter().map(String::as_str).collect();
    stack.operator = Some(stack.spawn_operator("secure-operator", &extra));
    stack.router_args = flags.clone();

    let topic = unique_name("secure");
    stack.apply(&rule_yaml("kind-a", r#"record.kind == "a""#, &topic, ""));
    stack.wait_ready("kind-a", "True");
    assert!(
        stack.broker.high_watermarks(&topic).is_ok(),
        "the operator created the topic over SASL_SSL"
    );
    stack.start_router();
    let version = stack.bundle().unwrap().1["version"]
        .as_str()
        .unwrap()
        .to_string();
    stack.wait_router_on(&version);
    stack.produce_kinds(&["a", "b"], 5);
    stack.wait_routed();
    assert_eq!(stack.kinds_on(&topic), ["a"]);
    assert_eq!(stack.count(&topic), 5);

    // Every place a secret could leak to: logs, /metrics, events, statuses, the bundle, and
    // the command lines of both processes.
    let password = secure.password();
    assert!(password.len() >= 16, "the broker's password file is empty");
    let router = stack.router.as_ref().unwrap();
    let operator = stack.operator.as_ref().unwrap();
    let mut outputs = vec![
        ("router log", router.child.output()),
        ("operator log", operator.child.output()),
        (
            "router /metrics",
            http_get(&router.metrics_addr, "/metrics").unwrap().1,
        ),
        (
            "operator /metrics",
            http_get(&operator.metrics_addr, "/metrics").unwrap().1,
        ),
    ];
    for kind in ["events", "splitrules", "routerpools", "configmaps"] {
        let text = stack
            .cluster
            .kubectl(&["get", kind, "-n", &stack.namespace, "-o", "yaml"])
            .unwrap();
        outputs.push((kind, text));
    }
    for pid in [router.child.pid(), operator.child.pid()] {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        outputs.push((
            "a command line",
            String::from_utf8_lossy(&cmdline).into_owned(),
        ));
    }
    for (place, text) in &outputs {
        assert!(!text.is_empty(), "{place} is empty: nothing was checked");
        assert!(
            !text.contains(&password),
            "the SASL password appears in the {place}"
        );
    }
}

/// A router whose CA or password is wrong: not ready, the reason on /readyz and in its log,
/// nothing consumed or committed. The same router with the right file routes everything.
#[test]
fn a_bad_ca_or_password_makes_the_router_not_ready_with_a_clear_error_and_loses_nothing() {
    let secure = SecureKafka::shared();
    let stack = Stack::start_on(&secure.broker);
    let wrong_password = stack.work.path().join("wrong-password");
    std::fs::write(&wrong_password, "not-the-password\n").unwrap();
    let topic = unique_name("secure");
    stack.broker.create_topics(&[(&topic, 1)]).unwrap();
    let bundle_dir = stack.work.path().join("bundle");
    std::fs::create_dir_all(&bundle_dir).unwrap();
    let bundle = streamsplit_rules::RuleBundle::build(
        "default",
        [streamsplit_rules::RuleDefinition {
            id: streamsplit_rules::RuleId::new(Some("team"), "all"),
            condition: "true".into(),
            target_topic: topic.clone(),
            tier: streamsplit_rules::Tier::Standard,
            mode: streamsplit_rules::Mode::Active,
            suspend: false,
            sample: None,
            project: None,
            transform: None,
            key: None,
            exclusive_group: None,
            max_records_per_second: None,
            target_topic_pattern: None,
        }],
    );
    stack.produce_kinds(&["a"], 10);

    for (what, ca, password, expected) in [
        (
            "a CA that did not sign the broker",
            secure.wrong_ca(),
            secure.password_file(),
            "certificate verify failed",
        ),
        (
            "a wrong password",
            secure.ca(),
            wrong_password.clone(),
            "SASL authentication error",
        ),
    ] {
        let mut router = start_secure_router(
            &stack,
            &bundle_dir,
            &bundle,
            secure.flags(stack.work.path(), &ca, &password),
        );
        let reason = wait_until(
            &format!("/readyz to name the problem ({what})"),
            Duration::from_secs(30),
            || {
                let (status, body) = http_get(&router.1, "/readyz").ok()?;
                // "brokers are down" may come first; the cause follows it.
                (status == 503 && body.contains("Kafka:") && body.contains(expected))
                    .then_some(body)
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", router.0.output()));
        assert!(reason.starts_with("not ready"), "{what}: {reason}");
        // Not ready for a while, not just at start-up.
        let window = Instant::now() + Duration::from_secs(3);
        while Instant::now() < window {
            assert_eq!(http_get(&router.1, "/readyz").unwrap().0, 503, "{what}");
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            router.0.output().contains(expected),
            "{what}: the log must say why:\n{}",
            router.0.output()
        );
        assert!(router
            .0
            .terminate(Duration::from_secs(30))
            .unwrap()
            .success());
        assert!(
            stack
                .broker
                .committed(&stack.group, &stack.source)
                .unwrap()
                .is_empty(),
            "{what}: nothing may be committed"
        );
        assert_eq!(stack.count(&topic), 0);
    }

    let mut router = start_secure_router(
        &stack,
        &bundle_dir,
        &bundle,
        secure.flags(stack.work.path(), &secure.ca(), &secure.password_file()),
    );
    stack
        .broker
        .wait_for_commit(&stack.group, &stack.source, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", router.0.output()));
    assert_eq!(
        stack.count(&topic),
        10,
        "every record routed once the credentials are right"
    );
    assert!(router
        .0
        .terminate(Duration::from_secs(30))
        .unwrap()
        .success());
}

fn start_secure_router(
    stack: &Stack,
    bundle_dir: &std::path::Path,
    bundle: &streamsplit_rules::RuleBundle,
    flags: Vec<String>,
) -> (streamsplit_e2e::ChildProcess, String) {
    std::fs::write(
        bundle_dir.join(streamsplit_rules::BUNDLE_FILE_NAME),
        bundle.to_json(),
    )
    .unwrap();
    let metrics_addr = format!("127.0.0.1:{}", streamsplit_e2e::free_port());
    let mut args = streamsplit_e2e::router_run_args(
        &stack.broker.bootstrap,
        &stack.source,
        &stack.group,
        &stack.exceptions,
        &metrics_addr,
    );
    args.extend(["--config-dir".to_string(), bundle_dir.display().to_string()]);
    args.extend(flags);
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}.log", unique_name("secure-router")));
    let child = streamsplit_e2e::ChildProcess::spawn(
        &streamsplit_e2e::workspace_binary("streamsplit-router"),
        &args,
        &log,
    )
    .unwrap();
    (child, metrics_addr)
}
