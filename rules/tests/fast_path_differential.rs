//! The fast path and the rule index give exactly Rhai's results: random records and random
//! conditions in the supported subset are evaluated both ways and must agree result for result,
//! errors (and their messages) included. Records come with random metadata (key, repeated,
//! empty and non-UTF-8 headers, topic, partition, offset, timestamp) read through `meta`.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use streamsplit_rules::{
    DecodeError, EvalError, EvalMode, Evaluation, Mode, RecordMeta, RuleDefinition, RuleId,
    RuleSet, Tier,
};

const HEADER_NAMES: [&str; 3] = ["type", "trace", "x"];
const TEXTS: [&str; 6] = ["", "a", "Home", "click", "ios17", "3"];

/// A record's metadata with its own storage.
#[derive(Clone, Debug)]
struct Meta {
    key: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    topic: String,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
}

impl Meta {
    fn view(&self) -> RecordMeta<'_> {
        RecordMeta {
            key: self.key.as_deref(),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_deref()))
                .collect(),
            topic: &self.topic,
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
        }
    }
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(TEXTS.to_vec()).prop_map(|t| t.as_bytes().to_vec()),
        1 => Just(br#"{"user": 3}"#.to_vec()),
        1 => Just(vec![0xff, 0x61]),
    ]
}

fn meta() -> impl Strategy<Value = Meta> {
    (
        prop::option::of(bytes()),
        prop::collection::vec(
            (
                prop::sample::select(HEADER_NAMES.to_vec()),
                prop::option::of(bytes()),
            ),
            0..4,
        ),
        prop::sample::select(vec!["events", "clicks", "Home"]),
        0i32..3,
        prop::sample::select(vec![0i64, 7, 1 << 40]),
        prop::option::of(prop::sample::select(vec![0i64, 1_700_000_000_000])),
    )
        .prop_map(|(key, headers, topic, partition, offset, timestamp)| Meta {
            key,
            headers: headers
                .into_iter()
                .map(|(n, v)| (n.to_string(), v))
                .collect(),
            topic: topic.to_string(),
            partition,
            offset,
            timestamp,
        })
}

const FIELDS: [&str; 6] = ["id", "n", "s", "page", "b", "f"];
const PAGES: [&str; 4] = ["Home", "Search", "Cart", "héllo"];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-5i64..5).prop_map(Value::from),
        Just(json!(i64::MAX)),
        Just(json!(u64::MAX)),
        prop::sample::select(vec![-2.5f64, 0.0, 1.0, 3.5, 300.0]).prop_map(Value::from),
        prop::sample::select(vec!["", "a", "ab", "Home", "Search", "ios17", "3", "héllo"])
            .prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => scalar(),
        1 => Just(json!([1, "a"])),
        1 => (scalar(), scalar()).prop_map(|(os, v)| json!({"os": os, "v": v})),
    ]
}

