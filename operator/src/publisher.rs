//! Publishes each router pool's bundle as a ConfigMap, by server-side apply.
//!
//! What a pool carries is decided here, from every SplitRule of the pool:
//! - a valid rule whose topic exists is carried as it is now;
//! - a rule that is invalid now (or whose topic is not ready) keeps the version already in the
//!   published bundle, if any, so a typo never takes a running split offline;
//! - deleted rules leave;
//! - a rule its pool's policy refuses is treated like an invalid one.
//!
//! Only pools that exist as RouterPool objects get a bundle; the ConfigMap is owned by its
//! RouterPool, so deleting the pool garbage-collects its bundle.
//!
//! The ConfigMap is written only when the bundle's content version changes: an unchanged rule
//! set never churns the ConfigMap (or restarts anything downstream). Reconciles publish through
//! [`BundlePublisher::publish_coalesced`]: a burst of edits to one pool waits a moment and shares
//! one publication instead of each recomputing and rewriting the whole pool.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use serde_json::json;
use streamsplit_rules::crd::SplitRule;
use streamsplit_rules::{
    bundle_shards, RuleBundle, RuleDefinition, RuleError, RuleId, BUNDLE_FILE_NAME,
};
use tokio::sync::Mutex;

use crate::policy::PoolDirectory;
use crate::rollout::Rollouts;
use crate::router_pool::{RouterPool, RouterPoolStatus};

/// Field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "streamsplit-operator";
/// Label naming the pool of a bundle ConfigMap.
pub const POOL_LABEL: &str = "streamsplit.io/pool";
/// Annotation repeating the bundle version, for humans and tools.
pub const VERSION_ANNOTATION: &str = "streamsplit.io/bundle-version";
/// Largest bundle written as one file (`bundle/v1`) in the pool's ConfigMap; larger bundles are
/// sharded (`bundle/v2`), well before the apiserver's 1 MiB object limit.
pub const INLINE_BUNDLE_BYTES: usize = 512 * 1024;
/// Most shards of one pool's bundle: the hard capacity of a pool (about 16 × 700 KiB of
/// compressed rules; over 200 000 rules of typical size). The chart mounts this many.
pub const MAX_BUNDLE_SHARDS: usize = 16;

/// A bundle as it is written: one file, or a manifest and its shards.
enum Encoded {
    OneFile(String),
    Sharded(bundle_shards::ShardedBundle),
}

fn encode(bundle: &RuleBundle, shard_target: usize) -> Encoded {
    match bundle.to_json_within(INLINE_BUNDLE_BYTES) {
        Some(one_file) => Encoded::OneFile(one_file),
        None => Encoded::Sharded(bundle_shards::split_with(bundle, shard_target)),
    }
}

/// How a rule is carried by its pool's bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    /// As its current spec says.
    Current,
    /// Its previously published version (the current one is not publishable).
    Previous,
    /// Not at all: the pool's bundle is full (more than [`MAX_BUNDLE_SHARDS`] shards); the
    /// newest rules are left out.
    PoolFull,
}

/// Result of publishing a pool.
#[derive(Clone, Debug)]
pub struct Publication {
    /// Version of the pool's bundle now.
    pub version: String,
    /// Whether this call changed the ConfigMap.
    pub changed: bool,
    /// Which rules the bundle carries, and how.
    pub carried: BTreeMap<RuleId, Carried>,
}

/// Writes pool bundles.
pub struct BundlePublisher {
    client: Client,
    namespace: String,
    prefix: String,
    pools: PoolDirectory,
    lock: Mutex<()>,
    /// Validation verdict per rule uid and generation.
    validity: crate::verdicts::Verdicts,
    /// The reconciler's latest word on each rule's target topic (uid: generation, ready); rules
    /// not reconciled yet by this process fall back to their status.
    topic_ready: std::sync::Mutex<HashMap<String, (Option<i64>, bool)>>,
    /// Reconciles waiting for the next publication of each pool.
    waiting: std::sync::Mutex<HashMap<String, Vec<Waiter>>>,
    /// The last sharded bundle written per pool, so publishing does not read every shard back
    /// (shared, not copied: it holds every rule of a large pool).
    last_sharded: std::sync::Mutex<HashMap<String, Arc<RuleBundle>>>,
    /// Uncompressed bytes of rules per shard.
    shard_target: usize,
    /// Published versions in order, and the routers reported in each pool's status.
    rollouts: Arc<Rollouts>,
}

