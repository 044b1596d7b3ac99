//! A compiled, immutable set of rules and its evaluation of records.
//!
//! The router swaps whole `RuleSet`s atomically, so every record is evaluated by exactly one
//! set. [`RuleSet::evaluate`] takes the raw record bytes: how a record is decoded and how
//! conditions run behind it can change (fast paths, indexes) without touching the router.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Engine, Scope};

use crate::condition::{Condition, EvalError};
use crate::copy_shape::{CopyError, CopyParts, CopyShape, CopyShaper};
use crate::definition::RuleDefinition;
use crate::engine::{sandboxed_engine, sandboxed_engine_with_budget, RECORD_VARIABLE};
use crate::exclusive_group::GroupIds;
use crate::fast::extract::fill_meta_slots;
use crate::fast::{compile_condition, extract_slots, FastCondition, FieldPaths, Value};
use crate::metadata::{RecordMeta, META_VARIABLE};
use crate::protected_topics::ProtectedTopics;
use crate::rate_limit::RateLimiter;
use crate::record::{decode_json_object, json_to_dynamic, DecodeError};
use crate::rule_id::RuleId;
use crate::rule_index::RuleIndex;
use crate::spec::{Mode, Tier};
use crate::topic_template::{compile_target, TopicTemplate};
use crate::validation::{validate_delivery_options, RuleError};

/// How conditions are evaluated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EvalMode {
    /// Fast path and rule index where they apply, Rhai for the rest (the default).
    #[default]
    Fast,
    /// Every condition by Rhai, every rule for every record (for comparison and benchmarks).
    RhaiOnly,
}

/// Consecutive overruns (of the time budget or the operation limit) after which a rule is
/// quarantined: it is no longer evaluated, and each record it would have seen goes to the
/// exception topic instead of slowing every record down.
pub const QUARANTINE_AFTER_OVERRUNS: u32 = 5;

/// A rule's record of time-budget overruns, shared by every thread evaluating the set.
#[derive(Debug, Default)]
struct OverrunState {
    consecutive: AtomicU32,
    quarantined: AtomicBool,
}

impl OverrunState {
    fn quarantined(quarantined: bool) -> Self {
        OverrunState {
            consecutive: AtomicU32::new(0),
            quarantined: AtomicBool::new(quarantined),
        }
    }

    /// Counts one overrun; true exactly once, when the rule becomes quarantined.
    fn overrun(&self) -> bool {
        let count = self.consecutive.fetch_add(1, Ordering::AcqRel) + 1;
        count >= QUARANTINE_AFTER_OVERRUNS && !self.quarantined.swap(true, Ordering::AcqRel)
    }

    fn in_time(&self) {
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Release);
        }
    }

    fn is_quarantined(&self) -> bool {
        self.quarantined.load(Ordering::Acquire)
    }
}

/// A rule ready to evaluate.
#[derive(Debug)]
pub struct CompiledRule {
    /// What the rule says.
    pub definition: RuleDefinition,
    condition: Condition,
    shape: Option<CopyShape>,
    template: Option<TopicTemplate>,
    limiter: Option<Arc<RateLimiter>>,
    group: Option<u32>,
    fast: Option<FastCondition>,
    overruns: OverrunState,
}

impl CompiledRule {
    /// Whether the condition runs on the fast path.
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// How the rule shapes its copies, when they are not the record itself.
    pub fn shape(&self) -> Option<&CopyShape> {
        self.shape.as_ref()
    }

    /// The rule's templated target topic, when its `targetTopic` is one.
    pub fn template(&self) -> Option<&TopicTemplate> {
        self.template.as_ref()
    }

    /// Whether the rule was quarantined for exceeding its time budget.
    pub fn is_time_quarantined(&self) -> bool {
        self.overruns.is_quarantined()
    }
}

