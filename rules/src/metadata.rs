//! What Kafka says about a record besides its value: key, headers, topic, partition, offset and
//! timestamp. Conditions read it as the read-only `meta` map, beside `record`.
//!
//! | expression | value |
//! | --- | --- |
//! | `meta.key` | the key as a string when it is UTF-8, else `()` (also `()` without a key) |
//! | `meta.key_json` | the key decoded as JSON when it is JSON (e.g. `meta.key_json.user`), else `()` |
//! | `meta.headers["x"]` or `meta.headers.x` | the last header named `x`, as a string; `()` when it is absent, has no value or is not UTF-8 |
//! | `"x" in meta.headers` | whether a header named `x` is present |
//! | `meta.header_values["x"]` | every value of the headers named `x`, in order, as an array |
//! | `meta.topic`, `meta.partition`, `meta.offset` | where the record was read |
//! | `meta.timestamp` | the record's timestamp in milliseconds since the epoch, or `()` |
//!
//! "Last header wins" follows Kafka's own clients (`Headers.lastHeader`).

use rhai::{Array, Dynamic, Map};

/// Name `meta` is bound to inside a condition.
pub const META_VARIABLE: &str = "meta";

/// A record's metadata, borrowed from wherever the record lives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordMeta<'a> {
    /// The key, if the record has one.
    pub key: Option<&'a [u8]>,
    /// Headers in record order; repeated names are kept.
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Timestamp in milliseconds, when the record has one.
    pub timestamp: Option<i64>,
}

/// One metadata value the fast path reads without building the `meta` map.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MetaField {
    /// `meta.key`
    Key,
    /// `meta.topic`
    Topic,
    /// `meta.partition`
    Partition,
    /// `meta.offset`
    Offset,
    /// `meta.timestamp`
    Timestamp,
    /// `meta.headers["name"]` / `meta.headers.name`
    Header(String),
    /// `"name" in meta.headers`
    HasHeader(String),
}

impl MetaField {
    /// The field a plain `meta.<property>` names, if any.
    pub fn property(name: &str) -> Option<MetaField> {
        match name {
            "key" => Some(MetaField::Key),
            "topic" => Some(MetaField::Topic),
            "partition" => Some(MetaField::Partition),
            "offset" => Some(MetaField::Offset),
            "timestamp" => Some(MetaField::Timestamp),
            _ => None,
        }
    }
}

/// Bytes as text, when they are UTF-8.
fn text(bytes: Option<&[u8]>) -> Option<&str> {
    bytes.and_then(|b| std::str::from_utf8(b).ok())
}

fn text_dynamic(bytes: Option<&[u8]>) -> Dynamic {
    text(bytes).map_or(Dynamic::UNIT, |t| Dynamic::from(t.to_string()))
}