/// A reconcile waiting for its pool's next publication.
type Waiter = tokio::sync::oneshot::Sender<Shared>;

/// One publication's result, shared by every reconcile that waited for it (not copied: it
/// names every rule of the pool).
type Shared = Result<Option<Arc<Publication>>, PublishError>;

/// How long the first reconcile of a burst waits for the others before publishing for all.
const COALESCE_WINDOW: std::time::Duration = std::time::Duration::from_millis(50);

/// Publishing failed (shared by every reconcile that waited for the publication).
#[derive(Clone, Debug, thiserror::Error)]
#[error("publishing the pool bundle failed: {0}")]
pub struct PublishError(String);

/// Clears a pool's waiters if the publishing reconcile is dropped before it answers them, so
/// they publish by themselves instead of waiting forever.
struct WaitersGuard<'a> {
    publisher: &'a BundlePublisher,
    pool: &'a str,
    armed: bool,
}

impl Drop for WaitersGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.publisher.take_waiters(self.pool);
        }
    }
}

/// The identity of a SplitRule object.
pub fn rule_id(rule: &SplitRule) -> RuleId {
    RuleId::new(rule.namespace().as_deref(), rule.name_any())
}

/// Whether the rule's target topic is known to exist, from its own status.
pub fn topic_ready_in_status(rule: &SplitRule) -> bool {
    let Some(status) = &rule.status else {
        return false;
    };
    // A templated target has no single topic; its TopicReady says the template was checked.
    let topic_matches = streamsplit_rules::topic_template::is_template(&rule.spec.target_topic)
        || status
            .topic
            .as_ref()
            .is_some_and(|t| t.name == rule.spec.target_topic);
    topic_matches
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == "TopicReady" && c.status == "True")
}

impl BundlePublisher {
    /// A publisher writing into `namespace` with ConfigMap names `<prefix><pool>`, for the
    /// pools in `pools`.
    pub fn new(client: Client, namespace: String, prefix: String, pools: PoolDirectory) -> Self {
        BundlePublisher {
            client,
            namespace,
            prefix,
            pools,
            lock: Mutex::new(()),
            validity: crate::verdicts::Verdicts::default(),
            topic_ready: std::sync::Mutex::new(HashMap::new()),
            waiting: std::sync::Mutex::new(HashMap::new()),
            last_sharded: std::sync::Mutex::new(HashMap::new()),
            shard_target: bundle_shards::TARGET_RAW_SHARD_BYTES,
            rollouts: Arc::default(),
        }
    }

    /// Shares roll-out state with the router Lease watch.
    pub fn with_rollouts(mut self, rollouts: Arc<Rollouts>) -> Self {
        self.rollouts = rollouts;
        self
    }

    /// Aims at `bytes` of uncompressed rules per shard of a sharded bundle.
    pub fn with_shard_target(mut self, bytes: usize) -> Self {
        self.shard_target = bytes.max(1);
        self
    }

    /// ConfigMap name of a pool.
    pub fn configmap_name(&self, pool: &str) -> String {
        format!("{}{pool}", self.prefix)
    }

