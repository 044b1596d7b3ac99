//! What a rule's copies hold when they are not the record itself: a projected value
//! ([`crate::projection`]), a value computed by a Rhai `transform`, and a key taken from a field
//! or a Rhai expression.
//!
//! Shaping runs only for copies that are delivered, once per copy. A copy that cannot be shaped
//! (the key field is missing, the transform fails) is a rule error: the original record goes to
//! the exception topic, never a copy shaped differently from what the rule says.

use rhai::{Dynamic, Engine, Scope};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::condition::{Condition, EvalError};
use crate::definition::RuleDefinition;
use crate::engine::RECORD_VARIABLE;
use crate::metadata::{RecordMeta, META_VARIABLE};
use crate::projection::{CompiledProjection, ProjectionError};
use crate::record::{dynamic_to_json, json_to_dynamic};
use crate::validation::RuleError;

/// Where a rule's copies take their key from (`spec.key`); exactly one of the two.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeySource {
    /// A dotted field path of the record (`user.id`): a string value as it is, any other value
    /// as its JSON text. A missing or `null` field is a rule error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A Rhai expression over `record` and `meta`: a string as it is, a number or bool as its
    /// text, a map or array as JSON. `()` is a rule error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// A compiled key source.
#[derive(Clone, Debug)]
enum CompiledKey {
    Field(Vec<String>),
    Expression(Condition),
}

/// How one rule shapes its copies.
#[derive(Clone, Debug)]
pub struct CopyShape {
    projection: Option<CompiledProjection>,
    transform: Option<Condition>,
    key: Option<CompiledKey>,
}

/// Why one copy could not be shaped.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CopyError {
    /// The record cannot be projected.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// A templated target topic cannot be rendered, or renders outside its pattern.
    #[error(transparent)]
    Topic(#[from] crate::topic_template::RenderError),
    /// A templated target topic rendered one of the router's own topics.
    #[error("{0}")]
    ProtectedTopic(String),
    /// A templated target topic rendered a topic that does not exist (the router never
    /// creates topics).
    #[error("targetTopic {template} rendered {topic}, which does not exist (the router never creates topics)")]
    UnknownTopic {
        /// The rule's template.
        template: String,
        /// The rendered topic.
        topic: String,
    },
    /// The transform failed on this record.
    #[error("transform: {0}")]
    Transform(EvalError),
    /// The transform returned something that is not a copy's value.
    #[error("transform returned {0}, expected a map, an array or a string")]
    TransformType(String),
    /// The key could not be taken.
    #[error("key: {0}")]
    Key(String),
}

/// A copy's value and key, where they differ from the record's own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyParts {
    /// The copy's value; the record's own when `None`.
    pub value: Option<Vec<u8>>,
    /// The copy's key; the record's own when `None`.
    pub key: Option<Vec<u8>>,
}

impl CopyShape {
    /// The shape a definition asks for (`None`: copies are the record), or why it is unusable.
    pub fn compile(engine: &Engine, rule: &RuleDefinition) -> Result<Option<CopyShape>, RuleError> {
        if rule.project.is_none() && rule.transform.is_none() && rule.key.is_none() {
            return Ok(None);
        }
        if rule.project.is_some() && rule.transform.is_some() {
            return Err(RuleError::InvalidTransform(
                "transform and project are exclusive: project inside the transform".into(),
            ));
        }
        let projection = match &rule.project {
            Some(projection) => Some(projection.compile().map_err(RuleError::InvalidProjection)?),
            None => None,
        };
        let transform = match &rule.transform {
            Some(source) => Some(
                Condition::compile(engine, source)
                    .map_err(|e| RuleError::InvalidTransform(e.to_string()))?,
            ),
            None => None,
        };
        let key = match &rule.key {
            None => None,
            Some(KeySource {
                field: Some(path),
                expression: None,
            }) => {
                let segments: Vec<String> = path.split('.').map(String::from).collect();
                if segments.iter().any(String::is_empty) {
                    return Err(RuleError::InvalidKey(format!(
                        "{path:?} is not a dotted field path"
                    )));
                }
                Some(CompiledKey::Field(segments))
            }
            Some(KeySource {
                field: None,
                expression: Some(source),
            }) => Some(CompiledKey::Expression(
                Condition::compile(engine, source)
                    .map_err(|e| RuleError::InvalidKey(e.to_string()))?,
            )),
            Some(_) => {
                return Err(RuleError::InvalidKey(
                    "give exactly one of field and expression".into(),
                ))
            }
        };
        Ok(Some(CopyShape {
            projection,
            transform,
            key,
        }))
    }