/// A rule left out of a rule set, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantinedRule {
    /// Which rule.
    pub id: RuleId,
    /// Why it cannot run.
    pub error: RuleError,
    /// Whether the rule's previous version (from the rule set this one replaces) keeps running
    /// in its place, rather than the rule disappearing.
    pub kept_previous: bool,
}

/// Rules in evaluation order: tier `critical` first, then `standard`, then `best-effort`; by
/// identity within a tier.
#[derive(Debug)]
pub struct RuleSet {
    engine: Engine,
    rules: Vec<CompiledRule>,
    mode: EvalMode,
    paths: FieldPaths,
    index: RuleIndex,
    /// Whether any Rhai-evaluated condition reads `meta` (else the map is never built).
    uses_meta: bool,
    /// Whether any rule samples (its decision reads the key).
    samples: bool,
    /// Whether any rule's transform or key expression runs Rhai (it may read `meta`).
    shapes_run_rhai: bool,
    /// Whether any active rule has an exclusive group.
    has_groups: bool,
    /// Whether any rule has a `maxRecordsPerSecond`.
    limits_rates: bool,
    /// Whether any templated topic reads `meta` (it needs the key and headers).
    templates_read_meta: bool,
    /// Topics no rendered topic may be (the router's own).
    protected: ProtectedTopics,
}

/// A rule that failed on one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFailure {
    /// Index of the rule in [`RuleSet::rules`].
    pub rule: usize,
    /// What went wrong.
    pub error: EvalError,
}

/// The outcome of one record against a rule set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Indices of matching rules (active and shadow), in evaluation order.
    pub matches: Vec<usize>,
    /// Rules that errored on the record; the others were still evaluated.
    pub failures: Vec<RuleFailure>,
    /// Rules quarantined by this very evaluation (their time budget ran out once too often).
    pub quarantined: Vec<usize>,
    /// Matching rules whose `sample` left this record out (not in `matches`).
    pub sampled_out: Vec<usize>,
    /// Matching rules an earlier match of their exclusive group took the record from (not in
    /// `matches`).
    pub excluded: Vec<usize>,
    /// Matching rules over their `maxRecordsPerSecond` (not in `matches`); only
    /// [`RuleSet::throttle`] fills it.
    pub throttled: Vec<usize>,
}

/// One copy an evaluation asks for, ready to produce, or why it cannot be made.
#[derive(Debug)]
pub struct PlannedCopy<'r> {
    /// Index of the rule that decided the copy (the first active match with its topic).
    pub rule: usize,
    /// Tier of that rule.
    pub tier: Tier,
    /// The copy, or the rule error that sends the record to the exception topic instead.
    pub outcome: Result<ShapedCopy<'r>, CopyError>,
}

/// A copy's topic and content.
#[derive(Debug)]
pub struct ShapedCopy<'r> {
    /// Target topic (rendered when the rule's is a template).
    pub topic: Cow<'r, str>,
    /// Whether the topic was rendered from a template (the router checks it exists).
    pub rendered: bool,
    /// Value and key, when the rule shapes them.
    pub parts: CopyParts,
}

impl RuleSet {
    /// A set that matches nothing.
    pub fn empty() -> Self {
        Self::compile([]).0
    }

    /// Compiles every definition for the default (fast) mode; see [`RuleSet::compile_with`].
    pub fn compile(
        definitions: impl IntoIterator<Item = RuleDefinition>,
    ) -> (RuleSet, Vec<QuarantinedRule>) {
        Self::compile_with(definitions, EvalMode::Fast)
    }

    /// Compiles every definition; a rule that does not compile, has an illegal topic or repeats
    /// an identity is quarantined and the rest still form a working set.
    pub fn compile_with(
        definitions: impl IntoIterator<Item = RuleDefinition>,
        mode: EvalMode,
    ) -> (RuleSet, Vec<QuarantinedRule>) {
        Self::compile_reusing(definitions, mode, None)
    }

