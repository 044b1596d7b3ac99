//! One pass over the record's JSON that keeps only the fields conditions reference.
//!
//! Every referenced path (`record.client.os` is `["client", "os"]`) gets a slot index when the
//! rule set is compiled. Extraction validates the whole document (so undecodable records are
//! still detected) but skips unreferenced values without building them, and borrows strings that
//! need no unescaping.

use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::value::Value;

/// The field paths of a rule set, as a trie, with their slot indices.
#[derive(Clone, Debug, Default)]
pub struct FieldPaths {
    root: Node,
    count: usize,
    top_level: Vec<bool>,
}

#[derive(Clone, Debug, Default)]
struct Node {
    slot: Option<usize>,
    children: HashMap<String, Node>,
}

impl FieldPaths {
    /// The slot of a path, assigning a new one on first use.
    pub fn intern(&mut self, path: &[&str]) -> usize {
        let mut node = &mut self.root;
        for segment in path {
            node = node.children.entry((*segment).to_string()).or_default();
        }
        if let Some(slot) = node.slot {
            return slot;
        }
        let slot = self.count;
        self.count += 1;
        self.top_level.push(path.len() == 1);
        node.slot = Some(slot);
        slot
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no path is referenced.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether a slot is a top-level field (`record.x`, not `record.x.y`).
    pub fn is_top_level(&self, slot: usize) -> bool {
        self.top_level.get(slot).copied().unwrap_or(false)
    }
}

/// Why extraction stopped: the record is not a JSON object (the caller reports the exact error).
#[derive(Debug)]
pub struct NotExtractable;

/// Extracts the slots of `paths` from a JSON object.
pub fn extract_slots<'de>(
    paths: &FieldPaths,
    payload: &'de [u8],
) -> Result<Vec<Value<'de>>, NotExtractable> {
    let mut slots = vec![Value::Unreachable; paths.len()];
    set_direct_children(&paths.root, &mut slots, Value::Unit);
    let mut deserializer = serde_json::Deserializer::from_slice(payload);
    RootSeed {
        node: &paths.root,
        slots: &mut slots,
    }
    .deserialize(&mut deserializer)
    .map_err(|_| NotExtractable)?;
    deserializer.end().map_err(|_| NotExtractable)?;
    Ok(slots)
}

/// A present object makes its referenced keys `()` until seen (a missing key reads as unit).
fn set_direct_children(node: &Node, slots: &mut [Value<'_>], value: Value<'static>) {
    for child in node.children.values() {
        if let Some(slot) = child.slot {
            slots[slot] = value.clone();
        }
    }
}

/// Marks a subtree unreachable (before a repeated key is read again).
fn reset(node: &Node, slots: &mut [Value<'_>]) {
    for child in node.children.values() {
        if let Some(slot) = child.slot {
            slots[slot] = Value::Unreachable;
        }
        reset(child, slots);
    }
}

struct RootSeed<'n, 's, 'de> {
    node: &'n Node,
    slots: &'s mut Vec<Value<'de>>,
}

impl<'de> DeserializeSeed<'de> for RootSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(ObjectVisitor {
            node: self.node,
            slots: self.slots,
        })
    }
}

struct ObjectVisitor<'n, 's, 'de> {
    node: &'n Node,
    slots: &'s mut Vec<Value<'de>>,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.node.children.get(key.as_ref()) {
                Some(child) => {
                    reset(child, self.slots);
                    map.next_value_seed(FieldSeed {
                        node: child,
                        slots: self.slots,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A referenced field: any JSON value.
struct FieldSeed<'n, 's, 'de> {
    node: &'n Node,
    slots: &'s mut Vec<Value<'de>>,
}

impl FieldSeed<'_, '_, '_> {
    fn set(&mut self, value: Value<'static>) {
        if let Some(slot) = self.node.slot {
            self.slots[slot] = value;
        }
    }
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(mut self) -> Result<(), E> {
        self.set(Value::Unit);
        Ok(())
    }
    fn visit_bool<E>(mut self, v: bool) -> Result<(), E> {
        self.set(Value::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(mut self, v: i64) -> Result<(), E> {
        self.set(Value::Int(v));
        Ok(())
    }
    fn visit_u64<E>(mut self, v: u64) -> Result<(), E> {
        self.set(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int));
        Ok(())
    }
    fn visit_f64<E>(mut self, v: f64) -> Result<(), E> {
        self.set(Value::Float(v));
        Ok(())
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        if let Some(slot) = self.node.slot {
            self.slots[slot] = Value::Str(std::borrow::Cow::Borrowed(v));
        }
        Ok(())
    }
    fn visit_str<E>(mut self, v: &str) -> Result<(), E> {
        self.set(Value::Str(std::borrow::Cow::Owned(v.to_string())));
        Ok(())
    }
    fn visit_string<E>(mut self, v: String) -> Result<(), E> {
        self.set(Value::Str(std::borrow::Cow::Owned(v)));
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.set(Value::Composite);
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(mut self, map: A) -> Result<(), A::Error> {
        self.set(Value::Composite);
        set_direct_children(self.node, self.slots, Value::Unit);
        ObjectVisitor {
            node: self.node,
            slots: self.slots,
        }
        .visit_map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn extracts_referenced_paths_and_marks_unreachable_ones() {
        let mut paths = FieldPaths::default();
        let id = paths.intern(&["id"]);
        let os = paths.intern(&["client", "os"]);
        let deep = paths.intern(&["missing", "x"]);
        let gone = paths.intern(&["gone"]);
        let slots = extract_slots(
            &paths,
            br#"{"id": 7, "client": {"os": "ios"}, "other": [1, {"a": 2}]}"#,
        )
        .unwrap();
        assert_eq!(slots[id], Value::Int(7));
        assert_eq!(slots[os], Value::Str(Cow::Borrowed("ios")));
        assert_eq!(
            slots[deep],
            Value::Unreachable,
            "a property of a missing object is a Rhai error"
        );
        assert_eq!(slots[gone], Value::Unit, "a missing key is unit");
        assert!(extract_slots(&paths, b"[1]").is_err());
        assert!(extract_slots(&paths, b"{\"id\": 1} trailing").is_err());
        let big = extract_slots(&paths, br#"{"id": 18446744073709551615}"#).unwrap();
        assert_eq!(big[id], Value::Float(u64::MAX as f64));
    }
}
