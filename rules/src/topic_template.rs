//! Templated target topics: `targetTopic: logs.{record.app}` picks each copy's topic from the
//! record, within the rule's `targetTopicPattern` (e.g. `logs.*`).
//!
//! Placeholders: `{record.<dotted path>}` (a string as it is, an integer or bool as its text),
//! `{meta.topic}`, `{meta.partition}`, `{meta.key}` (UTF-8 keys) and `{meta.headers.<name>}`
//! (the last header of that name, UTF-8). A rendered topic that is missing a value, is not a
//! legal topic name or lies outside the pattern is a rule error for that record: the record goes
//! to the exception topic with the reason. The router never creates topics; it also refuses
//! rendered topics that do not exist (see the router's `known_topics`).

use thiserror::Error;

use crate::metadata::RecordMeta;
use crate::topic_name::{is_topic_char, validate_topic_name};
use crate::topic_pattern::{pattern_matches, validate_pattern};
use crate::validation::RuleError;

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Vec<String>),
    Topic,
    Partition,
    Key,
    Header(String),
}

/// A compiled templated target topic and the pattern its topics must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicTemplate {
    text: String,
    parts: Vec<Part>,
    pattern: String,
}

/// Why one record's topic could not be rendered.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RenderError {
    /// A placeholder has no usable value in this record.
    #[error("targetTopic {template}: {placeholder} {problem}")]
    Missing {
        /// The rule's template.
        template: String,
        /// The placeholder, e.g. `record.app`.
        placeholder: String,
        /// What is wrong with its value.
        problem: &'static str,
    },
    /// The rendered name is not a legal topic name.
    #[error("targetTopic {template} rendered {topic:?}, not a legal topic name: {reason}")]
    IllegalName {
        /// The rule's template.
        template: String,
        /// The rendered name.
        topic: String,
        /// Kafka's objection.
        reason: String,
    },
    /// The rendered topic lies outside `targetTopicPattern`.
    #[error("targetTopic {template} rendered {topic}, outside targetTopicPattern {pattern}")]
    OutsidePattern {
        /// The rule's template.
        template: String,
        /// The rendered topic.
        topic: String,
        /// The rule's pattern.
        pattern: String,
    },
}

impl TopicTemplate {
    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether rendering reads the record's metadata (key, headers, topic, partition).
    pub fn reads_meta(&self) -> bool {
        self.parts
            .iter()
            .any(|p| !matches!(p, Part::Literal(_) | Part::Field(_)))
    }

    /// The pattern its topics must match.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The topic of one record: rendered, a legal name, within the pattern. `field` reads a
    /// dotted path of the decoded record.
    pub fn render<'v>(
        &self,
        meta: &RecordMeta<'_>,
        mut field: impl FnMut(&[String]) -> Option<&'v serde_json::Value>,
    ) -> Result<String, RenderError> {
        let mut topic = String::new();
        for part in &self.parts {
            let missing = |placeholder: String, problem| RenderError::Missing {
                template: self.text.clone(),
                placeholder,
                problem,
            };
            match part {
                Part::Literal(text) => topic.push_str(text),
                Part::Field(path) => match field(path) {
                    Some(serde_json::Value::String(text)) => topic.push_str(text),
                    Some(serde_json::Value::Bool(flag)) => topic.push_str(&flag.to_string()),
                    Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => {
                        topic.push_str(&n.to_string())
                    }
                    None | Some(serde_json::Value::Null) => {
                        return Err(missing(
                            format!("record.{}", path.join(".")),
                            "is missing or null",
                        ))
                    }
                    Some(_) => {
                        return Err(missing(
                            format!("record.{}", path.join(".")),
                            "is not a string, integer or bool",
                        ))
                    }
                },
                Part::Topic => topic.push_str(meta.topic),
                Part::Partition => topic.push_str(&meta.partition.to_string()),
                Part::Key => match meta.key_text() {
                    Some(key) => topic.push_str(key),
                    None => return Err(missing("meta.key".into(), "is absent or not UTF-8")),
                },
                Part::Header(name) => match meta.header_text(name) {
                    Some(value) => topic.push_str(value),
                    None => {
                        return Err(missing(
                            format!("meta.headers.{name}"),
                            "is absent, empty or not UTF-8",
                        ))
                    }
                },
            }
        }
        if let Err(reason) = validate_topic_name(&topic) {
            return Err(RenderError::IllegalName {
                template: self.text.clone(),
                topic,
                reason,
            });
        }
        if !pattern_matches(&self.pattern, &topic) {
            return Err(RenderError::OutsidePattern {
                template: self.text.clone(),
                topic,
                pattern: self.pattern.clone(),
            });
        }
        Ok(topic)
    }
}

/// Whether a `targetTopic` is a template (it holds a `{` or `}`).
pub fn is_template(target_topic: &str) -> bool {
    target_topic.contains(['{', '}'])
}

