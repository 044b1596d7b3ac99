//! Control-plane scale benchmark: N SplitRules in one pool, against the real apiserver and
//! broker (`e2e/cluster/up.sh`, `e2e/kafka/up.sh`), with the release operator and router.
//!
//! For each N (default 1 000, 10 000 and 50 000; `STREAMSPLIT_SCALE_RULES=1000,5000` to choose)
//! it prints: the time from a cold operator start until every rule is `Ready` and until every
//! rule is `RolledOut` on one router; the time from one edit until the pool's ConfigMap carries
//! it and until the router runs it; operator and router peak RSS; the bundle's ConfigMap bytes
//! and shard count. The rules exist before the operator starts (created through the API, timed
//! separately), so the cold start is the operator's work alone. Times per rule are compared as
//! ratios to the smallest N of the same run (linear is 1.0).
//!
//! The router's volume is projected by the bench itself, which polls the manifest every 200 ms;
//! a kubelet adds its own sync delay (up to about a minute) on top of "edit live". The broker is
//! nisshi when `STREAMSPLIT_TEST_NISSHI` is set (it idles without CPU), else the shared one.
//!
//! Run: `cargo bench -p streamsplit-operator --bench scale` (about 15 minutes for all sizes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use streamsplit_e2e::{
    free_port, http_get, repo_root, router_run_args, sample_value, unique_name, Broker,
    ChildProcess, Cluster, ProjectedConfigMap,
};
use streamsplit_rules::crd::SplitRule;

const POOL: &str = "default";
const TOPICS: usize = 50;
/// Rule creations in flight at once.
const CREATES_IN_FLIGHT: usize = 64;
/// Longest wait for the cold start.
const PHASE_DEADLINE: Duration = Duration::from_secs(900);
/// Longest wait for each step of the edit.
const EDIT_DEADLINE: Duration = Duration::from_secs(120);

/// One size's figures.
struct Row {
    rules: usize,
    create: Duration,
    ready: Option<Duration>,
    rolled_out: Option<Duration>,
    edit_published: Option<Duration>,
    edit_live: Option<Duration>,
    edit_rolled_out: Option<Duration>,
    operator_rss: u64,
    router_rss: u64,
    /// Slowest answer to a Lease GET during the cold start: how loaded the apiserver was.
    slowest_lease_get: Duration,
    /// Rule status writes of the cold start, per rule (the apiserver's write rate bounds it).
    writes_per_rule: Option<f64>,
    configmap_bytes: usize,
    shards: usize,
}

fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("STREAMSPLIT_SCALE_RULES")
        .unwrap_or_else(|_| "1000,10000,50000".into())
        .split(',')
        .map(|n| n.trim().replace('_', "").parse())
        .collect::<Result<_, _>>()
        .context("STREAMSPLIT_SCALE_RULES: comma-separated rule counts")?;
    let cluster = Cluster::shared();
    // The control plane is under test, not the broker: nisshi when it runs (it idles at no
    // CPU; noida-db takes a third of a core even idle, from the apiserver under test).
    let broker = match std::env::var("STREAMSPLIT_TEST_NISSHI") {
        Ok(_) => Broker::nisshi(),
        Err(_) => Broker::shared(),
    };
    let router = build_release("streamsplit-router")?;
    let operator = PathBuf::from(env!("CARGO_BIN_EXE_streamsplit-operator"));
    let runtime = tokio::runtime::Runtime::new()?;
    let mut rows = Vec::new();
    for rules in sizes {
        eprintln!("scale: {rules} rules");
        let row = runtime.block_on(measure(rules, cluster, broker, &operator, &router))?;
        rows.push(row);
    }
    print_table(&rows);
    Ok(())
}

