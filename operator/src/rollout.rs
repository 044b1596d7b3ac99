//! Roll-out: which bundle each router of a pool has live, from the Leases the routers renew
//! (`streamsplit_rules::router_lease`), and for each rule whether every live router of its pool
//! runs a bundle carrying its current generation (`RolledOut`, `status.routers`).
//!
//! "Carrying the generation" is decided by publication order: a rule's `bundleVersion` is the
//! first bundle that carried its current generation, and every later bundle of the pool carries
//! it too while the rule stays `Ready`. The order is what this process published or found
//! (bounded); a router on a version it never saw counts as behind, the safe side.
//!
//! Rule statuses are refreshed here, not by reconciles: a router changing version touches no
//! topic and no bundle, and only the rules whose counts changed are written. Each write carries
//! the `resourceVersion` it was computed from, so it never overwrites a newer reconcile. The
//! statuses reconciles hold for their routers ([`crate::held_status`]) are written here too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::json;
use streamsplit_rules::crd::{RolloutStatus, SplitRule};
use streamsplit_rules::router_lease::{POOL_LABEL, VERSION_ANNOTATION};

use crate::publisher::FIELD_MANAGER;
use crate::reconciler::Context;
use crate::router_pool::{RouterPool, RouterStatus};

/// Versions remembered per pool for ordering.
const HISTORY: usize = 512;
/// How often liveness is re-evaluated without any Lease event (a silent router expires).
const TICK: Duration = Duration::from_secs(1);
/// A router's Lease expired this long ago is deleted (a crashed pod never deletes its own).
const FORGET_AFTER: SignedDuration = SignedDuration::from_hours(1);
/// Every pool's rule counts are recomputed at least this often: a safety net for a status
/// written by a reconcile that the watch cache showed only after the last refresh.
const SWEEP: Duration = Duration::from_secs(10);
/// How long a touched pool's rules keep being refreshed.
const TOUCHED_FOR: Duration = Duration::from_secs(3);
/// Rule status writes in flight at once: during a cold start most statuses are written here
/// (see [`crate::held_status`]).
const WRITES_IN_FLIGHT: usize = 64;

/// One router as its Lease reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterReport {
    /// Identity (pod name).
    pub name: String,
    /// Live bundle version; `None` while it has no rules.
    pub version: Option<String>,
    /// Reported within its Lease duration.
    pub live: bool,
}

#[derive(Debug, Default)]
struct PoolRollout {
    /// Publication order of versions.
    order: HashMap<String, u64>,
    next: u64,
    latest: Option<String>,
    routers: Vec<RouterReport>,
    /// Whether the Lease watch has looked at this pool yet (its first look is a change).
    seen: bool,
    /// When a router last changed version or liveness: routers still moving are waited for.
    changed_at: Option<std::time::Instant>,
}

impl PoolRollout {
    fn count(&self, since: Option<&str>) -> RolloutStatus {
        let live = self.routers.iter().filter(|r| r.live);
        let total = live.clone().count();
        let updated = since.map_or(0, |since| {
            // A first publication this process never saw is older than all it saw.
            let since_order = self.order.get(since).copied().unwrap_or(0);
            live.filter(|router| {
                router.version.as_deref().is_some_and(|version| {
                    version == since
                        || self
                            .order
                            .get(version)
                            .is_some_and(|order| *order >= since_order)
                })
            })
            .count()
        });
        RolloutStatus {
            updated: u32::try_from(updated).unwrap_or(u32::MAX),
            total: u32::try_from(total).unwrap_or(u32::MAX),
        }
    }

    fn router_states(&self) -> Vec<RouterStatus> {
        self.routers
            .iter()
            .map(|router| RouterStatus {
                name: router.name.clone(),
                bundle_version: router.version.clone(),
                state: if !router.live {
                    "Gone"
                } else if router.version.is_none() {
                    "NoRules"
                } else if router.version == self.latest {
                    "Current"
                } else {
                    "Behind"
                }
                .to_string(),
            })
            .collect()
    }
}