/// Checks a rule's target: a legal topic name without pattern, or a template with a pattern.
/// Returns the compiled template when there is one.
pub fn compile_target(
    target_topic: &str,
    pattern: Option<&str>,
) -> Result<Option<TopicTemplate>, RuleError> {
    let invalid = |reason: String| RuleError::InvalidTopicTemplate(reason);
    if !is_template(target_topic) {
        validate_topic_name(target_topic).map_err(RuleError::InvalidTopic)?;
        return match pattern {
            Some(_) => Err(invalid(format!(
                "targetTopicPattern is only for a templated targetTopic, and {target_topic} has no placeholder"
            ))),
            None => Ok(None),
        };
    }
    let Some(pattern) = pattern else {
        return Err(invalid(format!(
            "targetTopic {target_topic} is a template: targetTopicPattern must say which topics it may render to (e.g. logs.*)"
        )));
    };
    validate_pattern(pattern).map_err(|e| invalid(format!("targetTopicPattern: {e}")))?;
    let parts =
        parse(target_topic).map_err(|e| invalid(format!("targetTopic {target_topic}: {e}")))?;
    Ok(Some(TopicTemplate {
        text: target_topic.to_string(),
        parts,
        pattern: pattern.to_string(),
    }))
}

fn parse(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let open = rest.find('{').unwrap_or(rest.len());
        let literal = &rest[..open];
        if literal.contains('}') {
            return Err("'}' without a matching '{'".into());
        }
        if let Some(bad) = literal.chars().find(|&c| !is_topic_char(c)) {
            return Err(format!(
                "{bad:?} outside a placeholder; only letters, digits, '.', '_' and '-' are allowed"
            ));
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal.to_string()));
        }
        rest = &rest[open..];
        if rest.is_empty() {
            break;
        }
        let close = rest.find('}').ok_or("'{' without a closing '}'")?;
        parts.push(placeholder(&rest[1..close])?);
        rest = &rest[close + 1..];
    }
    if !parts.iter().any(|p| !matches!(p, Part::Literal(_))) {
        return Err("no placeholder".into());
    }
    Ok(parts)
}

fn placeholder(text: &str) -> Result<Part, String> {
    let segments: Vec<&str> = text.split('.').collect();
    if segments.iter().any(|s| s.is_empty() || s.contains('{')) {
        return Err(format!("placeholder {{{text}}} is malformed"));
    }
    match segments.as_slice() {
        ["record", path @ ..] if !path.is_empty() => {
            Ok(Part::Field(path.iter().map(|s| s.to_string()).collect()))
        }
        ["meta", "topic"] => Ok(Part::Topic),
        ["meta", "partition"] => Ok(Part::Partition),
        ["meta", "key"] => Ok(Part::Key),
        ["meta", "headers", name] => Ok(Part::Header(name.to_string())),
        _ => Err(format!(
            "placeholder {{{text}}} is not one of record.<field>, meta.topic, meta.partition, meta.key, meta.headers.<name>"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(template: &str, pattern: &str, record: serde_json::Value) -> Result<String, String> {
        let template = compile_target(template, Some(pattern))
            .map_err(|e| e.to_string())?
            .expect("a template");
        let meta = RecordMeta {
            key: Some(b"user-7"),
            headers: vec![("region", Some(b"eu"))],
            topic: "events",
            partition: 3,
            ..Default::default()
        };
        template
            .render(&meta, |path| {
                path.iter()
                    .try_fold(&record, |value, segment| value.get(segment))
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn placeholders_render_fields_and_metadata() {
        let record = json!({"app": "shop", "tenant": {"id": 42}, "beta": true});
        assert_eq!(
            render("logs.{record.app}", "logs.*", record.clone()),
            Ok("logs.shop".into())
        );
        assert_eq!(
            render("t-{record.tenant.id}.{record.beta}", "t-*", record.clone()),
            Ok("t-42.true".into())
        );
        assert_eq!(
            render(
                "{meta.topic}.{meta.partition}.{meta.headers.region}.{meta.key}",
                "events.*",
                record
            ),
            Ok("events.3.eu.user-7".into())
        );
    }

    #[test]
    fn a_record_that_cannot_name_an_allowed_topic_is_refused_with_the_reason() {
        let missing = render("logs.{record.app}", "logs.*", json!({})).unwrap_err();
        assert!(missing.contains("record.app is missing"), "{missing}");
        let float = render("logs.{record.app}", "logs.*", json!({"app": 1.5})).unwrap_err();
        assert!(float.contains("not a string, integer or bool"), "{float}");
        let illegal = render("logs.{record.app}", "logs.*", json!({"app": "a/b"})).unwrap_err();
        assert!(illegal.contains("not a legal topic name"), "{illegal}");
        let outside = render("{record.app}", "logs.*", json!({"app": "payments"})).unwrap_err();
        assert!(
            outside.contains("outside targetTopicPattern logs.*"),
            "{outside}"
        );
    }

    #[test]
    fn malformed_templates_and_missing_patterns_are_rule_errors() {
        for bad in [
            "logs.{record.app",
            "logs.record.app}",
            "logs.{}",
            "logs.{meta.size}",
            "a b.{record.x}",
            "{record}",
        ] {
            assert!(
                compile_target(bad, Some("*")).is_err(),
                "{bad} should be refused"
            );
        }
        let no_pattern = compile_target("logs.{record.app}", None).unwrap_err();
        assert_eq!(no_pattern.reason(), "InvalidTopicTemplate");
        let stray = compile_target("logs", Some("logs*")).unwrap_err();
        assert!(stray
            .to_string()
            .contains("only for a templated targetTopic"));
        assert_eq!(compile_target("logs", None), Ok(None));
        assert!(matches!(
            compile_target("bad topic", None),
            Err(RuleError::InvalidTopic(_))
        ));
    }
}
