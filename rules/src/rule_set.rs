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
use crate::record::{decode_json_object, json_to_dynamic, DecodeError};
use crate::rule_id::RuleId;
use crate::spec::{Mode, Tier};
use crate::validation::{compile_rule, RuleError};

/// A rule ready to evaluate.
#[derive(Debug)]
pub struct CompiledRule {
    /// What the rule says.
    pub definition: RuleDefinition,
    condition: Condition,
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
        RuleSet {
            engine: sandboxed_engine(),
            rules: Vec::new(),
        }
    }

    /// Compiles every definition; a rule that does not compile, has an illegal topic or repeats
    /// an identity is quarantined and the rest still form a working set.
    pub fn compile(
        definitions: impl IntoIterator<Item = RuleDefinition>,
    ) -> (RuleSet, Vec<QuarantinedRule>) {
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
            match compile_rule(&engine, &definition.condition, &definition.target_topic) {
                Ok(condition) => rules.push(CompiledRule {
                    definition,
                    condition,
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
        (RuleSet { engine, rules }, quarantined)
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
        let value = decode_json_object(payload)?;
        Ok(self.evaluate_value(&value))
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