fn record() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(prop::option::of(field_value()), FIELDS.len()),
        prop::option::of(field_value()),
        prop::sample::select(PAGES.to_vec()),
    )
        .prop_map(|(values, client, page)| {
            let mut map = Map::new();
            for (name, value) in FIELDS.iter().zip(values) {
                if let Some(value) = value {
                    map.insert(name.to_string(), value);
                }
            }
            if let Some(client) = client {
                map.insert("client".into(), client);
            }
            map.entry("page").or_insert_with(|| Value::from(page));
            Value::Object(map)
        })
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FIELDS.to_vec()).prop_map(|f| format!("record.{f}")),
        2 => prop::sample::select(vec!["os", "v", "zz"]).prop_map(|f| format!("record.client.{f}")),
        1 => Just("record.missing".to_string()),
        1 => Just("record.missing.deeper".to_string()),
        3 => prop::sample::select(vec!["meta.key", "meta.topic", "meta.partition", "meta.offset", "meta.timestamp"])
            .prop_map(String::from),
        3 => (prop::sample::select(HEADER_NAMES.to_vec()), any::<bool>()).prop_map(|(name, indexed)| {
            if indexed { format!("meta.headers[{name:?}]") } else { format!("meta.headers.{name}") }
        }),
    ]
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        (-5i64..5).prop_map(|i| i.to_string()),
        prop::sample::select(vec!["-2.5", "0.0", "1.0", "3.5", "300.0"]).prop_map(String::from),
        prop::sample::select(vec!["", "a", "Home", "ios", "3", "é"]).prop_map(|s| format!("{s:?}")),
        prop::sample::select(vec!["true", "false", "()"]).prop_map(String::from),
    ]
}

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => field(),
        3 => literal(),
        1 => field().prop_map(|f| format!("{f}.len()")),
        1 => field().prop_map(|f| format!("{f}.to_string()")),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    let comparison = (
        atom(),
        prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]),
        atom(),
    )
        .prop_map(|(a, op, b)| format!("{a} {op} {b}"));
    let method = (
        field(),
        prop::sample::select(vec!["starts_with", "ends_with", "contains"]),
        prop::sample::select(vec!["", "a", "H", "ios", "é"]),
    )
        .prop_map(|(f, m, arg)| format!("{f}.{m}({arg:?})"));
    let membership = (atom(), prop::collection::vec(literal(), 0..4))
        .prop_map(|(a, items)| format!("{a} in [{}]", items.join(", ")));
    let presence = prop::sample::select(HEADER_NAMES.to_vec())
        .prop_map(|name| format!("{name:?} in meta.headers"));
    let leaf =
        prop_oneof![5 => comparison, 2 => method, 2 => membership, 1 => presence, 1 => field()];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) && ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) || ({b})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("{a} && {b} && {c}")),
            inner.prop_map(|a| format!("!({a})")),
        ]
    })
}