    fn api(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The bundle currently published for a pool (`None` when absent or unreadable).
    pub async fn current(&self, pool: &str) -> Result<Option<Arc<RuleBundle>>, kube::Error> {
        let Some(configmap) = self.api().get_opt(&self.configmap_name(pool)).await? else {
            return Ok(None);
        };
        let Some(text) = configmap
            .data
            .as_ref()
            .and_then(|d| d.get(BUNDLE_FILE_NAME))
        else {
            return Ok(None);
        };
        let parsed = match bundle_shards::api_version_of(text.as_bytes()).as_deref() {
            Some(bundle_shards::SHARDED_API_VERSION) => self.read_sharded(pool, text).await?,
            _ => RuleBundle::parse(text.as_bytes())
                .map(Arc::new)
                .map_err(|e| e.to_string()),
        };
        match parsed {
            Ok(bundle) => Ok(Some(bundle)),
            Err(error) => {
                tracing::warn!(pool, %error, "published bundle is unreadable; it will be replaced");
                Ok(None)
            }
        }
    }

    /// The published sharded bundle, from the last publication when its version is the
    /// manifest's, else read back from the shard ConfigMaps.
    async fn read_sharded(
        &self,
        pool: &str,
        manifest: &str,
    ) -> Result<Result<Arc<RuleBundle>, String>, kube::Error> {
        let manifest = match bundle_shards::parse_manifest(manifest.as_bytes()) {
            Ok(manifest) => manifest,
            Err(error) => return Ok(Err(error.to_string())),
        };
        if let Some(bundle) = self
            .last_sharded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(pool)
            .filter(|b| b.version == manifest.version)
        {
            return Ok(Ok(Arc::clone(bundle)));
        }
        let mut files: HashMap<String, Vec<u8>> = HashMap::new();
        for index in 0..manifest.shards.len() {
            if let Some(configmap) = self.api().get_opt(&self.shard_name(pool, index)).await? {
                for (key, value) in configmap.binary_data.unwrap_or_default() {
                    files.insert(key, value.0);
                }
            }
        }
        Ok(bundle_shards::assemble(&manifest, |file| {
            files
                .get(file)
                .cloned()
                .ok_or_else(|| std::io::ErrorKind::NotFound.into())
        })
        .map(Arc::new)
        .map_err(|e| e.to_string()))
    }

    /// ConfigMap name of shard `index` of a pool's bundle.
    pub fn shard_name(&self, pool: &str, index: usize) -> String {
        format!("{}{pool}-shard-{index}", self.prefix)
    }

    /// Pools that have a bundle ConfigMap.
    pub async fn published_pools(&self) -> Result<Vec<String>, kube::Error> {
        // Metadata only: shard ConfigMaps are large.
        let list = self
            .api()
            .list_metadata(&kube::api::ListParams::default().labels(POOL_LABEL))
            .await?;
        // Shard ConfigMaps carry the label too: one entry per pool.
        let pools: std::collections::BTreeSet<String> = list
            .items
            .iter()
            .filter_map(|cm| cm.labels().get(POOL_LABEL).cloned())
            .collect();
        Ok(pools.into_iter().collect())
    }

    /// Compiles the rule and runs its tests (off the async runtime, bounded in time), once per
    /// generation: a spec cannot change without its generation changing. Policy is not part of
    /// it; pools change without the rule changing, so it is checked afresh every time.
    pub async fn validate(&self, rule: &SplitRule) -> Result<(), RuleError> {
        let Some(uid) = rule.metadata.uid.as_deref() else {
            return crate::validation::validate(&rule.spec).await;
        };
        self.validity
            .get_or_validate(uid, rule.metadata.generation, || {
                crate::validation::validate(&rule.spec)
            })
            .await
    }

    /// See [`crate::verdicts::Verdicts::retry_timed_out`].
    pub fn retry_timed_out(&self, rule: &SplitRule) {
        if let Some(uid) = rule.metadata.uid.as_deref() {
            self.validity.retry_timed_out(uid, rule.metadata.generation);
        }
    }

    async fn is_valid(&self, rule: &SplitRule) -> bool {
        self.validate(rule).await.is_ok()
    }

    /// Records the reconciler's verdict on the target topic of a rule's current generation.
    pub fn remember_topic(&self, rule: &SplitRule, ready: bool) {
        if let Some(uid) = rule.metadata.uid.clone() {
            let mut cache = self.topic_ready.lock().unwrap_or_else(|p| p.into_inner());
            cache.insert(uid, (rule.metadata.generation, ready));
        }
    }

    fn topic_ready(&self, rule: &SplitRule) -> bool {
        let remembered = rule.metadata.uid.as_ref().and_then(|uid| {
            let cache = self.topic_ready.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(uid)
                .filter(|(generation, _)| *generation == rule.metadata.generation)
                .map(|(_, ready)| *ready)
        });
        remembered.unwrap_or_else(|| topic_ready_in_status(rule))
    }

    /// Whether the rule compiles, passes its tests, is allowed by its pool's policy and its
    /// topic is ready.
    async fn is_publishable(&self, rule: &SplitRule) -> bool {
        self.topic_ready(rule) && self.pools.check(rule).is_ok() && self.is_valid(rule).await
    }

    fn take_waiters(&self, pool: &str) -> Vec<Waiter> {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(pool)
            .unwrap_or_default()
    }

    /// Publishes `pool` for a reconcile, sharing one publication with every reconcile of the
    /// same pool that asks within [`COALESCE_WINDOW`].
    pub async fn publish_coalesced(&self, pool: &str, store: &Store<SplitRule>) -> Shared {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let leads = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            let queue = waiting.entry(pool.to_string()).or_default();
            queue.push(sender);
            queue.len() == 1
        };
        if leads {
            let mut guard = WaitersGuard {
                publisher: self,
                pool,
                armed: true,
            };
            tokio::time::sleep(COALESCE_WINDOW).await;
            // Whoever arrived while an earlier publication held the lock joins this one.
            let _serialised = self.lock.lock().await;
            let waiters = self.take_waiters(pool);
            guard.armed = false;
            let result: Shared = self
                .publish_serialised(pool, store)
                .await
                .map(|publication| publication.map(Arc::new))
                .map_err(|e| PublishError(e.to_string()));
            for waiter in waiters {
                let _ = waiter.send(result.clone());
            }
        }
        match receiver.await {
            Ok(result) => result,
            // The publishing reconcile was cancelled: publish for ourselves.
            Err(_) => self
                .publish(pool, store)
                .await
                .map(|publication| publication.map(Arc::new))
                .map_err(|e| PublishError(e.to_string())),
        }
    }