    /// Whether shaping runs Rhai (and so needs the record's metadata).
    pub fn runs_rhai(&self) -> bool {
        self.transform.is_some() || matches!(self.key, Some(CompiledKey::Expression(_)))
    }
}

/// Shapes the copies of one record, decoding it at most once whatever the number of copies.
pub struct CopyShaper<'s, 'a> {
    engine: &'s Engine,
    payload: &'a [u8],
    meta: &'s RecordMeta<'a>,
    decoded: Option<serde_json::Value>,
    scope: Option<Scope<'static>>,
}

impl<'s, 'a> CopyShaper<'s, 'a> {
    /// A shaper for one record.
    pub(crate) fn new(engine: &'s Engine, payload: &'a [u8], meta: &'s RecordMeta<'a>) -> Self {
        CopyShaper {
            engine,
            payload,
            meta,
            decoded: None,
            scope: None,
        }
    }

    /// The value and key of a copy shaped by `shape` (`None`: the record as it is).
    pub fn shape(&mut self, shape: Option<&CopyShape>) -> Result<CopyParts, CopyError> {
        let Some(shape) = shape else {
            return Ok(CopyParts::default());
        };
        let mut parts = CopyParts::default();
        if let Some(projection) = &shape.projection {
            parts.value = Some(projection.apply(self.payload).ok_or(ProjectionError)?);
        }
        if let Some(transform) = &shape.transform {
            let result = transform
                .evaluate_value(self.engine, self.scope())
                .map_err(CopyError::Transform)?;
            parts.value = Some(transform_bytes(result)?);
        }
        match &shape.key {
            None => {}
            Some(CompiledKey::Field(path)) => {
                let value = self.field(path);
                parts.key = Some(match value {
                    None | Some(serde_json::Value::Null) => {
                        return Err(CopyError::Key(format!(
                            "field {} is missing or null",
                            path.join(".")
                        )))
                    }
                    Some(serde_json::Value::String(text)) => text.clone().into_bytes(),
                    Some(other) => other.to_string().into_bytes(),
                });
            }
            Some(CompiledKey::Expression(expression)) => {
                let result = expression
                    .evaluate_value(self.engine, self.scope())
                    .map_err(|e| CopyError::Key(e.to_string()))?;
                parts.key = Some(key_bytes(result)?);
            }
        }
        Ok(parts)
    }

    /// The topic of one copy of a rule with a templated target topic.
    pub fn render_topic(
        &mut self,
        template: &crate::topic_template::TopicTemplate,
    ) -> Result<String, crate::topic_template::RenderError> {
        let meta = self.meta;
        let record = self.decoded();
        template.render(meta, |path| {
            path.iter()
                .try_fold(record, |value, segment| value.get(segment))
        })
    }

    fn decoded(&mut self) -> &serde_json::Value {
        let payload = self.payload;
        self.decoded
            .get_or_insert_with(|| serde_json::from_slice(payload).unwrap_or_default())
    }

    fn field(&mut self, path: &[String]) -> Option<&serde_json::Value> {
        path.iter()
            .try_fold(self.decoded(), |value, segment| value.get(segment))
    }

    fn scope(&mut self) -> &mut Scope<'static> {
        if self.scope.is_none() {
            let record = json_to_dynamic(self.decoded());
            let mut scope = Scope::new();
            scope.push_constant_dynamic(RECORD_VARIABLE, record);
            scope.push_constant_dynamic(META_VARIABLE, self.meta.to_dynamic());
            self.scope = Some(scope);
        }
        self.scope.get_or_insert_with(Scope::new)
    }
}

/// A transform's result as the copy's bytes: a string as it is, a map or array as JSON.
fn transform_bytes(result: Dynamic) -> Result<Vec<u8>, CopyError> {
    if result.is_string() {
        return Ok(result.to_string().into_bytes());
    }
    if result.is_map() || result.is_array() {
        return serde_json::to_vec(&dynamic_to_json(&result))
            .map_err(|e| CopyError::TransformType(e.to_string()));
    }
    Err(CopyError::TransformType(result.type_name().to_string()))
}

