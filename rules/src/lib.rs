//! The streamsplit rule model and engine, shared by the operator and the router so that a rule
//! is validated, compiled and evaluated by exactly the same code everywhere.

pub mod bundle;
pub mod bundle_shards;
pub mod client_properties;
pub mod condition;
pub mod copy_shape;
#[cfg(feature = "kube")]
pub mod crd;
pub mod definition;
pub mod engine;
pub mod exclusive_group;
pub mod fast;
pub mod manifest;
pub mod metadata;
pub mod pool_name;
pub mod projection;
pub mod protected_topics;
pub mod rate_limit;
pub mod record;
pub mod router_lease;
pub mod rule_id;
pub mod rule_index;
pub mod rule_set;
pub mod sampling;
pub mod spec;
pub mod topic_name;
pub mod topic_pattern;
pub mod topic_template;
pub mod validation;

pub use bundle::{content_version, BundleError, RuleBundle, BUNDLE_FILE_NAME};
pub use condition::{CompileError, Condition, EvalError};
pub use definition::RuleDefinition;
pub use engine::sandboxed_engine;
pub use manifest::{
    compile_manifests, compile_manifests_with, load_manifests, parse_manifests, ManifestError,
    SplitRuleManifest,
};
pub use metadata::RecordMeta;
pub use protected_topics::ProtectedTopics;
pub use record::DecodeError;
pub use rule_id::RuleId;
pub use rule_set::{
    CompiledRule, EvalMode, Evaluation, PlannedCopy, QuarantinedRule, RuleFailure, RuleSet,
};
pub use spec::{DeletionPolicy, Expectation, Mode, RuleTest, SplitRuleSpec, Tier, TopicSpec};
pub use validation::{validate_spec, RuleError, TestFailure};
