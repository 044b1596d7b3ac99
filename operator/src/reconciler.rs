//! Reconciles one SplitRule: validate, ensure its topic, publish its pool's bundle, report.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use streamsplit_rules::crd::{SplitRule, SplitRuleStatus};
use streamsplit_rules::topic_pattern::pattern_matches;
use streamsplit_rules::topic_template::is_template;
use streamsplit_rules::{DeletionPolicy, RuleError, RuleId, TopicSpec};
use thiserror::Error;

use crate::metrics::Metrics;
use crate::policy::PoolDirectory;
use crate::publisher::{rule_id, BundlePublisher};
use crate::status::{desired_status, TopicVerdict, Verdict};
use crate::topic_owners::{TopicOwner, TopicOwners};
use crate::topics::{TopicChange, TopicManager};

/// Finalizer added to rules whose topic is deleted with them.
pub const FINALIZER: &str = "streamsplit.io/topic-cleanup";

/// Operator writes in flight at once (see [`Context::writes`]).
pub const WRITES_IN_FLIGHT: usize = 128;
/// Re-check interval while Kafka reports errors for the rule's topic.
const KAFKA_RETRY: Duration = Duration::from_secs(15);
/// Re-validation interval of a rule whose validation timed out (see
/// [`BundlePublisher::retry_timed_out`]): rare enough that a rule which really is too slow costs
/// little, soon enough that one unlucky moment does not keep a rule out of its pool for long.
const TIMEOUT_RETRY: Duration = Duration::from_secs(60);
/// Retry interval of a publishable rule that its pool's publication did not carry: the next
/// publication must, and a rule must never stay `NotPublished` waiting for an edit.
const NOT_CARRIED_RETRY: Duration = Duration::from_secs(5);

/// Why a reconcile failed; it is retried with backoff.
#[derive(Debug, Error)]
pub enum ReconcileError {
    /// The Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Deleting the topic failed and the deadline to keep trying has not passed.
    #[error("topic deletion: {0}")]
    TopicDeletion(crate::topics::TopicError),
    /// The finalizer helper failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<ReconcileError>>),
    /// The pool's bundle could not be published.
    #[error(transparent)]
    Publish(#[from] crate::publisher::PublishError),
}

impl ReconcileError {
    /// Metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::Kube(_) => "KubeApi",
            ReconcileError::TopicDeletion(_) => "TopicDeletion",
            ReconcileError::Finalizer(_) => "Finalizer",
            ReconcileError::Publish(_) => "Publish",
        }
    }
}

/// Shared state of all reconciles.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Kafka topics.
    pub topics: TopicManager,
    /// Pool bundles.
    pub publisher: BundlePublisher,
    /// RouterPools and their policy.
    pub pools: PoolDirectory,
    /// Which topics the operator created, for which rule.
    pub owners: TopicOwners,
    /// All SplitRules, as watched.
    pub store: Store<SplitRule>,
    /// Kubernetes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Metrics,
    /// How long a `Delete`-policy rule waits for Kafka before its finalizer is released anyway.
    pub topic_deletion_timeout: Duration,
    /// Bounds the operator's own writes in flight (rule statuses, Events), so that a cold start
    /// with many rules queues them here instead of on the API connection, ahead of everything.
    pub writes: tokio::sync::Semaphore,
    /// Which rules claim each target topic.
    pub claims: Arc<crate::topic_claims::TopicClaims>,
    /// Which bundle each router runs, per pool.
    pub rollouts: Arc<crate::rollout::Rollouts>,
    /// Statuses waiting for the routers to run the rule's bundle.
    pub held: crate::held_status::HeldStatuses,
    /// Consecutive failures per rule, for backoff.
    pub failures: Mutex<HashMap<ObjectRef<SplitRule>, u32>>,
}

impl Context {
    async fn event(&self, rule: &SplitRule, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        let _slot = self.writes.acquire().await;
        if let Err(error) = self.recorder.publish(&event, &rule.object_ref(&())).await {
            tracing::warn!(%error, reason, "cannot publish event");
        }
    }
}

/// The verdict on a templated target: how many existing topics its pattern matches, or that
/// nothing is checked while the rule is invalid.
async fn templated_verdict(
    ctx: &Context,
    rule: &SplitRule,
    validity: &Result<(), RuleError>,
) -> TopicVerdict {
    let (Ok(()), Some(pattern)) = (validity, rule.spec.target_topic_pattern.as_deref()) else {
        return TopicVerdict::TemplateNotChecked;
    };
    let existing = match ctx.topics.existing_topics().await {
        Ok(topics) => Some(
            topics
                .iter()
                .filter(|t| pattern_matches(pattern, t))
                .count(),
        ),
        Err(error) => {
            tracing::warn!(%error, "cannot list topics matching a templated target");
            None
        }
    };
    TopicVerdict::Templated {
        pattern: pattern.to_string(),
        existing,
    }
}

