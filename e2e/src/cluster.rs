//! The real kube-apiserver started by `e2e/cluster/up.sh`, kubectl, and the projection of a
//! ConfigMap into a directory (pods cannot run here, so the harness does what the kubelet would).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;

use crate::configmap_volume::ProjectedConfigMap;

/// A running control plane.
#[derive(Debug)]
pub struct Cluster {
    /// Kubeconfig with admin credentials.
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// The shared control plane, with the SplitRule and RouterPool CRDs installed. Panics with the reason when
    /// it cannot be started: no silent skips.
    pub fn shared() -> &'static Cluster {
        static CLUSTER: OnceLock<Cluster> = OnceLock::new();
        CLUSTER.get_or_init(|| match Self::start() {
            Ok(cluster) => cluster,
            Err(error) => panic!("no Kubernetes API server for the tests: {error:#}"),
        })
    }

    fn start() -> anyhow::Result<Cluster> {
        let kubeconfig = crate::run_up_script("e2e/cluster/up.sh", "KUBECONFIG")?;
        let cluster = Cluster {
            kubeconfig: PathBuf::from(kubeconfig),
        };
        for (file, name) in [
            ("splitrule.yaml", "splitrules.streamsplit.io"),
            ("routerpool.yaml", "routerpools.streamsplit.io"),
        ] {
            let crd = crate::repo_root().join("crds").join(file);
            cluster.kubectl(&["apply", "-f", &crd.display().to_string()])?;
            cluster.kubectl(&[
                "wait",
                "--for",
                "condition=established",
                &format!("crd/{name}"),
                "--timeout",
                "60s",
            ])?;
        }
        Ok(cluster)
    }

    /// Runs kubectl; returns stdout, or an error with stderr.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.kubectl_stdin(args, None)
    }

    /// Runs kubectl with `input` on stdin (e.g. `apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], input: Option<&str>) -> anyhow::Result<String> {
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run kubectl")?;
        // Fed from a thread of its own: kubectl answers while it reads, and a parent that wrote
        // everything first would deadlock once kubectl filled the stdout pipe.
        let feeder = match (input, child.stdin.take()) {
            (Some(input), Some(mut stdin)) => {
                let input = input.to_string();
                Some(std::thread::spawn(move || {
                    stdin.write_all(input.as_bytes())
                }))
            }
            _ => None,
        };
        let output = child.wait_with_output()?;
        if let Some(feeder) = feeder {
            feeder
                .join()
                .map_err(|_| anyhow::anyhow!("the kubectl stdin thread panicked"))??;
        }
        anyhow::ensure!(
            output.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `kubectl get ... -o json`, parsed; `None` when the object does not exist.
    pub fn get_json(&self, args: &[&str]) -> Option<serde_json::Value> {
        let mut full = vec!["get"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["-o", "json"]);
        self.kubectl(&full)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
    }

    /// Creates a namespace.
    pub fn create_namespace(&self, name: &str) -> anyhow::Result<()> {
        self.kubectl(&["create", "namespace", name]).map(|_| ())
    }

    /// Mirrors ConfigMap `namespace/name` and its bundle shards (`name-shard-N`) into `dir` the
    /// way the kubelet projects them into one volume (timestamped directory + atomic `..data`
    /// swap), polling every 200 ms until the returned guard drops.
    pub fn project_configmap(
        &'static self,
        namespace: &str,
        name: &str,
        dir: &Path,
    ) -> anyhow::Result<Projection> {
        let mut volume = ProjectedConfigMap::new(dir)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (namespace, name, flag) = (namespace.to_string(), name.to_string(), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            // Like the kubelet, but cheap enough for pools of many megabytes: the small manifest
            // ConfigMap is polled, and the shards are read only when it changed (the operator
            // writes shards before the manifest that names them).
            let mut seen = String::new();
            let shard_prefix = format!("{name}-shard-");
            while !flag.load(Ordering::SeqCst) {
                let manifest_version = self
                    .get_json(&["configmap", "-n", &namespace, &name])
                    .and_then(|cm| cm["metadata"]["resourceVersion"].as_str().map(String::from));
                let changed = manifest_version.as_ref().filter(|v| **v != seen);
                if let (Some(version), Some(list)) = (
                    changed,
                    changed.and_then(|_| self.get_json(&["configmap", "-n", &namespace])),
                ) {
                    let projected: Vec<&serde_json::Value> = list["items"]
                        .as_array()
                        .map(|items| {
                            items
                                .iter()
                                .filter(|cm| {
                                    cm["metadata"]["name"]
                                        .as_str()
                                        .is_some_and(|n| n == name || n.starts_with(&shard_prefix))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let files = configmap_files(&projected);
                    let refs: Vec<(&str, &[u8])> = files
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_slice()))
                        .collect();
                    if volume.publish(&refs).is_ok() {
                        seen = version.clone();
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Ok(Projection {
            stop,
            thread: Some(thread),
        })
    }
}

/// The files ConfigMaps project: `data` as text, `binaryData` decoded from base64.
fn configmap_files(configmaps: &[&serde_json::Value]) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    let mut files = Vec::new();
    for configmap in configmaps {
        for (key, value) in configmap["data"].as_object().into_iter().flatten() {
            files.push((
                key.clone(),
                value.as_str().unwrap_or_default().as_bytes().to_vec(),
            ));
        }
        for (key, value) in configmap["binaryData"].as_object().into_iter().flatten() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap_or_default())
                .unwrap_or_default();
            files.push((key.clone(), decoded));
        }
    }
    files
}

/// Stops the projection when dropped.
pub struct Projection {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Projection {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Path of a binary of this workspace (built by `cargo nextest run --workspace` or
/// `cargo test --workspace` before the tests run). Refuses a binary older than the sources it is
/// built from, so a test never silently runs yesterday's code.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join(name))
        .unwrap_or_default();
    let built = std::fs::metadata(&path).and_then(|m| m.modified());
    let Ok(built) = built else {
        panic!("{} is not built; run `cargo build --workspace` (or the whole suite with ./e2e/test.sh)", path.display());
    };
    let root = crate::repo_root();
    // A binary depends on its own crate (`streamsplit-X` lives in `X/`) and the shared rules.
    let own_crate = format!("{}/src", name.trim_start_matches("streamsplit-"));
    let newest_source = ["rules/src", own_crate.as_str()]
        .iter()
        .filter_map(|dir| newest_modification(&root.join(dir)))
        .max();
    if let Some(newest) = newest_source {
        assert!(
            built >= newest,
            "{} is older than its sources; run `cargo build --workspace` first",
            path.display()
        );
    }
    path
}

fn newest_modification(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let modified = if path.is_dir() {
            newest_modification(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(modified);
    }
    newest
}
