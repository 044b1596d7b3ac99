//! `eval`: route JSON lines offline with exactly the engine and order `run` uses.
//!
//! Each input line is either the record's value (`--format value`, the default) or an
//! [`Envelope`] giving the value and the metadata conditions read as `meta` (`--format envelope`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use streamsplit_rules::{RecordMeta, RuleSet};

/// What one input line holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// The record's value (a JSON object per line); no key, no headers, topic `""`.
    #[default]
    Value,
    /// An envelope: `{"value": {...}, "key": "k", "headers": {"x": "v"}, "topic": "t",
    /// "partition": 0, "offset": 0, "timestamp": 1700000000000}`; every field optional.
    Envelope,
}

/// A record with its metadata, as `eval --format envelope` reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Envelope {
    /// The value as JSON (encoded as the record's bytes).
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// The value as literal text instead, e.g. to try a malformed record.
    #[serde(default)]
    pub raw_value: Option<String>,
    /// The key.
    #[serde(default)]
    pub key: Option<String>,
    /// Headers: `{"name": "value"}`, or `[["name", "value"], ...]` to repeat a name; a `null`
    /// value is a header without value.
    #[serde(default)]
    pub headers: EnvelopeHeaders,
    /// Source topic.
    #[serde(default)]
    pub topic: String,
    /// Source partition.
    #[serde(default)]
    pub partition: i32,
    /// Source offset.
    #[serde(default)]
    pub offset: i64,
    /// Timestamp in milliseconds.
    #[serde(default)]
    pub timestamp: Option<i64>,
}

/// An envelope's headers.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum EnvelopeHeaders {
    /// One value per name.
    Map(BTreeMap<String, Option<String>>),
    /// In record order, names may repeat.
    List(Vec<(String, Option<String>)>),
}

impl Default for EnvelopeHeaders {
    fn default() -> Self {
        EnvelopeHeaders::List(Vec::new())
    }
}

impl Envelope {
    /// The record's value bytes.
    fn payload(&self) -> Result<Vec<u8>, String> {
        match (&self.value, &self.raw_value) {
            (Some(_), Some(_)) => Err("give value or rawValue, not both".into()),
            (Some(value), None) => serde_json::to_vec(value).map_err(|e| e.to_string()),
            (None, Some(raw)) => Ok(raw.clone().into_bytes()),
            (None, None) => Ok(Vec::new()),
        }
    }

    /// The metadata conditions read.
    fn meta(&self) -> RecordMeta<'_> {
        fn as_bytes(value: &Option<String>) -> Option<&[u8]> {
            value.as_deref().map(str::as_bytes)
        }
        let headers = match &self.headers {
            EnvelopeHeaders::Map(map) => map
                .iter()
                .map(|(name, value)| (name.as_str(), as_bytes(value)))
                .collect(),
            EnvelopeHeaders::List(list) => list
                .iter()
                .map(|(name, value)| (name.as_str(), as_bytes(value)))
                .collect(),
        };
        RecordMeta {
            key: as_bytes(&self.key),
            headers,
            topic: &self.topic,
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
        }
    }
}

/// One output line.
#[derive(Debug, Serialize)]
pub struct EvalLine<'a> {
    /// 1-based input line number.
    pub line: usize,
    /// Target topics of active matching rules, in evaluation order, without duplicates
    /// (templated topics rendered; whether they exist is checked by `run` only).
    pub targets: Vec<Cow<'a, str>>,
    /// Rules that failed on the record.
    pub errors: Vec<EvalRuleError>,
    /// Matching rules whose `sample` left the record out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sampled_out: Vec<String>,
    /// Matching rules an earlier rule of their exclusive group took the record from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
    /// The value of each copy a rule shapes (`project`, `transform`), by target topic: JSON as
    /// it is, other text as a JSON string.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<Cow<'a, str>, Box<serde_json::value::RawValue>>,
    /// The key of each copy a rule re-keys, by target topic.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<Cow<'a, str>, String>,
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

/// Evaluates one record.
pub fn eval_record<'a>(
    rules: &'a RuleSet,
    number: usize,
    payload: &[u8],
    meta: &RecordMeta<'_>,
) -> EvalLine<'a> {
    match rules.evaluate_record(payload, meta) {
        Ok(evaluation) => {
            let mut errors: Vec<EvalRuleError> = evaluation
                .failures
                .iter()
                .map(|f| EvalRuleError {
                    rule: rules.rules()[f.rule].definition.id.to_string(),
                    message: f.error.to_string(),
                })
                .collect();
            let mut targets = Vec::new();
            let mut values = BTreeMap::new();
            let mut keys = BTreeMap::new();
            // Exactly as `run` builds copies: a copy that cannot be made is a rule error.
            for copy in rules.copies(&evaluation, payload, meta) {
                match copy.outcome {
                    Ok(shaped) => {
                        if let Some(value) = shaped.parts.value.and_then(|v| shown(&v)) {
                            values.insert(shaped.topic.clone(), value);
                        }
                        if let Some(key) = shaped.parts.key {
                            let key = String::from_utf8_lossy(&key).into_owned();
                            keys.insert(shaped.topic.clone(), key);
                        }
                        targets.push(shaped.topic);
                    }
                    Err(error) => errors.push(EvalRuleError {
                        rule: rules.rules()[copy.rule].definition.id.to_string(),
                        message: error.to_string(),
                    }),
                }
            }
            let names = |indices: &[usize]| -> Vec<String> {
                indices
                    .iter()
                    .map(|&rule| rules.rules()[rule].definition.id.to_string())
                    .collect()
            };
            EvalLine {
                line: number,
                targets,
                errors,
                values,
                keys,
                sampled_out: names(&evaluation.sampled_out),
                excluded: names(&evaluation.excluded),
                exception: None,
            }
        }
        Err(error) => EvalLine {
            line: number,
            targets: Vec::new(),
            errors: Vec::new(),
            sampled_out: Vec::new(),
            excluded: Vec::new(),
            values: BTreeMap::new(),
            keys: BTreeMap::new(),
            exception: Some(EvalException {
                kind: "decode",
                message: error.to_string(),
            }),
        },
    }
}

/// A copy's value for the output line: itself when it is JSON, else as a JSON string.
fn shown(value: &[u8]) -> Option<Box<serde_json::value::RawValue>> {
    let text = String::from_utf8_lossy(value).into_owned();
    serde_json::value::RawValue::from_string(text.clone())
        .or_else(|_| serde_json::value::to_raw_value(&text))
        .ok()
}

/// Why `eval` stopped.
#[derive(Debug, thiserror::Error)]
pub enum EvalInputError {
    /// Reading input or writing output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A line is not an envelope.
    #[error("line {line}: not an envelope: {message}")]
    Envelope {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// Evaluates every line of `input`, read as `format`.
pub fn eval(
    rules: &RuleSet,
    format: InputFormat,
    input: impl BufRead,
    out: &mut impl Write,
) -> Result<(), EvalInputError> {
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        let number = index + 1;
        let result = match format {
            InputFormat::Value => {
                eval_record(rules, number, line.as_bytes(), &RecordMeta::default())
            }
            InputFormat::Envelope => {
                let invalid = |message: String| EvalInputError::Envelope {
                    line: number,
                    message,
                };
                let envelope: Envelope =
                    serde_json::from_str(&line).map_err(|e| invalid(e.to_string()))?;
                let payload = envelope.payload().map_err(invalid)?;
                eval_record(rules, number, &payload, &envelope.meta())
            }
        };
        serde_json::to_writer(&mut *out, &result).map_err(std::io::Error::from)?;
        writeln!(out)?;
    }
    Ok(out.flush()?)
}
