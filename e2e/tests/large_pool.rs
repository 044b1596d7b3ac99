//! A pool whose bundle is larger than one ConfigMap may be (1 MiB): the operator shards it
//! (`bundle/v2`), the router assembles it from the projected shards, every rule gets a status,
//! and an edit of one rule goes live.

mod support;

use std::time::{Duration, Instant};

use streamsplit_e2e::{
    http_get, sample_value, unique_name, wait_until, wait_until_every, TestRecord,
};
use support::*;

const RULES: usize = 2_000;
const TOPICS: usize = 8;

fn rule(namespace_topic: &str, index: usize, level: u32) -> String {
    // Long enough that the rules make well over 1 MiB of bundle.
    let pad = "x".repeat(160);
    format!(
        "apiVersion: streamsplit.io/v1alpha1\nkind: SplitRule\nmetadata:\n  name: app-{index}\nspec:\n  condition: 'record.app == \"app-{index}\" && record.level >= {level} && record.region != \"a-region-name-long-enough-to-weigh-something-in-the-bundle-{index}-{pad}\"'\n  targetTopic: {namespace_topic}-{}\n---\n",
        index % TOPICS
    )
}

/// Each rule's generation, observed generation, and `Ready` status and reason (four columns per
/// rule, not megabytes of JSON).
fn readiness(stack: &Stack) -> Option<Vec<Vec<String>>> {
    let table = stack
        .cluster
        .kubectl(&[
            "get",
            "splitrules",
            "-n",
            &stack.namespace,
            "--no-headers",
            "-o",
            "custom-columns=G:.metadata.generation,O:.status.observedGeneration,R:.status.conditions[?(@.type==\"Ready\")].status,W:.status.conditions[?(@.type==\"Ready\")].reason",
        ])
        .ok()?;
    Some(
        table
            .lines()
            .map(|line| line.split_whitespace().map(String::from).collect())
            .collect(),
    )
}

/// Rules Ready for their current generation.
fn ready_count(stack: &Stack) -> Option<usize> {
    let rows = readiness(stack)?;
    Some(
        rows.iter()
            .filter(|c| c.len() == 4 && c[0] == c[1] && c[2] == "True")
            .count(),
    )
}

/// How many rules are in each (observed generation current, Ready, reason) state: what a
/// failure has to say.
fn readiness_summary(stack: &Stack) -> String {
    let mut states = std::collections::BTreeMap::<String, usize>::new();
    for row in readiness(stack).unwrap_or_default() {
        let state = match row.as_slice() {
            [g, o, ready, reason] if g == o => format!("Ready={ready} ({reason})"),
            [_, o, ready, reason] => format!("observed generation {o}, Ready={ready} ({reason})"),
            _ => "no status".to_string(),
        };
        *states.entry(state).or_default() += 1;
    }
    format!("{states:?}")
}

