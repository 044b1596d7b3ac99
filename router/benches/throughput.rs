//! End-to-end router benchmark on the local broker:
//! `cargo bench -p streamsplit-router --bench throughput`.
//!
//! The release router binary consumes the same backlog once per configuration: pass-through
//! (every record copied to one topic, no rule evaluation; the baseline measured in the same run),
//! then 10, 100 and 1 000 rules where every record matches exactly one rule, all copying to the
//! same topic as pass-through (so every configuration produces one copy per record to the same
//! partitions), then 100 rules on the Rhai engine. For each:
//! records/s, p50/p99 end-to-end latency of a paced stream (record CreateTime to arrival on the
//! target topic), and peak RSS. Then tier isolation: critical throughput while a best-effort
//! rule's target is stalled, as a ratio of the same rules with a healthy best-effort target.
//! Finally the same 100-rule run with a bundle swap every second.
//!
//! `STREAMSPLIT_BENCH_RECORDS` sets the backlog size (default 200 000);
//! `STREAMSPLIT_BENCH_ONLY=tiers` runs the tier-isolation table alone, `STREAMSPLIT_BENCH_ONLY=peers`
//! the comparison with the splitters a team would write instead (Quix Streams, a hand-written
//! confluent-kafka splitter; installed into a cached virtualenv) on the same backlog.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use streamsplit_e2e::{
    free_port, http_get, router_run_args, unique_name, wait_until, Broker, ChildProcess,
    ProjectedConfigMap, TestRecord,
};
use streamsplit_rules::{Mode, RuleBundle, RuleDefinition, RuleId, Tier, BUNDLE_FILE_NAME};

const TARGETS: usize = 10;
const PACED_RATE: usize = 2_000;
const PACED_SECONDS: usize = 5;
const ROUNDS: usize = 3;

fn record(i: usize) -> TestRecord {
    let value = format!(
        r#"{{"seq": {i}, "id": {}, "page": "Home", "p10": "P{}", "p100": "P{}", "p1000": "P{}", "country": "DE", "client": {{"os": "ios17", "version": "2.1"}}, "session": "{:016x}"}}"#,
        i % 1000,
        i % 10,
        i % 100,
        i % 1000,
        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    );
    TestRecord {
        key: Some(format!("k{}", i % 97).into_bytes()),
        value: value.into_bytes(),
        headers: Vec::new(),
    }
}

