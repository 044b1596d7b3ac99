//! Topics no rule may target: a pool's own source topics (the copies would be consumed and
//! copied again, an endless loop that multiplies the firehose) and its exception topic.
//!
//! The operator refuses such rules by policy; the router refuses them again when it compiles a
//! bundle, so a hand-edited ConfigMap cannot create a loop either.

use std::collections::BTreeMap;

use crate::validation::RuleError;

/// Topics a rule set must not copy into, each with the role that protects it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProtectedTopics {
    roles: BTreeMap<String, &'static str>,
}

impl ProtectedTopics {
    /// Nothing protected (tools that only evaluate, tests).
    pub fn none() -> Self {
        Self::default()
    }

    /// Protects `topic`; `role` says why, e.g. "a source topic of this router: its copies would be consumed and copied again (a loop)".
    pub fn protect(&mut self, topic: impl Into<String>, role: &'static str) -> &mut Self {
        self.roles.entry(topic.into()).or_insert(role);
        self
    }

    /// The router's own topics: what it consumes and where its exceptions go.
    pub fn of_router<'a>(
        sources: impl IntoIterator<Item = &'a String>,
        exception_topic: &str,
    ) -> Self {
        let mut protected = Self::none();
        for source in sources {
            protected.protect(source.clone(), "a source topic of this router: its copies would be consumed and copied again (a loop)");
        }
        protected.protect(
            exception_topic,
            "the exception topic of this router, which carries only its faulty records",
        );
        protected
    }

    /// Refuses a target topic that is protected.
    pub fn check(&self, target_topic: &str) -> Result<(), RuleError> {
        match self.roles.get(target_topic) {
            Some(role) => Err(RuleError::ProtectedTopic {
                topic: target_topic.to_string(),
                role,
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_the_exception_topic_are_refused_with_their_role() {
        let protected = ProtectedTopics::of_router(&["clicks".to_string()], "errors");
        let error = protected.check("clicks").unwrap_err();
        assert_eq!(error.reason(), "ProtectedTopic");
        assert!(error.to_string().contains("source topic"), "{error}");
        assert!(protected
            .check("errors")
            .unwrap_err()
            .to_string()
            .contains("exception topic"));
        assert!(protected.check("clicks-home").is_ok());
    }
}