/// Roll-out state of every pool, shared by the publisher, the reconciler and the Lease watch.
#[derive(Debug, Default)]
pub struct Rollouts {
    pools: Mutex<HashMap<String, PoolRollout>>,
    /// Pools with a rule just written without a complete roll-out (a held status that timed
    /// out): their counts are refreshed on the next passes too, in case a router acknowledged
    /// before the write showed in the watch.
    touched: Mutex<HashMap<String, std::time::Instant>>,
}

impl Rollouts {
    fn with_pool<T>(&self, pool: &str, f: impl FnOnce(&mut PoolRollout) -> T) -> T {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        f(pools.entry(pool.to_string()).or_default())
    }

    /// Records that `version` is the pool's published bundle now.
    pub fn published(&self, pool: &str, version: &str) {
        self.with_pool(pool, |state| {
            state.latest = Some(version.to_string());
            if state.order.contains_key(version) {
                return;
            }
            state.next += 1;
            state.order.insert(version.to_string(), state.next);
            if state.order.len() > HISTORY {
                let oldest = state.next.saturating_sub(HISTORY as u64);
                state.order.retain(|_, order| *order > oldest);
            }
        });
    }

    /// How many live routers of `pool` run `since` or a later bundle (`since`: the first
    /// bundle carrying a rule's current generation; `None` when it is not published).
    pub fn count(&self, pool: &str, since: Option<&str>) -> RolloutStatus {
        self.with_pool(pool, |state| state.count(since))
    }

    /// [`Rollouts::count`], or `None` while the pool's routers are not known (the Lease watch
    /// has not looked yet).
    pub fn count_if_known(&self, pool: &str, since: Option<&str>) -> Option<RolloutStatus> {
        self.with_pool(pool, |state| state.seen.then(|| state.count(since)))
    }

    /// When a router of `pool` last changed version or liveness (as this process saw it).
    pub fn changed_at(&self, pool: &str) -> Option<std::time::Instant> {
        self.with_pool(pool, |state| state.changed_at)
    }

    /// Each reported router of `pool` and its state, and `current/live` routers.
    pub fn routers(&self, pool: &str) -> (Vec<RouterStatus>, String) {
        self.with_pool(pool, |state| {
            let routers = state.router_states();
            let live = routers.iter().filter(|r| r.state != "Gone").count();
            let current = routers.iter().filter(|r| r.state == "Current").count();
            (routers, format!("{current}/{live}"))
        })
    }

    /// Replaces a pool's routers; whether anything but renewal times changed.
    fn replace_routers(&self, pool: &str, routers: Vec<RouterReport>) -> bool {
        self.with_pool(pool, |state| {
            let changed = state.routers != routers || !state.seen;
            if changed {
                state.changed_at = Some(std::time::Instant::now());
            }
            state.routers = routers;
            state.seen = true;
            changed
        })
    }

    /// Asks for the pool's rule counts to be refreshed for a little while (a rule not yet rolled
    /// out was written).
    pub fn touch(&self, pool: &str) {
        let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        touched.insert(pool.to_string(), std::time::Instant::now());
    }

    /// Pools touched within [`TOUCHED_FOR`].
    fn recently_touched(&self) -> Vec<String> {
        let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        touched.retain(|_, at| at.elapsed() < TOUCHED_FOR);
        touched.keys().cloned().collect()
    }

    fn known_pools(&self) -> Vec<String> {
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.keys().cloned().collect()
    }
}

/// A router's pool and report from its Lease, judged at `now`.
pub fn report_of(lease: &Lease, now: Timestamp) -> Option<(String, RouterReport, bool)> {
    let pool = lease.labels().get(POOL_LABEL)?.clone();
    let spec = lease.spec.as_ref()?;
    let expires = spec.renew_time.as_ref().map(|renewed| {
        renewed.0 + SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)))
    });
    let live = expires.is_some_and(|expires| expires > now);
    let forgotten = expires.is_none_or(|expires| expires + FORGET_AFTER < now);
    let version = lease
        .annotations()
        .get(VERSION_ANNOTATION)
        .filter(|v| !v.is_empty())
        .cloned();
    let name = spec
        .holder_identity
        .clone()
        .unwrap_or_else(|| lease.name_any());
    Some((
        pool,
        RouterReport {
            name,
            version,
            live,
        },
        forgotten,
    ))
}