fn rules(count: usize, targets: &[String]) -> Vec<RuleDefinition> {
    (0..count)
        .map(|i| RuleDefinition {
            id: RuleId::new(Some("bench"), format!("r{i:04}")),
            condition: format!(r#"record.p{count} == "P{i}" && record.id >= 0"#),
            target_topic: targets[0].clone(),
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
        })
        .collect()
}

fn write_manifests(dir: &Path, definitions: &[RuleDefinition]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut yaml = String::new();
    for d in definitions {
        let project = d.project.as_ref().map_or(String::new(), |p| {
            format!("  project: {{keep: [{}]}}\n", p.keep.join(", "))
        });
        yaml.push_str(&format!(
            "apiVersion: streamsplit.io/v1alpha1\nkind: SplitRule\nmetadata: {{name: {}, namespace: bench}}\nspec:\n  condition: '{}'\n  targetTopic: {}\n  tier: {}\n{project}---\n",
            d.id.name, d.condition, d.target_topic, d.tier.as_str()
        ));
    }
    std::fs::write(dir.join("rules.yaml"), yaml).unwrap();
}

struct Run {
    process: ChildProcess,
    metrics: String,
    group: String,
}

fn start(broker: &Broker, source: &str, exceptions: &str, extra: &[String]) -> Run {
    let metrics = format!("127.0.0.1:{}", free_port());
    let group = unique_name("bench");
    let mut args = router_run_args(&broker.bootstrap, source, &group, exceptions, &metrics);
    // noida-db answers a fetch with the whole backlog, ignoring fetch.max.bytes.
    args.extend([
        "--consumer-property".into(),
        "receive.message.max.bytes=2000000000".into(),
    ]);
    args.extend(extra.iter().cloned());
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{group}.log"));
    let binary = Path::new(env!("CARGO_BIN_EXE_streamsplit-router"));
    let process = ChildProcess::spawn(binary, &args, &log).unwrap();
    Run {
        process,
        metrics,
        group,
    }
}

fn committed(broker: &Broker, group: &str, source: &str) -> i64 {
    broker
        .committed(group, source)
        .map(|c| c.values().sum())
        .unwrap_or(0)
}

fn peak_rss_mib(run: &Run) -> f64 {
    peak_rss_mib_of(run.process.pid())
}

/// Consumes the backlog; returns records/s from the moment partitions are assigned.
fn drain_backlog(broker: &Broker, run: &Run, source: &str, total: i64) -> f64 {
    wait_until("the router to be ready", Duration::from_secs(60), || {
        (http_get(&run.metrics, "/readyz").ok()?.0 == 200).then_some(())
    })
    .unwrap();
    let started = Instant::now();
    wait_until("the backlog to be routed", Duration::from_secs(600), || {
        (committed(broker, &run.group, source) >= total).then_some(())
    })
    .unwrap();
    total as f64 / started.elapsed().as_secs_f64()
}

/// Produces a paced stream and measures CreateTime-to-arrival on the target topics.
fn paced_latency(
    broker: &'static Broker,
    source: &str,
    targets: &[String],
    seq_base: usize,
) -> (f64, f64) {
    let consumer: BaseConsumer = broker
        .config()
        .set("group.id", unique_name("latency"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for topic in targets {
        for partition in broker.high_watermarks(topic).unwrap().keys() {
            assignment
                .add_partition_offset(topic, *partition, Offset::End)
                .unwrap();
        }
    }
    consumer.assign(&assignment).unwrap();
    // Let the reader reach the end of every partition before producing.
    for _ in 0..10 {
        consumer.poll(Duration::from_millis(100));
    }
    let expected = PACED_RATE * PACED_SECONDS;
    let producer = {
        let source = source.to_string();
        std::thread::spawn(move || {
            let batch = PACED_RATE / 20;
            for step in 0..PACED_SECONDS * 20 {
                let started = Instant::now();
                let records: Vec<TestRecord> = (0..batch)
                    .map(|j| record(seq_base + step * batch + j))
                    .collect();
                broker.produce(&source, &records).unwrap();
                std::thread::sleep(Duration::from_millis(50).saturating_sub(started.elapsed()));
            }
        })
    };
    let mut latencies = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(120);
    while latencies.len() < expected && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            if let Some(created) = message.timestamp().to_millis() {
                latencies.push((now - created) as f64);
            }
        }
    }
    producer.join().unwrap();
    assert_eq!(latencies.len(), expected, "every paced record must arrive");
    latencies.sort_by(f64::total_cmp);
    (latencies[expected / 2], latencies[expected * 99 / 100])
}

/// Records/s of critical copies: from readiness until `target` holds `copies` more records.
fn copies_rate(broker: &Broker, run: &Run, target: &str, copies: i64) -> f64 {
    let count = || -> i64 {
        broker
            .high_watermarks(target)
            .map_or(0, |m| m.values().sum())
    };
    let before = count();
    wait_until("the router to be ready", Duration::from_secs(60), || {
        (http_get(&run.metrics, "/readyz").ok()?.0 == 200).then_some(())
    })
    .unwrap();
    let started = Instant::now();
    wait_until("the critical copies", Duration::from_secs(600), || {
        (count() - before >= copies).then_some(())
    })
    .unwrap();
    copies as f64 / started.elapsed().as_secs_f64()
}

/// 100 critical rules (every record matches one) plus a best-effort rule matching every record,
/// whose target is healthy in one run and stalled in the other (a topic that does not exist,
/// with librdkafka waiting ten minutes for it: every best-effort copy sits in its queue).
fn tier_isolation(
    broker: &Broker,
    work: &Path,
    source: &str,
    exceptions: &str,
    targets: &[String],
    total: usize,
) {
    println!("\n## Tier isolation: critical copies with a stalled best-effort target ({total} records)\n");
    println!("| best-effort target | critical copies/s (median of {ROUNDS}) | range | vs healthy | best-effort dropped |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let stalled = unique_name("bench-stalled");
    let mut baseline = None;
    for (label, best_effort_target) in [("healthy", targets[2].clone()), ("stalled", stalled)] {
        let mut definitions = rules(100, targets);
        for rule in &mut definitions {
            rule.tier = Tier::Critical;
            rule.target_topic = targets[1].clone();
        }
        definitions.push(RuleDefinition {
            id: RuleId::new(Some("bench"), "everything"),
            condition: "true".into(),
            target_topic: best_effort_target,
            tier: Tier::BestEffort,
            mode: Mode::Active,
            suspend: false,
            sample: None,
            project: None,
            transform: None,
            key: None,
            exclusive_group: None,
            max_records_per_second: None,
            target_topic_pattern: None,
        });
        let dir = work.join(format!("tiers-{label}"));
        write_manifests(&dir, &definitions);
        let args = vec![
            "--rules".into(),
            dir.display().to_string(),
            "--producer-property".into(),
            "topic.metadata.propagation.max.ms=600000".into(),
        ];
        let mut rates = Vec::new();
        let mut dropped = 0.0;
        for _ in 0..ROUNDS {
            let mut run = start(broker, source, exceptions, &args);
            rates.push(copies_rate(broker, &run, &targets[1], total as i64));
            let (_, text) = http_get(&run.metrics, "/metrics").unwrap();
            dropped = streamsplit_e2e::sample_value(
                &text,
                "streamsplit_dropped_total",
                &[("tier", "best-effort")],
            )
            .unwrap_or(0.0);
            run.process.kill();
        }
        rates.sort_by(f64::total_cmp);
        let rate = rates[ROUNDS / 2];
        let base = *baseline.get_or_insert(rate);
        println!(
            "| {label} | {rate:.0} | {:.0}–{:.0} | {:.0} % | {dropped:.0} |",
            rates[0],
            rates[ROUNDS - 1],
            100.0 * rate / base
        );
    }
}

/// CPU seconds (user + system) a process has used, from `/proc` (clock ticks of 1/100 s, the
/// kernel's fixed USER_HZ).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may contain spaces, start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mib_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The virtualenv with the peers' libraries, created on first use.
fn peers_python() -> PathBuf {
    let cache = std::env::var_os("STREAMSPLIT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/streamsplit")
        });
    let venv = cache.join("peers-venv-quixstreams-3.28.1");
    let python = venv.join("bin/python");
    if !python.exists() {
        let status = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(status.success(), "cannot create {}", venv.display());
        let status = std::process::Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "quixstreams==3.28.1",
                "confluent-kafka==2.12.2",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "cannot install the peers' libraries");
    }
    python
}

