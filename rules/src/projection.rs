//! Per-rule projection: the copy keeps only some fields, loses others, or has some masked, without
//! running Rhai.
//!
//! The record is rewritten in one pass over its JSON: untouched fields are copied byte for byte
//! in their original order, only objects on a listed path are parsed further. Paths are dotted
//! (`user.email` reaches into the `user` object). Order of application: `keep` (when given,
//! only listed paths survive, with everything under them), then `drop`, then `mask` (the value
//! becomes the mask text) and `hash` (the value becomes `"sha256:<16 hex>"` of its JSON text,
//! so equal values stay equal and joinable without being readable).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// Why a record cannot be projected: its value is not a JSON object. A rule error: the copy is
/// never sent whole instead (it could carry the very fields the rule masks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("project: the record value is not a JSON object")]
pub struct ProjectionError;

/// Text a masked field gets when the projection names none.
pub const DEFAULT_MASK_TEXT: &str = "***";

/// What a rule's copies keep of the record, as users write it (`spec.project`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Projection {
    /// Only these fields survive (with everything under them); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<String>,
    /// These fields are removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
    /// These fields' values are replaced by `maskText`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mask: Vec<String>,
    /// Replacement text of masked fields (default `***`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_text: Option<String>,
    /// These fields' values are replaced by `sha256:<16 hex>` of their JSON text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hash: Vec<String>,
}

/// What happens to one field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Drop,
    Mask,
    Hash,
}

/// One level of the projection's paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Node {
    /// A `keep` path ends here: the field survives with everything under it.
    selected: bool,
    /// A `keep` path ends here or below: with keep paths, only such fields survive.
    kept: bool,
    action: Option<Action>,
    children: HashMap<String, Node>,
}

/// A projection ready to apply to record values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledProjection {
    root: Node,
    keeping: bool,
    mask_text: String,
}

impl Projection {
    /// Checks every path and builds the applier. A path may be kept and masked or hashed; it may
    /// not be kept and dropped, or take two of drop, mask and hash.
    pub fn compile(&self) -> Result<CompiledProjection, String> {
        let mut root = Node::default();
        let lists = [
            ("keep", &self.keep, None),
            ("drop", &self.drop, Some(Action::Drop)),
            ("mask", &self.mask, Some(Action::Mask)),
            ("hash", &self.hash, Some(Action::Hash)),
        ];
        for (list, paths, action) in lists {
            for path in paths {
                let segments: Vec<&str> = path.split('.').collect();
                if segments.iter().any(|s| s.is_empty()) {
                    return Err(format!(
                        "project.{list}: {path:?} is not a dotted field path"
                    ));
                }
                let mut node = &mut root;
                for segment in segments {
                    node.kept |= action.is_none();
                    node = node.children.entry(segment.to_string()).or_default();
                }
                match action {
                    None => {
                        node.selected = true;
                        node.kept = true;
                    }
                    Some(action) => {
                        if let Some(previous) = node.action.filter(|a| *a != action) {
                            return Err(format!(
                                "project.{list}: {path:?} is already listed under {}",
                                name(previous)
                            ));
                        }
                        node.action = Some(action);
                    }
                }
                if node.selected && node.action == Some(Action::Drop) {
                    return Err(format!("project: {path:?} is listed under keep and drop"));
                }
            }
        }
        if root.children.is_empty() {
            return Err("project lists no field".into());
        }
        Ok(CompiledProjection {
            keeping: !self.keep.is_empty(),
            root,
            mask_text: self.mask_text.clone().unwrap_or(DEFAULT_MASK_TEXT.into()),
        })
    }
}

fn name(action: Action) -> &'static str {
    match action {
        Action::Drop => "drop",
        Action::Mask => "mask",
        Action::Hash => "hash",
    }
}

/// The fields of one JSON object, borrowed, in their original order.
struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'de>, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

impl CompiledProjection {
    /// The projected value, or `None` when `payload` is not a JSON object (the condition path
    /// has already reported such records as undecodable).
    pub fn apply(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(payload).ok()?;
        let mut out = String::with_capacity(text.len());
        self.object(text.trim(), &self.root, self.keeping, &mut out)?;
        Some(out.into_bytes())
    }