/// Watches the routers' Leases in `namespace` and keeps pools and rules up to date, until the
/// task is dropped.
pub async fn watch_routers(api: Api<Lease>, ctx: Arc<Context>) {
    let (reader, writer) = reflector::store::<Lease>();
    let changed = Arc::new(tokio::sync::Notify::new());
    // The watch runs on its own task: a pass busy writing thousands of statuses (a cold start)
    // must not leave the store behind the routers' renewals, or they would look gone and every
    // rule of their pool be rewritten twice ("no routers", then back).
    let _follow = AbortOnDrop(tokio::spawn(follow_leases(
        api.clone(),
        writer,
        Arc::clone(&changed),
    )));
    let mut ticker = tokio::time::interval(TICK);
    let mut retry: BTreeSet<String> = BTreeSet::new();
    let mut swept: HashMap<String, std::time::Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = changed.notified() => {}
            _ = ticker.tick() => {}
        }
        pass(&ctx, &api, &reader, &mut retry, &mut swept).await;
    }
}

/// Keeps `writer`'s store in step with the routers' Leases and signals every change.
async fn follow_leases(
    api: Api<Lease>,
    writer: reflector::store::Writer<Lease>,
    changed: Arc<tokio::sync::Notify>,
) {
    let stream = watcher(api, watcher::Config::default().labels(POOL_LABEL))
        .default_backoff()
        .reflect(writer)
        .touched_objects();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        if let Err(error) = event {
            tracing::warn!(%error, "router Lease watch failed; retrying");
        }
        // Stored when nobody waits: the next pass runs at once, and changes coalesce.
        changed.notify_one();
    }
}

/// Aborts a spawned task when its owner ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn pass(
    ctx: &Context,
    api: &Api<Lease>,
    leases: &Store<Lease>,
    retry: &mut BTreeSet<String>,
    swept: &mut HashMap<String, std::time::Instant>,
) {
    // Before the first listing of the Leases is complete, no pool's routers are known: judging
    // now would report "no routers" to every rule, to be corrected a moment later.
    if matches!(leases.wait_until_ready().now_or_never(), Some(Ok(()))) {
        refresh_pools(ctx, api, leases, retry, swept).await;
    }
    write_held(ctx).await;
}

/// Judges every pool's routers from their Leases, and writes the pool statuses and rule counts
/// that changed.
async fn refresh_pools(
    ctx: &Context,
    api: &Api<Lease>,
    leases: &Store<Lease>,
    retry: &mut BTreeSet<String>,
    swept: &mut HashMap<String, std::time::Instant>,
) {
    let now = Timestamp::now();
    let mut by_pool: BTreeMap<String, Vec<RouterReport>> = ctx
        .rollouts
        .known_pools()
        .into_iter()
        .map(|pool| (pool, Vec::new()))
        .collect();
    for lease in leases.state() {
        let Some((pool, report, forgotten)) = report_of(&lease, now) else {
            continue;
        };
        if forgotten {
            let _ = api
                .delete(&lease.name_any(), &DeleteParams::default())
                .await;
            continue;
        }
        by_pool.entry(pool).or_default().push(report);
    }
    let touched: BTreeSet<String> = ctx.rollouts.recently_touched().into_iter().collect();
    for (pool, mut routers) in by_pool {
        routers.sort_by(|a, b| a.name.cmp(&b.name));
        let changed = ctx.rollouts.replace_routers(&pool, routers);
        let retried = retry.remove(&pool);
        let sweep_due = swept.get(&pool).is_none_or(|at| at.elapsed() >= SWEEP);
        if !changed && !retried && !touched.contains(&pool) && !sweep_due {
            continue;
        }
        swept.insert(pool.clone(), std::time::Instant::now());
        record_metrics(ctx, &pool);
        let pool_written = write_pool(ctx, &pool).await;
        let rules_written = refresh_rules(ctx, &pool).await;
        if !(pool_written && rules_written) {
            retry.insert(pool);
        }
    }
}

