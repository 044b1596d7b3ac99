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
use streamsplit_rules::fast::{compile_condition, extract_slots, fill_meta_slots, FieldPaths};
use streamsplit_rules::record::json_to_dynamic;
use streamsplit_rules::{
    sandboxed_engine, Condition, EvalMode, Mode, RecordMeta, RuleDefinition, RuleId, RuleSet, Tier,
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
        sample: None,
        project: None,
        transform: None,
        key: None,
        exclusive_group: None,
        max_records_per_second: None,
        target_topic_pattern: None,
    }
}

fn shapes(all_records: &[Vec<u8>]) {
    let records = &all_records[..HOT_SET];
    let engine = sandboxed_engine();
    let values: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::from_slice(r).unwrap())
        .collect();
    // Keys `user-<n>` (every fifth `vip-<n>`), a `type` header and, every third record, `trace`.
    type Headers = Vec<(&'static str, &'static [u8])>;
    let metas: Vec<(String, Headers)> = (0..records.len())
        .map(|i| {
            let key = format!("{}-{i}", if i % 5 == 0 { "vip" } else { "user" });
            let mut headers: Headers = vec![("type", if i % 2 == 0 { b"click" } else { b"view" })];
            if i % 3 == 0 {
                headers.push(("trace", b"t"));
            }
            (key, headers)
        })
        .collect();
    let meta_views: Vec<RecordMeta<'_>> = metas
        .iter()
        .map(|(key, headers)| RecordMeta {
            key: Some(key.as_bytes()),
            headers: headers.iter().map(|(n, v)| (*n, Some(*v))).collect(),
            topic: "events",
            ..RecordMeta::default()
        })
        .collect();
    let mut scopes: Vec<Scope<'static>> = values
        .iter()
        .zip(&meta_views)
        .map(|(v, meta)| {
            let mut scope = Scope::new();
            scope.push_constant_dynamic("record", json_to_dynamic(v));
            scope.push_constant_dynamic("meta", meta.to_dynamic());
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
        ("header equality", r#"meta.headers["type"] == "click""#),
        ("header presence", r#""trace" in meta.headers"#),
        ("key equality", r#"meta.key == "user-42""#),
        ("key starts_with", r#"meta.key.starts_with("vip-")"#),
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
            .zip(&meta_views)
            .map(|(r, meta)| {
                let mut slots = extract_slots(&paths, r).unwrap();
                fill_meta_slots(&paths, meta, &mut slots);
                slots
            })
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
    println!("\nDecoding one record, once per record: full JSON + Rhai map {decode_rhai:.0} ns, slot extraction (2 fields) {decode_fast:.0} ns ({:.1}×).", decode_rhai / decode_fast);
    let header = Condition::compile(&engine, r#"meta.headers["type"] == "click""#).unwrap();
    let mut paths = FieldPaths::default();
    compile_condition(header.ast(), &mut paths);
    let mut slots = vec![streamsplit_rules::fast::Value::Unit; paths.len()];
    let fill_fast = median_ns_per_item(HOT_SET * HOT_REPEAT, || {
        for _ in 0..HOT_REPEAT {
            for meta in &meta_views {
                fill_meta_slots(&paths, black_box(meta), &mut slots);
                black_box(&slots);
            }
        }
    });
    let fill_rhai = median_ns_per_item(HOT_SET, || {
        for meta in &meta_views {
            let _ = black_box(meta.to_dynamic());
        }
    });
    println!("Metadata, once per record: one header slot {fill_fast:.1} ns, the full `meta` map for Rhai {fill_rhai:.0} ns.");
    let keep_five = streamsplit_rules::projection::Projection {
        keep: ["id", "page", "event", "country", "client"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    }
    .compile()
    .unwrap();
    let masking = streamsplit_rules::projection::Projection {
        drop: vec!["session".into()],
        mask: vec!["user".into()],
        hash: vec!["client.os".into()],
        ..Default::default()
    }
    .compile()
    .unwrap();
    let copy = median_ns_per_item(CORPUS, || {
        for record in all_records {
            black_box(record.to_vec());
        }
    });
    let keep_ns = median_ns_per_item(CORPUS, || {
        for record in all_records {
            black_box(keep_five.apply(record));
        }
    });
    let mask_ns = median_ns_per_item(CORPUS, || {
        for record in all_records {
            black_box(masking.apply(record));
        }
    });
    println!("Projection, once per copy: keep 5 of 10 fields {keep_ns:.0} ns, drop 1 + mask 1 + hash 1 nested {mask_ns:.0} ns (copying the record's bytes: {copy:.0} ns).\n");
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
