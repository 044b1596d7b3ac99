//! `eval`: route JSON lines offline with exactly the engine and order `run` uses.

use std::io::{BufRead, Write};

use serde::Serialize;
use streamsplit_rules::RuleSet;

/// One output line.
#[derive(Debug, Serialize)]
pub struct EvalLine<'a> {
    /// 1-based input line number.
    pub line: usize,
    /// Target topics of active matching rules, in evaluation order, without duplicates.
    pub targets: Vec<&'a str>,
    /// Rules that failed on the record.
    pub errors: Vec<EvalRuleError>,
    /// Why the record as a whole is an exception (it cannot be decoded).
    pub exception: Option<EvalException>,
}

/// A rule that failed on a record.
#[derive(Debug, Serialize)]
pub struct EvalRuleError {
    /// `namespace/name`.
    pub rule: String,
    /// What went wrong.
    pub message: String,
}

/// A record-level exception.
#[derive(Debug, Serialize)]
pub struct EvalException {
    /// `decode`.
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
}

/// Evaluates one input line.
pub fn eval_line<'a>(rules: &'a RuleSet, number: usize, line: &str) -> EvalLine<'a> {
    match rules.evaluate(line.as_bytes()) {
        Ok(evaluation) => EvalLine {
            line: number,
            targets: rules
                .deliveries(&evaluation)
                .iter()
                .map(|d| d.topic)
                .collect(),
            errors: evaluation
                .failures
                .iter()
                .map(|f| EvalRuleError {
                    rule: rules.rules()[f.rule].definition.id.to_string(),
                    message: f.error.to_string(),
                })
                .collect(),
            exception: None,
        },
        Err(error) => EvalLine {
            line: number,
            targets: Vec::new(),
            errors: Vec::new(),
            exception: Some(EvalException {
                kind: "decode",
                message: error.to_string(),
            }),
        },
    }
}

/// Evaluates every line of `input`.
pub fn eval(rules: &RuleSet, input: impl BufRead, out: &mut impl Write) -> std::io::Result<()> {
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        let result = eval_line(rules, index + 1, &line);
        serde_json::to_writer(&mut *out, &result)?;
        writeln!(out)?;
    }
    out.flush()
}
