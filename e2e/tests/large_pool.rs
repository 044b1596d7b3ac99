//! A pool whose bundle is larger than one ConfigMap may be (1 MiB): the operator shards it
//! (`bundle/v2`), the router assembles it from the projected shards, every rule gets a status,
//! and an edit of one rule goes live.

mod support;

use std::time::{Duration, Instant};

use streamsplit_e2e::{unique_name, wait_until, TestRecord};
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

/// Rules Ready for their current generation (three columns per rule, not megabytes of JSON).
fn ready_count(stack: &Stack) -> Option<usize> {
    let table = stack
        .cluster
        .kubectl(&[
            "get",
            "splitrules",
            "-n",
            &stack.namespace,
            "--no-headers",
            "-o",
            "custom-columns=G:.metadata.generation,O:.status.observedGeneration,R:.status.conditions[?(@.type==\"Ready\")].status",
        ])
        .ok()?;
    Some(
        table
            .lines()
            .filter(|line| {
                let columns: Vec<&str> = line.split_whitespace().collect();
                columns.len() == 3 && columns[0] == columns[1] && columns[2] == "True"
            })
            .count(),
    )
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
    wait_until("every rule Ready", Duration::from_secs(300), || {
        (ready_count(&stack)? == RULES).then_some(())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {:?} of {RULES} Ready\n{}",
            ready_count(&stack),
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
    println!(
        "{RULES} rules: all Ready {all_ready:.1?} after creation; {} shards; assembled bundle {fallback} bytes",
        shards.len()
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
    stack
        .cluster
        .kubectl(&[
            "delete",
            "--raw",
            &format!(
                "/apis/streamsplit.io/v1alpha1/namespaces/{}/splitrules",
                stack.namespace
            ),
        ])
        .unwrap();
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