#[test]
fn a_pool_beyond_one_configmap_is_sharded_assembled_and_follows_an_edit() {
    let mut stack = Stack::start();
    let prefix = unique_name("big");
    let topics: Vec<String> = (0..TOPICS).map(|i| format!("{prefix}-{i}")).collect();
    let refs: Vec<(&str, i32)> = topics.iter().map(|t| (t.as_str(), 1)).collect();
    stack.broker.create_topics(&refs).unwrap();
    // Small shards, so that this pool needs several (a real pool fills 4 MiB per shard).
    stack.operator = Some(stack.spawn_operator(
        "operator-under-test",
        &["--bundle-shard-target-bytes", "262144"],
    ));
    stack.start_router();

    let started = Instant::now();
    let manifests: String = (0..RULES).map(|i| rule(&prefix, i, 3)).collect();
    stack
        .cluster
        .kubectl_stdin(
            &["create", "-n", &stack.namespace, "-f", "-", "-o", "name"],
            Some(&manifests),
        )
        .unwrap();
    // Each look lists every rule: once a second, or the looking slows down the apiserver.
    wait_until_every(
        "every rule Ready",
        Duration::from_secs(300),
        Duration::from_secs(1),
        || (ready_count(&stack)? == RULES).then_some(()),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}: rules by state {}\n{}",
            readiness_summary(&stack),
            stack.operator.as_ref().unwrap().child.output()
        )
    });
    let all_ready = started.elapsed();

    // Sharded: a small manifest, shard ConfigMaps each under the limit, over 1 MiB in all.
    let (_, manifest) = stack.bundle().unwrap();
    assert_eq!(
        manifest["apiVersion"], "streamsplit.io/bundle/v2",
        "{manifest}"
    );
    let shards = manifest["shards"].as_array().unwrap();
    assert!(shards.len() >= 2, "{manifest}");
    let rules_in_shards: u64 = shards.iter().map(|s| s["rules"].as_u64().unwrap()).sum();
    assert_eq!(rules_in_shards, RULES as u64);
    let version = manifest["version"].as_str().unwrap().to_string();
    stack.wait_router_on(&version);
    let state = stack.work.path().join("state").join("bundle.json");
    let fallback = std::fs::metadata(&state).map(|m| m.len()).unwrap_or(0);
    assert!(
        fallback > 1024 * 1024,
        "the assembled bundle (the fallback copy, one file) is {fallback} bytes"
    );
    let operator = stack.operator.as_ref().unwrap();
    let writes = |writer: &str| {
        let (_, text) = http_get(&operator.metrics_addr, "/metrics").ok()?;
        sample_value(
            &text,
            "streamsplit_operator_status_writes_total",
            &[("writer", writer)],
        )
    };
    println!(
        "{RULES} rules: all Ready {all_ready:.1?} after creation; {} shards; assembled bundle {fallback} bytes; status writes: {:?} by reconciles, {:?} by the roll-out watch",
        shards.len(),
        writes("reconcile"),
        writes("rollout"),
    );

    // Routing by rules from the last shard, then an edit of one of them goes live.
    let record = |app: usize, level: u32| TestRecord {
        value: format!(r#"{{"app": "app-{app}", "level": {level}, "region": "eu"}}"#).into_bytes(),
        ..TestRecord::default()
    };
    let last = RULES - 1;
    stack
        .broker
        .produce(&stack.source, &[record(last, 3), record(last, 1)])
        .unwrap();
    stack.wait_routed();
    assert_eq!(stack.count(&topics[last % TOPICS]), 1);

    let edited = Instant::now();
    stack.apply(&rule(&prefix, last, 1));
    let new_version = wait_until("a new bundle", Duration::from_secs(60), || {
        let (_, manifest) = stack.bundle()?;
        let v = manifest["version"].as_str()?.to_string();
        (v != version).then_some(v)
    })
    .unwrap();
    stack.wait_router_on(&new_version);
    println!(
        "one edit live on the router {:.1?} after the apply",
        edited.elapsed()
    );
    stack.wait_ready(&format!("app-{last}"), "True");
    stack
        .broker
        .produce(&stack.source, &[record(last, 1)])
        .unwrap();
    stack.wait_routed();
    assert_eq!(stack.count(&topics[last % TOPICS]), 2);

    // Every rule deleted at once: the bundle shrinks back into one ConfigMap, and the shards it
    // no longer names are deleted.
    // One request deletes them all; on a busy machine the apiserver may answer it with a timeout
    // while still working, so it is repeated (deleting what is gone is a no-op) until it succeeds.
    let collection = format!(
        "/apis/streamsplit.io/v1alpha1/namespaces/{}/splitrules",
        stack.namespace
    );
    let mut failures = Vec::new();
    wait_until_every(
        "the deletion of every rule accepted",
        Duration::from_secs(180),
        Duration::from_secs(1),
        || match stack.cluster.kubectl(&["delete", "--raw", &collection]) {
            Ok(_) => Some(()),
            Err(e) => {
                failures.push(e.to_string());
                None
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {failures:#?}"));
    if !failures.is_empty() {
        println!(
            "deleting every rule took {} attempts: {failures:#?}",
            failures.len() + 1
        );
    }
    wait_until(
        "the shard ConfigMaps deleted",
        Duration::from_secs(60),
        || {
            let names = stack
                .cluster
                .kubectl(&[
                    "get",
                    "configmaps",
                    "-n",
                    &stack.namespace,
                    "-l",
                    &format!("streamsplit.io/pool={POOL}"),
                    "-o",
                    "name",
                ])
                .ok()?;
            (names.trim() == format!("configmap/{}", stack.configmap_name())).then_some(())
        },
    )
    .unwrap();
    let (_, bundle) = stack.bundle().unwrap();
    assert_eq!(bundle["apiVersion"], "streamsplit.io/bundle/v1", "{bundle}");
    assert_eq!(bundle["rules"].as_array().map(Vec::len), Some(0));
}
