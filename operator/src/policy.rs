//! Pool policy: whether a SplitRule may run in the pool it names.
//!
//! Checked by the operator before a rule reaches a bundle (a violation is reported on the rule
//! and an already published version keeps routing, as with compile errors). The router checks
//! the loop part again on its own topics ([`streamsplit_rules::ProtectedTopics`]).

use std::sync::Arc;

use kube::runtime::reflector::Store;
use kube::ResourceExt;
use streamsplit_rules::crd::SplitRule;
use streamsplit_rules::topic_pattern::{pattern_matches, pattern_within};
use streamsplit_rules::{RuleError, SplitRuleSpec};

use crate::router_pool::RouterPool;

/// The watched RouterPools of the operator's namespace.
#[derive(Clone)]
pub struct PoolDirectory {
    /// Reflector store of the RouterPool watch.
    pub store: Store<RouterPool>,
    /// The operator's namespace, where pools live.
    pub namespace: String,
}

impl PoolDirectory {
    /// The pool called `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<RouterPool>> {
        self.store
            .state()
            .into_iter()
            .find(|p| p.name_any() == name)
    }

    /// Refuses a rule its pool's policy does not allow (see [`Pools::check`]).
    pub fn check(&self, rule: &SplitRule) -> Result<(), RuleError> {
        let all = self.store.state();
        let pools = Pools {
            all: &all,
            namespace: &self.namespace,
        };
        pools.check(&rule.namespace().unwrap_or_default(), &rule.spec)
    }
}

/// The pools a rule is checked against (a snapshot of the operator's RouterPool watch).
pub struct Pools<'a> {
    /// Every RouterPool in the operator's namespace.
    pub all: &'a [Arc<RouterPool>],
    /// That namespace, for messages.
    pub namespace: &'a str,
}

impl Pools<'_> {
    /// The pool called `name`.
    pub fn get(&self, name: &str) -> Option<&RouterPool> {
        self.all.iter().find(|p| p.name_any() == name).map(|p| &**p)
    }

    /// Refuses a rule (from `rule_namespace`) that its pool's policy does not allow.
    pub fn check(&self, rule_namespace: &str, spec: &SplitRuleSpec) -> Result<(), RuleError> {
        let Some(pool) = self.get(&spec.router) else {
            return Err(RuleError::PolicyViolation(format!(
                "router pool {} does not exist (no RouterPool {0} in namespace {})",
                spec.router, self.namespace
            )));
        };
        let template = streamsplit_rules::topic_template::is_template(&spec.target_topic);
        // A template is judged by the pattern it renders within: all of it must be allowed.
        let target = match (&spec.target_topic_pattern, template) {
            (Some(pattern), true) => pattern.as_str(),
            _ => spec.target_topic.as_str(),
        };
        self.refuse_pool_topics(target)?;
        let Some((index, tenant)) = pool
            .spec
            .tenants
            .iter()
            .enumerate()
            .find(|(_, t)| t.namespace == "*" || t.namespace == rule_namespace)
        else {
            return Err(RuleError::PolicyViolation(format!(
                "namespace {rule_namespace} may not use router pool {} (not listed in RouterPool {0} spec.tenants)",
                spec.router
            )));
        };
        let allowed = tenant.target_topics.iter().any(|allowed| {
            if template {
                pattern_within(target, &allowed.replace("{namespace}", rule_namespace))
            } else {
                topic_matches(allowed, rule_namespace, target)
            }
        });
        if allowed {
            Ok(())
        } else if template {
            Err(RuleError::PolicyViolation(format!(
                "namespace {rule_namespace} may not write every topic of targetTopicPattern {target} in router pool {} (RouterPool {0} spec.tenants[{index}].targetTopics allows {}); narrow the pattern",
                spec.router,
                tenant.target_topics.join(", ")
            )))
        } else {
            Err(RuleError::PolicyViolation(format!(
                "namespace {rule_namespace} may not write topic {} in router pool {} (RouterPool {1} spec.tenants[{index}].targetTopics allows {})",
                spec.target_topic,
                spec.router,
                tenant.target_topics.join(", ")
            )))
        }
    }

    /// No rule may target any pool's source or exception topic: copies would loop through a
    /// router again, or pollute the exception stream.
    /// `target` may be a templated rule's pattern: it may not cover any of those topics either.
    fn refuse_pool_topics(&self, target: &str) -> Result<(), RuleError> {
        for pool in self.all {
            let role = if pool
                .spec
                .source_topics
                .iter()
                .any(|t| pattern_matches(target, t))
            {
                "a source topic"
            } else if pattern_matches(target, &pool.spec.exception_topic) {
                "the exception topic"
            } else {
                continue;
            };
            return Err(RuleError::PolicyViolation(format!(
                "targetTopic {target} is {role} of router pool {}: no rule may write it (copies to a source topic would be routed again, a loop)",
                pool.name_any()
            )));
        }
        Ok(())
    }
}

