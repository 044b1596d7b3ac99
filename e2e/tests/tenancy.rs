//! Many teams, one firehose: RouterPool policy, loop refusal and ownership-safe topic deletion,
//! end to end on the real apiserver and broker.

mod support;

use std::time::Duration;

use streamsplit_e2e::{unique_name, wait_until};
use support::*;

/// Replaces the test pool's tenants with one entry for `tenant` allowing `pattern`.
fn set_policy(stack: &Stack, tenant: &str, pattern: &str) {
    stack.apply(&router_pool_yaml(
        POOL,
        &stack.source,
        &stack.exceptions,
        tenant,
        pattern,
    ));
}

fn bundle_rules(stack: &Stack) -> Vec<(String, String)> {
    let (_, bundle) = stack.bundle().expect("a published bundle");
    bundle["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"]["name"].as_str().unwrap().to_string(),
                r["targetTopic"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn rules_outside_their_pools_policy_are_refused_and_an_earlier_version_keeps_routing() {
    let mut stack = Stack::start();
    let ns = stack.namespace.clone();
    set_policy(&stack, &ns, "{namespace}.*");
    let own = format!("{ns}.{}", unique_name("own"));
    let foreign = unique_name("other-team.orders");
    stack.start_operator();
    stack.apply(&rule_yaml("mine", r#"record.kind == "a""#, &own, ""));
    stack.wait_ready("mine", "True");
    stack.start_router();
    let (published_rv, bundle) = stack.bundle().unwrap();
    stack.wait_router_on(bundle["version"].as_str().unwrap());

    // Another team's topic, the pool's own source (a loop) and its exception topic.
    stack.apply(
        &(rule_yaml("foreign", "true", &foreign, "")
            + &rule_yaml("loop", "true", &stack.source, "")
            + &rule_yaml("pollute", "true", &stack.exceptions, "")),
    );
    let (reason, message) = stack.wait_ready("foreign", "False");
    assert_eq!(reason, "PolicyViolation", "{message}");
    assert!(
        message.contains(&format!("namespace {ns} may not write topic {foreign}"))
            && message.contains("spec.tenants[0].targetTopics allows {namespace}.*"),
        "{message}"
    );
    let (reason, message) = stack.wait_ready("loop", "False");
    assert_eq!(reason, "PolicyViolation");
    assert!(
        message.contains("a source topic of router pool default"),
        "{message}"
    );
    let (reason, message) = stack.wait_ready("pollute", "False");
    assert_eq!(reason, "PolicyViolation");
    assert!(message.contains("the exception topic"), "{message}");
    assert_eq!(
        stack.condition("foreign", "TopicReady").unwrap().1,
        "PolicyViolation"
    );
    assert!(
        stack.broker.high_watermarks(&foreign).is_err(),
        "the operator must not create a topic a rule may not write"
    );

    // The published rule edited to leave its namespace's topics: its earlier version keeps
    // routing, as with a compile error.
    stack.apply(&rule_yaml("mine", r#"record.kind == "a""#, &foreign, ""));
    let (reason, message) = stack.wait_ready("mine", "False");
    assert_eq!(reason, "PolicyViolation");
    assert!(
        message.contains("previously published version"),
        "{message}"
    );
    let (rv, _) = stack.bundle().unwrap();
    assert_eq!(rv, published_rv, "refused rules never reach the ConfigMap");
    stack.produce_kinds(&["a", "b"], 5);
    stack.wait_routed();
    assert_eq!(stack.kinds_on(&own), ["a"]);
    assert_eq!(stack.count(&stack.source), 10, "nothing looped");

    // The platform team widens the policy: the foreign rule becomes publishable without being
    // touched; the loop stays refused whatever the tenants say.
    set_policy(&stack, &ns, "*");
    stack.wait_ready("foreign", "True");
    stack.wait_ready("mine", "True");
    let (reason, _) = stack.wait_ready("loop", "False");
    assert_eq!(reason, "PolicyViolation");
    let mut carried = bundle_rules(&stack);
    carried.sort();
    assert_eq!(
        carried,
        [
            ("foreign".to_string(), foreign.clone()),
            ("mine".to_string(), foreign.clone())
        ]
    );
}

#[test]
fn pools_decide_who_may_use_them_and_only_existing_pools_get_a_bundle() {
    let mut stack = Stack::start();
    set_policy(&stack, "somebody-else", "*");
    let topic = unique_name("t");
    stack.start_operator();
    stack.apply(
        &(rule_yaml("uninvited", "true", &topic, "")
            + &rule_yaml("nowhere", "true", &topic, "  router: missing\n")),
    );
    let (reason, message) = stack.wait_ready("uninvited", "False");
    assert_eq!(reason, "PolicyViolation");
    assert!(
        message.contains(&format!(
            "namespace {} may not use router pool default",
            stack.namespace
        )),
        "{message}"
    );
    let (reason, message) = stack.wait_ready("nowhere", "False");
    assert_eq!(reason, "PolicyViolation");
    assert!(
        message.contains("router pool missing does not exist"),
        "{message}"
    );
    let missing_bundle = stack.cluster.get_json(&[
        "configmap",
        "-n",
        &stack.namespace,
        "streamsplit-rules-missing",
    ]);
    assert!(
        missing_bundle.is_none(),
        "no bundle for a pool that does not exist"
    );

    // The pool reports its bundle; creating the missing pool admits the rule waiting for it.
    set_policy(&stack, "*", "*");
    stack.wait_ready("uninvited", "True");
    let pool = wait_until("the pool's status", Duration::from_secs(30), || {
        let pool = stack
            .cluster
            .get_json(&["routerpool", "-n", &stack.namespace, POOL])?;
        (pool["status"]["rules"] == 1).then_some(pool)
    })
    .unwrap();
    let ready = &pool["status"]["conditions"][0];
    assert_eq!(
        (ready["type"].as_str(), ready["status"].as_str()),
        (Some("Ready"), Some("True"))
    );
    assert_eq!(pool["status"]["configMap"], stack.configmap_name());
    stack.add_pool("missing");
    stack.wait_ready("nowhere", "True");
    let table = stack
        .cluster
        .kubectl(&["get", "routerpools", "-n", &stack.namespace])
        .unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("missing") && l.contains("True")),
        "{table}"
    );
}

#[test]
fn delete_policy_deletes_only_topics_created_for_that_rule_and_adopted_topics_are_not_grown() {
    let mut stack = Stack::start();
    let [adopted, created, to_grow] = ["adopted", "created", "grow"].map(unique_name);
    stack
        .broker
        .create_topics(&[(&adopted, 1), (&to_grow, 1)])
        .unwrap();
    stack.start_operator();
    let delete = "  topic: {deletionPolicy: Delete}\n";
    stack.apply(
        &(rule_yaml("adopter", "true", &adopted, delete)
            + &rule_yaml("creator", "true", &created, delete)
            + &rule_yaml("grower", "true", &to_grow, "  topic: {partitions: 3}\n")),
    );
    stack.wait_ready("adopter", "True");
    stack.wait_ready("creator", "True");
    let (reason, message) = stack.wait_ready("grower", "False");
    assert_eq!(reason, "PolicyViolation", "{message}");
    assert!(
        message.contains("was not created for this rule")
            && message.contains("spec.allowAdoptedTopicChanges"),
        "{message}"
    );
    assert_eq!(stack.broker.high_watermarks(&to_grow).unwrap().len(), 1);

    // Ownership is durable: a new operator process decides from the same ledger.
    stack.stop_operator();
    stack.start_operator();
    stack
        .cluster
        .kubectl(&[
            "delete",
            "sr",
            "-n",
            &stack.namespace,
            "adopter",
            "creator",
            "--timeout=60s",
        ])
        .unwrap();
    wait_until(
        "the created topic to be deleted",
        Duration::from_secs(30),
        || {
            stack
                .broker
                .high_watermarks(&created)
                .is_err()
                .then_some(())
        },
    )
    .unwrap();
    assert!(
        stack.broker.high_watermarks(&adopted).is_ok(),
        "an adopted topic is never deleted"
    );
    let kept = wait_until("the TopicKept warning", Duration::from_secs(20), || {
        let events = stack.cluster.get_json(&[
            "events",
            "-n",
            &stack.namespace,
            "--field-selector",
            "reason=TopicKept",
        ])?;
        events["items"]
            .as_array()?
            .iter()
            .find_map(|e| e["message"].as_str().map(String::from))
    })
    .unwrap();
    assert!(
        kept.contains(&adopted) && kept.contains("did not create it"),
        "{kept}"
    );

    // The pool may allow changing adopted topics; then the rule gets its partitions.
    stack.apply(&format!(
        "{}  allowAdoptedTopicChanges: true\n",
        router_pool_yaml(
            POOL,
            &stack.source,
            &stack.exceptions,
            &stack.namespace,
            "*"
        )
    ));
    stack.wait_ready("grower", "True");
    assert_eq!(stack.broker.high_watermarks(&to_grow).unwrap().len(), 3);
}
