//! The shipped examples are a promise: every rule in `examples/rules/` passes its own tests, is
//! accepted by the CRD and the operator, and the router routes `examples/records.jsonl` to
//! exactly the topics `eval` predicts (a templated topic that does not exist: the exception topic).

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use streamsplit_e2e::{repo_root, unique_name, workspace_binary, TestRecord};
use support::*;

/// What the examples call their team: their namespace and the prefix of their topics.
const TEAM: &str = "tracking";

#[test]
fn the_example_rules_are_accepted_and_route_the_sample_records_as_eval_predicts() {
    let mut stack = Stack::start();
    // The examples, moved into this test's namespace and onto topics of their own.
    let prefix = unique_name("ex");
    let rules = stack.work.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    for entry in std::fs::read_dir(repo_root().join("examples/rules")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(
                &format!("namespace: {TEAM}"),
                &format!("namespace: {}", stack.namespace),
            )
            .replace(&format!("{TEAM}."), &format!("{prefix}."));
        std::fs::write(rules.join(path.file_name().unwrap()), text).unwrap();
    }
    let router = workspace_binary("streamsplit-router");
    let check = Command::new(&router)
        .arg("check")
        .arg(&rules)
        .output()
        .unwrap();
    let checked = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        check.status.success(),
        "{checked}{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // Accepted by the apiserver (kubectl validates against the CRD's schema) and the operator.
    stack.start_operator();
    let templated_existing = format!("{prefix}.orders-purchase");
    let templated_missing = format!("{prefix}.orders-refund");
    stack
        .broker
        .create_topics(&[(&templated_existing, 1)])
        .unwrap();
    let created = stack
        .cluster
        .kubectl(&["apply", "-f", rules.to_str().unwrap(), "-o", "name"])
        .unwrap();
    let names: Vec<&str> = created
        .lines()
        .filter_map(|l| l.strip_prefix("splitrule.streamsplit.io/"))
        .collect();
    assert_eq!(
        names.len(),
        checked.lines().filter(|l| l.starts_with("ok")).count(),
        "{created}"
    );
    for name in &names {
        stack.wait_ready(name, "True");
    }

    // Where eval says each sample record goes.
    let input = repo_root().join("examples/records.jsonl");
    let eval = Command::new(&router)
        .arg("eval")
        .arg(&rules)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert!(eval.status.success());
    let mut expected = BTreeMap::<String, i64>::new();
    let mut exceptions = 0;
    for line in String::from_utf8_lossy(&eval.stdout).lines() {
        let verdict: serde_json::Value = serde_json::from_str(line).unwrap();
        for topic in verdict["targets"].as_array().unwrap() {
            let topic = topic.as_str().unwrap().to_string();
            if topic == templated_missing {
                exceptions += 1;
            } else {
                *expected.entry(topic).or_default() += 1;
            }
        }
        exceptions += verdict["errors"].as_array().map_or(0, Vec::len) as i64;
        exceptions += i64::from(!verdict["exception"].is_null());
    }
    assert!(
        expected.contains_key(&templated_existing) && exceptions >= 3,
        "the examples no longer show a templated topic and every kind of exception: {expected:?}"
    );

    // What the router does with them.
    stack.start_router();
    let (_, manifest) = stack.bundle().unwrap();
    stack.wait_router_on(manifest["version"].as_str().unwrap());
    let records: Vec<TestRecord> = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .map(|line| TestRecord {
            value: line.as_bytes().to_vec(),
            ..TestRecord::default()
        })
        .collect();
    stack.broker.produce(&stack.source, &records).unwrap();
    stack.wait_routed();
    let routed: BTreeMap<String, i64> = expected
        .keys()
        .map(|topic| (topic.clone(), stack.count(topic)))
        .collect();
    assert_eq!(routed, expected, "{}", stack.router_metrics());
    assert_eq!(stack.count(&stack.exceptions), exceptions);
    let missing = stack
        .broker
        .read_all(&stack.exceptions)
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.header("streamsplit.exception.message")
                .is_some_and(|m| m.contains(&templated_missing) && m.contains("does not exist"))
        })
        .count();
    assert_eq!(missing, 1);
}