/// 100 rules, every record matching exactly one, copies spread over the ten targets, against
/// the same work done by pass-through and by the splitters a team would write instead.
fn peers(
    broker: &Broker,
    work: &Path,
    source: &str,
    exceptions: &str,
    targets: &[String],
    total: usize,
) {
    let python = peers_python();
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers");
    let mut definitions = rules(100, targets);
    for (i, rule) in definitions.iter_mut().enumerate() {
        rule.target_topic = targets[i % targets.len()].clone();
    }
    let dir = work.join("peers-rules");
    write_manifests(&dir, &definitions);
    let rules_dir = dir.display().to_string();
    let target_list = targets.join(",");
    println!("\n## Peers: 100 rules, every record matches one, copies spread over {} topics ({total} records)\n", targets.len());
    println!("| contender | records/s (median of {ROUNDS}) | vs pass-through | CPU ms per 1 000 records (median) | peak RSS MiB | copies verified |");
    println!("| --- | ---: | ---: | ---: | ---: | --- |");
    enum Contender {
        Router(Vec<String>),
        Python(&'static str),
    }
    let mut pass_through = vec![];
    for t in targets {
        pass_through.extend(["--pass-through-topic".to_string(), t.clone()]);
    }
    let contenders = [
        ("pass-through", Contender::Router(pass_through)),
        (
            "streamsplit, fast path",
            Contender::Router(vec!["--rules".into(), rules_dir.clone()]),
        ),
        (
            "streamsplit, `--engine rhai`",
            Contender::Router(vec![
                "--rules".into(),
                rules_dir.clone(),
                "--engine".into(),
                "rhai".into(),
            ]),
        ),
        ("Quix Streams 3.28", Contender::Python("quix_splitter.py")),
        (
            "confluent-kafka by hand",
            Contender::Python("confluent_splitter.py"),
        ),
    ];
    let copies = || -> i64 {
        targets
            .iter()
            .map(|t| {
                broker
                    .high_watermarks(t)
                    .map_or(0, |m| m.values().sum::<i64>())
            })
            .sum()
    };
    let mut baseline = None;
    for (name, contender) in &contenders {
        let mut rates = Vec::new();
        let mut cpu_per_1000 = Vec::new();
        let (mut rss, mut verified) = (0.0f64, true);
        for _ in 0..ROUNDS {
            let before = copies();
            let started = Instant::now();
            let (mut process, group) = match contender {
                Contender::Router(args) => {
                    let run = start(broker, source, exceptions, args);
                    (run.process, run.group)
                }
                Contender::Python(script) => {
                    let group = unique_name("peer");
                    let args: Vec<String> = [
                        scripts.join(script).display().to_string(),
                        "--brokers".into(),
                        broker.bootstrap.clone(),
                        "--source".into(),
                        source.to_string(),
                        "--group".into(),
                        group.clone(),
                        "--targets".into(),
                        target_list.clone(),
                        "--records".into(),
                        total.to_string(),
                    ]
                    .to_vec();
                    let log =
                        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{group}.log"));
                    (ChildProcess::spawn(&python, &args, &log).unwrap(), group)
                }
            };
            wait_until(
                "the contender to commit the backlog",
                Duration::from_secs(900),
                || (committed(broker, &group, source) >= total as i64).then_some(()),
            )
            .unwrap();
            let elapsed = started.elapsed().as_secs_f64();
            rates.push(total as f64 / elapsed);
            cpu_per_1000.push(1000.0 * cpu_seconds(process.pid()) * 1000.0 / total as f64);
            rss = rss.max(peak_rss_mib_of(process.pid()));
            process.kill();
            let made = copies() - before;
            verified &= made >= total as i64;
        }
        rates.sort_by(f64::total_cmp);
        cpu_per_1000.sort_by(f64::total_cmp);
        let rate = rates[ROUNDS / 2];
        let cpu = cpu_per_1000[ROUNDS / 2];
        let base = *baseline.get_or_insert(rate);
        println!(
            "| {name} | {rate:.0} | {:.0} % | {cpu:.0} | {rss:.0} | {} |",
            100.0 * rate / base,
            if verified { "yes" } else { "NO" }
        );
    }
}

fn main() {
    let total: usize = std::env::var("STREAMSPLIT_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let broker = Broker::shared();
    let work = tempfile::tempdir().unwrap();
    let source = unique_name("bench-src");
    let exceptions = unique_name("bench-exc");
    let targets: Vec<String> = (0..TARGETS)
        .map(|i| unique_name(&format!("bench-t{i}")))
        .collect();
    broker
        .create_topics(&[(&source, 4), (&exceptions, 1)])
        .unwrap();
    for t in &targets {
        broker.create_topics(&[(t, 4)]).unwrap();
    }
    let produced = Instant::now();
    let indices: Vec<usize> = (0..total).collect();
    for chunk in indices.chunks(20_000) {
        let records: Vec<TestRecord> = chunk.iter().map(|&i| record(i)).collect();
        broker.produce(&source, &records).unwrap();
    }
    let average = record(12345).value.len();
    println!(
        "# streamsplit router end to end ({total} records of ~{average} bytes, 4 source partitions, produced in {:.1} s)\n",
        produced.elapsed().as_secs_f64()
    );
    match std::env::var("STREAMSPLIT_BENCH_ONLY").as_deref() {
        Ok("tiers") => {
            tier_isolation(broker, work.path(), &source, &exceptions, &targets, total);
            return;
        }
        Ok("peers") => {
            peers(broker, work.path(), &source, &exceptions, &targets, total);
            return;
        }
        _ => {}
    }
    println!("| configuration | records/s (median of {ROUNDS}) | range | vs pass-through | p50 latency ms | p99 latency ms | peak RSS MiB |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");

    let mut configurations: Vec<(String, Vec<String>)> = vec![(
        "pass-through (no rules)".into(),
        vec!["--pass-through-topic".into(), targets[0].clone()],
    )];
    for count in [10usize, 100, 1000] {
        let dir = work.path().join(format!("rules-{count}"));
        write_manifests(&dir, &rules(count, &targets));
        configurations.push((
            format!("{count} rules"),
            vec!["--rules".into(), dir.display().to_string()],
        ));
    }
    // Every copy projected to 5 of the record's 10 fields.
    let dir = work.path().join("rules-100-projected");
    let projected: Vec<RuleDefinition> = rules(100, &targets)
        .into_iter()
        .map(|mut rule| {
            rule.project = Some(streamsplit_rules::projection::Projection {
                keep: ["seq", "id", "page", "country", "client"]
                    .map(String::from)
                    .to_vec(),
                ..Default::default()
            });
            rule
        })
        .collect();
    write_manifests(&dir, &projected);
    configurations.push((
        "100 rules, keep-5-fields projection on every copy".into(),
        vec!["--rules".into(), dir.display().to_string()],
    ));
    configurations.push((
        "100 rules, without lineage headers".into(),
        vec![
            "--rules".into(),
            work.path().join("rules-100").display().to_string(),
            "--lineage-headers=false".into(),
        ],
    ));
    configurations.push((
        "100 rules, Rhai engine".into(),
        vec![
            "--rules".into(),
            work.path().join("rules-100").display().to_string(),
            "--engine".into(),
            "rhai".into(),
        ],
    ));

    // Warm-up (not reported): the first consumer of a fresh backlog pays the broker's cold caches.
    {
        let high: i64 = broker.high_watermarks(&source).unwrap().values().sum();
        let mut run = start(broker, &source, &exceptions, &configurations[0].1);
        drain_backlog(broker, &run, &source, high);
        assert!(run
            .process
            .terminate(Duration::from_secs(60))
            .unwrap()
            .success());
    }
    // Throughput: ROUNDS round-robin rounds over the configurations, median per configuration,
    // so slow phases of the shared machine hit every configuration alike.
    let high: i64 = broker.high_watermarks(&source).unwrap().values().sum();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); configurations.len()];
    let mut peak_rss = vec![0.0f64; configurations.len()];
    for _ in 0..ROUNDS {
        for (index, (_, args)) in configurations.iter().enumerate() {
            let mut run = start(broker, &source, &exceptions, args);
            rates[index].push(drain_backlog(broker, &run, &source, high));
            peak_rss[index] = peak_rss[index].max(peak_rss_mib(&run));
            assert!(run
                .process
                .terminate(Duration::from_secs(60))
                .unwrap()
                .success());
        }
    }
    // Latency: a paced stream through a router that has caught up.
    let mut seq = total;
    let mut baseline = None;
    for (index, (name, args)) in configurations.iter().enumerate() {
        let high: i64 = broker.high_watermarks(&source).unwrap().values().sum();
        let mut run = start(broker, &source, &exceptions, args);
        drain_backlog(broker, &run, &source, high);
        let (p50, p99) = paced_latency(broker, &source, &targets, seq);
        seq += PACED_RATE * PACED_SECONDS;
        assert!(run
            .process
            .terminate(Duration::from_secs(60))
            .unwrap()
            .success());
        rates[index].sort_by(f64::total_cmp);
        let rate = rates[index][ROUNDS / 2];
        let base = *baseline.get_or_insert(rate);
        let spread = format!("{:.0}–{:.0}", rates[index][0], rates[index][ROUNDS - 1]);
        println!(
            "| {name} | {rate:.0} | {spread} | {:.0} % | {p50:.0} | {p99:.0} | {:.0} |",
            100.0 * rate / base,
            peak_rss[index]
        );
    }

    tier_isolation(broker, work.path(), &source, &exceptions, &targets, total);

    // Hot swap under load: the same 100 rules from a mounted bundle, swapped every second for a
    // bundle that adds a rule matching nothing (same routing, new version).
    // A longer backlog of its own, so a run spans several swaps.
    let swap_source = unique_name("bench-swap-src");
    broker.create_topics(&[(&swap_source, 4)]).unwrap();
    let indices: Vec<usize> = (0..3 * total).collect();
    for chunk in indices.chunks(20_000) {
        let records: Vec<TestRecord> = chunk.iter().map(|&i| record(i)).collect();
        broker.produce(&swap_source, &records).unwrap();
    }
    let source = swap_source;
    println!(
        "\n## Bundle swap every second under load (100 rules, {} records)\n",
        3 * total
    );
    println!("| run | records/s | swaps | copies routed | records | lost |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let a = RuleBundle::build("default", rules(100, &targets));
    let mut with_dummy = rules(100, &targets);
    with_dummy.push(RuleDefinition {
        id: RuleId::new(Some("bench"), "never"),
        condition: r#"record.p10 == "none""#.into(),
        target_topic: targets[0].clone(),
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
    });
    let b = RuleBundle::build("default", with_dummy);
    let high: i64 = broker.high_watermarks(&source).unwrap().values().sum();
    for swapping in [false, true, false, true] {
        let mut volume =
            ProjectedConfigMap::new(&work.path().join(format!("bundle-{swapping}"))).unwrap();
        volume
            .publish(&[(BUNDLE_FILE_NAME, a.to_json().as_bytes())])
            .unwrap();
        let args = vec!["--config-dir".into(), volume.dir().display().to_string()];
        let mut run = start(broker, &source, &exceptions, &args);
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicUsize::new(0));
        let swapper = swapping.then(|| {
            let (stop, swaps) = (Arc::clone(&stop), Arc::clone(&swaps));
            let (a, b) = (a.to_json(), b.to_json());
            std::thread::spawn(move || {
                let mut flip = false;
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_secs(1));
                    flip = !flip;
                    let bundle = if flip { b.as_bytes() } else { a.as_bytes() };
                    volume.publish(&[(BUNDLE_FILE_NAME, bundle)]).unwrap();
                    swaps.fetch_add(1, Ordering::SeqCst);
                }
            })
        });
        let rate = drain_backlog(broker, &run, &source, high);
        stop.store(true, Ordering::SeqCst);
        if let Some(swapper) = swapper {
            swapper.join().unwrap();
        }
        let (_, text) = http_get(&run.metrics, "/metrics").unwrap();
        let routed: f64 = streamsplit_e2e::prom::parse_samples(&text)
            .iter()
            .filter(|s| s.name == "streamsplit_records_routed_total")
            .map(|s| s.value)
            .sum();
        assert!(run
            .process
            .terminate(Duration::from_secs(60))
            .unwrap()
            .success());
        let lost = high as f64 - routed;
        let label = if swapping {
            "swap every 1 s"
        } else {
            "no swaps"
        };
        println!(
            "| {label} | {rate:.0} | {} | {routed:.0} | {high} | {lost:.0} |",
            swaps.load(Ordering::SeqCst)
        );
        assert!(lost <= 0.0, "records lost during swaps");
    }
}
