//! Engine semantics: what a condition sees, how it fails, and that one rule never disturbs another.

use streamsplit_rules::{
    parse_manifests, validate_spec, EvalError, EvalMode, Mode, RuleDefinition, RuleError, RuleId,
    RuleSet, Tier,
};

fn rule(name: &str, condition: &str, topic: &str, tier: Tier) -> RuleDefinition {
    RuleDefinition {
        id: RuleId::new(None, name),
        condition: condition.into(),
        target_topic: topic.into(),
        tier,
        mode: Mode::Active,
        suspend: false,
        sample: None,
        project: None,
        transform: None,
        key: None,
        exclusive_group: None,
        max_records_per_second: None,
        target_topic_pattern: None,
    }
}

fn one(condition: &str) -> RuleSet {
    let (set, quarantined) = RuleSet::compile([rule("r", condition, "t", Tier::Standard)]);
    assert!(quarantined.is_empty(), "{quarantined:?}");
    set
}

#[test]
fn matches_numeric_and_string_fields() {
    let set = one(r#"record.id > 300 && record.page == "Home""#);
    let hit = set.evaluate(br#"{"id": 301, "page": "Home"}"#).unwrap();
    assert_eq!(hit.matches, vec![0]);
    let miss = set.evaluate(br#"{"id": 300, "page": "Home"}"#).unwrap();
    assert!(miss.matches.is_empty() && miss.failures.is_empty());
}

#[test]
fn comparing_mismatched_types_is_false_as_in_rhai() {
    let set = one(r#"record.id > 300"#);
    let evaluation = set.evaluate(br#"{"id": "three hundred"}"#).unwrap();
    assert!(evaluation.matches.is_empty() && evaluation.failures.is_empty());
}

#[test]
fn calling_a_method_the_type_lacks_is_a_rule_error() {
    let set = one(r#"record.id.starts_with("3")"#);
    let evaluation = set.evaluate(br#"{"id": 300}"#).unwrap();
    assert!(evaluation.matches.is_empty());
    assert!(matches!(
        evaluation.failures[..],
        [streamsplit_rules::RuleFailure {
            rule: 0,
            error: EvalError::Runtime(_)
        }]
    ));
}

#[test]
fn missing_field_reads_as_unit_and_reaching_into_it_errors() {
    let set = one(r#"record.missing == ()"#);
    assert_eq!(set.evaluate(br#"{"id": 1}"#).unwrap().matches, vec![0]);
    let set = one(r#"record.missing > 3"#);
    let evaluation = set.evaluate(br#"{"id": 1}"#).unwrap();
    assert!(evaluation.matches.is_empty() && evaluation.failures.is_empty());
    let set = one(r#"record.missing.nested == 1"#);
    let evaluation = set.evaluate(br#"{"id": 1}"#).unwrap();
    assert!(evaluation.failures[0]
        .error
        .to_string()
        .contains("Unknown property 'nested'"));
}

#[test]
fn non_bool_result_is_an_error() {
    let set = one("record.id");
    let evaluation = set.evaluate(br#"{"id": 7}"#).unwrap();
    assert_eq!(
        evaluation.failures[0].error,
        EvalError::NotBool("i64".into())
    );
}

#[test]
fn hostile_loop_is_stopped_by_the_operation_limit() {
    let set = one("loop {}");
    let evaluation = set.evaluate(br#"{"id": 7}"#).unwrap();
    let message = evaluation.failures[0].error.to_string();
    assert!(message.contains("Too many operations"), "{message}");
    assert_eq!(evaluation.failures[0].error.reason(), "OperationLimit");
}

#[test]
fn a_rule_that_keeps_hitting_the_operation_limit_is_quarantined() {
    let set = one("loop {}");
    let limit = streamsplit_rules::rule_set::QUARANTINE_AFTER_OVERRUNS as usize;
    for _ in 0..limit {
        set.evaluate(b"{}").unwrap();
    }
    assert!(set.rules()[0].is_time_quarantined());
    let evaluation = set.evaluate(b"{}").unwrap();
    assert!(matches!(
        evaluation.failures[0].error,
        EvalError::Quarantined(_)
    ));
}

#[test]
fn eval_and_unknown_variables_do_not_compile() {
    for condition in [
        r#"eval("true")"#,
        "other_var > 1",
        "import \"x\" as y; true",
    ] {
        let (_, quarantined) = RuleSet::compile([rule("r", condition, "t", Tier::Standard)]);
        assert_eq!(quarantined.len(), 1, "{condition} should not compile");
    }
}

#[test]
fn compile_error_names_line_and_column() {
    let (_, quarantined) =
        RuleSet::compile([rule("bad", "record.id >\n  && true", "t", Tier::Standard)]);
    let RuleError::Compile(error) = &quarantined[0].error else {
        panic!("expected a compile error, got {:?}", quarantined[0].error)
    };
    assert_eq!(quarantined[0].id.to_string(), "default/bad");
    assert_eq!((error.line, error.column), (2, 3), "{error}");
}

#[test]
fn one_failing_rule_never_stops_the_others() {
    let (set, _) = RuleSet::compile([
        rule(
            "a-errors",
            r#"record.id.starts_with("1")"#,
            "x",
            Tier::Standard,
        ),
        rule("b-matches", "true", "y", Tier::Standard),
    ]);
    let evaluation = set.evaluate(br#"{"id": 1}"#).unwrap();
    assert_eq!(evaluation.failures.len(), 1);
    assert_eq!(evaluation.matches, vec![1]);
}

#[test]
fn rules_cannot_mutate_the_record_or_leak_variables() {
    let (set, _) = RuleSet::compile([
        rule("a", "record.id = 99; true", "x", Tier::Standard),
        rule("b", "let seen = 1; true", "y", Tier::Standard),
        rule("c", "record.id == 1", "z", Tier::Standard),
    ]);
    let evaluation = set.evaluate(br#"{"id": 1}"#).unwrap();
    // `a` fails (constant record), `b` matches, `c` still sees the original value.
    assert_eq!(
        evaluation
            .failures
            .iter()
            .map(|f| f.rule)
            .collect::<Vec<_>>(),
        vec![0]
    );
    assert_eq!(evaluation.matches, vec![1, 2]);
    // A second record on the same set still works: nothing leaked from `b`.
    assert_eq!(set.evaluate(br#"{"id": 1}"#).unwrap().matches, vec![1, 2]);
}

#[test]
fn evaluation_order_is_tier_then_identity_and_targets_are_deduplicated() {
    let (set, _) = RuleSet::compile([
        rule("z-best", "true", "shared", Tier::BestEffort),
        rule("b-std", "true", "b", Tier::Standard),
        rule("a-std", "true", "shared", Tier::Standard),
        rule("c-crit", "true", "c", Tier::Critical),
    ]);
    let names: Vec<_> = set
        .rules()
        .iter()
        .map(|r| r.definition.id.name.as_str())
        .collect();
    assert_eq!(names, ["c-crit", "a-std", "b-std", "z-best"]);
    let evaluation = set.evaluate(b"{}").unwrap();
    let copies = set.copies(&evaluation, b"{}", &Default::default());
    let topics: Vec<_> = copies
        .into_iter()
        .map(|c| (c.outcome.unwrap().topic.into_owned(), c.tier))
        .collect();
    assert_eq!(
        topics,
        [
            ("c".to_string(), Tier::Critical),
            ("shared".to_string(), Tier::Standard),
            ("b".to_string(), Tier::Standard)
        ]
    );
}

#[test]
fn shadow_rules_match_but_deliver_nothing_and_suspended_rules_are_not_evaluated() {
    let mut shadow = rule("shadow", "true", "s", Tier::Standard);
    shadow.mode = Mode::Shadow;
    let mut suspended = rule("suspended", "true", "p", Tier::Standard);
    suspended.suspend = true;
    let (set, _) = RuleSet::compile([shadow, suspended]);
    let evaluation = set.evaluate(b"{}").unwrap();
    assert_eq!(evaluation.matches.len(), 1);
    assert!(set
        .copies(&evaluation, b"{}", &Default::default())
        .is_empty());
}

#[test]
fn malformed_records_are_decode_errors() {
    let set = one("true");
    assert!(set.evaluate(b"not json").is_err());
    assert!(set.evaluate(b"[1,2]").is_err());
}

#[test]
fn spec_tests_run_and_name_the_failing_test() {
    let manifests = parse_manifests(
        r#"
apiVersion: streamsplit.io/v1alpha1
kind: SplitRule
metadata: {name: home}
spec:
  condition: 'record.page == "Home"'
  targetTopic: home
  tests:
    - {name: home page, record: {page: Home}, expect: match}
    - {name: other page, record: {page: Home}, expect: no-match}
"#,
        "inline",
    )
    .unwrap();
    let engine = streamsplit_rules::sandboxed_engine();
    let error = validate_spec(&engine, &manifests[0].spec).unwrap_err();
    assert_eq!(error.reason(), "TestFailed");
    assert_eq!(
        error.to_string(),
        r#"test "other page" failed: expected no-match, got match"#
    );
}

#[test]
fn manifests_default_namespace_tier_and_pool_and_reject_other_kinds() {
    let manifests = parse_manifests(
        "apiVersion: streamsplit.io/v1alpha1\nkind: SplitRule\nmetadata: {name: a}\nspec: {condition: 'true', targetTopic: t}\n---\n",
        "f.yaml",
    )
    .unwrap();
    assert_eq!(manifests[0].id.to_string(), "default/a");
    assert_eq!(manifests[0].spec.tier, Tier::Standard);
    assert_eq!(manifests[0].spec.router, "default");
    let error = parse_manifests(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        "g.yaml",
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("g.yaml#1: expected apiVersion"),
        "{error}"
    );
}

fn named(name: &str, condition: &str) -> RuleDefinition {
    rule(name, condition, "t", Tier::Standard)
}

/// Conditions a hostile or careless rule author could write, each of which used to stall a
/// router for seconds or minutes per record.
#[test]
fn blocking_and_time_functions_are_not_available() {
    for condition in [
        r#"sleep(3); record.page == "Home""#,
        "sleep(0.5); true",
        "timestamp() != ()",
    ] {
        let (set, quarantined) = RuleSet::compile([named("r", condition)]);
        let evaluation = set.evaluate(br#"{"page": "Home"}"#);
        let rejected_at_compile = !quarantined.is_empty();
        let failed_at_run = evaluation.is_ok_and(|e| e.failures.len() == 1);
        assert!(
            rejected_at_compile || failed_at_run,
            "{condition} must not run"
        );
        assert!(rejected_at_compile, "{condition} is rejected when compiled");
    }
}

#[test]
fn a_slow_condition_is_stopped_by_the_time_budget_and_the_others_still_run() {
    let slow = r#"for i in 0..1000 { let s = ""; s.pad(1000000, "x"); } true"#;
    let (set, quarantined) =
        RuleSet::compile([named("slow", slow), named("fast", "record.id == 1")]);
    assert!(quarantined.is_empty());
    let set = set.with_eval_budget(std::time::Duration::from_millis(5));
    let started = std::time::Instant::now();
    let evaluation = set.evaluate(br#"{"id": 1}"#).unwrap();
    // The error kind proves the budget stopped it (the loop would otherwise finish and match);
    // the generous bound only catches a budget that fires far too late. No tight wall-clock
    // bound: the machines are shared and a debug build on a busy core is slow.
    assert_eq!(evaluation.failures.len(), 1);
    assert_eq!(evaluation.failures[0].error, EvalError::TimeBudget);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "stopped after {:?}",
        started.elapsed()
    );
    assert_eq!(evaluation.matches.len(), 1, "the fast rule still matches");
}

#[test]
fn a_rule_that_keeps_overrunning_is_quarantined_and_keeps_its_quarantine_across_swaps() {
    let slow = r#"for i in 0..1000 { let s = ""; s.pad(1000000, "x"); } true"#;
    let rules = || [named("slow", slow), named("ok", "record.id == 1")];
    let (set, _) = RuleSet::compile(rules());
    let set = set.with_eval_budget(std::time::Duration::from_millis(1));
    let limit = streamsplit_rules::rule_set::QUARANTINE_AFTER_OVERRUNS as usize;
    let mut quarantined_at = None;
    for attempt in 1..=limit + 2 {
        let evaluation = set.evaluate(br#"{"id": 1}"#).unwrap();
        assert_eq!(evaluation.matches.len(), 1, "the other rule keeps routing");
        if !evaluation.quarantined.is_empty() {
            assert!(quarantined_at.is_none(), "quarantined exactly once");
            quarantined_at = Some(attempt);
        }
        if attempt > limit {
            assert!(
                matches!(evaluation.failures[0].error, EvalError::Quarantined(_)),
                "{:?}",
                evaluation.failures
            );
        }
    }
    assert_eq!(quarantined_at, Some(limit));
    let slow_index = set
        .rules()
        .iter()
        .position(|r| r.definition.id.name == "slow")
        .unwrap();
    assert!(set.rules()[slow_index].is_time_quarantined());
    let (next, _) = RuleSet::compile_reusing(rules(), EvalMode::Fast, Some(&set));
    assert!(
        next.rules()[slow_index].is_time_quarantined(),
        "an unchanged rule stays quarantined"
    );
}

#[test]
fn an_operation_limit_stops_an_endless_loop_within_the_budget() {
    let (set, _) = RuleSet::compile([named("loop", "loop {} true")]);
    let started = std::time::Instant::now();
    let evaluation = set.evaluate(b"{}").unwrap();
    assert_eq!(evaluation.failures.len(), 1);
    // Unstopped it would never return; the bound is loose for busy shared machines.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn rule_tests_that_run_out_of_time_report_a_timeout() {
    let manifests = parse_manifests(
        r#"
apiVersion: streamsplit.io/v1alpha1
kind: SplitRule
metadata: {name: slow}
spec:
  condition: 'for i in 0..1000 { let s = ""; s.pad(1000000, "x"); } true'
  targetTopic: t
  tests:
    - {name: any, record: {}, expect: match}
"#,
        "inline",
    )
    .unwrap();
    let engine = streamsplit_rules::engine::sandboxed_engine_with_budget(
        std::time::Duration::from_millis(1),
    );
    let error = validate_spec(&engine, &manifests[0].spec).unwrap_err();
    assert_eq!(error.reason(), "Timeout", "{error}");
}

#[test]
fn a_typo_in_a_manifest_spec_is_an_error_naming_the_key() {
    let error = parse_manifests(
        "apiVersion: streamsplit.io/v1alpha1\nkind: SplitRule\nmetadata: {name: a, labels: {x: y}}\nspec: {condition: 'true', targetTopic: t, teir: critical}\n",
        "typo.yaml",
    )
    .unwrap_err();
    assert!(error.to_string().contains("spec.teir"), "{error}");
}

#[test]
fn conditions_read_key_headers_and_source_through_meta() {
    use streamsplit_rules::RecordMeta;
    let set = one(
        r#"meta.headers["type"] == "click" && meta.key.starts_with("user-") && meta.topic == "events" && meta.key_json == ()"#,
    );
    let meta = RecordMeta {
        key: Some(b"user-7"),
        headers: vec![("type", Some(b"view")), ("type", Some(b"click"))],
        topic: "events",
        ..RecordMeta::default()
    };
    assert_eq!(set.evaluate_record(b"{}", &meta).unwrap().matches, vec![0]);
    let other_type = RecordMeta {
        headers: vec![("type", Some(b"click")), ("type", Some(b"view"))],
        ..meta.clone()
    };
    assert!(
        set.evaluate_record(b"{}", &other_type)
            .unwrap()
            .matches
            .is_empty(),
        "the last header of a name is the one read"
    );
    // Without metadata there are no headers: no match, and `&&` never reaches `meta.key`.
    let evaluation = set.evaluate(b"{}").unwrap();
    assert!(evaluation.matches.is_empty() && evaluation.failures.is_empty());
    let json_key = one(r#"meta.key_json.tenant == "a" && meta.offset == 12"#);
    let meta = RecordMeta {
        key: Some(br#"{"tenant": "a"}"#),
        offset: 12,
        ..RecordMeta::default()
    };
    assert_eq!(
        json_key.evaluate_record(b"{}", &meta).unwrap().matches,
        vec![0]
    );
}

#[test]
fn rule_tests_give_conditions_a_key_and_headers() {
    let manifests = parse_manifests(
        r#"
apiVersion: streamsplit.io/v1alpha1
kind: SplitRule
metadata: {name: clicks}
spec:
  condition: 'meta.headers["type"] == "click" && meta.key == "user-1"'
  targetTopic: t
  tests:
    - {name: a click, record: {}, key: user-1, headers: {type: click}, expect: match}
    - {name: no headers, record: {}, key: user-1, expect: no-match}
"#,
        "inline",
    )
    .unwrap();
    let engine = streamsplit_rules::sandboxed_engine();
    validate_spec(&engine, &manifests[0].spec).unwrap();
    let mut wrong = manifests[0].spec.clone();
    wrong.tests[0].key = Some("user-2".into());
    let error = validate_spec(&engine, &wrong).unwrap_err();
    assert_eq!(error.reason(), "TestFailed", "{error}");
}

#[test]
fn a_sampling_rule_keeps_the_same_keys_and_counts_the_rest_as_sampled_out() {
    use streamsplit_rules::RecordMeta;
    let mut sampled = rule("sampled", "record.id > 0", "t", Tier::Standard);
    sampled.sample = Some(0.5);
    let (set, quarantined) = RuleSet::compile([sampled.clone()]);
    assert!(quarantined.is_empty());
    let mut kept = 0;
    for i in 0..400 {
        let key = format!("user-{i}");
        let meta = RecordMeta {
            key: Some(key.as_bytes()),
            ..RecordMeta::default()
        };
        let first = set.evaluate_record(br#"{"id": 1}"#, &meta).unwrap();
        let again = set.evaluate_record(br#"{"id": 2}"#, &meta).unwrap();
        assert_eq!(first, again, "a key is always in or always out");
        assert_eq!(first.matches.len() + first.sampled_out.len(), 1);
        kept += first.matches.len();
    }
    assert!((120..280).contains(&kept), "kept {kept} of 400 at 0.5");
    // The Rhai-only path samples identically.
    let (rhai, _) = RuleSet::compile_with([sampled.clone()], EvalMode::RhaiOnly);
    let meta = RecordMeta {
        key: Some(b"user-3"),
        ..RecordMeta::default()
    };
    assert_eq!(
        rhai.evaluate_record(br#"{"id": 1}"#, &meta),
        set.evaluate_record(br#"{"id": 1}"#, &meta)
    );
    sampled.sample = Some(1.5);
    let (set, quarantined) = RuleSet::compile([sampled]);
    assert!(set.rules().is_empty());
    assert_eq!(quarantined[0].error.reason(), "InvalidSample");
}

fn grouped(name: &str, condition: &str, tier: Tier, group: Option<&str>) -> RuleDefinition {
    RuleDefinition {
        exclusive_group: group.map(String::from),
        ..rule(name, condition, &format!("t-{name}"), tier)
    }
}

fn names(set: &RuleSet, indices: &[usize]) -> Vec<String> {
    indices
        .iter()
        .map(|&i| set.rules()[i].definition.id.name.clone())
        .collect()
}

#[test]
fn an_exclusive_group_keeps_the_first_match_by_tier_then_name() {
    let mut shadow = grouped("a-shadow", "true", Tier::Critical, Some("g"));
    shadow.mode = Mode::Shadow;
    let (set, quarantined) = RuleSet::compile([
        grouped("b-std", "true", Tier::Standard, Some("g")),
        grouped("a-std", "record.x.len() > 0", Tier::Standard, Some("g")),
        grouped("z-crit", "record.pick == 1", Tier::Critical, Some("g")),
        grouped("free", "true", Tier::BestEffort, None),
        grouped("other-group", "true", Tier::BestEffort, Some("h")),
        shadow,
    ]);
    assert!(quarantined.is_empty());
    // The critical rule comes first; the shadow rule neither claims nor is excluded.
    let evaluation = set.evaluate(br#"{"pick": 1, "x": "y"}"#).unwrap();
    assert_eq!(
        names(&set, &evaluation.matches),
        ["a-shadow", "z-crit", "free", "other-group"]
    );
    assert_eq!(names(&set, &evaluation.excluded), ["a-std", "b-std"]);
    // A rule that fails on the record (x is missing: () has no len) claims nothing.
    let evaluation = set.evaluate(br#"{"pick": 0}"#).unwrap();
    assert_eq!(
        names(
            &set,
            &evaluation
                .failures
                .iter()
                .map(|f| f.rule)
                .collect::<Vec<_>>()
        ),
        ["a-std"]
    );
    assert_eq!(
        names(&set, &evaluation.matches),
        ["a-shadow", "b-std", "free", "other-group"]
    );
    assert!(evaluation.excluded.is_empty());
}

#[test]
fn groups_of_the_same_name_in_two_namespaces_are_independent() {
    let in_ns = |ns: &str, name: &str| RuleDefinition {
        id: RuleId::new(Some(ns), name),
        ..grouped(name, "true", Tier::Standard, Some("g"))
    };
    let (set, _) = RuleSet::compile([in_ns("shop", "a"), in_ns("shop", "b"), in_ns("ads", "c")]);
    let evaluation = set.evaluate(b"{}").unwrap();
    assert_eq!(names(&set, &evaluation.matches), ["c", "a"]);
    assert_eq!(names(&set, &evaluation.excluded), ["b"]);
}

#[test]
fn throttling_moves_matches_past_the_limit_and_keeps_the_bucket_across_a_swap() {
    let limited = RuleDefinition {
        max_records_per_second: Some(3),
        ..rule("limited", "true", "t", Tier::Standard)
    };
    let (set, _) = RuleSet::compile([limited.clone()]);
    let now = std::time::Instant::now();
    let mut kept = 0;
    for _ in 0..10 {
        let mut evaluation = set.evaluate(b"{}").unwrap();
        set.throttle(&mut evaluation, now);
        kept += evaluation.matches.len();
        assert_eq!(evaluation.matches.len() + evaluation.throttled.len(), 1);
    }
    assert_eq!(kept, 3);
    // The same limit after a swap: the emptied bucket carries over instead of refilling.
    let (swapped, _) = RuleSet::compile_reusing([limited], EvalMode::Fast, Some(&set));
    let mut evaluation = swapped.evaluate(b"{}").unwrap();
    swapped.throttle(&mut evaluation, now);
    assert_eq!(evaluation.throttled.len(), 1);
}
