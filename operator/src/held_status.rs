//! Statuses of newly published rule generations, held back until the routers of the rule's pool
//! run a bundle carrying it (or they stopped making progress, see [`HOLD_WITHOUT_PROGRESS`]),
//! then written once: `Ready` and `RolledOut` together, instead of "rolling out" followed by
//! "rolled out".
//!
//! During a cold start the routers trail the publications by a second or two, so writing at once
//! meant two status writes for almost every rule; the apiserver's write rate is what bounds the
//! time until every rule of a large pool is reported. Reconciles hand their status over here and
//! end at once; the roll-out watch ([`crate::rollout`]) writes what is due on each pass.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::reflector::{ObjectRef, Store};
use streamsplit_rules::crd::{RolloutStatus, SplitRule, SplitRuleStatus};

use crate::status::{published_version, with_rollout};

/// How long a status is held while no router of its pool changes version: a stuck router
/// delays its rules' reports by this much. Routers that keep swapping (a large pool's cold
/// start, each swap compiling tens of thousands of rules) are waited for, up to [`HOLD_LIMIT`].
pub const HOLD_WITHOUT_PROGRESS: Duration = Duration::from_secs(10);
/// Longest time any status is held.
pub const HOLD_LIMIT: Duration = Duration::from_secs(60);

struct Held {
    /// Tells a hold from a later one for the same rule.
    ticket: u64,
    generation: Option<i64>,
    /// `None` while a write of it is in flight: moved out rather than copied, since a large
    /// pool's cold start makes tens of thousands of statuses due at once.
    status: Option<SplitRuleStatus>,
    since: Instant,
}

/// Held statuses by rule.
#[derive(Default)]
pub struct HeldStatuses {
    held: Mutex<HashMap<ObjectRef<SplitRule>, Held>>,
    tickets: std::sync::atomic::AtomicU64,
}

/// A held status to write now.
pub struct Due {
    /// The rule as the watch last saw it (its `resourceVersion` is the write's precondition).
    pub rule: Arc<SplitRule>,
    /// The status, with the roll-out counts of now.
    pub status: SplitRuleStatus,
    /// Whether every live router runs the rule's bundle (else the hold timed out).
    pub rolled_out: bool,
    ticket: u64,
}

/// Whether a status computed with roll-out `count` waits for the routers: only a published
/// generation (`since`) that live routers do not all run yet, or whose pool's routers are not
/// known yet (`None`: right after start, before the first look at their Leases, "no router"
/// would be reported and then corrected, two more writes per rule).
pub fn worth_holding(since: Option<&str>, count: Option<RolloutStatus>) -> bool {
    since.is_some() && count.is_none_or(|count| count.updated < count.total)
}

impl HeldStatuses {
    /// Holds `status` for `rule`'s current generation, replacing an earlier hold; a hold of the
    /// same generation keeps its start, so re-reconciling never postpones a report.
    pub fn hold(&self, rule: &SplitRule, status: SplitRuleStatus) {
        let ticket = self
            .tickets
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let generation = rule.metadata.generation;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let since = held
            .get(&ObjectRef::from_obj(rule))
            .filter(|h| h.generation == generation)
            .map_or_else(Instant::now, |h| h.since);
        held.insert(
            ObjectRef::from_obj(rule),
            Held {
                ticket,
                generation,
                status: Some(status),
                since,
            },
        );
    }