fn deletion_policy(rule: &SplitRule) -> DeletionPolicy {
    rule.spec
        .topic
        .as_ref()
        .map(|t| t.deletion_policy)
        .unwrap_or_default()
}

/// Whether two rules ask for the same topic settings (the deletion policy aside), without
/// cloning either.
fn same_topic_settings(a: &SplitRule, b: &SplitRule) -> bool {
    match (&a.spec.topic, &b.spec.topic) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            x.partitions == y.partitions
                && x.replication_factor == y.replication_factor
                && x.config == y.config
        }
        (Some(only), None) | (None, Some(only)) => topic_settings_are_default(only),
    }
}

fn topic_settings_are_default(spec: &TopicSpec) -> bool {
    spec.partitions.is_none() && spec.replication_factor.is_none() && spec.config.is_empty()
}

/// The older rule (by creation time, then identity) that claims the same topic with different
/// settings, if any. Looks only at the rules of that topic (from the claims index).
fn conflicting_owner(ctx: &Context, rule: &SplitRule) -> Option<RuleId> {
    let key = |r: &SplitRule| {
        (
            r.metadata.creation_timestamp.clone().map(|t| t.0),
            rule_id(r),
        )
    };
    let mine = key(rule);
    ctx.claims
        .differing_claimants(&rule.spec.target_topic, rule)
        .iter()
        .filter_map(|claimant| ctx.store.get(claimant))
        .filter(|other| {
            other.spec.target_topic == rule.spec.target_topic
                && other.metadata.deletion_timestamp.is_none()
                && !same_topic_settings(other, rule)
        })
        .map(|other| key(&other))
        .filter(|other| other.1 != mine.1 && *other < mine)
        .min()
        .map(|(_, id)| id)
}

/// Entry point called by the controller.
pub async fn reconcile(rule: Arc<SplitRule>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let _in_flight = InFlight::enter(&ctx.metrics.reconciles_in_flight);
    let namespace = rule.namespace().unwrap_or_else(|| "default".into());
    let api: Api<SplitRule> = Api::namespaced(ctx.client.clone(), &namespace);
    let uses_finalizer = deletion_policy(&rule) == DeletionPolicy::Delete
        || rule.finalizers().iter().any(|f| f == FINALIZER);
    let result = if uses_finalizer {
        finalizer(&api, FINALIZER, rule, |event| async {
            match event {
                FinalizerEvent::Apply(rule) => apply(rule, &ctx, &api).await,
                FinalizerEvent::Cleanup(rule) => cleanup(rule, &ctx).await,
            }
        })
        .await
        .map_err(|e| ReconcileError::Finalizer(Box::new(e)))
    } else {
        apply(rule, &ctx, &api).await
    };
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    let label = if result.is_ok() { "success" } else { "error" };
    ctx.metrics.reconciles.with_label_values(&[label]).inc();
    result
}

