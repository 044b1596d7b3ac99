//! The rule bundle: the versioned JSON document the operator publishes per router pool (in a
//! ConfigMap) and routers load from their mounted config directory.
//!
//! ```json
//! {"apiVersion": "streamsplit.io/bundle/v1", "pool": "default",
//!  "version": "sha256:…", "generatedAt": "2026-11-23T10:00:00Z",
//!  "rules": [{"id": {"namespace": "shop", "name": "home"}, "condition": "…",
//!             "targetTopic": "home", "tier": "standard", "mode": "active", "suspend": false}]}
//! ```
//! `version` hashes the rules alone (sorted by identity), so equal rule sets have equal versions
//! whatever their order or generation time; a bundle whose rules do not match its version is
//! corrupt and rejected.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::definition::RuleDefinition;
use crate::rule_set::{QuarantinedRule, RuleSet};

/// Format identifier of the bundle document.
pub const BUNDLE_API_VERSION: &str = "streamsplit.io/bundle/v1";
/// File name of the bundle inside the config directory (the ConfigMap key).
pub const BUNDLE_FILE_NAME: &str = "bundle.json";

/// A pool's published rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleBundle {
    /// Always [`BUNDLE_API_VERSION`].
    pub api_version: String,
    /// Router pool the bundle is for.
    pub pool: String,
    /// Content hash of `rules`.
    pub version: String,
    /// When the operator built it (RFC 3339); informational only.
    pub generated_at: String,
    /// The rules, sorted by identity.
    pub rules: Vec<RuleDefinition>,
}

/// Why bundle bytes are not a usable bundle.
#[derive(Debug, Error)]
pub enum BundleError {
    /// Not JSON, or not the bundle shape.
    #[error("bundle is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    /// A field this router does not know (a typo in a hand-edited bundle, or a newer format).
    #[error("bundle has unknown field {0}")]
    UnknownField(String),
    /// A format this router does not know.
    #[error("bundle apiVersion {found:?} is not supported (expected {BUNDLE_API_VERSION})")]
    UnsupportedVersion {
        /// What the bundle says.
        found: String,
    },
    /// The rules do not hash to the declared version: the bundle was altered or truncated.
    #[error("bundle content does not match its version {declared} (computed {computed})")]
    VersionMismatch {
        /// Declared version.
        declared: String,
        /// Version of the rules actually present.
        computed: String,
    },
}

/// The content version of a rule list: sha256 over the canonical JSON of the sorted rules.
pub fn content_version(rules: &[RuleDefinition]) -> String {
    let mut sorted: Vec<&RuleDefinition> = rules.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    // Hashed as it is serialised (a large pool's JSON is tens of MiB). Serialising plain data
    // structs with string keys into a hasher cannot fail.
    let mut hasher = HashWriter(Sha256::new());
    let _ = serde_json::to_writer(&mut hasher, &sorted);
    let digest = hasher.0.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{}", &hex[..16])
}

