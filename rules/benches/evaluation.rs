//! Rule evaluation benchmarks: `cargo bench -p streamsplit-rules --bench evaluation`.
//!
//! 1. ns per rule-record, Rhai vs fast path, per condition shape (condition only: the record is
//!    decoded beforehand, once, as each path needs it), plus the per-record decode cost.
//! 2. Scaling: full per-record cost (decode, index, evaluate) with 1 to 10 000 rules of the form
//!    `record.page == "P<i>" && record.id > <i>`, without and with 1 % unindexable rules.
//!
//! Figures are medians of repeated passes over a fixed corpus; compare ratios, not absolutes
//! (the machines are shared and noisy).

use std::hint::black_box;
use std::time::Instant;

use rhai::Scope;
use streamsplit_rules::fast::{compile_condition, extract_slots, FieldPaths};
use streamsplit_rules::record::json_to_dynamic;
use streamsplit_rules::{
    sandboxed_engine, Condition, EvalMode, Mode, RuleDefinition, RuleId, RuleSet, Tier,
};

const CORPUS: usize = 5_000;
/// Condition timings cycle over this many decoded records, so they stay in cache as they do in
/// the router (a condition runs right after its record was decoded), 40 times per pass.
const HOT_SET: usize = 250;
const HOT_REPEAT: usize = 40;
const PASSES: usize = 15;

/// Deterministic ~200-byte tracking events.
fn corpus() -> Vec<Vec<u8>> {
    let pages = ["Home", "Search", "Cart", "Checkout", "Profile"];
    let events = ["view", "click", "scroll", "error"];
    let countries = ["DE", "FR", "NL", "US", "BR", "JP"];
    let oses = ["ios17", "ios16", "android", "linux", "windows"];
    let mut state: u64 = 0x5eed_2026;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    (0..CORPUS)
        .map(|_| {
            let id = next() % 1000;
            format!(
                r#"{{"id": {id}, "page": "{}", "event": "{}", "country": "{}", "user": "u{}", "latency_ms": {}.{}, "client": {{"os": "{}", "version": "2.{}"}}, "session": "{:016x}", "bucket": "P{}"}}"#,
                pages[(next() % 5) as usize], events[(next() % 4) as usize], countries[(next() % 6) as usize],
                next() % 100_000, next() % 3000, next() % 10, oses[(next() % 5) as usize], next() % 4, next(), next() % 10_000,
            )
            .into_bytes()
        })
        .collect()
}