/// Counts a reconcile in `streamsplit_operator_reconciles_in_flight` while it runs, also when
/// it is cancelled at shutdown.
struct InFlight<'a>(&'a prometheus::IntGauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Backoff for failed reconciles: 1 s doubling to 5 min.
pub fn error_policy(rule: Arc<SplitRule>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    ctx.metrics
        .reconcile_errors
        .with_label_values(&[error.reason()])
        .inc();
    let mut failures = ctx.failures.lock().unwrap_or_else(|p| p.into_inner());
    let attempts = failures.entry(ObjectRef::from_obj(&*rule)).or_insert(0);
    *attempts = attempts.saturating_add(1);
    let delay = Duration::from_secs(1u64 << (*attempts).min(8)).min(Duration::from_secs(300));
    tracing::warn!(rule = %rule_id(&rule), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn apply(
    rule: Arc<SplitRule>,
    ctx: &Context,
    api: &Api<SplitRule>,
) -> Result<Action, ReconcileError> {
    let id = rule_id(&rule);
    ctx.publisher.retry_timed_out(&rule);
    let validity = ctx
        .publisher
        .validate(&rule)
        .await
        .and_then(|()| ctx.pools.check(&rule));

    let topic = if matches!(validity, Err(RuleError::InvalidTopic(_))) {
        TopicVerdict::InvalidName
    } else if matches!(validity, Err(RuleError::PolicyViolation(_))) {
        TopicVerdict::NotAttempted
    } else if is_template(&rule.spec.target_topic) {
        // Never a topic named after the template: the router picks existing topics per record.
        templated_verdict(ctx, &rule, &validity).await
    } else if let Some(winner) = conflicting_owner(ctx, &rule) {
        TopicVerdict::Conflict { winner }
    } else {
        let may_change_existing = may_change_existing_topic(ctx, &rule).await?;
        match ctx
            .topics
            .ensure(
                &rule.spec.target_topic,
                rule.spec.topic.as_ref(),
                may_change_existing,
            )
            .await
        {
            Ok((partitions, change)) => {
                match change {
                    TopicChange::Created => {
                        // After creation: if this write fails the topic counts as adopted
                        // (never deleted), the safe side.
                        ctx.owners
                            .record(&rule.spec.target_topic, &owner_of(&rule))
                            .await?;
                        ctx.event(
                            &rule,
                            EventType::Normal,
                            "TopicCreated",
                            format!(
                                "created topic {} with {partitions} partitions",
                                rule.spec.target_topic
                            ),
                        )
                        .await
                    }
                    TopicChange::Grown => {
                        ctx.event(
                            &rule,
                            EventType::Normal,
                            "PartitionsIncreased",
                            format!(
                                "topic {} now has {partitions} partitions",
                                rule.spec.target_topic
                            ),
                        )
                        .await
                    }
                    TopicChange::Unchanged => {}
                }
                TopicVerdict::Ready { partitions }
            }
            Err(error) => TopicVerdict::Failed(error),
        }
    };

    ctx.publisher.remember_topic(&rule, topic.is_ready());
    let publication = if matches!(validity, Err(RuleError::InvalidRouter(_))) {
        None
    } else {
        let publication = ctx
            .publisher
            .publish_coalesced(&rule.spec.router, &ctx.store)
            .await?;
        if publication.as_ref().is_some_and(|p| p.changed) {
            ctx.metrics.bundle_publishes.inc();
        }
        publication
    };
    // A rule with no status yet was never published anywhere: nothing to leave.
    let spec_changed = rule.status.as_ref().is_some_and(|s| {
        s.observed_generation.is_some() && s.observed_generation != rule.metadata.generation
    });
    if spec_changed {
        leave_other_pools(ctx, &rule.spec.router, &id).await?;
    }
    let carried = publication
        .as_ref()
        .and_then(|p| p.carried.get(&id).copied());
    let bundle_version = publication
        .as_ref()
        .map(|p| first_published_in(&rule, carried, &p.version));
    let verdict = Verdict {
        validity: &validity,
        topic: &topic,
        carried,
        bundle_version: bundle_version.as_deref(),
        pool: &rule.spec.router,
        target_topic: &rule.spec.target_topic,
    };
    let status = desired_status(rule.metadata.generation, rule.status.as_ref(), &verdict);
    let since =
        crate::status::published_version(&status, rule.metadata.generation).map(String::from);
    let count = ctx.rollouts.count(&rule.spec.router, since.as_deref());
    let status = crate::status::with_rollout(
        status,
        rule.status.as_ref().map(|s| s.conditions.as_slice()),
        rule.metadata.generation,
        &rule.spec.router,
        count,
    );
    report_transitions(ctx, &rule, rule.status.as_ref(), &status).await;
    if let Some(ready) = status.conditions.iter().find(|c| c.type_ == "Ready") {
        ctx.metrics
            .set_rule_ready(&id.to_string(), ready.status == "True", &ready.reason);
    }
    if rule.status.as_ref() == Some(&status) {
        ctx.held.release(&rule);
    } else if crate::held_status::worth_holding(
        since.as_deref(),
        ctx.rollouts
            .count_if_known(&rule.spec.router, since.as_deref()),
    ) {
        // Written by the roll-out watch once the routers run it: one write, not two.
        ctx.held.hold(&rule, status);
    } else {
        ctx.held.release(&rule);
        let _slot = ctx.writes.acquire().await;
        crate::status::write(api, &rule.name_any(), &status, None).await?;
        ctx.metrics
            .status_writes
            .with_label_values(&["reconcile"])
            .inc();
    }
    if deletion_policy(&rule) == DeletionPolicy::Retain
        && rule.finalizers().iter().any(|f| f == FINALIZER)
        && rule.metadata.deletion_timestamp.is_none()
    {
        remove_finalizer(api, &rule).await?;
    }
    ctx.failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&ObjectRef::from_obj(&*rule));
    // Healthy rules are not requeued one by one: the controller's periodic drift check looks at
    // every topic in one call and requeues only the rules whose topic went away.
    let not_carried = validity.is_ok()
        && topic.is_ready()
        && publication.is_some()
        && !matches!(
            carried,
            Some(crate::publisher::Carried::Current | crate::publisher::Carried::PoolFull)
        );
    if not_carried {
        tracing::info!(rule = %id, retry_in = ?NOT_CARRIED_RETRY, "publishable rule not in its pool's publication; trying again");
    }
    Ok(match (&topic, &validity) {
        (TopicVerdict::Failed(_), _) => Action::requeue(KAFKA_RETRY),
        (_, Err(RuleError::Timeout(_))) => Action::requeue(TIMEOUT_RETRY),
        _ if not_carried => Action::requeue(NOT_CARRIED_RETRY),
        _ => Action::await_change(),
    })
}

/// A rule whose `spec.router` changed must leave its old pool now, not at the next resync:
/// meanwhile both pools would copy its records (duplicates). Checked only when the spec changed.
async fn leave_other_pools(ctx: &Context, pool: &str, id: &RuleId) -> Result<(), ReconcileError> {
    for other in ctx.publisher.published_pools().await? {
        if other == pool {
            continue;
        }
        let carries = ctx
            .publisher
            .current(&other)
            .await?
            .is_some_and(|b| b.rules.iter().any(|r| r.id == *id));
        if carries {
            let publication = ctx.publisher.publish_coalesced(&other, &ctx.store).await?;
            if publication.is_some_and(|p| p.changed) {
                ctx.metrics.bundle_publishes.inc();
            }
        }
    }
    Ok(())
}

/// The bundle that first published the rule's current generation: kept from its status while
/// the rule stays published unchanged, so an edit of another rule of the pool (a new bundle)
/// never rewrites this rule's status. Work stays proportional to the change.
fn first_published_in(
    rule: &SplitRule,
    carried: Option<crate::publisher::Carried>,
    now: &str,
) -> String {
    let kept = rule.status.as_ref().filter(|status| {
        carried == Some(crate::publisher::Carried::Current)
            && status.observed_generation == rule.metadata.generation
            && status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    });
    kept.and_then(|status| status.bundle_version.clone())
        .unwrap_or_else(|| now.to_string())
}

/// The ledger entry naming `rule` as a topic's creator.
fn owner_of(rule: &SplitRule) -> TopicOwner {
    TopicOwner {
        rule: rule_id(rule).to_string(),
        uid: rule.metadata.uid.clone().unwrap_or_default(),
    }
}

/// Whether the rule may grow its existing target topic: the operator created it for this very
/// rule, or the pool allows changing adopted topics. Looked up only when partitions are asked.
async fn may_change_existing_topic(ctx: &Context, rule: &SplitRule) -> Result<bool, kube::Error> {
    if rule
        .spec
        .topic
        .as_ref()
        .and_then(|t| t.partitions)
        .is_none()
    {
        return Ok(false);
    }
    if ctx
        .pools
        .get(&rule.spec.router)
        .is_some_and(|p| p.spec.allow_adopted_topic_changes)
    {
        return Ok(true);
    }
    let owner = ctx.owners.owner(&rule.spec.target_topic).await?;
    Ok(owner.is_some_and(|o| Some(&o.uid) == rule.metadata.uid.as_ref()))
}

/// The policy changed from `Delete` to `Retain`: the finalizer is no longer needed.
async fn remove_finalizer(api: &Api<SplitRule>, rule: &SplitRule) -> Result<(), kube::Error> {
    let remaining: Vec<&String> = rule
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .collect();
    let patch = json!({ "metadata": { "finalizers": remaining, "resourceVersion": rule.resource_version() } });
    api.patch(
        &rule.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await?;
    Ok(())
}

fn condition_of<'a>(
    status: Option<&'a SplitRuleStatus>,
    type_: &str,
) -> Option<&'a streamsplit_rules::crd::RuleCondition> {
    status.and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
}