/// The release router, built like the operator this bench runs (cargo builds only this
/// package's binaries for its benches).
fn build_release(name: &str) -> anyhow::Result<PathBuf> {
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args(["build", "--release", "--bin", name])
        .current_dir(repo_root())
        .status()?;
    if !status.success() {
        bail!("cargo build --release --bin {name} failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    Ok(target.join("release").join(name))
}

fn rule(namespace: &str, index: usize) -> anyhow::Result<SplitRule> {
    let level = index % 5;
    let value = serde_json::json!({
        "apiVersion": "streamsplit.io/v1alpha1",
        "kind": "SplitRule",
        "metadata": { "name": format!("app-{index}") },
        "spec": {
            "condition": format!("record.app == \"app-{index}\" && record.level >= {level}"),
            "targetTopic": format!("{namespace}.t-{}", index % TOPICS),
            "tests": [{
                "name": "its own app at its level",
                "record": { "app": format!("app-{index}"), "level": level },
                "expect": "match",
            }],
        },
    });
    Ok(serde_json::from_value(value)?)
}

async fn measure(
    rules: usize,
    cluster: &'static Cluster,
    broker: &'static Broker,
    operator_bin: &Path,
    router_bin: &Path,
) -> anyhow::Result<Row> {
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&cluster.kubeconfig)?,
            &Default::default(),
        )
        .await?,
    )?;
    let namespace = unique_name("scale");
    cluster.create_namespace(&namespace)?;
    let (source, exceptions) = (
        format!("{namespace}-source"),
        format!("{namespace}-exceptions"),
    );
    let targets: Vec<String> = (0..TOPICS).map(|i| format!("{namespace}.t-{i}")).collect();
    let mut topics: Vec<(&str, i32)> = targets.iter().map(|t| (t.as_str(), 1)).collect();
    topics.extend([(source.as_str(), 1), (exceptions.as_str(), 1)]);
    broker.create_topics(&topics)?;
    cluster.kubectl_stdin(
        &["apply", "-n", &namespace, "-f", "-"],
        Some(&format!(
            "apiVersion: streamsplit.io/v1alpha1\nkind: RouterPool\nmetadata: {{name: {POOL}}}\nspec:\n  sourceTopics: [{source}]\n  exceptionTopic: {exceptions}\n  tenants:\n    - namespace: \"*\"\n"
        )),
    )?;

    // The rules exist before the operator starts.
    let api: Api<SplitRule> = Api::namespaced(client.clone(), &namespace);
    let started = Instant::now();
    futures::stream::iter(0..rules)
        .map(|index| {
            let api = api.clone();
            let namespace = namespace.clone();
            async move {
                api.create(&PostParams::default(), &rule(&namespace, index)?)
                    .await
                    .with_context(|| format!("creating rule {index}"))
            }
        })
        .buffer_unordered(CREATES_IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    let create = started.elapsed();
    eprintln!("scale: {rules} rules created in {create:.1?}");

    let work = tempfile_dir(&namespace)?;
    let bundle_dir = work.join("bundle");
    let projection = tokio::spawn(project(
        client.clone(),
        namespace.clone(),
        bundle_dir.clone(),
    ));
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let router_metrics = format!("127.0.0.1:{}", free_port());
    let mut router_args = router_run_args(
        &broker.bootstrap,
        &source,
        &format!("{namespace}-group"),
        &exceptions,
        &router_metrics,
    );
    router_args.extend(
        [
            "--config-dir",
            &bundle_dir.display().to_string(),
            "--state-dir",
            &work.join("state").display().to_string(),
            "--rollout-lease-namespace",
            &namespace,
            "--pool",
            POOL,
            "--instance-id",
            "scale-router",
        ]
        .map(String::from),
    );
    let mut router = ChildProcess::spawn_with_env(
        router_bin,
        &router_args,
        &work.join("router.log"),
        &[("KUBECONFIG", kubeconfig.as_str())],
    )?;

    let operator_metrics = format!("127.0.0.1:{}", free_port());
    let operator_args: Vec<String> = [
        "--brokers",
        &broker.bootstrap,
        "--watch-namespace",
        &namespace,
        "--namespace",
        &namespace,
        "--default-partitions",
        "1",
        "--default-replication-factor",
        "1",
        "--metrics-addr",
        &operator_metrics,
        "--identity",
        "scale-operator",
        "--lease-duration",
        LEASE_DURATION,
    ]
    .map(String::from)
    .to_vec();
    let slowest = Arc::new(AtomicU64::new(0));
    let probe = tokio::spawn(probe_latency(
        client.clone(),
        namespace.clone(),
        Arc::clone(&slowest),
    ));
    let cold_start = Instant::now();
    let mut operator = ChildProcess::spawn_with_env(
        operator_bin,
        &operator_args,
        &work.join("operator.log"),
        &[("KUBECONFIG", kubeconfig.as_str())],
    )?;

    let (ready, rolled_out) = watch_until_all(&api, rules, cold_start, &mut operator).await;
    probe.abort();
    let slowest_lease_get = Duration::from_micros(slowest.load(Ordering::Relaxed));
    if !operator.is_running() {
        bail!(
            "the operator exited during the cold start:\n{}",
            operator.output()
        );
    }
    eprintln!(
        "scale: after the cold start, peak RSS operator {} MiB, router {} MiB",
        peak_rss_kib(operator.pid()) / 1024,
        peak_rss_kib(router.pid()) / 1024
    );
    let writes: Vec<f64> = http_get(&operator_metrics, "/metrics")
        .map(|(_, text)| {
            ["reconcile", "rollout"]
                .iter()
                .filter_map(|writer| {
                    sample_value(
                        &text,
                        "streamsplit_operator_status_writes_total",
                        &[("writer", writer)],
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let writes_per_rule = (writes.len() == 2).then(|| writes.iter().sum::<f64>() / rules as f64);
    eprintln!(
        "scale: Ready {ready:?}, RolledOut {rolled_out:?}, status writes (by reconciles, by the roll-out watch) {writes:?}"
    );

    // One edit, timed to the pool's ConfigMap, to the router and to RolledOut.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let manifest_name = format!("streamsplit-rules-{POOL}");
    let before = bundle_version(&configmaps, &manifest_name).await;
    let edited = format!("app-{}", rules - 1);
    let edit = Instant::now();
    api.patch(
        &edited,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "spec": { "condition": format!("record.app == \"app-{}\"", rules - 1), "tests": [] }
        })),
    )
    .await?;
    let mut new_version = None;
    while edit.elapsed() < EDIT_DEADLINE && new_version.is_none() {
        let now = bundle_version(&configmaps, &manifest_name).await;
        if now.is_some() && now != before {
            new_version = now;
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let edit_published = new_version.as_ref().map(|_| edit.elapsed());
    let edit_live = match &new_version {
        Some(version) => {
            poll(edit, || async {
                http_get(&router_metrics, "/metrics").is_ok_and(|(_, text)| {
                    sample_value(
                        &text,
                        "streamsplit_config_version_info",
                        &[("version", version.as_str())],
                    ) == Some(1.0)
                })
            })
            .await
        }
        None => None,
    };
    let edit_rolled_out = poll(edit, || async {
        api.get(&edited).await.is_ok_and(|rule| {
            let status = rule.status.unwrap_or_default();
            status.observed_generation == rule.metadata.generation
                && status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "RolledOut" && c.status == "True")
        })
    })
    .await;

    let (configmap_bytes, shards) = bundle_size(&configmaps).await?;
    let operator_rss = peak_rss_kib(operator.pid());
    let router_rss = peak_rss_kib(router.pid());
    operator.terminate(Duration::from_secs(30))?;
    router.terminate(Duration::from_secs(60))?;
    projection.abort();
    // Deleted in the background; the next size has its own namespace.
    let _ = cluster.kubectl(&["delete", "namespace", &namespace, "--wait=false"]);
    Ok(Row {
        rules,
        create,
        ready,
        rolled_out,
        edit_published,
        edit_live,
        edit_rolled_out,
        operator_rss,
        router_rss,
        slowest_lease_get,
        writes_per_rule,
        configmap_bytes,
        shards,
    })
}

/// Mirrors the pool's ConfigMaps (manifest and shards) into `dir` the way the kubelet does
/// (atomic `..data` swap), in-process: a kubectl per poll would take CPU from the apiserver
/// under test. The manifest is polled every 200 ms; shards are read when it changed.
async fn project(client: kube::Client, namespace: String, dir: PathBuf) -> anyhow::Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let mut volume = ProjectedConfigMap::new(&dir)?;
    let manifest = format!("streamsplit-rules-{POOL}");
    let mut seen = None;
    loop {
        let current = api
            .get_opt(&manifest)
            .await
            .ok()
            .flatten()
            .and_then(|cm| cm.metadata.resource_version);
        if current.is_some() && current != seen {
            let list = api
                .list(&ListParams::default().labels(&format!("streamsplit.io/pool={POOL}")))
                .await?;
            let mut files: Vec<(String, Vec<u8>)> = Vec::new();
            for configmap in list.items {
                for (key, value) in configmap.data.unwrap_or_default() {
                    files.push((key, value.into_bytes()));
                }
                for (key, value) in configmap.binary_data.unwrap_or_default() {
                    files.push((key, value.0));
                }
            }
            let refs: Vec<(&str, &[u8])> = files
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            volume.publish(&refs)?;
            seen = current;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Lease duration given to the operator. On this 2-core machine, with the apiserver busy with
/// a 50 000-rule cold start, the default 15 s lease (10 s renew deadline) was lost mid-start in
/// two runs; the slowest-GET column shows how slow the apiserver gets.
const LEASE_DURATION: &str = "60s";

/// Times a GET of the operator's Lease every 500 ms (a fresh client: its own connection),
/// keeping the slowest answer in microseconds.
async fn probe_latency(client: kube::Client, namespace: String, slowest: Arc<AtomicU64>) {
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client, &namespace);
    loop {
        let asked = Instant::now();
        let _ = leases.get_opt("streamsplit-operator").await;
        let took = u64::try_from(asked.elapsed().as_micros()).unwrap_or(u64::MAX);
        slowest.fetch_max(took, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn tempfile_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join("streamsplit-scale").join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Follows every rule's status from `since` until all are Ready, then all RolledOut, for their
/// current generation; the times when each count was complete.
async fn watch_until_all(
    api: &Api<SplitRule>,
    rules: usize,
    since: Instant,
    operator: &mut ChildProcess,
) -> (Option<Duration>, Option<Duration>) {
    let mut state: HashMap<String, (bool, bool)> = HashMap::new();
    let (mut ready_at, mut rolled_at) = (None, None);
    let events = watcher(api.clone(), watcher::Config::default().page_size(2000));
    futures::pin_mut!(events);
    let deadline = tokio::time::sleep(PHASE_DEADLINE);
    tokio::pin!(deadline);
    let mut alive = tokio::time::interval(Duration::from_secs(2));
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = alive.tick() => {
                if operator.is_running() {
                    continue;
                }
                break;
            }
            _ = &mut deadline => break,
        };
        let objects = match event {
            Some(Ok(watcher::Event::Apply(rule) | watcher::Event::InitApply(rule))) => vec![rule],
            Some(Ok(_)) => vec![],
            Some(Err(error)) => {
                eprintln!("scale: watch error {error}");
                vec![]
            }
            None => break,
        };
        for rule in objects {
            let status = rule.status.clone().unwrap_or_default();
            let current = status.observed_generation == rule.metadata.generation;
            let is_true = |type_: &str| {
                current
                    && status
                        .conditions
                        .iter()
                        .any(|c| c.type_ == type_ && c.status == "True")
            };
            let name = rule.metadata.name.clone().unwrap_or_default();
            state.insert(name, (is_true("Ready"), is_true("RolledOut")));
        }
        if ready_at.is_none() && state.values().filter(|s| s.0).count() == rules {
            ready_at = Some(since.elapsed());
        }
        if rolled_at.is_none() && state.values().filter(|s| s.1).count() == rules {
            rolled_at = Some(since.elapsed());
            break;
        }
    }
    (ready_at, rolled_at)
}

/// Polls `check` every 50 ms until it holds; the time since `since`, or `None` past the deadline.
async fn poll<F, Fut>(since: Instant, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while since.elapsed() < EDIT_DEADLINE {
        if check().await {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn bundle_version(configmaps: &Api<ConfigMap>, name: &str) -> Option<String> {
    let configmap = configmaps.get_opt(name).await.ok()??;
    configmap
        .metadata
        .annotations?
        .get("streamsplit.io/bundle-version")
        .cloned()
}

/// Bytes of the pool's bundle ConfigMaps (manifest and shards) and the number of shards.
async fn bundle_size(configmaps: &Api<ConfigMap>) -> anyhow::Result<(usize, usize)> {
    let list = configmaps
        .list(&ListParams::default().labels(&format!("streamsplit.io/pool={POOL}")))
        .await?;
    let mut bytes = 0;
    let mut shards = 0;
    for configmap in &list.items {
        let data: usize = configmap.data.iter().flatten().map(|(_, v)| v.len()).sum();
        let binary: usize = configmap
            .binary_data
            .iter()
            .flatten()
            .map(|(_, v)| v.0.len())
            .sum();
        bytes += data + binary;
        shards += usize::from(binary > 0);
    }
    Ok((bytes, shards))
}

/// Peak resident set (VmHWM) of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or("timeout".into(), |d| format!("{:.1}", d.as_secs_f64()))
}

fn print_table(rows: &[Row]) {
    let per_rule = |row: &Row| row.ready.map(|d| d.as_secs_f64() / row.rules as f64);
    let baseline = rows.first().and_then(per_rule);
    println!("\n| rules | created in (s) | all Ready (s) | all RolledOut (s) | Ready time per rule vs first row | edit in ConfigMap (s) | edit live on router (s) | edit RolledOut (s) | operator peak RSS (MiB) | router peak RSS (MiB) | slowest Lease GET (s) | status writes per rule | bundle ConfigMap bytes | shards |");
    println!(
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for row in rows {
        let ratio = match (per_rule(row), baseline) {
            (Some(mine), Some(base)) if base > 0.0 => format!("{:.2}×", mine / base),
            _ => "-".into(),
        };
        println!(
            "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} |",
            row.rules,
            row.create.as_secs_f64(),
            seconds(row.ready),
            seconds(row.rolled_out),
            ratio,
            seconds(row.edit_published),
            seconds(row.edit_live),
            seconds(row.edit_rolled_out),
            row.operator_rss / 1024,
            row.router_rss / 1024,
            row.slowest_lease_get.as_secs_f64(),
            row.writes_per_rule
                .map_or("-".into(), |w| format!("{w:.2}")),
            row.configmap_bytes,
            row.shards,
        );
    }
}