/// A key expression's result as the copy's key bytes.
fn key_bytes(result: Dynamic) -> Result<Vec<u8>, CopyError> {
    if result.is_unit() {
        return Err(CopyError::Key("the expression returned ()".into()));
    }
    if result.is_map() || result.is_array() {
        return serde_json::to_vec(&dynamic_to_json(&result))
            .map_err(|e| CopyError::Key(e.to_string()));
    }
    Ok(result.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::sandboxed_engine;
    use crate::rule_id::RuleId;
    use crate::spec::{Mode, Tier};

    fn rule(transform: Option<&str>, key: Option<KeySource>) -> RuleDefinition {
        RuleDefinition {
            id: RuleId::new(Some("t"), "r"),
            condition: "true".into(),
            target_topic: "t".into(),
            tier: Tier::Standard,
            mode: Mode::Active,
            suspend: false,
            sample: None,
            project: None,
            transform: transform.map(String::from),
            key,
            exclusive_group: None,
            max_records_per_second: None,
            target_topic_pattern: None,
        }
    }

    fn shape(
        rule: &RuleDefinition,
        payload: &[u8],
        meta: &RecordMeta<'_>,
    ) -> Result<CopyParts, CopyError> {
        let engine = sandboxed_engine();
        let shape = CopyShape::compile(&engine, rule).unwrap();
        CopyShaper::new(&engine, payload, meta).shape(shape.as_ref())
    }

    #[test]
    fn a_transform_builds_the_value_from_record_and_meta() {
        let meta = RecordMeta {
            key: Some(b"k1"),
            topic: "events",
            ..RecordMeta::default()
        };
        let rule = rule(
            Some(r#"#{id: record.id, from: meta.topic, tags: [1, 2.5, ()]}"#),
            None,
        );
        let parts = shape(&rule, br#"{"id": 7, "x": 1}"#, &meta).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&parts.value.unwrap()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"id": 7, "from": "events", "tags": [1, 2.5, null]})
        );
        assert_eq!(parts.key, None);
        let text = self::rule(Some(r#"`${record.id};${meta.key}`"#), None);
        assert_eq!(
            shape(&text, br#"{"id": 7}"#, &meta).unwrap().value.unwrap(),
            b"7;k1"
        );
        let number = self::rule(Some("record.id"), None);
        assert_eq!(
            shape(&number, br#"{"id": 7}"#, &meta),
            Err(CopyError::TransformType("i64".into()))
        );
    }

    #[test]
    fn keys_come_from_a_field_or_an_expression() {
        let meta = RecordMeta::default();
        let by_field = rule(
            None,
            Some(KeySource {
                field: Some("user.id".into()),
                expression: None,
            }),
        );
        let record = br#"{"user": {"id": "u7", "n": 3}}"#;
        assert_eq!(shape(&by_field, record, &meta).unwrap().key.unwrap(), b"u7");
        assert!(matches!(
            shape(&by_field, br#"{"user": {}}"#, &meta),
            Err(CopyError::Key(_))
        ));
        let numeric = rule(
            None,
            Some(KeySource {
                field: Some("user.n".into()),
                expression: None,
            }),
        );
        assert_eq!(shape(&numeric, record, &meta).unwrap().key.unwrap(), b"3");
        let by_expression = rule(
            None,
            Some(KeySource {
                field: None,
                expression: Some(r#"record.user.id + "-" + record.user.n"#.into()),
            }),
        );
        assert_eq!(
            shape(&by_expression, record, &meta).unwrap().key.unwrap(),
            b"u7-3"
        );
    }

    #[test]
    fn unusable_shapes_are_refused_with_their_reason() {
        let engine = sandboxed_engine();
        let both = RuleDefinition {
            project: Some(crate::projection::Projection {
                keep: vec!["a".into()],
                ..Default::default()
            }),
            ..rule(Some("#{}"), None)
        };
        let error = CopyShape::compile(&engine, &both).unwrap_err();
        assert_eq!(error.reason(), "InvalidTransform");
        let broken = rule(Some("#{ a: "), None);
        assert_eq!(
            CopyShape::compile(&engine, &broken).unwrap_err().reason(),
            "InvalidTransform"
        );
        let neither = rule(
            None,
            Some(KeySource {
                field: None,
                expression: None,
            }),
        );
        assert_eq!(
            CopyShape::compile(&engine, &neither).unwrap_err().reason(),
            "InvalidKey"
        );
        assert!(CopyShape::compile(&engine, &rule(None, None))
            .unwrap()
            .is_none());
    }
}