    /// Like [`RuleSet::compile_with`], reusing the compiled conditions of `previous` whose text
    /// is unchanged: a hot swap that changes one rule compiles one rule.
    pub fn compile_reusing(
        definitions: impl IntoIterator<Item = RuleDefinition>,
        mode: EvalMode,
        previous: Option<&RuleSet>,
    ) -> (RuleSet, Vec<QuarantinedRule>) {
        Self::compile_guarded(definitions, mode, previous, &ProtectedTopics::none())
    }

    /// Like [`RuleSet::compile_reusing`], also quarantining every rule that targets a
    /// `protected` topic (the router's own source and exception topics).
    pub fn compile_guarded(
        definitions: impl IntoIterator<Item = RuleDefinition>,
        mode: EvalMode,
        previous: Option<&RuleSet>,
        protected: &ProtectedTopics,
    ) -> (RuleSet, Vec<QuarantinedRule>) {
        // Unchanged conditions keep their compiled form and their time quarantine.
        let compiled: std::collections::HashMap<&str, (&Condition, bool)> = previous
            .map(|p| {
                p.rules
                    .iter()
                    .map(|r| {
                        let quarantined = r.overruns.is_quarantined();
                        (r.definition.condition.as_str(), (&r.condition, quarantined))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let previous_by_id: std::collections::HashMap<&RuleId, &CompiledRule> = previous
            .map(|p| p.rules.iter().map(|r| (&r.definition.id, r)).collect())
            .unwrap_or_default();
        let engine = sandboxed_engine();
        let mut rules = Vec::new();
        let mut quarantined = Vec::new();
        let mut seen = BTreeSet::new();
        for definition in definitions {
            if !seen.insert(definition.id.clone()) {
                quarantined.push(QuarantinedRule {
                    id: definition.id.clone(),
                    error: RuleError::Duplicate,
                    kept_previous: false,
                });
                continue;
            }
            let reused = compiled.get(definition.condition.as_str());
            let time_quarantined = reused.is_some_and(|(_, q)| *q);
            let reused = reused.map(|(c, _)| (*c).clone());
            let compiled = validate_delivery_options(&definition)
                .and_then(|()| CopyShape::compile(&engine, &definition))
                .and_then(|shape| {
                    let template = compile_target(
                        &definition.target_topic,
                        definition.target_topic_pattern.as_deref(),
                    )?;
                    if template.is_none() {
                        protected.check(&definition.target_topic)?;
                    }
                    let condition = match reused {
                        Some(condition) => condition,
                        None => Condition::compile(&engine, &definition.condition)?,
                    };
                    Ok((condition, shape, template))
                });
            match compiled {
                Ok((condition, shape, template)) => rules.push(CompiledRule {
                    limiter: limiter_for(&definition, previous_by_id.get(&definition.id)),
                    definition,
                    condition,
                    shape,
                    template,
                    group: None,
                    fast: None,
                    overruns: OverrunState::quarantined(time_quarantined),
                }),
                Err(error) => {
                    // A rule this engine cannot compile (a hand-edited bundle, an operator newer
                    // than the router) keeps its last good version instead of vanishing.
                    let kept = previous_by_id.get(&definition.id);
                    if let Some(previous) = kept {
                        rules.push(CompiledRule {
                            definition: previous.definition.clone(),
                            condition: previous.condition.clone(),
                            shape: previous.shape.clone(),
                            template: previous.template.clone(),
                            limiter: previous.limiter.clone(),
                            group: None,
                            fast: None,
                            overruns: OverrunState::quarantined(previous.overruns.is_quarantined()),
                        });
                    }
                    quarantined.push(QuarantinedRule {
                        id: definition.id,
                        error,
                        kept_previous: kept.is_some(),
                    });
                }
            }
        }
        rules.sort_by(|a, b| {
            (a.definition.tier, &a.definition.id).cmp(&(b.definition.tier, &b.definition.id))
        });
        let mut paths = FieldPaths::default();
        let mut keys = Vec::new();
        let mut groups = GroupIds::default();
        for (index, rule) in rules.iter_mut().enumerate() {
            if rule.definition.suspend {
                continue;
            }
            if rule.definition.mode == Mode::Active {
                if let Some(group) = &rule.definition.exclusive_group {
                    rule.group = Some(groups.id(&rule.definition.id, group));
                }
            }
            if mode == EvalMode::Fast {
                rule.fast = compile_condition(rule.condition.ast(), &mut paths);
            }
            let key = rule.fast.as_ref().and_then(|f| f.index_key(&paths));
            keys.push((index, key));
        }
        let index = RuleIndex::build(keys);
        let uses_meta = rules.iter().any(|r| r.condition.uses_meta());
        let samples = rules.iter().any(|r| r.definition.sample.is_some());
        let shapes_run_rhai = rules
            .iter()
            .any(|r| r.shape.as_ref().is_some_and(CopyShape::runs_rhai));
        let templates_read_meta = rules
            .iter()
            .any(|r| r.template.as_ref().is_some_and(TopicTemplate::reads_meta));
        let limits_rates = rules.iter().any(|r| r.limiter.is_some());
        (
            RuleSet {
                engine,
                rules,
                mode,
                paths,
                index,
                uses_meta,
                samples,
                shapes_run_rhai,
                has_groups: !groups.is_empty(),
                limits_rates,
                templates_read_meta,
                protected: protected.clone(),
            },
            quarantined,
        )
    }

    /// Sets the wall-clock budget of one condition on one record (default
    /// [`crate::engine::DEFAULT_EVAL_BUDGET`]).
    pub fn with_eval_budget(mut self, budget: Duration) -> Self {
        self.engine = sandboxed_engine_with_budget(budget);
        self
    }

    /// Runs one rule's condition through Rhai, keeping its overrun record.
    fn evaluate_rhai(
        &self,
        index: usize,
        scope: &mut Scope<'_>,
        evaluation: &mut Evaluation,
    ) -> Result<bool, EvalError> {
        let rule = &self.rules[index];
        if rule.overruns.is_quarantined() {
            return Err(EvalError::Quarantined(QUARANTINE_AFTER_OVERRUNS));
        }
        let outcome = rule.condition.evaluate(&self.engine, scope);
        match outcome {
            Err(EvalError::TimeBudget | EvalError::OperationLimit(_)) => {
                if rule.overruns.overrun() {
                    evaluation.quarantined.push(index);
                }
            }
            _ => rule.overruns.in_time(),
        }
        outcome
    }

    /// How this set evaluates.
    pub fn mode(&self) -> EvalMode {
        self.mode
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// Whether any condition, sampling (which reads the key) or copy shape reads `meta`;
    /// callers without it may pass empty metadata.
    pub fn reads_meta(&self) -> bool {
        self.uses_meta || self.samples || self.shapes_run_rhai || self.templates_read_meta
    }

    /// Shapes the copies of one record (see [`crate::copy_shape`]): decode it at most once,
    /// whatever the number of shaped copies.
    pub fn shaper<'s, 'a>(
        &'s self,
        payload: &'a [u8],
        meta: &'s RecordMeta<'a>,
    ) -> CopyShaper<'s, 'a> {
        CopyShaper::new(&self.engine, payload, meta)
    }

    /// Rules that are evaluated (not suspended).
    pub fn active_count(&self) -> usize {
        self.rules.iter().filter(|r| !r.definition.suspend).count()
    }

    /// Decodes a record value without metadata (no key, no headers, topic `""`) and evaluates
    /// every non-suspended rule on it; see [`RuleSet::evaluate_record`].
    pub fn evaluate(&self, payload: &[u8]) -> Result<Evaluation, DecodeError> {
        self.evaluate_record(payload, &RecordMeta::default())
    }

    /// Decodes a record value and evaluates every non-suspended rule on it, with `meta` as what
    /// conditions read as `meta`.
    pub fn evaluate_record<'a>(
        &self,
        payload: &'a [u8],
        meta: &RecordMeta<'a>,
    ) -> Result<Evaluation, DecodeError> {
        let mut evaluation = self.evaluate_conditions(payload, meta)?;
        if self.has_groups {
            let Evaluation {
                matches, excluded, ..
            } = &mut evaluation;
            crate::exclusive_group::exclude(matches, excluded, |index| self.rules[index].group);
        }
        if self.samples {
            self.sample(&mut evaluation, meta.key, payload);
        }
        Ok(evaluation)
    }

    fn evaluate_conditions<'a>(
        &self,
        payload: &'a [u8],
        meta: &RecordMeta<'a>,
    ) -> Result<Evaluation, DecodeError> {
        if self.mode == EvalMode::RhaiOnly {
            let value = decode_json_object(payload)?;
            return Ok(self.evaluate_value(&value, meta));
        }
        let mut slots = match extract_slots(&self.paths, payload) {
            Ok(slots) => slots,
            // Not a JSON object: the full decoder reports exactly why.
            Err(_) => {
                let value = decode_json_object(payload)?;
                return Ok(self.evaluate_value(&value, meta));
            }
        };
        if self.paths.reads_meta() {
            fill_meta_slots(&self.paths, meta, &mut slots);
        }
        Ok(self.evaluate_slots(&slots, payload, meta))
    }

    /// Moves the matches a rule's `sample` leaves out to `sampled_out`.
    fn sample(&self, evaluation: &mut Evaluation, key: Option<&[u8]>, payload: &[u8]) {
        evaluation.matches.retain(|&index| {
            let kept = self.rules[index]
                .definition
                .sample
                .is_none_or(|fraction| crate::sampling::sampled_in(fraction, key, payload));
            if !kept {
                evaluation.sampled_out.push(index);
            }
            kept
        });
    }

    /// The Rhai scope of one record: `record`, and `meta` when a condition reads it.
    fn scope(&self, record: &serde_json::Value, meta: &RecordMeta<'_>) -> Scope<'static> {
        let mut scope = Scope::new();
        scope.push_constant_dynamic(RECORD_VARIABLE, json_to_dynamic(record));
        if self.uses_meta {
            scope.push_constant_dynamic(META_VARIABLE, meta.to_dynamic());
        }
        scope
    }

    /// Fast path: index candidates, native conditions, Rhai (with the record converted once)
    /// only for the rules that need it.
    fn evaluate_slots(
        &self,
        slots: &[Value<'_>],
        payload: &[u8],
        meta: &RecordMeta<'_>,
    ) -> Evaluation {
        let mut evaluation = Evaluation::default();
        let mut rhai_scope: Option<Scope<'static>> = None;
        let candidates;
        let rules: &[usize] = if self.index.has_indexed() {
            candidates = self.index.candidates(slots);
            &candidates
        } else {
            self.index.unindexed()
        };
        for &index in rules {
            let rule = &self.rules[index];
            let fast = rule.fast.as_ref().map(|f| f.evaluate(slots));
            let outcome = match fast {
                Some(Ok(result)) => Ok(result),
                _ => {
                    let scope = rhai_scope.get_or_insert_with(|| {
                        let value: serde_json::Value =
                            serde_json::from_slice(payload).unwrap_or_default();
                        self.scope(&value, meta)
                    });
                    self.evaluate_rhai(index, scope, &mut evaluation)
                }
            };
            match outcome {
                Ok(true) => evaluation.matches.push(index),
                Ok(false) => {}
                Err(error) => evaluation.failures.push(RuleFailure { rule: index, error }),
            }
        }
        evaluation
    }

    /// Evaluates a decoded record with its metadata, every rule by Rhai. A failing rule never
    /// stops the others.
    fn evaluate_value(&self, record: &serde_json::Value, meta: &RecordMeta<'_>) -> Evaluation {
        let mut evaluation = Evaluation::default();
        if self.rules.is_empty() {
            return evaluation;
        }
        let mut scope = self.scope(record, meta);
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.definition.suspend {
                continue;
            }
            match self.evaluate_rhai(index, &mut scope, &mut evaluation) {
                Ok(true) => evaluation.matches.push(index),
                Ok(false) => {}
                Err(error) => evaluation.failures.push(RuleFailure { rule: index, error }),
            }
        }
        evaluation
    }

    /// Whether any rule has a `maxRecordsPerSecond` (else [`RuleSet::throttle`] does nothing).
    pub fn limits_rates(&self) -> bool {
        self.limits_rates
    }

    /// Moves the matches of active rules over their `maxRecordsPerSecond` at `now` to
    /// `throttled`. Only the router calls it: a rate depends on time and traffic, which `eval`
    /// and rule tests cannot predict.
    pub fn throttle(&self, evaluation: &mut Evaluation, now: Instant) {
        let Evaluation {
            matches, throttled, ..
        } = evaluation;
        matches.retain(|&index| {
            let rule = &self.rules[index];
            let kept = rule.definition.mode != Mode::Active
                || rule.limiter.as_ref().is_none_or(|l| l.try_take(now));
            if !kept {
                throttled.push(index);
            }
            kept
        });
    }

    /// Every copy an evaluation asks for, in evaluation order: active matching rules only, one
    /// copy per topic (the first rule to name a topic, fixed or rendered, decides its tier and
    /// shape). `run` and `eval` both build their copies here, so `eval` predicts `run`.
    pub fn copies<'r>(
        &'r self,
        evaluation: &Evaluation,
        payload: &[u8],
        meta: &RecordMeta<'_>,
    ) -> Vec<PlannedCopy<'r>> {
        let mut copies: Vec<PlannedCopy<'r>> = Vec::with_capacity(evaluation.matches.len());
        let mut topics: Vec<Cow<'r, str>> = Vec::with_capacity(evaluation.matches.len());
        let mut shaper = self.shaper(payload, meta);
        for &index in &evaluation.matches {
            let rule = &self.rules[index];
            if rule.definition.mode != Mode::Active {
                continue;
            }
            let topic = match &rule.template {
                None => Ok(Cow::Borrowed(rule.definition.target_topic.as_str())),
                Some(template) => shaper
                    .render_topic(template)
                    .map_err(CopyError::Topic)
                    .and_then(|topic| {
                        self.protected
                            .check(&topic)
                            .map_err(|refused| CopyError::ProtectedTopic(refused.to_string()))?;
                        Ok(Cow::Owned(topic))
                    }),
            };
            let outcome = match topic {
                Ok(topic) if topics.contains(&topic) => continue,
                Ok(topic) => {
                    topics.push(topic.clone());
                    shaper.shape(rule.shape.as_ref()).map(|parts| ShapedCopy {
                        topic,
                        rendered: rule.template.is_some(),
                        parts,
                    })
                }
                Err(error) => Err(error),
            };
            copies.push(PlannedCopy {
                rule: index,
                tier: rule.definition.tier,
                outcome,
            });
        }
        copies
    }
}

/// A rule's token bucket: the previous version's when its limit is unchanged, so a hot swap
/// neither refills nor empties it.
fn limiter_for(
    definition: &RuleDefinition,
    previous: Option<&&CompiledRule>,
) -> Option<Arc<RateLimiter>> {
    let per_second = definition.max_records_per_second?;
    previous
        .and_then(|p| p.limiter.as_ref())
        .filter(|l| l.per_second() == per_second)
        .cloned()
        .or_else(|| Some(Arc::new(RateLimiter::new(per_second, Instant::now()))))
}
