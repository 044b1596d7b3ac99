//! One pass over the record's JSON that keeps only the fields conditions reference.
//!
//! Every referenced path (`record.client.os` is `["client", "os"]`) gets a slot index when the
//! rule set is compiled. Extraction validates the whole document exactly as the full decoder
//! does (UTF-8, escapes and surrogate pairs, numbers, nesting depth), so both paths make the same
//! decode decision, but it skips unreferenced values without building them and borrows strings
//! that need no unescaping.

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::value::Value;
use crate::metadata::{MetaField, RecordMeta};

/// The field paths of a rule set, as a trie, with their slot indices, and the metadata fields
/// its conditions read (slots of their own, filled from the record's [`RecordMeta`]).
#[derive(Clone, Debug, Default)]
pub struct FieldPaths {
    root: Node,
    count: usize,
    top_level: Vec<bool>,
    meta: Vec<(MetaField, usize)>,
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

    /// The slot of a metadata field, assigning a new one on first use. Metadata slots count as
    /// top level: reading them never fails.
    pub fn intern_meta(&mut self, field: MetaField) -> usize {
        if let Some((_, slot)) = self.meta.iter().find(|(f, _)| *f == field) {
            return *slot;
        }
        let slot = self.count;
        self.count += 1;
        self.top_level.push(true);
        self.meta.push((field, slot));
        slot
    }

    /// Whether any condition reads metadata on the fast path.
    pub fn reads_meta(&self) -> bool {
        !self.meta.is_empty()
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

/// Fills the metadata slots of `paths` from `meta` (after [`extract_slots`]).
pub fn fill_meta_slots<'a>(paths: &FieldPaths, meta: &RecordMeta<'a>, slots: &mut [Value<'a>]) {
    for (field, slot) in &paths.meta {
        slots[*slot] = meta.field(field);
    }
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
                    map.next_value::<Skipped>()?;
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
        while seq.next_element::<Skipped>()?.is_some() {}
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

/// An unreferenced value, parsed (and so validated) like the full decoder does but never built.
/// serde's `IgnoredAny` would let serde_json skip strings without checking their escapes or
/// UTF-8 and nest without a depth limit, accepting records the full decoder rejects.
struct Skipped;

impl<'de> Deserialize<'de> for Skipped {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkippedVisitor)
    }
}

struct SkippedVisitor;

impl<'de> Visitor<'de> for SkippedVisitor {
    type Value = Skipped;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Skipped, E> {
        Ok(Skipped)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skipped, E> {
        Ok(Skipped)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skipped, E> {
        Ok(Skipped)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skipped, E> {
        Ok(Skipped)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skipped, E> {
        Ok(Skipped)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skipped, E> {
        Ok(Skipped)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skipped, A::Error> {
        while seq.next_element::<Skipped>()?.is_some() {}
        Ok(Skipped)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skipped, A::Error> {
        while map.next_key::<std::borrow::Cow<'de, str>>()?.is_some() {
            map.next_value::<Skipped>()?;
        }
        Ok(Skipped)
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

    #[test]
    fn unreferenced_values_are_validated_like_the_full_decoder_does() {
        let mut paths = FieldPaths::default();
        paths.intern(&["id"]);
        let deep = format!(
            r#"{{"id": 1, "x": {}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let bad: [&[u8]; 5] = [
            br#"{"id": 1, "x": "\ud800"}"#,
            b"{\"id\": 1, \"x\": \"\xff\"}",
            br#"{"id": 1, "x": 1e400}"#,
            br#"{"id": 1, "x": {"\ud800": 1}}"#,
            deep.as_bytes(),
        ];
        for payload in bad {
            let full = serde_json::from_slice::<serde_json::Value>(payload);
            assert!(full.is_err(), "the full decoder rejects {payload:?}");
            assert!(
                extract_slots(&paths, payload).is_err(),
                "extraction must reject {:?} too",
                String::from_utf8_lossy(payload)
            );
        }
    }
}
