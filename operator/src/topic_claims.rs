//! Which rules claim each target topic, kept from the SplitRule watch: the topic-conflict check
//! of every reconcile looks at the rules of one topic, not at every rule (a scan of 50 000 rules
//! per reconcile made a cold start quadratic).

use std::collections::HashMap;
use std::sync::Mutex;

use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use streamsplit_rules::crd::SplitRule;

#[derive(Debug, Default)]
struct Claims {
    /// Per topic, each claiming rule and the fingerprint of the topic settings it asks for.
    by_topic: HashMap<String, HashMap<ObjectRef<SplitRule>, u64>>,
    topic_of: HashMap<ObjectRef<SplitRule>, String>,
}

/// A fingerprint of the topic settings a rule asks for (partitions, replication factor,
/// config; the deletion policy aside, and no settings the same as default ones).
pub fn settings_fingerprint(rule: &SplitRule) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match &rule.spec.topic {
        Some(topic) => {
            (topic.partitions, topic.replication_factor, &topic.config).hash(&mut hasher)
        }
        None => (
            None::<i32>,
            None::<i32>,
            &std::collections::BTreeMap::<String, String>::new(),
        )
            .hash(&mut hasher),
    }
    hasher.finish()
}

impl Claims {
    fn insert(&mut self, rule: &SplitRule) {
        let key = ObjectRef::from_obj(rule);
        self.remove(&key);
        let topic = rule.spec.target_topic.clone();
        self.by_topic
            .entry(topic.clone())
            .or_default()
            .insert(key.clone(), settings_fingerprint(rule));
        self.topic_of.insert(key, topic);
    }

    fn remove(&mut self, key: &ObjectRef<SplitRule>) {
        if let Some(topic) = self.topic_of.remove(key) {
            if let Some(rules) = self.by_topic.get_mut(&topic) {
                rules.remove(key);
                if rules.is_empty() {
                    self.by_topic.remove(&topic);
                }
            }
        }
    }
}

/// The index; fed every watch event, read by reconciles.
#[derive(Debug, Default)]
pub struct TopicClaims {
    current: Mutex<Claims>,
    /// A relist in progress: the index it will become.
    relisting: Mutex<Option<Claims>>,
}

impl TopicClaims {
    /// Follows one watch event (the same events the reflector store gets).
    pub fn observe(&self, event: &watcher::Event<SplitRule>) {
        match event {
            watcher::Event::Apply(rule) => self.lock_current().insert(rule),
            watcher::Event::Delete(rule) => self.lock_current().remove(&ObjectRef::from_obj(rule)),
            watcher::Event::Init => *self.lock_relisting() = Some(Claims::default()),
            watcher::Event::InitApply(rule) => {
                if let Some(claims) = self.lock_relisting().as_mut() {
                    claims.insert(rule);
                }
            }
            watcher::Event::InitDone => {
                if let Some(claims) = self.lock_relisting().take() {
                    *self.lock_current() = claims;
                }
            }
        }
    }

    /// The rules claiming `topic` with other settings than `rule` asks for: usually none, and
    /// found without looking at any rule object.
    pub fn differing_claimants(&self, topic: &str, rule: &SplitRule) -> Vec<ObjectRef<SplitRule>> {
        let mine = settings_fingerprint(rule);
        self.lock_current()
            .by_topic
            .get(topic)
            .map(|rules| {
                rules
                    .iter()
                    .filter(|(_, settings)| **settings != mine)
                    .map(|(key, _)| key.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Claims> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_relisting(&self) -> std::sync::MutexGuard<'_, Option<Claims>> {
        self.relisting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, topic: &str) -> SplitRule {
        let spec = serde_json::json!({"condition": "true", "targetTopic": topic});
        let mut rule = SplitRule::new(name, serde_json::from_value(spec).unwrap());
        rule.metadata.namespace = Some("ns".into());
        rule
    }

    fn names(claims: &TopicClaims, topic: &str) -> Vec<String> {
        // Every claimant differs from a rule asking for 99 partitions.
        let mut probe = rule("probe", topic);
        probe.spec.topic = serde_json::from_value(serde_json::json!({"partitions": 99})).unwrap();
        let mut names: Vec<String> = claims
            .differing_claimants(topic, &probe)
            .into_iter()
            .map(|r| r.name)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn claims_follow_edits_deletions_and_relists() {
        let claims = TopicClaims::default();
        claims.observe(&watcher::Event::Apply(rule("a", "t1")));
        claims.observe(&watcher::Event::Apply(rule("b", "t1")));
        assert_eq!(names(&claims, "t1"), ["a", "b"]);
        // An edit moves a rule to another topic.
        claims.observe(&watcher::Event::Apply(rule("b", "t2")));
        assert_eq!(names(&claims, "t1"), ["a"]);
        assert_eq!(names(&claims, "t2"), ["b"]);
        claims.observe(&watcher::Event::Delete(rule("a", "t1")));
        assert!(names(&claims, "t1").is_empty());
        // A relist replaces everything once it is complete.
        claims.observe(&watcher::Event::Init);
        claims.observe(&watcher::Event::InitApply(rule("c", "t1")));
        assert_eq!(
            names(&claims, "t2"),
            ["b"],
            "the old index serves until the relist is done"
        );
        claims.observe(&watcher::Event::InitDone);
        assert_eq!(names(&claims, "t1"), ["c"]);
        assert!(names(&claims, "t2").is_empty());
    }

    #[test]
    fn only_claimants_asking_for_other_settings_are_returned() {
        let claims = TopicClaims::default();
        let mut three = rule("three", "t");
        three.spec.topic = serde_json::from_value(serde_json::json!({"partitions": 3})).unwrap();
        claims.observe(&watcher::Event::Apply(rule("plain", "t")));
        claims.observe(&watcher::Event::Apply(three.clone()));
        let defaults = rule("defaults", "t");
        let found: Vec<String> = claims
            .differing_claimants("t", &defaults)
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(found, ["three"]);
        let mut explicit_default = rule("explicit", "t");
        explicit_default.spec.topic =
            serde_json::from_value(serde_json::json!({"deletionPolicy": "Delete"})).unwrap();
        assert_eq!(
            settings_fingerprint(&explicit_default),
            settings_fingerprint(&defaults)
        );
    }
}
