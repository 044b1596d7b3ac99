//! End to end: kubectl, the real kube-apiserver, the operator, the real broker and a router
//! running on the projected bundle ConfigMap.

mod support;

use std::time::{Duration, Instant};

use streamsplit_e2e::{unique_name, wait_until};
use support::*;

#[test]
fn applied_rules_become_topics_and_a_bundle_and_route_then_follow_an_edit() {
    let mut stack = Stack::start();
    let [t_a, t_b] = ["ta", "tb"].map(unique_name);
    stack.start_operator();
    stack.apply(
        &(rule_yaml(
            "kind-a",
            r#"record.kind == "a""#,
            &t_a,
            "  topic: {partitions: 2}\n",
        ) + &rule_yaml(
            "kind-b",
            r#"record.kind == "b""#,
            &t_b,
            "  tier: critical\n  topic: {partitions: 3}\n",
        )),
    );
    stack.wait_ready("kind-a", "True");
    stack.wait_ready("kind-b", "True");

    // The operator keeps no copy of `kubectl apply`'s annotation in its cache, and never takes
    // it from the object: the next apply's three-way merge needs it.
    assert!(stack.rule("kind-a")["metadata"]["annotations"]
        ["kubectl.kubernetes.io/last-applied-configuration"]
        .is_string());
    // Topics exist with the requested partitions; the status says so too.
    assert_eq!(stack.broker.high_watermarks(&t_a).unwrap().len(), 2);
    assert_eq!(stack.broker.high_watermarks(&t_b).unwrap().len(), 3);
    assert_eq!(stack.rule("kind-b")["status"]["topic"]["partitions"], 3);
    // `kubectl get sr` tells the truth.
    let table = stack
        .cluster
        .kubectl(&["get", "sr", "-n", &stack.namespace])
        .unwrap();
    for name in ["kind-a", "kind-b"] {
        let row = table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{table}"));
        assert!(row.contains("True") && row.contains("Published"), "{table}");
    }
    // The pool's ConfigMap holds both rules, and each status names that bundle.
    let (_, bundle) = stack.bundle().unwrap();
    let ids: Vec<&str> = bundle["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["kind-a", "kind-b"]);
    let version = bundle["version"].as_str().unwrap().to_string();
    // Each status names the bundle that first published its generation (one shared bundle when
    // both reconciles fell into one publication, else the earlier one for kind-a or kind-b).
    wait_until(
        "statuses to name their bundle",
        Duration::from_secs(30),
        || {
            ["kind-a", "kind-b"]
                .iter()
                .all(|n| {
                    stack.rule(n)["status"]["bundleVersion"]
                        .as_str()
                        .is_some_and(|v| v.starts_with("sha256:"))
                })
                .then_some(())
        },
    )
    .unwrap();

    stack.start_router();
    stack.wait_router_on(&version);
    stack.produce_kinds(&["a", "b", "c"], 20);
    stack.wait_routed();
    assert_eq!(stack.kinds_on(&t_a), ["a"], "{}", stack.router_metrics());
    assert_eq!(stack.kinds_on(&t_b), ["b"]);
    assert_eq!(stack.count(&t_a), 20);

    // Edit a condition: a new bundle version goes out and routing follows it.
    stack.apply(&rule_yaml(
        "kind-a",
        r#"record.kind == "c""#,
        &t_a,
        "  topic: {partitions: 2}\n",
    ));
    let new_version = wait_until("a new bundle version", Duration::from_secs(30), || {
        let (_, bundle) = stack.bundle()?;
        let v = bundle["version"].as_str()?.to_string();
        (v != version).then_some(v)
    })
    .unwrap();
    stack.wait_ready("kind-a", "True");
    stack.wait_router_on(&new_version);
    stack.produce_kinds(&["a", "c"], 20);
    stack.wait_routed();
    assert_eq!(
        stack.count(&t_a),
        40,
        "20 a's before the edit, 20 c's after"
    );
    assert_eq!(stack.kinds_on(&t_a), ["a", "c"]);
}

#[test]
fn broken_rules_are_reported_with_their_reason_and_never_published() {
    let mut stack = Stack::start();
    let [t_ok, t_bad] = ["ok", "bad"].map(unique_name);
    stack.start_operator();
    stack.apply(&rule_yaml("good", r#"record.kind == "a""#, &t_ok, ""));
    stack.wait_ready("good", "True");
    stack.start_router();
    let (published_rv, bundle) = stack.bundle().unwrap();
    stack.wait_router_on(bundle["version"].as_str().unwrap());

    // A new rule that does not compile, one whose own test fails, and a broken edit of the
    // published rule.
    stack.apply(&(rule_yaml("syntax", "record.kind ==", &t_bad, "")
        + &rule_yaml("wrong-test", r#"record.kind == "b""#, &t_bad, "  tests:\n    - {name: b records match, record: {kind: b}, expect: match}\n    - {name: a records must not, record: {kind: b}, expect: no-match}\n")
        + &rule_yaml("good", r#"record.kind == == "a""#, &t_ok, "")
        // Hostile rules: a blocking call, and a test that burns time.
        + &rule_yaml("sleepy", r#"sleep(3); record.kind == "a""#, &t_bad, "")
        + &rule_yaml("slow-test", r#"for i in 0..1000 { let s = ""; s.pad(1000000, "x"); } true"#, &t_bad, "  tests:\n    - {name: any, record: {kind: a}, expect: match}\n")));
    let (reason, message) = stack.wait_ready("sleepy", "False");
    assert_eq!(reason, "CompileError");
    assert!(message.contains("'sleep' is not available"), "{message}");
    let (reason, message) = stack.wait_ready("slow-test", "False");
    assert_eq!(reason, "Timeout", "{message}");
    assert_eq!(stack.condition("slow-test", "Valid").unwrap().0, "False");
    let (reason, message) = stack.wait_ready("syntax", "False");
    assert_eq!(reason, "CompileError");
    assert!(message.contains("line 1, column"), "{message}");
    let (reason, message) = stack.wait_ready("wrong-test", "False");
    assert_eq!(reason, "TestFailed");
    assert!(message.contains("a records must not"), "{message}");
    let (reason, message) = stack.wait_ready("good", "False");
    assert_eq!(reason, "CompileError");
    assert!(
        message.contains("previously published version"),
        "{message}"
    );
    assert_eq!(stack.condition("good", "Valid").unwrap().0, "False");

    // kubectl shows it; describe has the position and the Warning event.
    let table = stack
        .cluster
        .kubectl(&["get", "sr", "-n", &stack.namespace])
        .unwrap();
    let row = table.lines().find(|l| l.starts_with("syntax")).unwrap();
    assert!(
        row.contains("False") && row.contains("CompileError"),
        "{table}"
    );
    let described = wait_until("the CompileError event", Duration::from_secs(20), || {
        let text = stack
            .cluster
            .kubectl(&["describe", "sr", "-n", &stack.namespace, "syntax"])
            .ok()?;
        text.contains("Warning").then_some(text)
    })
    .unwrap();
    assert!(described.contains("line 1, column"), "{described}");

    // The bundle did not change at all, and routing goes on with the last good rules.
    let (rv, _) = stack.bundle().unwrap();
    assert_eq!(rv, published_rv, "broken rules never reach the ConfigMap");
    stack.produce_kinds(&["a", "b"], 10);
    stack.wait_routed();
    assert_eq!(stack.kinds_on(&t_ok), ["a"]);
    assert_eq!(stack.count(&t_bad), 0);
}

#[test]
fn deleted_rules_stop_routing_and_their_topics_follow_the_deletion_policy() {
    let mut stack = Stack::start();
    let [t_keep, t_drop] = ["keep", "drop"].map(unique_name);
    stack.start_operator();
    stack.apply(
        &(rule_yaml("keeper", r#"record.kind == "a""#, &t_keep, "")
            + &rule_yaml(
                "dropper",
                r#"record.kind == "b""#,
                &t_drop,
                "  topic: {deletionPolicy: Delete}\n",
            )),
    );
    stack.wait_ready("keeper", "True");
    stack.wait_ready("dropper", "True");
    assert!(stack.rule("dropper")["metadata"]["finalizers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "streamsplit.io/topic-cleanup"));
    assert!(
        stack.rule("keeper")["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty()),
        "Retain needs no finalizer"
    );
    stack.start_router();
    stack.wait_router_on(stack.bundle().unwrap().1["version"].as_str().unwrap());
    stack.produce_kinds(&["a", "b"], 10);
    stack.wait_routed();
    assert_eq!((stack.count(&t_keep), stack.count(&t_drop)), (10, 10));

    stack
        .cluster
        .kubectl(&[
            "delete",
            "sr",
            "-n",
            &stack.namespace,
            "keeper",
            "dropper",
            "--timeout=60s",
        ])
        .unwrap();
    let empty = wait_until("an empty bundle", Duration::from_secs(30), || {
        let (_, bundle) = stack.bundle()?;
        bundle["rules"]
            .as_array()?
            .is_empty()
            .then(|| bundle["version"].as_str().map(String::from))
            .flatten()
    })
    .unwrap();
    stack.wait_router_on(&empty);
    stack.produce_kinds(&["a", "b"], 10);
    stack.wait_routed();
    assert_eq!(
        stack.count(&t_keep),
        10,
        "Retain: the topic stays and receives nothing more"
    );
    wait_until(
        "the Delete-policy topic to be gone",
        Duration::from_secs(30),
        || stack.broker.high_watermarks(&t_drop).is_err().then_some(()),
    )
    .unwrap();
}

#[test]
fn routers_keep_routing_without_the_operator_and_a_restart_changes_nothing() {
    let mut stack = Stack::start();
    let t_a = unique_name("ta");
    stack.start_operator();
    stack.apply(&rule_yaml(
        "kind-a",
        r#"record.kind == "a""#,
        &t_a,
        "  topic: {partitions: 2}\n",
    ));
    stack.wait_ready("kind-a", "True");
    stack.start_router();
    let (rv_before, bundle) = stack.bundle().unwrap();
    stack.wait_router_on(bundle["version"].as_str().unwrap());
    let rule_rv_before = stack.rule("kind-a")["metadata"]["resourceVersion"].clone();

    stack.stop_operator();
    stack.produce_kinds(&["a", "b"], 10);
    stack.wait_routed();
    assert_eq!(
        stack.count(&t_a),
        10,
        "routing goes on without the operator"
    );

    stack.start_operator();
    let operator = stack.operator.as_ref().unwrap();
    wait_until(
        "the restarted operator to reconcile",
        Duration::from_secs(30),
        || {
            let (_, text) = streamsplit_e2e::http_get(&operator.metrics_addr, "/metrics").ok()?;
            (streamsplit_e2e::sample_value(
                &text,
                "streamsplit_operator_reconciles_total",
                &[("result", "success")],
            )? >= 1.0)
                .then_some(())
        },
    )
    .unwrap();
    let (rv_after, _) = stack.bundle().unwrap();
    assert_eq!(rv_after, rv_before, "no ConfigMap churn after a restart");
    assert_eq!(
        stack.rule("kind-a")["metadata"]["resourceVersion"],
        rule_rv_before,
        "no status churn after a restart"
    );
    assert_eq!(
        stack.broker.high_watermarks(&t_a).unwrap().len(),
        2,
        "the topic was adopted, not recreated"
    );
    stack.wait_ready("kind-a", "True");
}

#[test]
fn two_replicas_elect_one_leader_and_the_standby_takes_over() {
    let stack = Stack::start();
    let leader_of = |process: &Process| -> Option<f64> {
        let (_, text) = streamsplit_e2e::http_get(&process.metrics_addr, "/metrics").ok()?;
        streamsplit_e2e::sample_value(&text, "streamsplit_operator_leader", &[])
    };
    let fast = ["--lease-duration", "3s"];
    let first = stack.spawn_operator("replica-1", &fast);
    let second = stack.spawn_operator("replica-2", &fast);
    let first_leads = wait_until("exactly one leader", Duration::from_secs(30), || {
        match (leader_of(&first)?, leader_of(&second)?) {
            (l, s) if l == 1.0 && s == 0.0 => Some(true),
            (l, s) if l == 0.0 && s == 1.0 => Some(false),
            _ => None,
        }
    })
    .unwrap();
    let (mut leader, standby) = if first_leads {
        (first, second)
    } else {
        (second, first)
    };
    let topic = unique_name("t");
    stack.apply(&rule_yaml("before", "true", &topic, ""));
    stack.wait_ready("before", "True");

    leader.child.kill();
    wait_until("the standby to take over", Duration::from_secs(30), || {
        (leader_of(&standby)? == 1.0).then_some(())
    })
    .unwrap();
    stack.apply(&rule_yaml("after", "true", &topic, ""));
    stack.wait_ready("after", "True");
    let lease = stack
        .cluster
        .get_json(&["lease", "-n", &stack.namespace, "streamsplit-operator"])
        .unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1, "{lease}");
}

fn leads(process: &Process) -> Option<bool> {
    let (_, text) = streamsplit_e2e::http_get(&process.metrics_addr, "/metrics").ok()?;
    streamsplit_e2e::sample_value(&text, "streamsplit_operator_leader", &[]).map(|v| v == 1.0)
}

/// Two replicas started the same way on one host (same HOSTNAME, no --identity): one leads.
/// A busy leader (its Kafka admin calls hang) that gets SIGTERM exits 0 within seconds and
/// releases the lease, so the standby leads long before the 30 s lease could expire.
#[test]
fn sigterm_stops_a_busy_leader_within_seconds_and_hands_over_the_lease_at_once() {
    let stack = Stack::start();
    // Nothing listens there: every topic check waits for the admin timeout (15 s).
    let dead_kafka = format!("127.0.0.1:{}", streamsplit_e2e::free_port());
    let same_host = [("HOSTNAME", "one-node")];
    let lease = ["--lease-duration", "30s"];
    let first = stack.spawn_operator_with(&dead_kafka, &lease, &same_host);
    let second = stack.spawn_operator_with(&dead_kafka, &lease, &same_host);
    let first_leads = wait_until("exactly one leader", Duration::from_secs(30), || {
        match (leads(&first)?, leads(&second)?) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        }
    })
    .unwrap();
    let (mut leader, standby) = if first_leads {
        (first, second)
    } else {
        (second, first)
    };
    let holder = |stack: &Stack| {
        stack
            .cluster
            .get_json(&["lease", "-n", &stack.namespace, "streamsplit-operator"])
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(String::from))
    };
    let first_holder = holder(&stack).unwrap();
    assert!(first_holder.starts_with("one-node_"), "{first_holder}");

    let rules: String = (0..10)
        .map(|i| rule_yaml(&format!("busy-{i}"), "true", &unique_name("t"), ""))
        .collect();
    stack.apply(&rules);
    // The rules' reconciles now wait on Kafka (each topic check until the admin timeout).
    wait_until(
        "reconciles to be in flight",
        Duration::from_secs(30),
        || {
            let (_, text) = streamsplit_e2e::http_get(&leader.metrics_addr, "/metrics").ok()?;
            let running = streamsplit_e2e::sample_value(
                &text,
                "streamsplit_operator_reconciles_in_flight",
                &[],
            )?;
            (running >= 1.0).then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", leader.child.output()));

    let stopped = Instant::now();
    let status = leader.child.terminate(Duration::from_secs(20)).unwrap();
    let exit_took = stopped.elapsed();
    assert!(status.success(), "{status:?}\n{}", leader.child.output());
    assert!(
        exit_took < Duration::from_secs(10),
        "a busy operator took {exit_took:?} to stop\n{}",
        leader.child.output()
    );
    wait_until("the standby to lead", Duration::from_secs(20), || {
        leads(&standby)?.then_some(())
    })
    .unwrap();
    let handover = stopped.elapsed();
    assert!(
        handover < Duration::from_secs(25),
        "took {handover:?}: the lease was not released (it would expire after 30 s)"
    );
    let second_holder = holder(&stack).unwrap();
    assert!(
        second_holder.starts_with("one-node_") && second_holder != first_holder,
        "{first_holder} then {second_holder}"
    );
}

#[test]
fn a_rule_moved_to_another_pool_leaves_the_old_bundle_at_once() {
    let mut stack = Stack::start();
    let topic = unique_name("t");
    stack.add_pool("east");
    stack.add_pool("west");
    stack.start_operator();
    stack.apply(&rule_yaml("mover", "true", &topic, "  router: east\n"));
    stack.wait_ready("mover", "True");
    let carries = |pool: &str| -> Option<bool> {
        let cm = stack.cluster.get_json(&[
            "configmap",
            "-n",
            &stack.namespace,
            &format!("streamsplit-rules-{pool}"),
        ])?;
        let bundle: serde_json::Value =
            serde_json::from_str(cm["data"]["bundle.json"].as_str()?).ok()?;
        Some(
            bundle["rules"]
                .as_array()?
                .iter()
                .any(|r| r["id"]["name"] == "mover"),
        )
    };
    assert_eq!(carries("east"), Some(true));
    stack.apply(&rule_yaml("mover", "true", &topic, "  router: west\n"));
    // The operator resyncs every pool only every 60 s: this must happen well before.
    wait_until(
        "the rule to move from east to west",
        Duration::from_secs(15),
        || (carries("west")? && !carries("east")?).then_some(()),
    )
    .unwrap();
    stack.wait_ready("mover", "True");
}

#[test]
fn a_topic_deleted_behind_the_operators_back_is_created_again_by_the_drift_check() {
    let mut stack = Stack::start();
    let topic = unique_name("drift");
    stack.operator =
        Some(stack.spawn_operator("operator-under-test", &["--resync-interval", "2s"]));
    stack.apply(&rule_yaml("drifting", "true", &topic, ""));
    stack.wait_ready("drifting", "True");
    stack.broker.delete_topic(&topic).unwrap();
    wait_until("the topic deleted", Duration::from_secs(20), || {
        stack.broker.high_watermarks(&topic).is_err().then_some(())
    })
    .unwrap();
    // Nothing about the rule changed: only the pool-level drift check can bring the topic back.
    wait_until("the topic created again", Duration::from_secs(30), || {
        let partitions = stack.broker.high_watermarks(&topic).ok()?;
        (!partitions.is_empty()).then_some(())
    })
    .unwrap();
    stack.wait_ready("drifting", "True");
}

#[test]
fn of_two_rules_claiming_one_topic_with_different_settings_the_newer_gets_resource_conflict() {
    let mut stack = Stack::start();
    let topic = unique_name("claimed");
    stack.start_operator();
    stack.apply(&rule_yaml(
        "first",
        "true",
        &topic,
        "  topic: {partitions: 2}\n",
    ));
    stack.wait_ready("first", "True");
    // Same topic, same settings: no conflict.
    stack.apply(&rule_yaml(
        "same",
        "true",
        &topic,
        "  topic: {partitions: 2}\n",
    ));
    stack.wait_ready("same", "True");
    stack.apply(&rule_yaml(
        "second",
        "true",
        &topic,
        "  topic: {partitions: 4}\n",
    ));
    let (reason, message) = stack.wait_ready("second", "False");
    assert_eq!(reason, "ResourceConflict", "{message}");
    assert!(message.contains("first"), "{message}");
    assert_eq!(stack.broker.high_watermarks(&topic).unwrap().len(), 2);
    // Once the older rules are gone the conflict is over; the topic was created for `first`,
    // so `second` adopts it and may not grow it (its pool does not allow changing adopted topics).
    stack
        .cluster
        .kubectl(&["delete", "sr", "first", "same", "-n", &stack.namespace])
        .unwrap();
    // An edit makes the rule reconcile again.
    stack.apply(&rule_yaml(
        "second",
        "record.kind == \"b\"",
        &topic,
        "  topic: {partitions: 4}\n",
    ));
    let reason = wait_until(
        "second no longer in conflict",
        Duration::from_secs(30),
        || {
            let (_, reason, _) = stack.condition("second", "TopicReady")?;
            (reason != "ResourceConflict").then_some(reason)
        },
    )
    .unwrap();
    assert_eq!(reason, "PolicyViolation");
}

#[test]
fn rule_tests_with_key_and_headers_pass_the_api_and_copy_options_are_validated() {
    let mut stack = Stack::start();
    let topic = unique_name("meta");
    stack.start_operator();
    // This rule's tests pass only if the apiserver keeps their `key` and `headers`.
    stack.apply(&(rule_yaml(
        "vip-clicks",
        r#"meta.headers["type"] == "click" && meta.key == "vip""#,
        &topic,
        "  sample: 0.5\n  project: {keep: [id], hash: [id]}\n  tests:\n    - {name: vip click, record: {}, key: vip, headers: {type: click}, expect: match}\n    - {name: plain click, record: {}, key: joe, headers: {type: click}, expect: no-match}\n",
    ) + &rule_yaml("never", "true", &topic, "  sample: 0\n")
        + &rule_yaml("clash", "true", &topic, "  project: {keep: [id], drop: [id]}\n")
        + &rule_yaml("bad-transform", "true", &topic, "  transform: '#{a: '\n")
        + &rule_yaml("bad-key", "true", &topic, "  key: {field: a, expression: b}\n")));
    stack.wait_ready("vip-clicks", "True");
    let (reason, message) = stack.wait_ready("never", "False");
    assert_eq!(reason, "InvalidSample", "{message}");
    let (reason, message) = stack.wait_ready("clash", "False");
    assert_eq!(reason, "InvalidProjection", "{message}");
    assert!(message.contains("keep and drop"), "{message}");
    let (reason, message) = stack.wait_ready("bad-transform", "False");
    assert_eq!(reason, "InvalidTransform", "{message}");
    let (reason, message) = stack.wait_ready("bad-key", "False");
    assert_eq!(reason, "InvalidKey", "{message}");
    let (_, bundle) = stack.bundle().unwrap();
    let rules = bundle["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{bundle}");
    assert_eq!(rules[0]["sample"], 0.5);
    assert_eq!(rules[0]["project"]["hash"], serde_json::json!(["id"]));
    // The CRD schema refuses a fraction above 1 at apply time.
    let refused = stack.cluster.kubectl_stdin(
        &["apply", "-n", &stack.namespace, "-f", "-"],
        Some(&rule_yaml("too-much", "true", &topic, "  sample: 1.5\n")),
    );
    let error = refused.expect_err("sample 1.5 is refused").to_string();
    assert!(error.contains("sample"), "{error}");
}

#[test]
fn templated_rules_copy_to_the_existing_topics_their_records_name_within_pattern_and_policy() {
    let mut stack = Stack::start();
    let prefix = unique_name("applog");
    let shop = format!("{prefix}.shop");
    stack.broker.create_topics(&[(&shop, 1)]).unwrap();
    // A second pool whose tenants may only write their own namespace's topics.
    let [narrow_source, narrow_exceptions] = ["src", "exc"].map(unique_name);
    stack.apply(&router_pool_yaml(
        "narrow",
        &narrow_source,
        &narrow_exceptions,
        &stack.namespace,
        "{namespace}.*",
    ));
    stack.start_operator();
    stack.apply(
        &(rule_yaml(
            "by-kind",
            "true",
            &format!("'{prefix}.{{record.kind}}'"),
            &format!("  targetTopicPattern: '{prefix}.*'\n"),
        ) + &rule_yaml("no-pattern", "true", "'x.{record.kind}'", "")
            + &rule_yaml(
                "with-settings",
                "true",
                "'y.{record.kind}'",
                "  targetTopicPattern: 'y.*'\n  topic: {partitions: 3}\n",
            )
            + &rule_yaml(
                "too-wide",
                "true",
                "'other.{record.kind}'",
                "  targetTopicPattern: 'other.*'\n  router: narrow\n",
            )),
    );
    stack.wait_ready("by-kind", "True");
    let (status, reason, message) = stack.condition("by-kind", "TopicReady").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Templated"));
    assert!(message.contains("1 existing topics match now"), "{message}");
    for name in ["no-pattern", "with-settings"] {
        let (reason, message) = stack.wait_ready(name, "False");
        assert_eq!(reason, "InvalidTopicTemplate", "{name}: {message}");
        // No topic named after the template is created or even attempted.
        let (status, reason, message) = stack.condition(name, "TopicReady").unwrap();
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "RuleInvalid"),
            "{message}"
        );
    }
    let (reason, message) = stack.wait_ready("too-wide", "False");
    assert_eq!(reason, "PolicyViolation", "{message}");
    assert!(message.contains("narrow the pattern"), "{message}");

    let (_, bundle) = stack.bundle().unwrap();
    let rules = bundle["rules"].as_array().unwrap();
    assert_eq!(
        rules.len(),
        1,
        "only the valid templated rule is published: {bundle}"
    );
    assert_eq!(rules[0]["targetTopicPattern"], format!("{prefix}.*"));
    stack.start_router();
    stack.wait_router_on(bundle["version"].as_str().unwrap());
    stack.produce_kinds(&["shop", "nope"], 5);
    stack.wait_routed();
    assert_eq!(stack.count(&shop), 5, "{}", stack.router_metrics());
    let refused: Vec<String> = stack
        .broker
        .read_all(&stack.exceptions)
        .unwrap()
        .iter()
        .filter_map(|r| r.header("streamsplit.exception.message"))
        .collect();
    assert_eq!(refused.len(), 5, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|m| m.contains(&format!("{prefix}.nope, which does not exist"))),
        "{refused:?}"
    );
    assert_eq!(
        stack.count(&format!("{prefix}.nope")),
        -1,
        "no topic is created"
    );
}