    /// Drops cached verdicts of rules that no longer exist.
    fn forget_deleted(&self, store: &Store<SplitRule>) {
        let live: std::collections::HashSet<String> = store
            .state()
            .iter()
            .filter_map(|r| r.metadata.uid.clone())
            .collect();
        self.validity.retain(&live);
        let mut topics = self.topic_ready.lock().unwrap_or_else(|p| p.into_inner());
        topics.retain(|uid, _| live.contains(uid));
    }

    /// Recomputes and, if it changed, writes the bundle of `pool`. `None` when no RouterPool of
    /// that name exists: nothing is written.
    pub async fn publish(
        &self,
        pool: &str,
        store: &Store<SplitRule>,
    ) -> Result<Option<Publication>, kube::Error> {
        let _serialised = self.lock.lock().await;
        self.publish_serialised(pool, store).await
    }

    /// [`BundlePublisher::publish`] for a caller holding `self.lock`.
    async fn publish_serialised(
        &self,
        pool: &str,
        store: &Store<SplitRule>,
    ) -> Result<Option<Publication>, kube::Error> {
        let Some(pool_object) = self.pools.get(pool) else {
            tracing::debug!(pool, "no RouterPool of that name: no bundle published");
            return Ok(None);
        };
        let current = self.current(pool).await?;
        let published: HashMap<&RuleId, &RuleDefinition> = current
            .iter()
            .flat_map(|b| b.rules.iter().map(|r| (&r.id, r)))
            .collect();
        let mut carried = BTreeMap::new();
        let rules = store.state();
        // Sized once: grown by doubling, a 50 000-rule pool's vector held 1.5× its rules twice.
        let mut definitions: Vec<RuleDefinition> = Vec::with_capacity(rules.len());
        for rule in rules {
            if rule.spec.router != pool || rule.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let id = rule_id(&rule);
            if self.is_publishable(&rule).await {
                definitions.push(RuleDefinition::from_spec(id.clone(), &rule.spec));
                carried.insert(id, Carried::Current);
            } else if let Some(previous) = published.get(&id) {
                definitions.push((*previous).clone());
                carried.insert(id, Carried::Previous);
            }
        }
        self.forget_deleted(store);
        // The published bundle is not needed past this point; a large pool's is tens of MiB.
        let current_version = current.as_ref().map(|c| c.version.clone());
        drop(published);
        drop(current);
        // Seconds of CPU for a large pool: other tasks move off this worker meanwhile.
        let (mut bundle, mut encoded) = tokio::task::block_in_place(|| {
            let bundle = RuleBundle::build(pool, definitions);
            let encoded = encode(&bundle, self.shard_target);
            (bundle, encoded)
        });
        // Over capacity: leave out the newest rules (by creation) until the rest fits.
        while let Encoded::Sharded(sharded) = &encoded {
            let shards = sharded.shards.len();
            if shards <= MAX_BUNDLE_SHARDS {
                break;
            }
            let keep = bundle.rules.len() * MAX_BUNDLE_SHARDS * 9 / (shards * 10);
            // Timestamps, not their text: RFC 3339 strings with and without fractions of a
            // second do not sort by time.
            let created: HashMap<RuleId, Option<k8s_openapi::jiff::Timestamp>> = store
                .state()
                .iter()
                .map(|r| {
                    (
                        rule_id(r),
                        r.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    )
                })
                .collect();
            let mut by_age: Vec<RuleDefinition> = bundle.rules.clone();
            by_age.sort_by_cached_key(|r| (created.get(&r.id).copied().flatten(), r.id.clone()));
            for left_out in by_age.split_off(keep) {
                carried.insert(left_out.id, Carried::PoolFull);
            }
            tracing::warn!(
                pool,
                shards,
                kept = keep,
                "pool bundle over capacity; the newest rules are left out"
            );
            bundle = RuleBundle::build(pool, by_age);
            encoded = encode(&bundle, self.shard_target);
        }
        let bundle = Arc::new(bundle);
        self.rollouts.published(pool, &bundle.version);
        if current_version.as_deref() == Some(bundle.version.as_str()) {
            self.report_pool(&pool_object, &bundle.version, bundle.rules.len())
                .await?;
            return Ok(Some(Publication {
                version: bundle.version.clone(),
                changed: false,
                carried,
            }));
        }
        let name = self.configmap_name(pool);
        let shards = match &encoded {
            Encoded::OneFile(_) => 0,
            Encoded::Sharded(sharded) => sharded.shards.len(),
        };
        let manifest = match encoded {
            Encoded::OneFile(text) => text,
            // Shards first: a router that sees the new manifest finds its shards (or waits).
            Encoded::Sharded(sharded) => {
                for (index, (file, bytes)) in sharded.shards.into_iter().enumerate() {
                    let shard = self.bundle_configmap(
                        &self.shard_name(pool, index),
                        pool,
                        &pool_object,
                        &bundle.version,
                        json!({
                            "binaryData": { file: k8s_openapi::ByteString(bytes) },
                        }),
                    );
                    self.apply_configmap(&self.shard_name(pool, index), shard)
                        .await?;
                }
                tracing::info!(
                    pool,
                    shards = sharded.manifest.shards.len(),
                    "bundle split into shards"
                );
                let text = serde_json::to_string_pretty(&sharded.manifest).unwrap_or_default();
                self.last_sharded
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(pool.to_string(), Arc::clone(&bundle));
                text
            }
        };
        let configmap = self.bundle_configmap(
            &name,
            pool,
            &pool_object,
            &bundle.version,
            json!({ "data": { BUNDLE_FILE_NAME: manifest } }),
        );
        self.apply_configmap(&name, configmap).await?;
        tracing::info!(pool, version = %bundle.version, rules = carried.len(), configmap = %name, "bundle published");
        self.delete_stale_shards(pool, shards).await?;
        self.report_pool(&pool_object, &bundle.version, bundle.rules.len())
            .await?;
        Ok(Some(Publication {
            version: bundle.version.clone(),
            changed: true,
            carried,
        }))
    }

