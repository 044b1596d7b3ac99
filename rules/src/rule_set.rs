//! A compiled, immutable set of rules and its evaluation of records.
//!
//! The router swaps whole `RuleSet`s atomically, so every record is evaluated by exactly one
//! set. [`RuleSet::evaluate`] takes the raw record bytes: how a record is decoded and how
//! conditions run behind it can change (fast paths, indexes) without touching the router.

use std::collections::BTreeSet;

use rhai::{Engine, Scope};

use crate::condition::{Condition, EvalError};
use crate::definition::RuleDefinition;
use crate::engine::{sandboxed_engine, RECORD_VARIABLE};
use crate::fast::{compile_condition, extract_slots, FastCondition, FieldPaths, Value};
use crate::record::{decode_json_object, json_to_dynamic, DecodeError};
use crate::rule_id::RuleId;
use crate::rule_index::RuleIndex;
use crate::spec::{Mode, Tier};
use crate::validation::{compile_rule, RuleError};

/// How conditions are evaluated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EvalMode {
    /// Fast path and rule index where they apply, Rhai for the rest (the default).
    #[default]
    Fast,
    /// Every condition by Rhai, every rule for every record (for comparison and benchmarks).
    RhaiOnly,
}

/// A rule ready to evaluate.
#[derive(Debug)]
pub struct CompiledRule {
    /// What the rule says.
    pub definition: RuleDefinition,
    condition: Condition,
    fast: Option<FastCondition>,
}

impl CompiledRule {
    /// Whether the condition runs on the fast path.
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }
}

/// A rule left out of a rule set, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantinedRule {
    /// Which rule.
    pub id: RuleId,
    /// Why it cannot run.
    pub error: RuleError,
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
}

/// Where one copy of a record goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// Index of the first active rule that matched with this topic.
    pub rule: usize,
    /// Target topic.
    pub topic: &'a str,
    /// Tier of that rule.
    pub tier: Tier,
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
        let compiled: std::collections::HashMap<&str, &Condition> = previous
            .map(|p| {
                p.rules
                    .iter()
                    .map(|r| (r.definition.condition.as_str(), &r.condition))
                    .collect()
            })
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
                });
                continue;
            }
            let reused = compiled
                .get(definition.condition.as_str())
                .map(|c| (*c).clone());
            let result = match reused {
                Some(condition) => crate::topic_name::validate_topic_name(&definition.target_topic)
                    .map(|()| condition)
                    .map_err(RuleError::InvalidTopic),
                None => compile_rule(&engine, &definition.condition, &definition.target_topic),
            };
            match result {
                Ok(condition) => rules.push(CompiledRule {
                    definition,
                    condition,
                    fast: None,
                }),
                Err(error) => quarantined.push(QuarantinedRule {
                    id: definition.id,
                    error,
                }),
            }
        }
        rules.sort_by(|a, b| {
            (a.definition.tier, &a.definition.id).cmp(&(b.definition.tier, &b.definition.id))
        });
        let mut paths = FieldPaths::default();
        let mut keys = Vec::new();
        for (index, rule) in rules.iter_mut().enumerate() {
            if rule.definition.suspend {
                continue;
            }
            if mode == EvalMode::Fast {
                rule.fast = compile_condition(rule.condition.ast(), &mut paths);
            }
            let key = rule.fast.as_ref().and_then(|f| f.index_key(&paths));
            keys.push((index, key));
        }
        let index = RuleIndex::build(keys);
        (
            RuleSet {
                engine,
                rules,
                mode,
                paths,
                index,
            },
            quarantined,
        )
    }

    /// How this set evaluates.
    pub fn mode(&self) -> EvalMode {
        self.mode
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// Rules that are evaluated (not suspended).
    pub fn active_count(&self) -> usize {
        self.rules.iter().filter(|r| !r.definition.suspend).count()
    }

    /// Decodes a record value and evaluates every non-suspended rule on it.
    pub fn evaluate(&self, payload: &[u8]) -> Result<Evaluation, DecodeError> {
        if self.mode == EvalMode::RhaiOnly {
            let value = decode_json_object(payload)?;
            return Ok(self.evaluate_value(&value));
        }
        let slots = match extract_slots(&self.paths, payload) {
            Ok(slots) => slots,
            // Not a JSON object: the full decoder reports exactly why.
            Err(_) => {
                let value = decode_json_object(payload)?;
                return Ok(self.evaluate_value(&value));
            }
        };
        Ok(self.evaluate_slots(&slots, payload))
    }

    /// Fast path: index candidates, native conditions, Rhai (with the record converted once)
    /// only for the rules that need it.
    fn evaluate_slots(&self, slots: &[Value<'_>], payload: &[u8]) -> Evaluation {
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
                        let mut scope = Scope::new();
                        scope.push_constant_dynamic(RECORD_VARIABLE, json_to_dynamic(&value));
                        scope
                    });
                    rule.condition.evaluate(&self.engine, scope)
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

    /// Evaluates an already decoded record. A failing rule never stops the others.
    pub fn evaluate_value(&self, record: &serde_json::Value) -> Evaluation {
        let mut evaluation = Evaluation::default();
        if self.rules.is_empty() {
            return evaluation;
        }
        let mut scope = Scope::new();
        scope.push_constant_dynamic(RECORD_VARIABLE, json_to_dynamic(record));
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.definition.suspend {
                continue;
            }
            match rule.condition.evaluate(&self.engine, &mut scope) {
                Ok(true) => evaluation.matches.push(index),
                Ok(false) => {}
                Err(error) => evaluation.failures.push(RuleFailure { rule: index, error }),
            }
        }
        evaluation
    }

    /// The copies an evaluation asks for: active matching rules only, one copy per topic
    /// (the first rule in evaluation order decides the tier).
    pub fn deliveries(&self, evaluation: &Evaluation) -> Vec<Delivery<'_>> {
        let mut deliveries: Vec<Delivery<'_>> = Vec::with_capacity(evaluation.matches.len());
        for &index in &evaluation.matches {
            let rule = &self.rules[index].definition;
            if rule.mode != Mode::Active {
                continue;
            }
            if deliveries.iter().any(|d| d.topic == rule.target_topic) {
                continue;
            }
            deliveries.push(Delivery {
                rule: index,
                topic: &rule.target_topic,
                tier: rule.tier,
            });
        }
        deliveries
    }
}