/// Writes the held statuses that are due (see [`crate::held_status`]); those that fail stay held
/// and are tried again on the next pass, from the newer object.
async fn write_held(ctx: &Context) {
    let due = ctx.held.due(
        &ctx.store,
        |pool, since| ctx.rollouts.count_if_known(pool, since),
        |pool| ctx.rollouts.changed_at(pool),
        std::time::Instant::now(),
    );
    futures::stream::iter(due)
        .for_each_concurrent(WRITES_IN_FLIGHT, |due| async move {
            let result = write_rule_status(ctx, &due.rule, &due.status).await;
            if result.is_ok() && !due.rolled_out {
                // Routers may acknowledge before this status shows in the watch.
                ctx.rollouts.touch(&due.rule.spec.router);
            }
            if written(result, "SplitRule", &due.rule.name_any()) {
                ctx.held.written(&due);
            } else {
                ctx.held.not_written(due);
            }
        })
        .await;
}

fn record_metrics(ctx: &Context, pool: &str) {
    let (routers, _) = ctx.rollouts.routers(pool);
    for state in ["Current", "Behind", "NoRules", "Gone"] {
        let count = routers.iter().filter(|r| r.state == state).count();
        ctx.metrics
            .pool_routers
            .with_label_values(&[pool, state])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
    let versions: BTreeSet<&str> = routers
        .iter()
        .filter(|r| r.state != "Gone")
        .filter_map(|r| r.bundle_version.as_deref())
        .collect();
    ctx.metrics
        .pool_bundle_versions
        .with_label_values(&[pool])
        .set(i64::try_from(versions.len()).unwrap_or(i64::MAX));
}

/// Writes the routers into the pool's status; false when it must be tried again.
async fn write_pool(ctx: &Context, pool: &str) -> bool {
    let Some(object) = ctx.pools.get(pool) else {
        return true;
    };
    let mut status = object.status.clone().unwrap_or_default();
    let (routers, updated) = ctx.rollouts.routers(pool);
    if status.routers == routers && status.routers_updated.as_deref() == Some(updated.as_str()) {
        return true;
    }
    status.routers = routers;
    status.routers_updated = Some(updated);
    let patch = json!({
        "apiVersion": streamsplit_rules::spec::API_VERSION,
        "kind": "RouterPool",
        "metadata": { "resourceVersion": object.resource_version() },
        "status": status,
    });
    let result = Api::<RouterPool>::namespaced(ctx.client.clone(), &ctx.pools.namespace)
        .patch_status(
            pool,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(patch),
        )
        .await;
    written(result, "RouterPool", pool)
}

/// Writes `RolledOut` and the counts of every rule of the pool whose roll-out changed; false
/// when some write must be tried again.
async fn refresh_rules(ctx: &Context, pool: &str) -> bool {
    let changed: Vec<(Arc<SplitRule>, streamsplit_rules::crd::SplitRuleStatus)> = ctx
        .store
        .state()
        .into_iter()
        .filter(|rule| rule.spec.router == pool && rule.metadata.deletion_timestamp.is_none())
        // A held status is newer than the stored one, and is written with its counts.
        .filter(|rule| !ctx.held.holds(&reflector::ObjectRef::from_obj(&**rule)))
        .filter_map(|rule| {
            let status = rule.status.clone()?;
            let since = crate::status::published_version(&status, rule.metadata.generation)
                .map(String::from);
            let count = ctx.rollouts.count(pool, since.as_deref());
            let new = crate::status::with_rollout(
                status.clone(),
                Some(&status.conditions),
                rule.metadata.generation,
                pool,
                count,
            );
            (new != status).then_some((rule, new))
        })
        .collect();
    let results: Vec<bool> = futures::stream::iter(changed)
        .map(|(rule, status)| async move {
            let result = write_rule_status(ctx, &rule, &status).await;
            written(result, "SplitRule", &rule.name_any())
        })
        .buffer_unordered(WRITES_IN_FLIGHT)
        .collect()
        .await;
    results.into_iter().all(|ok| ok)
}

/// Writes a rule's status computed from `rule` as the watch showed it (its `resourceVersion` is
/// the precondition), within the operator's bound on writes in flight, and counts it.
async fn write_rule_status(
    ctx: &Context,
    rule: &SplitRule,
    status: &streamsplit_rules::crd::SplitRuleStatus,
) -> Result<(), kube::Error> {
    let name = rule.name_any();
    let api =
        Api::<SplitRule>::namespaced(ctx.client.clone(), &rule.namespace().unwrap_or_default());
    let _slot = ctx.writes.acquire().await;
    crate::status::write(&api, &name, status, rule.resource_version().as_deref()).await?;
    tracing::debug!(rule = %name, routers = ?status.routers, old = ?rule.status.as_ref().and_then(|s| s.routers.clone()), "roll-out status written");
    ctx.metrics
        .status_writes
        .with_label_values(&["rollout"])
        .inc();
    Ok(())
}

/// Whether a status write took; a conflict (the object changed meanwhile) is retried on the
/// next pass from the newer object.
fn written<T>(result: Result<T, kube::Error>, kind: &str, name: &str) -> bool {
    match result {
        Ok(_) => true,
        Err(kube::Error::Api(e)) if e.code == 409 => false,
        Err(kube::Error::Api(e)) if e.code == 404 => true,
        Err(error) => {
            tracing::warn!(kind, name, %error, "cannot write roll-out status");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(name: &str, version: Option<&str>, live: bool) -> RouterReport {
        RouterReport {
            name: name.into(),
            version: version.map(String::from),
            live,
        }
    }

    fn pool(routers: Vec<RouterReport>) -> Rollouts {
        let rollouts = Rollouts::default();
        for version in ["v1", "v2", "v3"] {
            rollouts.published("p", version);
        }
        rollouts.replace_routers("p", routers);
        rollouts
    }

    #[test]
    fn a_router_on_the_rules_first_bundle_or_a_later_one_counts_as_updated() {
        let rollouts = pool(vec![
            router("a", Some("v1"), true),
            router("b", Some("v2"), true),
            router("c", Some("v3"), true),
        ]);
        assert_eq!(
            rollouts.count("p", Some("v2")),
            RolloutStatus {
                updated: 2,
                total: 3
            }
        );
        assert_eq!(
            rollouts.count("p", Some("v1")),
            RolloutStatus {
                updated: 3,
                total: 3
            }
        );
        assert_eq!(
            rollouts.count("p", None),
            RolloutStatus {
                updated: 0,
                total: 3
            }
        );
    }

    #[test]
    fn gone_routers_are_not_counted_and_unknown_versions_count_as_behind() {
        let rollouts = pool(vec![
            router("a", Some("v3"), true),
            router("b", Some("v3"), false),
            router("c", Some("unknown"), true),
            router("d", None, true),
        ]);
        assert_eq!(
            rollouts.count("p", Some("v2")),
            RolloutStatus {
                updated: 1,
                total: 3
            }
        );
        // A rule first published before this process started is carried by all it knows.
        assert_eq!(
            rollouts.count("p", Some("older")),
            RolloutStatus {
                updated: 1,
                total: 3
            }
        );
        let (states, updated) = rollouts.routers("p");
        let states: Vec<&str> = states.iter().map(|s| s.state.as_str()).collect();
        assert_eq!(states, ["Current", "Gone", "Behind", "NoRules"]);
        assert_eq!(updated, "1/3");
    }

    #[test]
    fn only_version_or_liveness_changes_count_as_changes() {
        let rollouts = Rollouts::default();
        assert!(
            rollouts.replace_routers("p", vec![]),
            "the first look at a pool"
        );
        assert!(!rollouts.replace_routers("p", vec![]));
        assert!(rollouts.replace_routers("p", vec![router("a", Some("v1"), true)]));
        assert!(!rollouts.replace_routers("p", vec![router("a", Some("v1"), true)]));
        assert!(rollouts.replace_routers("p", vec![router("a", Some("v2"), true)]));
        assert!(rollouts.replace_routers("p", vec![router("a", Some("v2"), false)]));
    }
}
