//! Rules grouped by `record.<field> == "<string>"`: a record only evaluates the rules indexed
//! under its own value of that field, plus the rules no index covers. Order and results equal
//! evaluating every rule (see `FastCondition::index_key` for why skipping is safe).

use std::collections::HashMap;

use crate::fast::Value;

/// Candidate rules per record.
#[derive(Debug, Default)]
pub struct RuleIndex {
    /// Rules evaluated for every record, in evaluation order.
    unindexed: Vec<usize>,
    /// Per indexed slot: string value -> rules, each list in evaluation order.
    by_slot: Vec<(usize, HashMap<String, Vec<usize>>)>,
}

impl RuleIndex {
    /// Builds the index from `(rule, key)` pairs given in evaluation order.
    pub fn build(rules: impl IntoIterator<Item = (usize, Option<(usize, String)>)>) -> Self {
        let mut index = RuleIndex::default();
        for (rule, key) in rules {
            match key {
                None => index.unindexed.push(rule),
                Some((slot, value)) => {
                    let position = match index.by_slot.iter().position(|(s, _)| *s == slot) {
                        Some(position) => position,
                        None => {
                            index.by_slot.push((slot, HashMap::new()));
                            index.by_slot.len() - 1
                        }
                    };
                    index.by_slot[position]
                        .1
                        .entry(value)
                        .or_default()
                        .push(rule);
                }
            }
        }
        index
    }

    /// Rules evaluated without index.
    pub fn unindexed(&self) -> &[usize] {
        &self.unindexed
    }

    /// Whether any rule is indexed.
    pub fn has_indexed(&self) -> bool {
        !self.by_slot.is_empty()
    }

    /// The rules a record must evaluate, in evaluation order.
    pub fn candidates(&self, slots: &[Value<'_>]) -> Vec<usize> {
        let mut candidates = self.unindexed.clone();
        for (slot, buckets) in &self.by_slot {
            if let Some(Value::Str(value)) = slots.get(*slot) {
                if let Some(rules) = buckets.get(value.as_ref()) {
                    candidates.extend_from_slice(rules);
                }
            }
        }
        if self.by_slot.len() > 1 || !self.unindexed.is_empty() {
            candidates.sort_unstable();
        }
        candidates
    }
}