/// Kubernetes Events for condition transitions (not for every reconcile).
async fn report_transitions(
    ctx: &Context,
    rule: &SplitRule,
    old: Option<&SplitRuleStatus>,
    new: &SplitRuleStatus,
) {
    for type_ in ["Valid", "TopicReady"] {
        let (before, after) = (condition_of(old, type_), condition_of(Some(new), type_));
        if let Some(after) = after {
            let changed =
                before.is_none_or(|b| b.status != after.status || b.reason != after.reason);
            if changed && after.status == "False" {
                ctx.event(
                    rule,
                    EventType::Warning,
                    &after.reason,
                    after.message.clone(),
                )
                .await;
            }
        }
    }
    let (before, after) = (condition_of(old, "Ready"), condition_of(Some(new), "Ready"));
    // A rule that was never reported before (just created, or the first reconcile after a bulk
    // import) gets no Event for being published: its status says so, and 50 000 Events would
    // double the API writes of a cold start. Edits and recoveries get one.
    if let Some(after) = after.filter(|a| a.status == "True") {
        let became_ready = before.is_some_and(|b| b.status != "True");
        let own_change_published = old
            .and_then(|s| s.observed_generation)
            .is_some_and(|observed| Some(observed) != new.observed_generation);
        if became_ready || own_change_published {
            ctx.event(rule, EventType::Normal, "Published", after.message.clone())
                .await;
        }
    }
}