    /// Drops any hold for `rule` (a reconcile wrote or kept its status itself).
    pub fn release(&self, rule: &SplitRule) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&ObjectRef::from_obj(rule));
    }

    /// Whether a status is held for `rule` (the roll-out refresh leaves such rules alone).
    pub fn holds(&self, rule: &ObjectRef<SplitRule>) -> bool {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.contains_key(rule)
    }

    /// The held statuses to write now, with roll-out counts from `count` (pool, first bundle
    /// carrying the generation; `None` while the pool's routers are not known): those every live
    /// router acknowledged, those whose pool's routers last changed (`changed_at`) more than
    /// [`HOLD_WITHOUT_PROGRESS`] before `now` and after the hold began, and those held for
    /// [`HOLD_LIMIT`]. Holds of rules deleted or changed since are dropped.
    pub fn due(
        &self,
        store: &Store<SplitRule>,
        count: impl Fn(&str, Option<&str>) -> Option<RolloutStatus>,
        changed_at: impl Fn(&str) -> Option<Instant>,
        now: Instant,
    ) -> Vec<Due> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mut due = Vec::new();
        held.retain(|key, hold| {
            let Some(rule) = store.get(key) else {
                return false;
            };
            if rule.metadata.generation != hold.generation
                || rule.metadata.deletion_timestamp.is_some()
            {
                return false;
            }
            let Some(held_status) = hold.status.as_ref() else {
                return true;
            };
            let pool = &rule.spec.router;
            let since = published_version(held_status, hold.generation);
            let counted = count(pool, since);
            let rolled_out = !worth_holding(since, counted);
            let progress = changed_at(pool).map_or(hold.since, |at| at.max(hold.since));
            let given_up = now.saturating_duration_since(progress) >= HOLD_WITHOUT_PROGRESS
                || now.saturating_duration_since(hold.since) >= HOLD_LIMIT;
            if rolled_out || given_up {
                let status = with_rollout(
                    hold.status.take().unwrap_or_default(),
                    rule.status.as_ref().map(|s| s.conditions.as_slice()),
                    hold.generation,
                    pool,
                    counted.unwrap_or_default(),
                );
                due.push(Due {
                    rule,
                    status,
                    rolled_out,
                    ticket: hold.ticket,
                });
            }
            true
        });
        due
    }

    /// `due` was written (or its rule is gone): its hold ends, unless a newer one replaced it.
    pub fn written(&self, due: &Due) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let key = ObjectRef::from_obj(&*due.rule);
        if held.get(&key).is_some_and(|h| h.ticket == due.ticket) {
            held.remove(&key);
        }
    }

    /// `due` could not be written: it is held again (unless a newer hold replaced it), to be
    /// written by a later pass.
    pub fn not_written(&self, due: Due) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hold) = held
            .get_mut(&ObjectRef::from_obj(&*due.rule))
            .filter(|h| h.ticket == due.ticket)
        {
            hold.status = Some(due.status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;
    use streamsplit_rules::crd::RuleCondition;

    fn rule(generation: i64) -> SplitRule {
        let spec = serde_json::json!({"condition": "true", "targetTopic": "t", "router": "p"});
        let mut rule = SplitRule::new("r", serde_json::from_value(spec).unwrap());
        rule.metadata.namespace = Some("n".into());
        rule.metadata.generation = Some(generation);
        rule
    }

    fn published(generation: i64, version: &str) -> SplitRuleStatus {
        SplitRuleStatus {
            observed_generation: Some(generation),
            conditions: vec![RuleCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: "Published".into(),
                message: String::new(),
                last_transition_time: String::new(),
                observed_generation: Some(generation),
            }],
            bundle_version: Some(version.into()),
            ..SplitRuleStatus::default()
        }
    }

    fn store_with(rule: &SplitRule) -> (Store<SplitRule>, Writer<SplitRule>) {
        let mut writer = Writer::default();
        writer.apply_watcher_event(&Event::Apply(rule.clone()));
        (writer.as_reader(), writer)
    }

    fn counts(updated: u32, total: u32) -> impl Fn(&str, Option<&str>) -> Option<RolloutStatus> {
        move |_, _| Some(RolloutStatus { updated, total })
    }

    fn no_change(_: &str) -> Option<Instant> {
        None
    }

    #[test]
    fn routers_that_keep_changing_version_are_waited_for_up_to_the_limit() {
        let held = HeldStatuses::default();
        let rule = rule(1);
        let (store, _writer) = store_with(&rule);
        held.hold(&rule, published(1, "v1"));
        let start = Instant::now();
        let later = start + HOLD_WITHOUT_PROGRESS;
        // The router swapped to another bundle 2 s ago: still worth waiting for.
        let swapped = |_: &str| Some(later - Duration::from_secs(2));
        assert!(held.due(&store, counts(0, 1), swapped, later).is_empty());
        // A swap long before the hold began does not count as progress.
        let long_ago = |_: &str| start.checked_sub(Duration::from_secs(60));
        let due = held.due(&store, counts(0, 1), long_ago, later);
        assert_eq!(due.len(), 1);
        held.not_written(due.into_iter().next().unwrap());
        // However busy the routers, a status is written within the limit.
        let always = |_: &str| Some(start + HOLD_LIMIT);
        assert_eq!(
            held.due(&store, counts(0, 1), always, start + HOLD_LIMIT)
                .len(),
            1
        );
    }

    #[test]
    fn only_published_generations_that_live_routers_lack_are_held() {
        let some = Some("v1");
        let count = |updated, total| Some(RolloutStatus { updated, total });
        assert!(worth_holding(some, count(1, 2)));
        assert!(!worth_holding(some, count(2, 2)));
        assert!(
            !worth_holding(some, count(0, 0)),
            "no router: nothing to wait for"
        );
        assert!(worth_holding(some, None), "routers not known yet");
        assert!(!worth_holding(None, count(0, 2)));
        assert!(!worth_holding(None, None));
    }

    #[test]
    fn a_held_status_is_due_once_rolled_out_or_held_too_long() {
        let held = HeldStatuses::default();
        let rule = rule(1);
        let (store, _writer) = store_with(&rule);
        held.hold(&rule, published(1, "v1"));
        let start = Instant::now();
        assert!(held.holds(&ObjectRef::from_obj(&rule)));

        assert!(held.due(&store, counts(0, 1), no_change, start).is_empty());
        assert!(held.due(&store, |_, _| None, no_change, start).is_empty());
        let due = held.due(&store, counts(1, 1), no_change, start);
        assert_eq!(due.len(), 1);
        assert!(due[0].rolled_out);
        let rolled_out = due[0]
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "RolledOut")
            .unwrap();
        assert_eq!(rolled_out.status, "True");
        assert_eq!(due[0].status.routers.as_deref(), Some("1/1"));
        // While its write is in flight, a status is not due again; a failed write holds it again.
        assert!(held.due(&store, counts(1, 1), no_change, start).is_empty());
        held.not_written(due.into_iter().next().unwrap());

        let late = held.due(
            &store,
            counts(0, 1),
            no_change,
            start + HOLD_WITHOUT_PROGRESS,
        );
        assert_eq!(late.len(), 1);
        assert!(!late[0].rolled_out);
        held.written(&late[0]);
        assert!(!held.holds(&ObjectRef::from_obj(&rule)));
    }

    #[test]
    fn a_newer_hold_survives_the_write_of_an_older_one_and_stale_holds_are_dropped() {
        let held = HeldStatuses::default();
        let first = rule(1);
        let (store, mut writer) = store_with(&first);
        held.hold(&first, published(1, "v1"));
        let start = Instant::now();
        let due = held.due(&store, counts(1, 1), no_change, start);
        held.hold(&first, published(1, "v2"));
        held.written(&due[0]);
        assert!(
            held.holds(&ObjectRef::from_obj(&first)),
            "the newer hold stays"
        );
        // Re-holding the same generation keeps the start: still due at the first deadline.
        assert_eq!(
            held.due(
                &store,
                counts(0, 1),
                no_change,
                start + HOLD_WITHOUT_PROGRESS
            )
            .len(),
            1
        );

        // The rule was edited since: its hold is for a generation nobody wants reported.
        writer.apply_watcher_event(&Event::Apply(rule(2)));
        assert!(held.due(&store, counts(1, 1), no_change, start).is_empty());
        assert!(!held.holds(&ObjectRef::from_obj(&first)));
    }
}
