//! Rule identity: `namespace/name`, the key used in bundles, metrics and error reports.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Namespace of a rule whose metadata names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// `namespace/name` of a SplitRule. Ordered by namespace, then name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RuleId {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Kubernetes object name.
    pub name: String,
}

impl RuleId {
    /// Builds an identity, defaulting the namespace.
    pub fn new(namespace: Option<&str>, name: impl Into<String>) -> Self {
        RuleId {
            namespace: namespace.unwrap_or(DEFAULT_NAMESPACE).to_string(),
            name: name.into(),
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}