/// A rule with the `Delete` policy is going away: take it out of its bundle, then delete its
/// topic unless another rule still uses it. Kafka being unreachable never blocks the deletion
/// for longer than the configured timeout.
async fn cleanup(rule: Arc<SplitRule>, ctx: &Context) -> Result<Action, ReconcileError> {
    ctx.metrics.forget_rule(&rule_id(&rule).to_string());
    let publication = ctx
        .publisher
        .publish_coalesced(&rule.spec.router, &ctx.store)
        .await?;
    if publication.is_some_and(|p| p.changed) {
        ctx.metrics.bundle_publishes.inc();
    }
    if deletion_policy(&rule) != DeletionPolicy::Delete {
        return Ok(Action::await_change());
    }
    let topic = &rule.spec.target_topic;
    let users: Vec<RuleId> = ctx
        .store
        .state()
        .iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none() && r.spec.target_topic == *topic)
        .map(|r| rule_id(r))
        .collect();
    if let Some(user) = users.first() {
        ctx.event(
            &rule,
            EventType::Normal,
            "TopicKept",
            format!("topic {topic} is still used by {user}; not deleting it"),
        )
        .await;
        return Ok(Action::await_change());
    }
    let owner = ctx.owners.owner(topic).await?;
    if owner.as_ref().map(|o| &o.uid) != rule.metadata.uid.as_ref() {
        let why = match owner {
            Some(owner) => format!("the operator created it for another rule ({})", owner.rule),
            None => "the operator did not create it (it was adopted)".to_string(),
        };
        ctx.event(
            &rule,
            EventType::Warning,
            "TopicKept",
            format!("topic {topic} is kept although deletionPolicy is Delete: {why}; only topics created for this very rule are deleted"),
        )
        .await;
        return Ok(Action::await_change());
    }
    match ctx.topics.delete(topic).await {
        Ok(()) => {
            ctx.owners.forget(topic).await?;
            ctx.event(
                &rule,
                EventType::Normal,
                "TopicDeleted",
                format!("deleted topic {topic}"),
            )
            .await;
            Ok(Action::await_change())
        }
        Err(error) => {
            let deleting_for = rule
                .metadata
                .deletion_timestamp
                .as_ref()
                .and_then(|t| SystemTime::now().duration_since(SystemTime::from(t.0)).ok())
                .unwrap_or_default();
            if deleting_for >= ctx.topic_deletion_timeout {
                ctx.event(&rule, EventType::Warning, "TopicDeletionFailed", format!("could not delete topic {topic} within {:?}: {error}; releasing the rule, delete the topic by hand", ctx.topic_deletion_timeout)).await;
                Ok(Action::await_change())
            } else {
                Err(ReconcileError::TopicDeletion(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(topic: serde_json::Value) -> SplitRule {
        let spec = serde_json::json!({"condition": "true", "targetTopic": "t", "topic": topic});
        SplitRule::new("r", serde_json::from_value(spec).unwrap())
    }

    #[test]
    fn topic_settings_compare_without_the_deletion_policy_and_absent_means_default() {
        let none = rule(serde_json::Value::Null);
        let empty = rule(serde_json::json!({}));
        let delete = rule(serde_json::json!({"deletionPolicy": "Delete"}));
        let three = rule(serde_json::json!({"partitions": 3}));
        let three_delete = rule(serde_json::json!({"partitions": 3, "deletionPolicy": "Delete"}));
        assert!(same_topic_settings(&none, &empty));
        assert!(same_topic_settings(&none, &delete));
        assert!(same_topic_settings(&three, &three_delete));
        assert!(!same_topic_settings(&none, &three));
        assert!(!same_topic_settings(&three, &none));
        let compacted = rule(serde_json::json!({"config": {"cleanup.policy": "compact"}}));
        assert!(!same_topic_settings(&compacted, &empty));
    }
}