impl<'a> RecordMeta<'a> {
    /// The key as text, when it is UTF-8.
    pub fn key_text(&self) -> Option<&'a str> {
        text(self.key)
    }

    /// The value of the last header named `name`, as text (see the module table).
    pub fn header_text(&self, name: &str) -> Option<&'a str> {
        let (_, value) = self.headers.iter().rev().find(|(n, _)| *n == name)?;
        text(*value)
    }

    /// Whether a header named `name` is present.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| *n == name)
    }

    /// The `meta` map conditions see.
    pub fn to_dynamic(&self) -> Dynamic {
        let mut headers = Map::new();
        let mut values: std::collections::BTreeMap<&str, Array> = Default::default();
        for (name, value) in &self.headers {
            headers.insert((*name).into(), text_dynamic(*value));
            values.entry(name).or_default().push(text_dynamic(*value));
        }
        let header_values: Map = values
            .into_iter()
            .map(|(name, values)| (name.into(), Dynamic::from_array(values)))
            .collect();
        let key_json = self
            .key
            .and_then(|key| serde_json::from_slice::<serde_json::Value>(key).ok())
            .map_or(Dynamic::UNIT, |value| {
                crate::record::json_to_dynamic(&value)
            });
        let mut meta = Map::new();
        meta.insert("key".into(), text_dynamic(self.key));
        meta.insert("key_json".into(), key_json);
        meta.insert("headers".into(), Dynamic::from_map(headers));
        meta.insert("header_values".into(), Dynamic::from_map(header_values));
        meta.insert("topic".into(), Dynamic::from(self.topic.to_string()));
        meta.insert(
            "partition".into(),
            Dynamic::from_int(i64::from(self.partition)),
        );
        meta.insert("offset".into(), Dynamic::from_int(self.offset));
        meta.insert(
            "timestamp".into(),
            self.timestamp.map_or(Dynamic::UNIT, Dynamic::from_int),
        );
        Dynamic::from_map(meta)
    }

    /// The fast path's value of one field: exactly what the `meta` map holds there.
    pub fn field(&self, field: &MetaField) -> crate::fast::Value<'a> {
        use crate::fast::Value;
        let text = |t: Option<&'a str>| t.map_or(Value::Unit, |t| Value::Str(t.into()));
        match field {
            MetaField::Key => text(self.key_text()),
            MetaField::Topic => Value::Str(self.topic.into()),
            MetaField::Partition => Value::Int(i64::from(self.partition)),
            MetaField::Offset => Value::Int(self.offset),
            MetaField::Timestamp => self.timestamp.map_or(Value::Unit, Value::Int),
            MetaField::Header(name) => text(self.header_text(name)),
            MetaField::HasHeader(name) => Value::Bool(self.has_header(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RecordMeta<'static> {
        RecordMeta {
            key: Some(br#"{"user": 7}"#),
            headers: vec![
                ("type", Some(b"click")),
                ("type", Some(b"view")),
                ("empty", None),
                ("binary", Some(&[0xff, 0xfe])),
            ],
            topic: "events",
            partition: 3,
            offset: 42,
            timestamp: Some(1_700_000_000_000),
        }
    }

    #[test]
    fn the_last_header_of_a_name_wins_and_every_value_is_listed() {
        let meta = sample().to_dynamic().cast::<Map>();
        let headers = meta["headers"].clone().cast::<Map>();
        assert_eq!(headers["type"].clone().into_string().unwrap(), "view");
        assert!(headers["empty"].is_unit());
        assert!(headers["binary"].is_unit(), "non-UTF-8 values read as ()");
        let values = meta["header_values"].clone().cast::<Map>();
        let types: Vec<String> = values["type"]
            .clone()
            .into_array()
            .unwrap()
            .into_iter()
            .map(|v| v.into_string().unwrap())
            .collect();
        assert_eq!(types, ["click", "view"]);
    }

    #[test]
    fn a_json_key_is_also_decoded() {
        let meta = sample().to_dynamic().cast::<Map>();
        assert_eq!(meta["key"].clone().into_string().unwrap(), r#"{"user": 7}"#);
        let decoded = meta["key_json"].clone().cast::<Map>();
        assert_eq!(decoded["user"].as_int(), Ok(7));
        let plain = RecordMeta {
            key: Some(b"user-7"),
            ..sample()
        };
        assert!(plain.to_dynamic().cast::<Map>()["key_json"].is_unit());
    }

    #[test]
    fn fast_fields_equal_the_map() {
        use crate::fast::Value;
        let meta = sample();
        assert_eq!(
            meta.field(&MetaField::Header("type".into())),
            Value::Str("view".into())
        );
        assert_eq!(
            meta.field(&MetaField::Header("missing".into())),
            Value::Unit
        );
        assert_eq!(
            meta.field(&MetaField::HasHeader("empty".into())),
            Value::Bool(true)
        );
        assert_eq!(meta.field(&MetaField::Partition), Value::Int(3));
        let keyless = RecordMeta::default();
        assert_eq!(keyless.field(&MetaField::Key), Value::Unit);
        assert_eq!(keyless.field(&MetaField::Timestamp), Value::Unit);
    }
}