fn rule(name: &str, condition: &str) -> RuleDefinition {
    RuleDefinition {
        id: RuleId::new(Some("p"), name),
        condition: condition.to_string(),
        target_topic: format!("t-{name}"),
        tier: Tier::Standard,
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

/// Whether an evaluation ran out of the engine's time budget (twice in a row, see
/// `Condition::evaluate`): a verdict on a busy machine, not on the condition, so such a case
/// says nothing about whether the two paths agree.
fn overran(evaluation: &Result<Evaluation, DecodeError>) -> bool {
    evaluation
        .as_ref()
        .is_ok_and(|e| e.failures.iter().any(|f| f.error == EvalError::TimeBudget))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_equals_rhai(condition in condition(), record in record(), meta in meta()) {
        let (fast, quarantined) = RuleSet::compile_with([rule("r", &condition)], EvalMode::Fast);
        prop_assume!(quarantined.is_empty());
        prop_assert!(fast.rules()[0].is_fast(), "{condition} should be in the fast subset");
        let (rhai, _) = RuleSet::compile_with([rule("r", &condition)], EvalMode::RhaiOnly);
        let payload = serde_json::to_vec(&record).unwrap();
        let (on_fast, on_rhai) = (
            fast.evaluate_record(&payload, &meta.view()),
            rhai.evaluate_record(&payload, &meta.view()),
        );
        prop_assume!(!overran(&on_fast) && !overran(&on_rhai));
        prop_assert_eq!(
            on_fast,
            on_rhai,
            "condition {} on {} with {:?}", condition, record, meta
        );
    }

    #[test]
    fn indexed_rule_sets_equal_evaluating_every_rule(
        conditions in prop::collection::vec((prop::option::of((any::<bool>(), prop::sample::select(PAGES.to_vec()))), condition()), 1..12),
        records in prop::collection::vec((record(), meta()), 1..8),
    ) {
        // Rules of the form `record.page == "P" && ...` or `meta.headers["type"] == "P" && ...`
        // are indexed; the others are not.
        let definitions: Vec<RuleDefinition> = conditions
            .iter()
            .enumerate()
            .map(|(i, (key, c))| match key {
                Some((false, page)) => rule(&format!("r{i:02}"), &format!("record.page == {page:?} && ({c})")),
                Some((true, page)) => rule(&format!("r{i:02}"), &format!("meta.headers[\"type\"] == {page:?} && ({c})")),
                None => rule(&format!("r{i:02}"), c),
            })
            .collect();
        let (fast, quarantined) = RuleSet::compile_with(definitions.clone(), EvalMode::Fast);
        prop_assume!(quarantined.is_empty());
        let (rhai, _) = RuleSet::compile_with(definitions, EvalMode::RhaiOnly);
        for (record, meta) in &records {
            let payload = serde_json::to_vec(record).unwrap();
            let (on_fast, on_rhai) = (
                fast.evaluate_record(&payload, &meta.view()),
                rhai.evaluate_record(&payload, &meta.view()),
            );
            if overran(&on_fast) || overran(&on_rhai) {
                continue;
            }
            prop_assert_eq!(on_fast, on_rhai, "record {} with {:?}", record, meta);
        }
    }
}

#[test]
fn malformed_records_fail_the_same_way_on_both_paths() {
    let (fast, _) = RuleSet::compile_with([rule("r", "record.id > 1")], EvalMode::Fast);
    let (rhai, _) = RuleSet::compile_with([rule("r", "record.id > 1")], EvalMode::RhaiOnly);
    let deep = format!(
        r#"{{"id": 2, "x": {}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    for payload in [
        &b""[..],
        b"not json",
        b"[1, 2]",
        b"{\"id\": 1",
        b"{\"id\": 1} x",
        b"\"str\"",
        // Broken only in a field no condition reads: the fast extractor skips it, yet both
        // paths must still call the record undecodable.
        br#"{"id": 2, "x": "\ud800"}"#,
        b"{\"id\": 2, \"x\": \"\xff\"}",
        br#"{"id": 2, "x": 1e400}"#,
        deep.as_bytes(),
    ] {
        assert_eq!(
            fast.evaluate(payload),
            rhai.evaluate(payload),
            "{}",
            String::from_utf8_lossy(payload)
        );
        assert!(fast.evaluate(payload).is_err());
    }
}

#[test]
fn conditions_outside_the_subset_stay_on_rhai() {
    for condition in [
        "let x = record.id; x > 1",
        "record.id + 1 > 2",
        "record.tags[0] == 1",
        "record.s.sub_string(1) == \"a\"",
        "meta.key_json.user == 3",
        "meta.header_values[\"x\"].len() > 1",
    ] {
        let (set, quarantined) = RuleSet::compile([rule("r", condition)]);
        assert!(quarantined.is_empty(), "{condition}");
        assert!(
            !set.rules()[0].is_fast(),
            "{condition} is not in the fast subset"
        );
    }
}

#[test]
fn the_fast_path_decides_typical_records_itself() {
    use streamsplit_rules::fast::{compile_condition, extract_slots, fill_meta_slots, FieldPaths};
    let engine = streamsplit_rules::sandboxed_engine();
    let shapes = [
        r#"record.id > 300 && record.page == "Home""#,
        r#"record.page == "Home" || !(record.b == true)"#,
        r#"record.page in ["Home", "Cart"]"#,
        r#"record.client.os.starts_with("ios") && record.s.contains("a")"#,
        r#"record.missing > 3"#,
        r#"record.s.len() > 1 && record.id.to_string() == "301""#,
        r#"record.f >= 1 && record.id < 1000.5"#,
        r#"meta.headers["type"] == "click" && "trace" in meta.headers"#,
        r#"meta.key.starts_with("user-") || meta.topic == "events""#,
        r#"meta.headers.missing == () && meta.partition >= 0 && meta.timestamp > 0"#,
    ];
    let meta = RecordMeta {
        key: Some(b"user-7"),
        headers: vec![("type", Some(b"click")), ("trace", Some(b"t1"))],
        topic: "events",
        partition: 1,
        offset: 9,
        timestamp: Some(1_700_000_000_000),
    };
    let record = br#"{"id": 301, "page": "Home", "b": false, "client": {"os": "ios17"}, "s": "abc", "f": 2.5}"#;
    for shape in shapes {
        let condition = streamsplit_rules::Condition::compile(&engine, shape).unwrap();
        let mut paths = FieldPaths::default();
        let fast = compile_condition(condition.ast(), &mut paths)
            .unwrap_or_else(|| panic!("{shape} not compiled"));
        let mut slots = extract_slots(&paths, record).unwrap();
        fill_meta_slots(&paths, &meta, &mut slots);
        assert!(
            fast.evaluate(&slots).is_ok(),
            "{shape} fell back to Rhai on a typical record"
        );
    }
}
