//! Everything that makes a rule unfit to publish: an illegal topic, a condition that does not
//! compile, or a test that fails. The operator, `check` and the router share this one verdict.

use rhai::{Engine, Scope};
use thiserror::Error;

use crate::condition::{CompileError, Condition, EvalError};
use crate::definition::RuleDefinition;
use crate::engine::RECORD_VARIABLE;
use crate::metadata::META_VARIABLE;
use crate::record::json_to_dynamic;
use crate::spec::{Expectation, RuleTest, SplitRuleSpec};
use crate::topic_template::compile_target;

/// Why a rule is rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RuleError {
    /// `targetTopic` is not a legal Kafka topic name.
    #[error("invalid targetTopic: {0}")]
    InvalidTopic(String),
    /// The condition does not compile.
    #[error("condition does not compile at {0}")]
    Compile(#[from] CompileError),
    /// One of the rule's own tests fails.
    #[error("{0}")]
    TestFailed(#[from] TestFailure),
    /// `router` is not a usable pool name.
    #[error("invalid router: {0}")]
    InvalidRouter(String),
    /// Another rule in the same set already has this identity.
    #[error("another rule with the same namespace/name comes first")]
    Duplicate,
    /// Compiling the rule and running its tests took longer than the validator allows.
    #[error("validation did not finish within {}", humantime::format_duration(*.0))]
    Timeout(std::time::Duration),
    /// The validation task itself failed (a bug: please report it).
    #[error("validation aborted: {0}")]
    Aborted(String),
    /// The rule breaks its router pool's policy (who may use the pool, which topics a namespace
    /// may write); the message names the policy entry.
    #[error("{0}")]
    PolicyViolation(String),
    /// `project` names no field, a malformed path, or one path under two actions.
    #[error("invalid project: {0}")]
    InvalidProjection(String),
    /// `transform` does not compile, or is combined with `project`.
    #[error("invalid transform: {0}")]
    InvalidTransform(String),
    /// `key` names no source, two, a malformed path, or an expression that does not compile.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A templated `targetTopic` or its `targetTopicPattern` is malformed or missing.
    #[error("invalid targetTopic template: {0}")]
    InvalidTopicTemplate(String),
    /// `exclusiveGroup` is not a usable group name.
    #[error("invalid exclusiveGroup: {0}")]
    InvalidGroup(String),
    /// `maxRecordsPerSecond` is zero.
    #[error("invalid maxRecordsPerSecond: {0}")]
    InvalidRate(String),
    /// `sample` is not a fraction in (0, 1].
    #[error("invalid sample: {0}")]
    InvalidSample(String),
    /// The target is a topic the router itself reads or writes: copying there would loop.
    #[error("targetTopic {topic} is {role}")]
    ProtectedTopic {
        /// The refused target topic.
        topic: String,
        /// Why it is protected.
        role: &'static str,
    },
}

impl RuleError {
    /// Short machine-readable reason, used for status conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            RuleError::InvalidTopic(_) => "InvalidTopic",
            RuleError::Compile(_) => "CompileError",
            RuleError::TestFailed(failure) if failure.outcome == Err(EvalError::TimeBudget) => {
                "Timeout"
            }
            RuleError::TestFailed(_) => "TestFailed",
            RuleError::InvalidRouter(_) => "InvalidRouter",
            RuleError::Duplicate => "Duplicate",
            RuleError::Timeout(_) => "Timeout",
            RuleError::Aborted(_) => "ValidationAborted",
            RuleError::PolicyViolation(_) => "PolicyViolation",
            RuleError::InvalidSample(_) => "InvalidSample",
            RuleError::InvalidProjection(_) => "InvalidProjection",
            RuleError::InvalidTransform(_) => "InvalidTransform",
            RuleError::InvalidKey(_) => "InvalidKey",
            RuleError::InvalidTopicTemplate(_) => "InvalidTopicTemplate",
            RuleError::InvalidGroup(_) => "InvalidGroup",
            RuleError::InvalidRate(_) => "InvalidRate",
            RuleError::ProtectedTopic { .. } => "ProtectedTopic",
        }
    }
}

