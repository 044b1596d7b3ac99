//! Wires the SplitRule controller: one watch feeds the reflector store, the controller, and the
//! pool publisher (which must also hear about deletions the controller never reconciles). A
//! second watch keeps the RouterPools: a pool change republishes bundles and re-checks every
//! rule against the new policy.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};
use streamsplit_rules::crd::SplitRule;
use streamsplit_rules::topic_template::is_template;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::http::Health;
use crate::policy::PoolDirectory;
use crate::publisher::BundlePublisher;
use crate::reconciler::{error_policy, reconcile, Context};
use crate::router_pool::RouterPool;
use crate::topic_owners::TopicOwners;
use crate::topics::TopicManager;

/// Reconcile again only when something the reconciler reads changed: the spec (generation),
/// the deletion state or the finalizers. Status writes do not trigger a reconcile.
fn spec_or_lifecycle(rule: &SplitRule) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    rule.metadata.generation.hash(&mut hasher);
    rule.metadata.deletion_timestamp.is_some().hash(&mut hasher);
    rule.finalizers().hash(&mut hasher);
    Some(hasher.finish())
}

/// Reconciles running at once.
const MAX_CONCURRENT_RECONCILES: u16 = 1024;

/// What the controller needs besides the client.
pub struct ControllerSettings {
    /// Namespace to watch (None: all).
    pub watch_namespace: Option<String>,
    /// Bundle ConfigMap namespace.
    pub namespace: String,
    /// ConfigMap name prefix.
    pub configmap_prefix: String,
    /// Topic deletion deadline.
    pub topic_deletion_timeout: Duration,
    /// Full resync period of pool bundles.
    pub resync_interval: Duration,
    /// Event reporter instance (pod name).
    pub identity: String,
    /// Uncompressed bytes of rules per bundle shard.
    pub shard_target: usize,
}

/// Where client-side `kubectl apply` keeps the object as last applied.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Runs until `shutdown` resolves.
pub async fn run(
    client: Client,
    topics: TopicManager,
    settings: ControllerSettings,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let rules: Api<SplitRule> = match &settings.watch_namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let (reader, writer) = reflector::store();
    let (pools_tx, pools_rx) = mpsc::unbounded_channel::<Option<String>>();
    let (requeue_tx, requeue_rx) = mpsc::unbounded_channel();

    let (pool_reader, pool_writer) = reflector::store::<RouterPool>();
    let pools = PoolDirectory {
        store: pool_reader.clone(),
        namespace: settings.namespace.clone(),
    };
    tokio::spawn(watch_pools(
        Api::namespaced(client.clone(), &settings.namespace),
        pool_writer,
        pools_tx.clone(),
        requeue_tx.clone(),
        reader.clone(),
    ));

    let deletions = pools_tx.clone();
    let metrics = health.metrics.clone();
    let claims = Arc::new(crate::topic_claims::TopicClaims::default());
    let claims_writer = Arc::clone(&claims);
    let stream = watcher(rules, watcher::Config::default())
        .default_backoff()
        // Nothing reads managedFields, nor the copy of the whole object that `kubectl apply`
        // (client-side, as GitOps tools do) keeps in an annotation: at 50 000 rules they would
        // be most of the store.
        .modify(|rule| {
            rule.managed_fields_mut().clear();
            rule.annotations_mut().remove(LAST_APPLIED_ANNOTATION);
        })
        .reflect(writer)
        .inspect(move |event| {
            if let Ok(event) = event {
                claims_writer.observe(event);
            }
        })
        .inspect(move |event| match event {
            // Rules deleted without a finalizer are never reconciled: republish their pool here.
            Ok(watcher::Event::Delete(rule)) => {
                metrics.forget_rule(&crate::publisher::rule_id(rule).to_string());
                let _ = deletions.send(Some(rule.spec.router.clone()));
            }
            // After (re)listing, every pool is recomputed: rules may have gone while we were away.
            Ok(watcher::Event::InitDone) => {
                let _ = deletions.send(None);
            }
            _ => {}
        })
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, Default::default());

    let rollouts = Arc::new(crate::rollout::Rollouts::default());
    let reporter = Reporter {
        controller: "streamsplit-operator".into(),
        instance: Some(settings.identity.clone()),
    };
    let context = Arc::new(Context {
        client: client.clone(),
        topics,
        publisher: BundlePublisher::new(
            client.clone(),
            settings.namespace.clone(),
            settings.configmap_prefix.clone(),
            pools.clone(),
        )
        .with_shard_target(settings.shard_target)
        .with_rollouts(Arc::clone(&rollouts)),
        pools,
        owners: TopicOwners::new(
            client.clone(),
            &settings.namespace,
            &settings.configmap_prefix,
        ),
        store: reader.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        metrics: health.metrics.clone(),
        topic_deletion_timeout: settings.topic_deletion_timeout,
        failures: Mutex::new(HashMap::new()),
        rollouts,
        held: crate::held_status::HeldStatuses::default(),
        claims,
        writes: tokio::sync::Semaphore::new(crate::reconciler::WRITES_IN_FLIGHT),
    });

    tokio::spawn(publish_pools(pools_rx, Arc::clone(&context)));
    tokio::spawn(resync(
        pools_tx,
        requeue_tx,
        Arc::clone(&context),
        settings.resync_interval,
    ));
    // Rules are judged against their pools: never before the pools are known, or every rule
    // would flap to "pool does not exist" at start-up.
    if pool_reader.wait_until_ready().await.is_err() {
        tracing::error!("the RouterPool watch ended before its first listing");
        return;
    }
    health.started.store(true, Ordering::Release);
    tokio::spawn(crate::rollout::watch_routers(
        Api::namespaced(client.clone(), &settings.namespace),
        Arc::clone(&context),
    ));

    Controller::for_stream(stream, reader)
        // Bounded: kube-runtime polls every running reconcile whenever one finishes, so 50 000
        // at once (a cold start) is quadratic; a bound also caps memory. Reconciles of one pool
        // still share publications (up to this many per publication).
        .with_config(
            kube::runtime::controller::Config::default().concurrency(MAX_CONCURRENT_RECONCILES),
        )
        .reconcile_on(UnboundedReceiverStream::new(requeue_rx))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
}