/// Keeps what is written to it, up to `limit` bytes; past that, writing fails.
struct Bounded {
    bytes: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            return Err(std::io::Error::other("longer than the limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hashes the bytes written to it.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl RuleBundle {
    /// Builds a bundle for `pool` from rule definitions (the operator's side).
    pub fn build(pool: &str, rules: impl IntoIterator<Item = RuleDefinition>) -> Self {
        let mut rules: Vec<RuleDefinition> = rules.into_iter().collect();
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        RuleBundle {
            api_version: BUNDLE_API_VERSION.to_string(),
            pool: pool.to_string(),
            version: content_version(&rules),
            generated_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            rules,
        }
    }

    /// Parses and verifies bundle bytes (the router's side).
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        let mut unknown = Vec::new();
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let bundle: RuleBundle =
            serde_ignored::deserialize(&mut deserializer, |path| unknown.push(path.to_string()))
                .and_then(|bundle| deserializer.end().map(|()| bundle))
                .map_err(|e| BundleError::Malformed(e.to_string()))?;
        if !unknown.is_empty() {
            return Err(BundleError::UnknownField(unknown.join(", ")));
        }
        if bundle.api_version != BUNDLE_API_VERSION {
            return Err(BundleError::UnsupportedVersion {
                found: bundle.api_version,
            });
        }
        let computed = content_version(&bundle.rules);
        if computed != bundle.version {
            return Err(BundleError::VersionMismatch {
                declared: bundle.version,
                computed,
            });
        }
        Ok(bundle)
    }

    /// Pretty JSON, as stored in the ConfigMap and the fallback copy.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// [`RuleBundle::to_json`] if it is at most `limit` bytes long, else `None`: a large
    /// pool's text (tens of MiB) is given up at the limit instead of written whole. Serialising
    /// plain data with string keys cannot fail otherwise.
    pub fn to_json_within(&self, limit: usize) -> Option<String> {
        let mut out = Bounded {
            bytes: Vec::new(),
            limit,
        };
        serde_json::to_writer_pretty(&mut out, self).ok()?;
        String::from_utf8(out.bytes).ok()
    }

    /// Compiles the rules; rules that do not compile are quarantined, the rest go live.
    pub fn compile(&self) -> (RuleSet, Vec<QuarantinedRule>) {
        self.compile_with(crate::EvalMode::Fast, None, &crate::ProtectedTopics::none())
    }

    /// Like [`RuleBundle::compile`], choosing how conditions are evaluated, reusing the
    /// compiled conditions of the rule set it replaces and refusing rules that target a
    /// `protected` topic.
    pub fn compile_with(
        &self,
        mode: crate::EvalMode,
        previous: Option<&RuleSet>,
        protected: &crate::ProtectedTopics,
    ) -> (RuleSet, Vec<QuarantinedRule>) {
        RuleSet::compile_guarded(self.rules.iter().cloned(), mode, previous, protected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mode, RuleId, Tier};

    fn rule(name: &str) -> RuleDefinition {
        RuleDefinition {
            id: RuleId::new(Some("ns"), name),
            condition: "true".into(),
            target_topic: format!("t-{name}"),
            tier: Tier::Standard,
            mode: Mode::Active,
            suspend: false,
            sample: None,
            project: None,
            transform: None,
            key: None,
            exclusive_group: None,
            max_records_per_second: None,
            target_topic_pattern: None,
        }
    }

    #[test]
    fn version_depends_on_rules_not_on_order_or_time() {
        let a = RuleBundle::build("p", [rule("a"), rule("b")]);
        let b = RuleBundle::build("p", [rule("b"), rule("a")]);
        assert_eq!(a.version, b.version);
        let c = RuleBundle::build("p", [rule("a")]);
        assert_ne!(a.version, c.version);
    }

    #[test]
    fn version_is_the_documented_digest_and_the_text_is_given_up_past_its_limit() {
        let bundle = RuleBundle::build("p", [rule("b"), rule("a")]);
        // docs/bundle.md: the first 16 hex digits of SHA-256 over the compact JSON of `rules`
        // sorted by identity (what routers of every release check).
        let compact = serde_json::to_vec(&bundle.rules).unwrap();
        let hex: String = Sha256::digest(&compact)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(bundle.version, format!("sha256:{}", &hex[..16]));
        let text = bundle.to_json();
        assert_eq!(bundle.to_json_within(text.len()), Some(text.clone()));
        assert_eq!(bundle.to_json_within(text.len() - 1), None);
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let bundle = RuleBundle::build("p", [rule("a")]);
        let parsed = RuleBundle::parse(bundle.to_json().as_bytes()).unwrap();
        assert_eq!(parsed, bundle);
        let tampered = bundle.to_json().replace("t-a", "t-evil");
        assert!(matches!(
            RuleBundle::parse(tampered.as_bytes()),
            Err(BundleError::VersionMismatch { .. })
        ));
        assert!(matches!(
            RuleBundle::parse(b"{"),
            Err(BundleError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let json = RuleBundle::build("p", [rule("a")]).to_json().replace(
            "\"suspend\": false",
            "\"suspend\": false, \"teir\": \"critical\"",
        );
        let error = RuleBundle::parse(json.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("rules.0.teir"), "{error}");
    }
}
