//! What every record must become, predicted by `streamsplit-router eval` on the same rules.
//!
//! `eval` reads JSON lines, so a value that is not UTF-8 cannot be given to it; such a value is
//! not JSON either, and the oracle predicts a `decode` exception for it directly. A record larger
//! than the router may produce (`--producer-property message.max.bytes`) has each predicted copy
//! replaced by a `produce` exception of the copy's rule, as the router's repair table says.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::Context;

use super::workload::{Workload, WorkloadRecord};

/// One copy a record must produce.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Expected {
    /// A copy on a rule's target topic.
    Target(String),
    /// An exception record of this kind (`decode`, `rule`, `produce`) for this rule (if any).
    Exception(String, Option<String>),
}

/// Every copy of every record, by record key.
#[derive(Debug, Default)]
pub struct Expectation {
    /// Record key → the copies it must produce.
    pub copies: BTreeMap<String, Vec<Expected>>,
}

impl Expectation {
    /// How many copies in all.
    pub fn total(&self) -> usize {
        self.copies.values().map(Vec::len).sum()
    }
}

/// The oracle: the router binary's `eval` on the workload's rules.
pub struct Oracle<'a> {
    /// `streamsplit-router`.
    pub router: &'a Path,
    /// Directory with the workload's rules.
    pub rules: &'a Path,
    /// The router's producer size limit, if the scenario sets one.
    pub producer_limit: Option<usize>,
}

impl Oracle<'_> {
    /// Predicts every record's copies.
    pub fn predict(
        &self,
        workload: &Workload,
        records: &[WorkloadRecord],
        scratch: &Path,
    ) -> anyhow::Result<Expectation> {
        let evaluable: Vec<&WorkloadRecord> = records
            .iter()
            .filter(|r| std::str::from_utf8(&r.value).is_ok_and(|s| !s.contains('\n')))
            .collect();
        let input = scratch.join("oracle-input.jsonl");
        let mut text = Vec::new();
        for record in &evaluable {
            text.extend_from_slice(&record.value);
            text.push(b'\n');
        }
        std::fs::write(&input, text)?;
        let output = Command::new(self.router)
            .arg("eval")
            .arg(self.rules)
            .arg("--input")
            .arg(&input)
            .output()
            .context("cannot run streamsplit-router eval")?;
        anyhow::ensure!(
            output.status.success(),
            "eval failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout)?;
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        anyhow::ensure!(
            lines.len() == evaluable.len(),
            "eval printed a line per input line"
        );

        let mut expectation = Expectation::default();
        for record in records {
            expectation
                .copies
                .insert(record.key.clone(), vec![decode_exception()]);
        }
        for (record, line) in evaluable.iter().zip(&lines) {
            let mut copies = Vec::new();
            if !line["exception"].is_null() {
                copies.push(decode_exception());
            }
            for error in line["errors"].as_array().into_iter().flatten() {
                let rule = error["rule"].as_str().map(str::to_string);
                copies.push(Expected::Exception("rule".into(), rule));
            }
            let oversized = self.producer_limit.is_some_and(|l| record.value.len() > l);
            for target in line["targets"].as_array().into_iter().flatten() {
                let topic = target.as_str().unwrap_or_default().to_string();
                copies.push(if oversized {
                    Expected::Exception("produce".into(), workload.rule_of(&topic))
                } else {
                    Expected::Target(topic)
                });
            }
            expectation.copies.insert(record.key.clone(), copies);
        }
        Ok(expectation)
    }
}

fn decode_exception() -> Expected {
    Expected::Exception("decode".into(), None)
}