    /// Deletes the pool's shard ConfigMaps past the first `live` ones, after the manifest that
    /// stopped naming them was written. A router still on the older manifest then misses a shard
    /// and keeps its rules until the new manifest reaches it (never half a bundle).
    async fn delete_stale_shards(&self, pool: &str, live: usize) -> Result<(), kube::Error> {
        let live_names: std::collections::HashSet<String> = (0..live)
            .map(|index| self.shard_name(pool, index))
            .collect();
        let shard_prefix = format!("{}{pool}-shard-", self.prefix);
        let list = self
            .api()
            .list_metadata(
                &kube::api::ListParams::default().labels(&format!("{POOL_LABEL}={pool}")),
            )
            .await?;
        for configmap in list.items {
            let name = configmap.name_any();
            if name.starts_with(&shard_prefix) && !live_names.contains(&name) {
                match self.api().delete(&name, &Default::default()).await {
                    Ok(_) => tracing::info!(pool, configmap = %name, "stale bundle shard deleted"),
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    }

    /// A bundle or shard ConfigMap: labelled with its pool, owned by the RouterPool (deleting
    /// the pool garbage-collects it), `content` adding `data` or `binaryData`.
    fn bundle_configmap(
        &self,
        name: &str,
        pool: &str,
        pool_object: &RouterPool,
        version: &str,
        content: serde_json::Value,
    ) -> serde_json::Value {
        let mut configmap = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {
                    POOL_LABEL: pool,
                    "app.kubernetes.io/managed-by": FIELD_MANAGER,
                    "app.kubernetes.io/part-of": "streamsplit",
                },
                "annotations": { VERSION_ANNOTATION: version },
                "ownerReferences": [{
                    "apiVersion": streamsplit_rules::spec::API_VERSION,
                    "kind": "RouterPool",
                    "name": pool,
                    "uid": pool_object.metadata.uid,
                    "controller": true,
                    "blockOwnerDeletion": false,
                }],
            },
        });
        if let (Some(target), Some(fields)) = (configmap.as_object_mut(), content.as_object()) {
            target.extend(fields.clone());
        }
        configmap
    }