/// The periodic self-healing pass, at pool level: every pool is recomputed, and one metadata call
/// finds the rules whose ready topic went away behind the operator's back (or whose spec was never
/// reconciled); only those are requeued. A per-rule timer would cost one Kafka call per rule per
/// period (about 170 per second at 50 000 rules and 5 minutes).
async fn resync(
    pools: mpsc::UnboundedSender<Option<String>>,
    requeue: mpsc::UnboundedSender<ObjectRef<SplitRule>>,
    ctx: Arc<Context>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if pools.send(None).is_err() {
            return;
        }
        let existing = match ctx.topics.existing_topics().await {
            Ok(existing) => existing,
            Err(error) => {
                tracing::warn!(%error, "drift check: cannot list topics");
                continue;
            }
        };
        let rules = ctx.store.state();
        for rule in &rules {
            if !existing.contains(&rule.spec.target_topic) {
                ctx.topics.forget(&rule.spec.target_topic);
            }
        }
        let drifted = drifted_rules(&rules, &existing, &ctx.held);
        if !drifted.is_empty() {
            tracing::info!(rules = drifted.len(), "drift check: requeueing rules");
        }
        for rule in drifted {
            let _ = requeue.send(rule);
        }
    }
}

/// Rules to reconcile again: their status says the topic is ready but the cluster lacks it, or
/// their current generation was never observed. A rule whose status is `held` was reconciled
/// and its write waits for the routers; requeuing those made a 50 000-rule cold start reconcile
/// and write about 17 000 rules twice.
fn drifted_rules(
    rules: &[Arc<SplitRule>],
    existing: &std::collections::HashSet<String>,
    held: &crate::held_status::HeldStatuses,
) -> Vec<ObjectRef<SplitRule>> {
    rules
        .iter()
        .filter(|rule| rule.metadata.deletion_timestamp.is_none())
        .filter(|rule| {
            let unobserved = rule.status.as_ref().and_then(|s| s.observed_generation)
                != rule.metadata.generation
                && !held.holds(&ObjectRef::from_obj(&***rule));
            let topic_gone = crate::publisher::topic_ready_in_status(rule)
                && !is_template(&rule.spec.target_topic)
                && !existing.contains(&rule.spec.target_topic);
            unobserved || topic_gone
        })
        .map(|rule| ObjectRef::from_obj(&**rule))
        .collect()
}

