//! The accounting checker's scenarios: each produces a known workload at a steady rate while a
//! fault happens, then accounts for every copy (see `streamsplit_e2e::checker`) and prints its
//! row of RELIABILITY.md. Lost and unexpected copies must be zero in every scenario.
//!
//! `STREAMSPLIT_CHECKER_RECORDS` scales every scenario (default 4 000 records; the soak in
//! RELIABILITY.md uses 100 000).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use streamsplit_e2e::checker::ledger::Allowances;
use streamsplit_e2e::checker::{self, Ledger, Oracle, Workload, WorkloadRecord};
use streamsplit_e2e::{
    free_port, http_get, prom, router_run_args, unique_name, wait_until, workspace_binary, Broker,
    ChildProcess, PrivateBroker, ProjectedConfigMap, StopSignal,
};

/// The router's producer limit in scenarios with oversized records.
const PRODUCER_LIMIT: usize = 100_000;

fn records_per_scenario() -> u64 {
    std::env::var("STREAMSPLIT_CHECKER_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000)
}

struct Scenario {
    name: &'static str,
    broker_label: &'static str,
    workload: Workload,
    records: Vec<WorkloadRecord>,
    work: tempfile::TempDir,
    rules_dir: PathBuf,
    source: String,
    exceptions: String,
    group: String,
    router_bin: PathBuf,
}

struct Router {
    process: ChildProcess,
    metrics: String,
}

impl Scenario {
    fn new(name: &'static str, broker_label: &'static str, workload: Workload, count: u64) -> Self {
        let work = tempfile::tempdir().unwrap();
        let rules_dir = work.path().join("rules");
        workload.write_rules(&rules_dir).unwrap();
        let records = (0..count).map(|n| workload.record(n)).collect();
        Scenario {
            name,
            broker_label,
            source: format!("{}.source", workload.prefix),
            exceptions: format!("{}.exceptions", workload.prefix),
            group: unique_name("checker"),
            workload,
            records,
            work,
            rules_dir,
            router_bin: workspace_binary("streamsplit-router"),
        }
    }

    /// Creates the source, the exception topic (unless told not to) and the topics of the
    /// active rules.
    fn create_topics(&self, broker: &Broker, with_exceptions: bool) {
        let mut topics = vec![(self.source.clone(), 3)];
        if with_exceptions {
            topics.push((self.exceptions.clone(), 1));
        }
        for name in ["crit-a", "std-ab", "std-level", "be-c", "err-n"] {
            topics.push((self.workload.topic(name), 2));
        }
        let refs: Vec<(&str, i32)> = topics.iter().map(|(t, p)| (t.as_str(), *p)).collect();
        broker.create_topics(&refs).unwrap();
    }

    fn start_router(&self, broker: &Broker, extra: &[&str]) -> Router {
        self.start_router_as(broker, self.name, extra)
    }

    /// A router with its own static member id (several routers share the group).
    fn start_router_as(&self, broker: &Broker, member: &str, extra: &[&str]) -> Router {
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut args = router_run_args(
            &broker.bootstrap,
            &self.source,
            &self.group,
            &self.exceptions,
            &metrics,
        );
        args.extend(
            [
                "--instance-id",
                member,
                "--producer-property",
                "topic.metadata.propagation.max.ms=1000",
            ]
            .map(String::from),
        );
        if self.workload.oversized_bytes > 0 {
            args.extend(["--producer-property", "message.max.bytes=100000"].map(String::from));
        }
        if !extra.contains(&"--config-dir") {
            args.extend(["--rules".to_string(), self.rules_dir.display().to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let file = format!("checker-{}-{member}", self.name).replace('/', "-");
        let log =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.log", unique_name(&file)));
        let process = ChildProcess::spawn(&self.router_bin, &args, &log).unwrap();
        Router { process, metrics }
    }

    /// Produces every record at a steady rate on a thread of its own.
    fn produce_steadily(&self, broker: &Broker, per_second: u64) -> std::thread::JoinHandle<()> {
        checker::produce_steadily(
            &broker.bootstrap,
            &self.source,
            self.records.clone(),
            per_second,
        )
    }

    /// Accounts for every copy, prints the table and the RELIABILITY.md row, asserts lost = 0
    /// and unexpected = 0.
    fn account(&self, broker: &Broker, recovered: &str) -> Ledger {
        self.account_ignoring(broker, recovered, &[])
    }

    /// [`Scenario::account`], leaving out exception records of the `ignored` rules.
    fn account_ignoring(&self, broker: &Broker, recovered: &str, ignored: &[&str]) -> Ledger {
        let allowances = Allowances {
            ignored,
            ..Allowances::default()
        };
        self.account_allowing(broker, recovered, &allowances)
    }

    /// [`Scenario::account`] with the scenario's allowances.
    fn account_allowing(
        &self,
        broker: &Broker,
        recovered: &str,
        allowances: &Allowances<'_>,
    ) -> Ledger {
        broker
            .wait_for_commit(&self.group, &self.source, Duration::from_secs(300))
            .unwrap();
        let run = checker::Run {
            broker,
            workload: &self.workload,
            records: &self.records,
            source: &self.source,
            exceptions: &self.exceptions,
            oracle: Oracle {
                router: &self.router_bin,
                rules: &self.rules_dir,
                producer_limit: (self.workload.oversized_bytes > 0).then_some(PRODUCER_LIMIT),
            },
            scratch: self.work.path(),
        };
        let account = run.account_allowing(allowances).unwrap();
        if account.lost_by_broker > 0 {
            println!(
                "{}: the broker lost {} acknowledged source records",
                self.name, account.lost_by_broker
            );
        }
        let (ledger, records) = (account.ledger, account.records);
        let total = ledger.total();
        println!("{}\n{}", self.name, ledger.table());
        let row = format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.name,
            records,
            total.expected,
            total.lost,
            total.duplicated,
            total.unexpected,
            if total.diverted > 0 {
                format!("{} + {} failed copies", ledger.exceptions(), total.diverted)
            } else {
                ledger.exceptions().to_string()
            },
            recovered,
            self.broker_label
        );
        println!("{row}");
        let rows = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability-rows.md");
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(rows)
            .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{row}\n").as_bytes()));
        assert_eq!(total.lost, 0, "{}", ledger.table());
        assert_eq!(total.unexpected, 0, "{}", ledger.table());
        assert_eq!(
            ledger.unversioned, 0,
            "every copy carries its bundle version (lineage headers are on by default)"
        );
        assert_eq!(
            ledger.split_records, 0,
            "each record is evaluated by exactly one rule set, across swaps and members"
        );
        ledger
    }
}

/// The router's own accounting at a quiet point, for a router that lived through the whole run:
/// consumed = evaluated + decode exceptions; per active rule, matches = routed + dropped +
/// failed; and the best-effort copies the ledger found missing are the ones the router counted
/// as dropped.
fn assert_router_accounting(router: &Router, ledger: &Ledger) {
    let (_, text) = http_get(&router.metrics, "/metrics").unwrap();
    let samples = prom::parse_samples(&text);
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.value)
            .sum()
    };
    let consumed = value("streamsplit_records_consumed_total", &[]);
    let evaluated = value("streamsplit_records_evaluated_total", &[]);
    let decode = value("streamsplit_exceptions_total", &[("kind", "decode")]);
    assert_eq!(
        consumed,
        evaluated + decode,
        "consumed = evaluated + decode exceptions"
    );
    for rule in ["crit-a", "std-ab", "std-level", "be-c", "err-n"] {
        let id = format!("checker/{rule}");
        let rule_label = [("rule", id.as_str())];
        let matches = value(
            "streamsplit_rule_matches_total",
            &[("rule", &id), ("mode", "active")],
        );
        let routed = value("streamsplit_records_routed_total", &rule_label);
        let dropped = value("streamsplit_rule_copies_dropped_total", &rule_label);
        let failed = value("streamsplit_rule_copies_failed_total", &rule_label);
        assert_eq!(
            matches,
            routed + dropped + failed,
            "{id}: matches = routed + dropped + failed"
        );
    }
    let dropped = value("streamsplit_dropped_total", &[("tier", "best-effort")]);
    assert_eq!(
        dropped as usize,
        ledger.total().dropped,
        "dropped copies are counted"
    );
}

/// The brokers every scenario runs on.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Noida,
    Nisshi,
}

