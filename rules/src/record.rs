//! Decoding a record's bytes into the value conditions see.

use rhai::{Dynamic, Map};
use thiserror::Error;

/// Why a record cannot be evaluated at all; such a record goes to the exception topic.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The value is not valid JSON.
    #[error("record is not valid JSON: {0}")]
    InvalidJson(String),
    /// The value is JSON, but not an object.
    #[error("record is a JSON {0}, expected an object")]
    NotAnObject(&'static str),
    /// The record has no value (a tombstone).
    #[error("record has no value")]
    Empty,
}

/// Parses a record value; only JSON objects are routable.
pub fn decode_json_object(payload: &[u8]) -> Result<serde_json::Value, DecodeError> {
    if payload.is_empty() {
        return Err(DecodeError::Empty);
    }
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|err| DecodeError::InvalidJson(err.to_string()))?;
    match value {
        serde_json::Value::Object(_) => Ok(value),
        other => Err(DecodeError::NotAnObject(json_kind(&other))),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Converts JSON into Rhai values: integers that fit i64 stay integers, every other number is a
/// float, `null` is unit.
pub fn json_to_dynamic(value: &serde_json::Value) -> Dynamic {
    match value {
        serde_json::Value::Null => Dynamic::UNIT,
        serde_json::Value::Bool(b) => Dynamic::from_bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Dynamic::from(s.clone()),
        serde_json::Value::Array(items) => {
            Dynamic::from_array(items.iter().map(json_to_dynamic).collect())
        }
        serde_json::Value::Object(fields) => {
            let map: Map = fields
                .iter()
                .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
                .collect();
            Dynamic::from_map(map)
        }
    }
}

/// Converts a Rhai value back into JSON (a transform's result): unit is `null`, a float that is
/// not finite is `null`, and any other non-JSON type becomes its text.
pub fn dynamic_to_json(value: &Dynamic) -> serde_json::Value {
    if value.is_unit() {
        serde_json::Value::Null
    } else if let Ok(b) = value.as_bool() {
        serde_json::Value::Bool(b)
    } else if let Ok(i) = value.as_int() {
        serde_json::Value::from(i)
    } else if let Ok(f) = value.as_float() {
        serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
    } else if let Some(items) = value.read_lock::<rhai::Array>() {
        serde_json::Value::Array(items.iter().map(dynamic_to_json).collect())
    } else if let Some(fields) = value.read_lock::<Map>() {
        serde_json::Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), dynamic_to_json(v)))
                .collect(),
        )
    } else {
        serde_json::Value::String(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_decode() {
        assert!(decode_json_object(br#"{"id": 1}"#).is_ok());
        assert_eq!(
            decode_json_object(b"[1]"),
            Err(DecodeError::NotAnObject("array"))
        );
        assert_eq!(decode_json_object(b""), Err(DecodeError::Empty));
        assert!(matches!(
            decode_json_object(b"{oops"),
            Err(DecodeError::InvalidJson(_))
        ));
    }

    #[test]
    fn numbers_keep_integer_or_float_type() {
        let value: serde_json::Value =
            serde_json::json!({"i": 3, "f": 2.5, "big": u64::MAX, "n": null});
        let map = json_to_dynamic(&value).cast::<Map>();
        assert!(map["i"].is_int());
        assert!(map["f"].is_float());
        assert!(map["big"].is_float());
        assert!(map["n"].is_unit());
    }
}
