//! A streamsplit stack for one test: its own namespace, an operator watching it, Kafka topics,
//! and a router fed by the projected bundle ConfigMap.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use streamsplit_e2e::{
    free_port, http_get, router_run_args, sample_value, unique_name, wait_until, workspace_binary,
    Broker, ChildProcess, Cluster, Projection, TestRecord,
};

pub const POOL: &str = "default";

pub struct Stack {
    pub cluster: &'static Cluster,
    pub broker: &'static Broker,
    pub namespace: String,
    pub source: String,
    pub exceptions: String,
    pub work: tempfile::TempDir,
    pub operator: Option<Process>,
    pub router: Option<Process>,
    pub projection: Option<Projection>,
    pub group: String,
    /// Extra flags for the router `start_router` starts (Kafka security settings).
    pub router_args: Vec<String>,
}

pub struct Process {
    pub child: ChildProcess,
    pub metrics_addr: String,
}

fn log_path(prefix: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.log", unique_name(prefix)))
}

/// A RouterPool letting `tenant` write topics matching `pattern`.
pub fn router_pool_yaml(
    name: &str,
    source: &str,
    exceptions: &str,
    tenant: &str,
    pattern: &str,
) -> String {
    format!(
        "apiVersion: streamsplit.io/v1alpha1\nkind: RouterPool\nmetadata: {{name: {name}}}\nspec:\n  sourceTopics: [{source}]\n  exceptionTopic: {exceptions}\n  tenants:\n    - namespace: \"{tenant}\"\n      targetTopics: [\"{pattern}\"]\n"
    )
}

impl Stack {
    pub fn start() -> Stack {
        Self::start_on(Broker::shared())
    }

    /// A stack whose topics live on `broker`.
    pub fn start_on(broker: &'static Broker) -> Stack {
        let cluster = Cluster::shared();
        let namespace = unique_name("e2e");
        cluster.create_namespace(&namespace).unwrap();
        let [source, exceptions] = ["src", "exc"].map(unique_name);
        broker
            .create_topics(&[(&source, 2), (&exceptions, 1)])
            .unwrap();
        // The pool the test's rules use; its namespace (the test's) may write any other topic.
        cluster
            .kubectl_stdin(
                &["apply", "-n", &namespace, "-f", "-"],
                Some(&router_pool_yaml(
                    POOL,
                    &source,
                    &exceptions,
                    &namespace,
                    "*",
                )),
            )
            .unwrap();
        Stack {
            cluster,
            broker,
            namespace,
            source,
            exceptions,
            work: tempfile::tempdir().unwrap(),
            operator: None,
            router: None,
            projection: None,
            group: unique_name("group"),
            router_args: Vec::new(),
        }
    }

    /// Creates another RouterPool (its own source and exception topic names) that the test's
    /// namespace may write any topic through.
    pub fn add_pool(&self, name: &str) {
        let [source, exceptions] = ["src", "exc"].map(unique_name);
        self.apply(&router_pool_yaml(
            name,
            &source,
            &exceptions,
            &self.namespace,
            "*",
        ));
    }

    pub fn configmap_name(&self) -> String {
        format!("streamsplit-rules-{POOL}")
    }

    pub fn start_operator(&mut self) {
        let operator = self.spawn_operator("operator-under-test", &[]);
        self.operator = Some(operator);
    }

    /// Starts an operator replica (not stored in the stack) with `extra` flags.
    pub fn spawn_operator(&self, identity: &str, extra: &[&str]) -> Process {
        let mut with_identity = vec!["--identity", identity];
        with_identity.extend(extra);
        self.spawn_operator_with(&self.broker.bootstrap, &with_identity, &[])
    }