/// Whether `topic` matches `pattern`: `{namespace}` stands for `namespace`, `*` for any run
/// of characters (possibly empty); everything else matches itself.
pub fn topic_matches(pattern: &str, namespace: &str, topic: &str) -> bool {
    pattern_matches(&pattern.replace("{namespace}", namespace), topic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router_pool::{RouterPoolSpec, Tenant};

    #[test]
    fn patterns_substitute_the_namespace_and_match_wildcards() {
        assert!(topic_matches("{namespace}.*", "shop", "shop.orders"));
        assert!(topic_matches("{namespace}.*", "shop", "shop."));
        assert!(!topic_matches("{namespace}.*", "shop", "shopping.orders"));
        assert!(!topic_matches("{namespace}.*", "shop", "other.shop.orders"));
        assert!(topic_matches("*", "shop", "anything"));
        assert!(topic_matches("a*b*c", "x", "aXXbYYc"));
        assert!(!topic_matches("a*b*c", "x", "aXXbYY"));
        assert!(topic_matches("exact", "x", "exact"));
        assert!(!topic_matches("exact", "x", "exactly"));
    }

    fn pool(name: &str, sources: &[&str], tenants: Vec<Tenant>) -> Arc<RouterPool> {
        Arc::new(RouterPool::new(
            name,
            RouterPoolSpec {
                source_topics: sources.iter().map(|s| s.to_string()).collect(),
                exception_topic: format!("{name}-exceptions"),
                tenants,
                allow_adopted_topic_changes: false,
            },
        ))
    }

    fn rule(router: &str, target: &str) -> SplitRuleSpec {
        serde_json::from_value(serde_json::json!({
            "condition": "true", "targetTopic": target, "router": router
        }))
        .unwrap()
    }

    fn violation(result: Result<(), RuleError>) -> String {
        match result {
            Err(RuleError::PolicyViolation(message)) => message,
            other => panic!("expected a policy violation, got {other:?}"),
        }
    }

    #[test]
    fn a_rule_is_checked_against_its_pool_and_every_pools_topics() {
        let tenants = vec![
            Tenant {
                namespace: "shop".into(),
                target_topics: vec!["{namespace}.*".into()],
            },
            Tenant {
                namespace: "*".into(),
                target_topics: vec!["shared.{namespace}".into()],
            },
        ];
        let all = [
            pool("default", &["clicks"], tenants),
            pool("mobile", &["app-events"], vec![]),
        ];
        let pools = Pools {
            all: &all,
            namespace: "streamsplit-system",
        };
        assert!(pools.check("shop", &rule("default", "shop.orders")).is_ok());
        assert!(pools.check("ads", &rule("default", "shared.ads")).is_ok());

        let message = violation(pools.check("ads", &rule("default", "shop.orders")));
        assert!(
            message.contains("spec.tenants[1].targetTopics allows shared.{namespace}"),
            "{message}"
        );
        let message = violation(pools.check("shop", &rule("mobile", "shop.x")));
        assert!(
            message.contains("may not use router pool mobile"),
            "{message}"
        );
        let message = violation(pools.check("shop", &rule("nope", "shop.x")));
        assert!(message.contains("does not exist"), "{message}");
        // Another pool's source topic is refused too: a loop through that pool.
        let message = violation(pools.check("shop", &rule("default", "app-events")));
        assert!(
            message.contains("source topic of router pool mobile"),
            "{message}"
        );
        let message = violation(pools.check("shop", &rule("default", "default-exceptions")));
        assert!(message.contains("exception topic"), "{message}");
    }

    #[test]
    fn a_templated_rule_is_judged_by_every_topic_its_pattern_allows() {
        let tenants = vec![Tenant {
            namespace: "shop".into(),
            target_topics: vec!["{namespace}.*".into()],
        }];
        let all = [pool("default", &["shop.raw"], tenants)];
        let pools = Pools {
            all: &all,
            namespace: "streamsplit-system",
        };
        let templated = |pattern: &str| {
            let mut spec = rule("default", "shop.logs.{record.app}");
            spec.target_topic_pattern = Some(pattern.into());
            spec
        };
        assert!(pools.check("shop", &templated("shop.logs.*")).is_ok());
        let message = violation(pools.check("shop", &templated("*.logs.*")));
        assert!(
            message.contains("every topic of targetTopicPattern *.logs.*"),
            "{message}"
        );
        // shop.* would let a record name the pool's own source topic.
        let message = violation(pools.check("shop", &templated("shop.*")));
        assert!(message.contains("source topic"), "{message}");
    }
}