fn median_ns_per_item(items: usize, mut pass: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..PASSES)
        .map(|_| {
            let started = Instant::now();
            pass();
            started.elapsed().as_nanos() as f64 / items as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[PASSES / 2]
}

fn rule(name: String, condition: String) -> RuleDefinition {
    RuleDefinition {
        id: RuleId::new(Some("bench"), name),
        condition,
        target_topic: "t".into(),
        tier: Tier::Standard,
        mode: Mode::Active,
        suspend: false,
    }
}

fn shapes(all_records: &[Vec<u8>]) {
    let records = &all_records[..HOT_SET];
    let engine = sandboxed_engine();
    let values: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::from_slice(r).unwrap())
        .collect();
    let mut scopes: Vec<Scope<'static>> = values
        .iter()
        .map(|v| {
            let mut scope = Scope::new();
            scope.push_constant_dynamic("record", json_to_dynamic(v));
            scope
        })
        .collect();
    let shapes = [
        ("numeric compare", r#"record.id > 300"#),
        ("string equality", r#"record.page == "Home""#),
        (
            "two fields (&&)",
            r#"record.id > 300 && record.page == "Home""#,
        ),
        (
            "&& || !",
            r#"(record.id > 300 || record.country == "DE") && !(record.event == "error")"#,
        ),
        ("in array", r#"record.country in ["DE", "FR", "NL"]"#),
        ("starts_with", r#"record.client.os.starts_with("ios")"#),
        ("contains", r#"record.user.contains("77")"#),
        ("nested field", r#"record.client.version == "2.1""#),
        ("missing field", r#"record.missing > 3"#),
        (
            "len / to_string",
            r#"record.user.len() > 4 && record.id.to_string() != "7""#,
        ),
    ];
    println!("## 1. Condition cost per rule-record ({HOT_SET} decoded records x {HOT_REPEAT}, median of {PASSES} passes)\n");
    println!("| shape | Rhai ns | fast ns | Rhai / fast |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, source) in shapes {
        let condition = Condition::compile(&engine, source).unwrap();
        let mut paths = FieldPaths::default();
        let fast = compile_condition(condition.ast(), &mut paths).expect("in the fast subset");
        let slots: Vec<_> = records
            .iter()
            .map(|r| extract_slots(&paths, r).unwrap())
            .collect();
        // Both paths must agree on the whole corpus before anything is timed.
        for (slot, scope) in slots.iter().zip(scopes.iter_mut()) {
            assert_eq!(
                fast.evaluate(slot).ok(),
                condition.evaluate(&engine, scope).ok(),
                "{name}"
            );
        }
        let rhai_ns = median_ns_per_item(HOT_SET * HOT_REPEAT, || {
            for _ in 0..HOT_REPEAT {
                for scope in scopes.iter_mut() {
                    black_box(condition.evaluate(&engine, scope).ok());
                }
            }
        });
        let fast_ns = median_ns_per_item(HOT_SET * HOT_REPEAT, || {
            for _ in 0..HOT_REPEAT {
                for slot in &slots {
                    black_box(fast.evaluate(black_box(slot)).ok());
                }
            }
        });
        println!(
            "| {name} | {rhai_ns:.1} | {fast_ns:.1} | {:.0}× |",
            rhai_ns / fast_ns
        );
    }
    let mut paths = FieldPaths::default();
    let two_fields =
        Condition::compile(&engine, r#"record.id > 300 && record.page == "Home""#).unwrap();
    compile_condition(two_fields.ast(), &mut paths);
    let decode_rhai = median_ns_per_item(CORPUS, || {
        for record in all_records {
            let value: serde_json::Value = serde_json::from_slice(record).unwrap();
            let _ = black_box(json_to_dynamic(&value));
        }
    });
    let decode_fast = median_ns_per_item(CORPUS, || {
        for record in all_records {
            black_box(extract_slots(&paths, record).unwrap());
        }
    });
    println!("\nDecoding one record, once per record: full JSON + Rhai map {decode_rhai:.0} ns, slot extraction (2 fields) {decode_fast:.0} ns ({:.1}×).\n", decode_rhai / decode_fast);
}

fn scaling(records: &[Vec<u8>]) {
    println!(
        "## 2. Per-record cost with many rules (decode + index + evaluate, {CORPUS} records)\n"
    );
    println!("| rules | indexed: ns/record | vs 10 rules | +1 % unindexable: ns/record | Rhai only: ns/record |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    let mut base = None;
    for count in [1usize, 10, 100, 1_000, 10_000] {
        let indexed: Vec<RuleDefinition> = (0..count)
            .map(|i| {
                rule(
                    format!("r{i:05}"),
                    format!(r#"record.bucket == "P{i}" && record.id > {}"#, i % 1000),
                )
            })
            .collect();
        let mut mixed = indexed.clone();
        for i in 0..count.div_ceil(100) {
            mixed.push(rule(
                format!("u{i:05}"),
                format!(
                    r#"record.latency_ms > {} || record.country == "X{i}""#,
                    5000 + i
                ),
            ));
        }
        let measure = |definitions: Vec<RuleDefinition>, mode: EvalMode| {
            let (set, quarantined) = RuleSet::compile_with(definitions, mode);
            assert!(quarantined.is_empty());
            median_ns_per_item(CORPUS, || {
                for record in records {
                    black_box(set.evaluate(record).unwrap());
                }
            })
        };
        let indexed_ns = measure(indexed.clone(), EvalMode::Fast);
        let mixed_ns = measure(mixed, EvalMode::Fast);
        let rhai = if count <= 100 {
            format!("{:.0}", measure(indexed, EvalMode::RhaiOnly))
        } else {
            "(skipped)".into()
        };
        if count == 10 {
            base = Some(indexed_ns);
        }
        let ratio = base.map_or("-".to_string(), |b| format!("{:.2}×", indexed_ns / b));
        println!("| {count} | {indexed_ns:.0} | {ratio} | {mixed_ns:.0} | {rhai} |");
    }
    println!();
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is accepted and ignored.
    let records = corpus();
    let average: usize = records.iter().map(Vec::len).sum::<usize>() / records.len();
    println!("# streamsplit rule evaluation (records average {average} bytes)\n");
    shapes(&records);
    scaling(&records);
}