/// A rule test whose outcome differs from its expectation.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("test {test:?} failed: expected {}, got {}", expectation_name(*.expected), outcome_name(.outcome))]
pub struct TestFailure {
    /// Name of the failing test.
    pub test: String,
    /// What the test expected.
    pub expected: Expectation,
    /// What the condition did.
    pub outcome: Result<bool, EvalError>,
}

fn expectation_name(e: Expectation) -> &'static str {
    match e {
        Expectation::Match => "match",
        Expectation::NoMatch => "no-match",
    }
}

fn outcome_name(outcome: &Result<bool, EvalError>) -> String {
    match outcome {
        Ok(true) => "match".into(),
        Ok(false) => "no-match".into(),
        Err(err) => format!("error ({err})"),
    }
}

/// Checks the target topic (a name, or a template with its pattern) and compiles the
/// condition.
pub fn compile_rule(
    engine: &Engine,
    condition: &str,
    target_topic: &str,
    target_topic_pattern: Option<&str>,
) -> Result<Condition, RuleError> {
    compile_target(target_topic, target_topic_pattern)?;
    Ok(Condition::compile(engine, condition)?)
}

/// Checks what a rule says about delivery besides its condition and shape: its sample, its
/// exclusive group and its rate limit.
pub fn validate_delivery_options(definition: &RuleDefinition) -> Result<(), RuleError> {
    crate::sampling::validate_sample(definition.sample).map_err(RuleError::InvalidSample)?;
    crate::exclusive_group::validate_group(definition.exclusive_group.as_deref())
        .map_err(RuleError::InvalidGroup)?;
    crate::rate_limit::validate_rate(definition.max_records_per_second)
        .map_err(RuleError::InvalidRate)
}

/// Runs a rule's example records through its compiled condition.
pub fn run_rule_tests(
    engine: &Engine,
    condition: &Condition,
    tests: &[RuleTest],
) -> Result<(), TestFailure> {
    for test in tests {
        let mut scope = Scope::new();
        scope.push_constant_dynamic(RECORD_VARIABLE, json_to_dynamic(&test.record));
        scope.push_constant_dynamic(META_VARIABLE, test.meta().to_dynamic());
        let outcome = condition.evaluate(engine, &mut scope);
        let passed = matches!(
            (&outcome, test.expect),
            (Ok(true), Expectation::Match) | (Ok(false), Expectation::NoMatch)
        );
        if !passed {
            return Err(TestFailure {
                test: test.name.clone(),
                expected: test.expect,
                outcome,
            });
        }
    }
    Ok(())
}

/// The full verdict on a spec: pool, topic, compilation, and its tests.
pub fn validate_spec(engine: &Engine, spec: &SplitRuleSpec) -> Result<Condition, RuleError> {
    crate::pool_name::validate_pool_name(&spec.router).map_err(RuleError::InvalidRouter)?;
    let definition = RuleDefinition::from_spec(crate::rule_id::RuleId::new(None, ""), spec);
    validate_delivery_options(&definition)?;
    if crate::topic_template::is_template(&spec.target_topic) && spec.topic.is_some() {
        return Err(RuleError::InvalidTopicTemplate(
            "spec.topic configures a topic the operator creates; a templated targetTopic's topics are never created by streamsplit (create them, then list them under targetTopicPattern)".into(),
        ));
    }
    crate::copy_shape::CopyShape::compile(engine, &definition)?;
    let condition = compile_rule(
        engine,
        &spec.condition,
        &spec.target_topic,
        spec.target_topic_pattern.as_deref(),
    )?;
    run_rule_tests(engine, &condition, &spec.tests)?;
    Ok(condition)
}