    /// Writes the projection of one JSON object; `keeping`: only kept fields survive here.
    fn object(&self, json: &str, node: &Node, keeping: bool, out: &mut String) -> Option<()> {
        let Entries(entries) = serde_json::from_str(json).ok()?;
        out.push('{');
        let mut first = true;
        for (key, value) in entries {
            let child = node.children.get(key.as_ref());
            let action = child.and_then(|c| c.action);
            if action == Some(Action::Drop) || (keeping && !child.is_some_and(|c| c.kept)) {
                continue;
            }
            let raw = value.get();
            let is_object = raw.starts_with('{');
            let nested = child.filter(|c| !c.children.is_empty());
            let selected = child.is_some_and(|c| c.selected);
            // `keep: [user.id]` where `user` is not an object: nothing of it to keep.
            if keeping && !selected && !is_object {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            // Keys are re-encoded (serde_json escapes exactly what JSON requires).
            out.push_str(&serde_json::to_string(key.as_ref()).ok()?);
            out.push(':');
            match (action, nested) {
                (Some(Action::Mask), _) => {
                    out.push_str(&serde_json::to_string(&self.mask_text).ok()?)
                }
                (Some(Action::Hash), _) => {
                    let digest = Sha256::digest(raw.as_bytes());
                    out.push_str("\"sha256:");
                    for byte in &digest[..8] {
                        let _ = write!(out, "{byte:02x}");
                    }
                    out.push('"');
                }
                // Below a kept field everything survives, except what other paths drop or mask.
                (_, Some(child)) if is_object => {
                    self.object(raw, child, keeping && !selected, out)?
                }
                _ => out.push_str(raw),
            }
        }
        out.push('}');
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(projection: Projection, record: &str) -> String {
        let compiled = projection.compile().unwrap();
        String::from_utf8(compiled.apply(record.as_bytes()).unwrap()).unwrap()
    }

    const RECORD: &str = r#"{"id": 7, "page": "Home", "user": {"id": "u1", "email": "a@b.c", "tags": [1, 2]}, "session": "s-1", "note": "x\"y"}"#;

    #[test]
    fn keep_keeps_listed_paths_in_their_original_order_and_bytes() {
        let projected = project(
            Projection {
                keep: vec!["user.id".into(), "id".into(), "note".into()],
                ..Default::default()
            },
            RECORD,
        );
        assert_eq!(projected, r#"{"id":7,"user":{"id":"u1"},"note":"x\"y"}"#);
    }

    #[test]
    fn drop_mask_and_hash_leave_the_rest_untouched() {
        let projected = project(
            Projection {
                drop: vec!["session".into()],
                mask: vec!["user.email".into()],
                hash: vec!["user.id".into()],
                ..Default::default()
            },
            RECORD,
        );
        let value: serde_json::Value = serde_json::from_str(&projected).unwrap();
        assert!(value.get("session").is_none());
        assert_eq!(value["user"]["email"], "***");
        assert_eq!(value["user"]["tags"], serde_json::json!([1, 2]));
        assert_eq!(value["page"], "Home");
        let hashed = value["user"]["id"].as_str().unwrap();
        assert!(
            hashed.starts_with("sha256:") && hashed.len() == 23,
            "{hashed}"
        );
        // Equal values hash equally.
        let again = project(
            Projection {
                hash: vec!["uid".into()],
                ..Default::default()
            },
            r#"{"uid": "u1"}"#,
        );
        assert!(again.contains(hashed), "{again}");
    }

    #[test]
    fn a_kept_field_can_be_hashed_and_have_parts_masked() {
        let projected = project(
            Projection {
                keep: vec!["id".into(), "user".into()],
                hash: vec!["id".into()],
                mask: vec!["user.email".into()],
                ..Default::default()
            },
            RECORD,
        );
        let value: serde_json::Value = serde_json::from_str(&projected).unwrap();
        assert_eq!(value.as_object().unwrap().len(), 2, "{projected}");
        assert!(value["id"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(value["user"]["email"], "***");
        assert_eq!(value["user"]["id"], "u1");
        assert_eq!(value["user"]["tags"], serde_json::json!([1, 2]));
    }

    #[test]
    fn a_path_through_a_non_object_is_left_alone_or_not_kept() {
        let record = r#"{"user": "plain", "id": 1}"#;
        let dropped = project(
            Projection {
                drop: vec!["user.email".into()],
                ..Default::default()
            },
            record,
        );
        assert_eq!(dropped, r#"{"user":"plain","id":1}"#);
        let kept = project(
            Projection {
                keep: vec!["user.email".into(), "id".into()],
                ..Default::default()
            },
            record,
        );
        assert_eq!(kept, r#"{"id":1}"#);
    }

    #[test]
    fn conflicting_or_malformed_paths_are_refused() {
        let both = Projection {
            keep: vec!["a".into()],
            drop: vec!["a".into()],
            ..Default::default()
        };
        assert!(both.compile().unwrap_err().contains("keep and drop"));
        let twice = Projection {
            mask: vec!["a".into()],
            hash: vec!["a".into()],
            ..Default::default()
        };
        assert!(twice
            .compile()
            .unwrap_err()
            .contains("already listed under mask"));
        let empty = Projection {
            drop: vec!["a..b".into()],
            ..Default::default()
        };
        assert!(empty.compile().is_err());
        assert!(Projection::default().compile().is_err());
        let compiled = Projection {
            drop: vec!["a".into()],
            ..Default::default()
        }
        .compile()
        .unwrap();
        assert_eq!(compiled.apply(b"[1]"), None);
        assert_eq!(
            compiled.apply(b"{\"a\": 1, \"b\": {}}").unwrap(),
            b"{\"b\":{}}"
        );
    }
}