    /// Starts an operator replica on `brokers` with `extra` flags and environment.
    pub fn spawn_operator_with(
        &self,
        brokers: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Process {
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        let args: Vec<String> = [
            "--brokers",
            brokers,
            "--watch-namespace",
            &self.namespace,
            "--namespace",
            &self.namespace,
            "--default-partitions",
            "1",
            "--default-replication-factor",
            "1",
            "--topic-deletion-timeout",
            "20s",
            "--metrics-addr",
            &metrics_addr,
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
        let mut env = env.to_vec();
        env.push(("KUBECONFIG", self.cluster.kubeconfig.to_str().unwrap()));
        let mut child = ChildProcess::spawn_with_env(
            &workspace_binary("streamsplit-operator"),
            &args,
            &log_path("operator"),
            &env,
        )
        .unwrap();
        wait_until("the operator's /readyz", Duration::from_secs(30), || {
            (http_get(&metrics_addr, "/readyz").ok()?.0 == 200).then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", child.output()));
        assert!(child.is_running());
        Process {
            child,
            metrics_addr,
        }
    }

    pub fn stop_operator(&mut self) {
        let mut operator = self.operator.take().expect("operator running");
        let status = operator.child.terminate(Duration::from_secs(30)).unwrap();
        assert!(
            status.success(),
            "operator exit: {status:?}\n{}",
            operator.child.output()
        );
    }

    /// Starts a router whose config dir mirrors the pool's ConfigMap.
    pub fn start_router(&mut self) {
        let config_dir = self.work.path().join("bundle");
        self.projection = Some(
            self.cluster
                .project_configmap(&self.namespace, &self.configmap_name(), &config_dir)
                .unwrap(),
        );
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        let mut args = router_run_args(
            &self.broker.bootstrap,
            &self.source,
            &self.group,
            &self.exceptions,
            &metrics_addr,
        );
        args.extend([
            "--config-dir".to_string(),
            config_dir.display().to_string(),
            "--state-dir".to_string(),
            self.work.path().join("state").display().to_string(),
            // Fail copies to a missing topic after 1 s instead of librdkafka's 30 s.
            "--producer-property".to_string(),
            "topic.metadata.propagation.max.ms=1000".to_string(),
        ]);
        args.extend(self.router_args.iter().cloned());
        let child = ChildProcess::spawn_with_env(
            &workspace_binary("streamsplit-router"),
            &args,
            &log_path("router"),
            // For the roll-out Lease, when a test asks for it (`--rollout-lease-namespace`).
            &[("KUBECONFIG", self.cluster.kubeconfig.to_str().unwrap())],
        )
        .unwrap();
        self.router = Some(Process {
            child,
            metrics_addr,
        });
    }

    pub fn apply(&self, yaml: &str) {
        self.cluster
            .kubectl_stdin(&["apply", "-n", &self.namespace, "-f", "-"], Some(yaml))
            .unwrap();
    }

    pub fn rule(&self, name: &str) -> serde_json::Value {
        self.cluster
            .get_json(&["splitrule", "-n", &self.namespace, name])
            .unwrap_or_else(|| panic!("no SplitRule {name}"))
    }

    pub fn condition(&self, name: &str, type_: &str) -> Option<(String, String, String)> {
        let rule = self.rule(name);
        rule["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == type_)
            .map(|c| {
                (
                    c["status"].as_str().unwrap_or("").into(),
                    c["reason"].as_str().unwrap_or("").into(),
                    c["message"].as_str().unwrap_or("").into(),
                )
            })
    }

    /// Waits until the rule's Ready condition has `status` for its current generation.
    pub fn wait_ready(&self, name: &str, status: &str) -> (String, String) {
        let operator_log = || {
            self.operator
                .as_ref()
                .map(|o| o.child.output())
                .unwrap_or_default()
        };
        wait_until(
            &format!("SplitRule {name} Ready={status}"),
            Duration::from_secs(60),
            || {
                let rule = self.rule(name);
                let observed =
                    rule["status"]["observedGeneration"] == rule["metadata"]["generation"];
                let (s, reason, message) = self.condition(name, "Ready")?;
                (observed && s == status).then_some((reason, message))
            },
        )
        .unwrap_or_else(|e| {
            panic!(
                "{e}\n{}\n{}",
                serde_json::to_string_pretty(&self.rule(name)).unwrap(),
                operator_log()
            )
        })
    }

    pub fn bundle(&self) -> Option<(String, serde_json::Value)> {
        let cm =
            self.cluster
                .get_json(&["configmap", "-n", &self.namespace, &self.configmap_name()])?;
        let bundle: serde_json::Value =
            serde_json::from_str(cm["data"]["bundle.json"].as_str()?).ok()?;
        Some((
            cm["metadata"]["resourceVersion"].as_str()?.to_string(),
            bundle,
        ))
    }

    /// Waits until the router runs the given bundle version.
    pub fn wait_router_on(&self, version: &str) {
        let router = self.router.as_ref().expect("router running");
        wait_until(
            &format!("the router to run bundle {version}"),
            Duration::from_secs(30),
            || {
                let (_, text) = http_get(&router.metrics_addr, "/metrics").ok()?;
                (sample_value(
                    &text,
                    "streamsplit_config_version_info",
                    &[("version", version)],
                ) == Some(1.0))
                .then_some(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", router.child.output()));
    }

    /// Produces `{"kind": K, "n": i}` records and waits until the router committed them all.
    pub fn produce_kinds(&self, kinds: &[&str], per_kind: usize) {
        let records: Vec<TestRecord> = kinds
            .iter()
            .flat_map(|kind| {
                (0..per_kind).map(move |n| TestRecord {
                    value: format!(r#"{{"kind": "{kind}", "n": {n}}}"#).into_bytes(),
                    ..TestRecord::default()
                })
            })
            .collect();
        self.broker.produce(&self.source, &records).unwrap();
    }

    /// Waits until the router committed every source record, i.e. all their copies are acknowledged.
    pub fn wait_routed(&self) {
        let router = self.router.as_ref().expect("router running");
        self.broker
            .wait_for_commit(&self.group, &self.source, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\n{}", router.child.output()));
    }

    pub fn count(&self, topic: &str) -> i64 {
        self.broker
            .high_watermarks(topic)
            .map(|m| m.values().sum())
            .unwrap_or(-1)
    }

    /// The router's routing metrics, for failure messages.
    pub fn router_metrics(&self) -> String {
        let router = self.router.as_ref().expect("router running");
        let (_, text) = http_get(&router.metrics_addr, "/metrics").unwrap_or_default();
        text.lines()
            .filter(|l| {
                l.starts_with("streamsplit_records")
                    || l.starts_with("streamsplit_exceptions")
                    || l.starts_with("streamsplit_rule_matches")
                    || l.starts_with("streamsplit_produce")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn kinds_on(&self, topic: &str) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .broker
            .read_all(topic)
            .unwrap()
            .iter()
            .filter_map(|r| serde_json::from_slice::<serde_json::Value>(r.value.as_deref()?).ok())
            .map(|v| v["kind"].as_str().unwrap_or("").to_string())
            .collect();
        kinds.dedup();
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self
            .cluster
            .kubectl(&["delete", "namespace", &self.namespace, "--wait=false"]);
    }
}

pub fn rule_yaml(name: &str, condition: &str, topic: &str, extra: &str) -> String {
    format!("apiVersion: streamsplit.io/v1alpha1\nkind: SplitRule\nmetadata:\n  name: {name}\nspec:\n  condition: '{condition}'\n  targetTopic: {topic}\n{extra}---\n")
}