    async fn apply_configmap(
        &self,
        name: &str,
        configmap: serde_json::Value,
    ) -> Result<(), kube::Error> {
        self.api()
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(configmap),
            )
            .await
            .map(drop)
    }

    /// Writes the pool's status when it differs from what is published.
    async fn report_pool(
        &self,
        pool: &RouterPool,
        version: &str,
        rules: usize,
    ) -> Result<(), kube::Error> {
        let old = pool.status.as_ref();
        let ready = crate::status::condition(
            "Ready",
            true,
            "Published",
            format!(
                "bundle {version} with {rules} rules is published in ConfigMap {}",
                self.configmap_name(&pool.name_any())
            ),
            pool.metadata.generation,
            old.map(|s| s.conditions.as_slice()),
        );
        let (routers, routers_updated) = self.rollouts.routers(&pool.name_any());
        let status = RouterPoolStatus {
            observed_generation: pool.metadata.generation,
            conditions: vec![ready],
            rules: u32::try_from(rules).unwrap_or(u32::MAX),
            bundle_version: Some(version.to_string()),
            config_map: Some(self.configmap_name(&pool.name_any())),
            routers_updated: Some(routers_updated),
            routers,
        };
        if old == Some(&status) {
            return Ok(());
        }
        let patch = json!({
            "apiVersion": streamsplit_rules::spec::API_VERSION,
            "kind": "RouterPool",
            "status": status,
        });
        Api::<RouterPool>::namespaced(self.client.clone(), &self.namespace)
            .patch_status(
                &pool.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(patch),
            )
            .await?;
        Ok(())
    }
}
