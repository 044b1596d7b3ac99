//! The checker on the operator path: the workload's rules are SplitRules applied through the
//! real apiserver, the router reads the kubelet-style projected bundle, and while records flow
//! a rule is created, edited, broken and deleted. Every copy is accounted for (see
//! RELIABILITY.md); lost and unexpected copies must be zero. Runs on both brokers.

mod support;

use std::time::Duration;

use streamsplit_e2e::checker::{self, workload::RULES, Oracle, Workload};
use streamsplit_e2e::{unique_name, workspace_binary, Broker};
use support::*;

#[test]
fn noida_splitrules_created_edited_broken_and_deleted_while_records_flow_lose_nothing() {
    operator_path(Broker::shared(), "noida-db");
}

#[test]
fn nisshi_splitrules_created_edited_broken_and_deleted_while_records_flow_lose_nothing() {
    operator_path(Broker::nisshi(), "nisshi");
}

fn operator_path(broker: &'static Broker, label: &str) {
    let mut stack = Stack::start_on(broker);
    stack.start_operator();
    let mut workload = Workload::new(&unique_name("op"));
    workload.namespace = stack.namespace.clone();
    let rules_dir = stack.work.path().join("rules");
    workload.write_rules(&rules_dir).unwrap();
    let manifests = std::fs::read_to_string(rules_dir.join("checker-rules.yaml")).unwrap();
    stack.apply(&manifests);
    for rule in &RULES {
        stack.wait_ready(rule.name, "True");
    }
    stack.start_router();
    let (_, bundle) = stack.bundle().unwrap();
    stack.wait_router_on(bundle["version"].as_str().unwrap());

    let records: Vec<_> = (0..4_000).map(|n| workload.record(n)).collect();
    let producing = checker::produce_steadily(
        &stack.broker.bootstrap,
        &stack.source,
        records.clone(),
        1_000,
    );
    // While records flow: a new rule that matches nothing, an equivalent edit of a live rule, a
    // broken edit of the new rule (never published), and its deletion.
    let never = workload.topic("err-n");
    stack.apply(&rule_yaml("extra", r#"record.kind == "z""#, &never, ""));
    stack.wait_ready("extra", "True");
    let level = workload.topic("std-level");
    stack.apply(&rule_yaml("std-level", "record.level > 2", &level, ""));
    stack.wait_ready("std-level", "True");
    stack.apply(&rule_yaml("extra", "record.kind ==", &never, ""));
    let (reason, _) = stack.wait_ready("extra", "False");
    assert_eq!(reason, "CompileError");
    stack
        .cluster
        .kubectl(&["delete", "splitrule", "-n", &stack.namespace, "extra"])
        .unwrap();
    producing.join().unwrap();
    stack
        .broker
        .wait_for_commit(&stack.group, &stack.source, Duration::from_secs(120))
        .unwrap();

    let router_bin = workspace_binary("streamsplit-router");
    let run = checker::Run {
        broker: stack.broker,
        workload: &workload,
        records: &records,
        source: &stack.source,
        exceptions: &stack.exceptions,
        oracle: Oracle {
            router: &router_bin,
            rules: &rules_dir,
            producer_limit: None,
        },
        scratch: stack.work.path(),
    };
    let account = run.account(&[]).unwrap();
    let total = account.ledger.total();
    println!("{}", account.ledger.table());
    println!(
        "| operator path: create, edit, break, delete while records flow | {} | {} | {} | {} | {} | {} | - | {label} |",
        account.records,
        total.expected,
        total.lost,
        total.duplicated,
        total.unexpected,
        account.ledger.exceptions()
    );
    assert_eq!(total.lost, 0, "{}", account.ledger.table());
    assert_eq!(total.unexpected, 0, "{}", account.ledger.table());
}