impl Kind {
    fn broker(self) -> &'static Broker {
        match self {
            Kind::Noida => Broker::shared(),
            Kind::Nisshi => Broker::nisshi(),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Noida => "noida-db",
            Kind::Nisshi => "nisshi",
        }
    }
}

fn terminate(mut router: Router) {
    assert!(router
        .process
        .terminate(Duration::from_secs(60))
        .unwrap()
        .success());
}

fn wait_out(period: Duration) {
    // The scenario's fault lasts this long; nothing to poll for.
    let started = Instant::now();
    while started.elapsed() < period {
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn steady_with_oversized_records(kind: Kind) {
    let broker = kind.broker();
    let mut workload = Workload::new(&unique_name("steady"));
    workload.oversized_bytes = 150_000;
    let scenario = Scenario::new(
        "steady stream, oversized records",
        kind.label(),
        workload,
        records_per_scenario(),
    );
    scenario.create_topics(broker, true);
    let router = scenario.start_router(broker, &[]);
    scenario.produce_steadily(broker, 2_000).join().unwrap();
    let ledger = scenario.account(broker, "-");
    assert_router_accounting(&router, &ledger);
    terminate(router);
}

fn router_killed_three_times(kind: Kind) {
    let broker = kind.broker();
    let scenario = Scenario::new(
        "router kill -9 three times",
        kind.label(),
        Workload::new(&unique_name("kill")),
        records_per_scenario(),
    );
    scenario.create_topics(broker, true);
    let producing = scenario.produce_steadily(broker, 1_000);
    let mut router = scenario.start_router(broker, &[]);
    let total = scenario.records.len() as i64;
    for kill in 1..=3 {
        let committed_at_least = total * kill / 4;
        wait_until("routing to progress", Duration::from_secs(120), || {
            let committed: i64 = broker
                .committed(&scenario.group, &scenario.source)
                .ok()?
                .values()
                .sum();
            (committed >= committed_at_least).then_some(())
        })
        .unwrap();
        router.process.kill();
        router = scenario.start_router(broker, &[]);
    }
    producing.join().unwrap();
    scenario.account(broker, "restarted by the test");
    terminate(router);
}

/// nisshi runs on its SQLite storage here (the shared nisshi is in memory and would come back
/// empty).
fn broker_bounce(signal: StopSignal, name: &'static str, kind: Kind) {
    let state = tempfile::tempdir().unwrap();
    let private = match kind {
        Kind::Noida => PrivateBroker::start(state.path()),
        Kind::Nisshi => PrivateBroker::start_nisshi(state.path()),
    }
    .unwrap();
    let broker = &private.broker;
    let scenario = Scenario::new(
        name,
        kind.label(),
        Workload::new(&unique_name("bounce")),
        records_per_scenario(),
    );
    scenario.create_topics(broker, true);
    // The fault tests the router, not the broker's durability: topics must be on disk first.
    let mut topics = scenario.workload.topics();
    topics.extend([scenario.source.clone(), scenario.exceptions.clone()]);
    let persisted: Vec<&str> = topics
        .iter()
        .map(String::as_str)
        .filter(|t| !t.ends_with("shadow-all") && !t.ends_with("suspended-all"))
        .collect();
    private.wait_until_persisted(&persisted).unwrap();
    let router = scenario.start_router(broker, &[]);
    let producing = scenario.produce_steadily(broker, 1_000);
    let total = scenario.records.len() as i64;
    wait_until("routing to be under way", Duration::from_secs(120), || {
        let routed: i64 = broker
            .high_watermarks(&scenario.workload.topic("crit-a"))
            .ok()?
            .values()
            .sum();
        (routed >= total / 16).then_some(())
    })
    .unwrap();
    private.stop(signal).unwrap();
    wait_out(Duration::from_secs(10));
    private.restart().unwrap();
    let restarted = Instant::now();
    producing.join().unwrap();
    broker
        .wait_for_commit(&scenario.group, &scenario.source, Duration::from_secs(300))
        .unwrap();
    let recovery = format!("yes ({:.1} s)", restarted.elapsed().as_secs_f64());
    scenario.account(broker, &recovery);
    terminate(router);
}

fn exception_topic_missing_at_start(kind: Kind) {
    let broker = kind.broker();
    let scenario = Scenario::new(
        "exception topic created 5 s late",
        kind.label(),
        Workload::new(&unique_name("late-exc")),
        records_per_scenario(),
    );
    scenario.create_topics(broker, false);
    let router = scenario.start_router(broker, &[]);
    let producing = scenario.produce_steadily(broker, 2_000);
    wait_out(Duration::from_secs(5));
    broker.create_topics(&[(&scenario.exceptions, 1)]).unwrap();
    let created = Instant::now();
    producing.join().unwrap();
    broker
        .wait_for_commit(&scenario.group, &scenario.source, Duration::from_secs(300))
        .unwrap();
    let recovery = format!("yes ({:.1} s)", created.elapsed().as_secs_f64());
    let ledger = scenario.account(broker, &recovery);
    assert_router_accounting(&router, &ledger);
    terminate(router);
}

/// Two target topics (a critical and a standard rule's) are deleted while records flow and
/// re-created 3 s later. Copies delivered before the deletion went with the topic (the ledger
/// is told which); every later copy must be in the re-created topic or
/// recorded in the exception topic as a produce failure (for both tiers: a missing topic is a
/// permanent error, see the README). Nothing is lost.
fn target_topics_deleted_and_recreated(kind: Kind) {
    let broker = kind.broker();
    let scenario = Scenario::new(
        "target topics deleted, re-created 3 s later",
        kind.label(),
        Workload::new(&unique_name("recreated")),
        records_per_scenario(),
    );
    scenario.create_topics(broker, true);
    let router = scenario.start_router(broker, &[]);
    let third = scenario.records.len() / 3;
    checker::produce_steadily(
        &broker.bootstrap,
        &scenario.source,
        scenario.records[..third].to_vec(),
        2_000,
    )
    .join()
    .unwrap();
    broker
        .wait_for_commit(&scenario.group, &scenario.source, Duration::from_secs(120))
        .unwrap();
    let doomed = ["crit-a", "std-ab"].map(|rule| scenario.workload.topic(rule));
    let mut allowances = Allowances::default();
    for topic in &doomed {
        let held = broker.read_all(topic).unwrap();
        let keys = held
            .into_iter()
            .filter_map(|r| r.key)
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect();
        allowances.destroyed.insert(topic.clone(), keys);
        broker.delete_topic(topic).unwrap();
    }
    let producing = checker::produce_steadily(
        &broker.bootstrap,
        &scenario.source,
        scenario.records[third..].to_vec(),
        500,
    );
    wait_out(Duration::from_secs(3));
    let refs: Vec<(&str, i32)> = doomed.iter().map(|t| (t.as_str(), 2)).collect();
    broker.create_topics(&refs).unwrap();
    let recreated = Instant::now();
    producing.join().unwrap();
    broker
        .wait_for_commit(&scenario.group, &scenario.source, Duration::from_secs(300))
        .unwrap();
    let recovery = format!("yes ({:.1} s)", recreated.elapsed().as_secs_f64());
    scenario.account_allowing(broker, &recovery, &allowances);
    terminate(router);
}

fn bundle_arrives_three_seconds_after_start(kind: Kind) {
    let broker = kind.broker();
    let scenario = Scenario::new(
        "no bundle at start, bundle 3 s later",
        kind.label(),
        Workload::new(&unique_name("late-bundle")),
        records_per_scenario(),
    );
    scenario.create_topics(broker, true);
    let config = scenario.work.path().join("config");
    let state = scenario.work.path().join("state");
    let args = [
        "--config-dir",
        config.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let router = scenario.start_router(broker, &args);
    let producing = scenario.produce_steadily(broker, 2_000);
    wait_out(Duration::from_secs(3));
    let manifests =
        streamsplit_rules::load_manifests(std::slice::from_ref(&scenario.rules_dir)).unwrap();
    let bundle =
        streamsplit_rules::RuleBundle::build("default", manifests.iter().map(|m| m.definition()));
    ProjectedConfigMap::new(&config)
        .unwrap()
        .publish(&[(
            streamsplit_rules::BUNDLE_FILE_NAME,
            bundle.to_json().as_bytes(),
        )])
        .unwrap();
    producing.join().unwrap();
    let ledger = scenario.account(broker, "-");
    assert_router_accounting(&router, &ledger);
    terminate(router);
}

fn malformed_flood(kind: Kind) {
    let broker = kind.broker();
    let mut workload = Workload::new(&unique_name("flood"));
    // Every other record is malformed: 10 000 bad records among 20 000 at the default scale.
    workload.malformed_every = 2;
    let scenario = Scenario::new(
        "malformed flood (every other record)",
        kind.label(),
        workload,
        records_per_scenario() * 5,
    );
    scenario.create_topics(broker, true);
    let router = scenario.start_router(broker, &[]);
    scenario.produce_steadily(broker, 5_000).join().unwrap();
    let ledger = scenario.account(broker, "-");
    assert_router_accounting(&router, &ledger);
    terminate(router);
}

/// The workload's rules as a bundle, plus `extra` rules (name, condition).
fn bundle_with(scenario: &Scenario, extra: &[(String, String)]) -> String {
    let manifests =
        streamsplit_rules::load_manifests(std::slice::from_ref(&scenario.rules_dir)).unwrap();
    let mut definitions: Vec<streamsplit_rules::RuleDefinition> =
        manifests.iter().map(|m| m.definition()).collect();
    for (name, condition) in extra {
        definitions.push(streamsplit_rules::RuleDefinition {
            id: streamsplit_rules::RuleId::new(Some("hostile"), name.clone()),
            condition: condition.clone(),
            target_topic: scenario.workload.topic("err-n"),
            tier: streamsplit_rules::Tier::Standard,
            mode: streamsplit_rules::Mode::Active,
            suspend: false,
            sample: None,
            project: None,
            transform: None,
            key: None,
            exclusive_group: None,
            max_records_per_second: None,
            target_topic_pattern: None,
        });
    }
    streamsplit_rules::RuleBundle::build("default", definitions).to_json()
}

fn publish(volume: &mut ProjectedConfigMap, bundle: &str) {
    volume
        .publish(&[(streamsplit_rules::BUNDLE_FILE_NAME, bundle.as_bytes())])
        .unwrap();
}

/// Three routers in one group; one leaves gracefully and comes back, another is killed and
/// comes back, while the bundle is swapped every second (between two versions that route the
/// same way, so the oracle holds for every record whichever version evaluated it).
fn membership_churn_with_swaps(kind: Kind) {
    let broker = kind.broker();
    let scenario = Scenario::new(
        "3 routers join/leave, swap every 1 s",
        kind.label(),
        Workload::new(&unique_name("churn")),
        records_per_scenario() * 2,
    );
    scenario.create_topics(broker, true);
    let mut volume = ProjectedConfigMap::new(&scenario.work.path().join("config")).unwrap();
    let plain = bundle_with(&scenario, &[]);
    let marked = bundle_with(
        &scenario,
        &[("never".into(), r#"record.kind == "z""#.into())],
    );
    publish(&mut volume, &plain);
    let config = volume.dir().display().to_string();
    let start = |member: &str| {
        let state = scenario.work.path().join(format!("state-{member}"));
        scenario.start_router_as(
            broker,
            member,
            &[
                "--config-dir",
                &config,
                "--state-dir",
                state.to_str().unwrap(),
            ],
        )
    };
    let mut routers = vec![start("r1"), start("r2"), start("r3")];
    let producing = scenario.produce_steadily(broker, 1_000);
    let started = Instant::now();
    let mut swaps = 0;
    let mut churned = 0;
    while !producing.is_finished() {
        wait_out(Duration::from_secs(1));
        swaps += 1;
        publish(&mut volume, if swaps % 2 == 1 { &marked } else { &plain });
        match swaps % 4 {
            1 => {
                assert!(routers[1]
                    .process
                    .terminate(Duration::from_secs(60))
                    .unwrap()
                    .success());
                routers[1] = start("r2");
                churned += 1;
            }
            3 => {
                routers[2].process.kill();
                routers[2] = start("r3");
                churned += 1;
            }
            _ => {}
        }
    }
    producing.join().unwrap();
    eprintln!(
        "churn: {swaps} swaps, {churned} membership changes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let ledger = scenario.account(broker, "restarted by the test");
    assert!(
        ledger.versions_seen >= 2,
        "the swaps reached the copies ({} versions seen), so one version per record was tested",
        ledger.versions_seen
    );
    for router in routers {
        terminate(router);
    }
}

/// Hostile rules swapped in under load: an endless loop, a time-burning loop, a `sleep`, a
/// 1 MB condition and 5 000 extra rules. The workload's rules keep routing every record; the
/// throughput with the hostile set live is printed as a ratio of before.
fn hostile_rules_under_load(kind: Kind) {
    let broker = kind.broker();
    let scenario = Scenario::new(
        "hostile rules swapped in under load",
        kind.label(),
        Workload::new(&unique_name("hostile")),
        records_per_scenario() * 25,
    );
    scenario.create_topics(broker, true);
    let mut volume = ProjectedConfigMap::new(&scenario.work.path().join("config")).unwrap();
    publish(&mut volume, &bundle_with(&scenario, &[]));
    let mut hostile: Vec<(String, String)> = vec![
        ("loop".into(), "loop {} true".into()),
        (
            "burn".into(),
            r#"for i in 0..1000 { let s = ""; s.pad(1000000, "x"); } true"#.into(),
        ),
        ("sleep".into(), "sleep(1); true".into()),
        (
            "huge".into(),
            format!(r#"record.kind == "{}""#, "x".repeat(1024 * 1024)),
        ),
    ];
    hostile
        .extend((0..5_000).map(|i| (format!("many-{i:04}"), format!(r#"record.kind == "k{i}""#))));
    let hostile_bundle = bundle_with(&scenario, &hostile);
    // Two backlogs, one before and one after the swap, so the router runs as fast as it can
    // in both phases and the rates compare.
    let half = scenario.records.len() / 2;
    checker::produce_steadily(
        &broker.bootstrap,
        &scenario.source,
        scenario.records[..half].to_vec(),
        1_000_000,
    )
    .join()
    .unwrap();
    let config = volume.dir().display().to_string();
    let router = scenario.start_router(broker, &["--config-dir", &config]);
    let consumed = || -> f64 {
        let (_, text) = http_get(&router.metrics, "/metrics").unwrap_or_default();
        streamsplit_e2e::sample_value(&text, "streamsplit_records_consumed_total", &[])
            .unwrap_or(0.0)
    };
    // Records/s between 10 % and 60 % of a phase's backlog, whatever the machine's speed.
    let phase_rate = |start: f64| {
        let mark = |share: f64| {
            wait_until("the backlog to drain", Duration::from_secs(120), || {
                let now = consumed();
                (now >= start + share * half as f64).then(|| (now, Instant::now()))
            })
            .unwrap()
        };
        let ((from, at), (to, until)) = (mark(0.1), mark(0.6));
        (to - from) / (until - at).as_secs_f64()
    };
    let before = phase_rate(0.0);
    publish(&mut volume, &hostile_bundle);
    wait_until(
        "the hostile bundle to go live",
        Duration::from_secs(60),
        || {
            let (_, text) = http_get(&router.metrics, "/metrics").ok()?;
            (streamsplit_e2e::sample_value(&text, "streamsplit_rules_active", &[])? > 5_000.0)
                .then_some(())
        },
    )
    .unwrap();
    wait_until(
        "the first backlog to drain",
        Duration::from_secs(120),
        || (consumed() >= half as f64).then_some(()),
    )
    .unwrap();
    let producing = checker::produce_steadily(
        &broker.bootstrap,
        &scenario.source,
        scenario.records[half..].to_vec(),
        1_000_000,
    );
    let with_hostile = phase_rate(half as f64);
    producing.join().unwrap();
    println!(
        "hostile rules: {before:.0} records/s before, {with_hostile:.0} with them live ({:.0} %)",
        100.0 * with_hostile / before
    );
    let ledger = scenario.account_ignoring(broker, "-", &["hostile/"]);
    assert_eq!(ledger.total().lost, 0);
    terminate(router);
}

/// One test per scenario and broker.
macro_rules! on_both_brokers {
    ($($scenario:ident),* $(,)?) => {
        mod noida {
            $(#[test] fn $scenario() { super::$scenario(super::Kind::Noida) })*
        }
        mod nisshi {
            $(#[test] fn $scenario() { super::$scenario(super::Kind::Nisshi) })*
        }
    };
}

on_both_brokers!(
    membership_churn_with_swaps,
    hostile_rules_under_load,
    steady_with_oversized_records,
    router_killed_three_times,
    exception_topic_missing_at_start,
    target_topics_deleted_and_recreated,
    bundle_arrives_three_seconds_after_start,
    malformed_flood,
    broker_sigterm_for_ten_seconds,
    broker_sigkill_for_ten_seconds,
);

fn broker_sigterm_for_ten_seconds(kind: Kind) {
    broker_bounce(StopSignal::Term, "broker SIGTERM, 10 s down", kind);
}

fn broker_sigkill_for_ten_seconds(kind: Kind) {
    broker_bounce(StopSignal::Kill, "broker SIGKILL, 10 s down", kind);
}