/// Republishes pools on request; `None` means every pool (known rules and existing ConfigMaps).
async fn publish_pools(mut requests: mpsc::UnboundedReceiver<Option<String>>, ctx: Arc<Context>) {
    while let Some(first) = requests.recv().await {
        // Debounce: gather whatever else arrived meanwhile.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut wanted = vec![first];
        while let Ok(more) = requests.try_recv() {
            wanted.push(more);
        }
        let mut pools: BTreeSet<String> = wanted.iter().flatten().cloned().collect();
        if wanted.iter().any(Option::is_none) {
            pools.extend(all_pools(&ctx.store));
            match ctx.publisher.published_pools().await {
                Ok(published) => pools.extend(published),
                Err(error) => tracing::warn!(%error, "cannot list bundle ConfigMaps"),
            }
        }
        for pool in pools {
            if streamsplit_rules::pool_name::validate_pool_name(&pool).is_err() {
                continue;
            }
            match ctx.publisher.publish(&pool, &ctx.store).await {
                Ok(Some(publication)) if publication.changed => {
                    ctx.metrics.bundle_publishes.inc();
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(pool, %error, "cannot publish pool bundle"),
            }
        }
    }
}

/// Keeps the RouterPool store. When a pool's spec changes (or it comes or goes), every rule is
/// reconciled again, since any pool's topics bound every rule, and every bundle is recomputed.
async fn watch_pools(
    api: Api<RouterPool>,
    writer: reflector::store::Writer<RouterPool>,
    pools: mpsc::UnboundedSender<Option<String>>,
    requeue: mpsc::UnboundedSender<ObjectRef<SplitRule>>,
    rules: Store<SplitRule>,
) {
    let mut seen: HashMap<String, Option<i64>> = HashMap::new();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let changed = match event {
            Ok(watcher::Event::Apply(pool) | watcher::Event::InitApply(pool)) => {
                let generation = pool.metadata.generation;
                seen.insert(pool.name_any(), generation) != Some(generation)
            }
            Ok(watcher::Event::Delete(pool)) => seen.remove(&pool.name_any()).is_some(),
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(%error, "RouterPool watch failed; retrying");
                false
            }
        };
        if changed {
            let _ = pools.send(None);
            for rule in rules.state() {
                let _ = requeue.send(ObjectRef::from_obj(&*rule));
            }
        }
    }
}

fn all_pools(store: &Store<SplitRule>) -> BTreeSet<String> {
    store
        .state()
        .iter()
        .map(|r| r.spec.router.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamsplit_rules::crd::SplitRuleStatus;

    fn rule(name: &str, observed: Option<i64>) -> Arc<SplitRule> {
        let spec = serde_json::json!({"condition": "true", "targetTopic": "t", "router": "p"});
        let mut rule = SplitRule::new(name, serde_json::from_value(spec).unwrap());
        rule.metadata.namespace = Some("n".into());
        rule.metadata.generation = Some(1);
        rule.status = observed.map(|generation| SplitRuleStatus {
            observed_generation: Some(generation),
            ..SplitRuleStatus::default()
        });
        Arc::new(rule)
    }

    #[test]
    fn unobserved_rules_are_requeued_unless_their_status_is_held() {
        let held = crate::held_status::HeldStatuses::default();
        let waiting = rule("waiting", None);
        held.hold(&waiting, SplitRuleStatus::default());
        let rules = [rule("lost", None), rule("done", Some(1)), waiting];
        let drifted = drifted_rules(&rules, &Default::default(), &held);
        let names: Vec<&str> = drifted.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["lost"]);
    }
}
