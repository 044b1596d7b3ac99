//! Loading `SplitRule` manifests from YAML files and directories, for standalone use and tools.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::definition::RuleDefinition;
use crate::rule_id::RuleId;
use crate::spec::{SplitRuleSpec, API_VERSION, KIND};

/// A `SplitRule` read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitRuleManifest {
    /// `namespace/name` from its metadata.
    pub id: RuleId,
    /// The spec.
    pub spec: SplitRuleSpec,
    /// `file#document` it came from, for messages.
    pub origin: String,
}

impl SplitRuleManifest {
    /// The routing-relevant part.
    pub fn definition(&self) -> RuleDefinition {
        RuleDefinition::from_spec(self.id.clone(), &self.spec)
    }
}

/// Why manifests cannot be loaded.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// A file or directory cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A document is not valid YAML or does not fit the SplitRule schema.
    #[error("{origin}: {message}")]
    Invalid {
        /// `file#document`.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    api_version: Option<String>,
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Document {
    metadata: Metadata,
    spec: SplitRuleSpec,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    namespace: Option<String>,
}

/// Loads every SplitRule from the given files and directories (recursively, `*.yaml`/`*.yml`,
/// hidden entries skipped, in name order). Multi-document files are allowed.
pub fn load_manifests(paths: &[PathBuf]) -> Result<Vec<SplitRuleManifest>, ManifestError> {
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, &mut files)?;
    }
    let mut manifests = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| ManifestError::Io {
            path: file.clone(),
            source,
        })?;
        manifests.extend(parse_manifests(&text, &file.display().to_string())?);
    }
    Ok(manifests)
}

/// Parses the SplitRules of one YAML text; `origin` names it in errors.
pub fn parse_manifests(text: &str, origin: &str) -> Result<Vec<SplitRuleManifest>, ManifestError> {
    let mut manifests = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let origin = format!("{origin}#{}", index + 1);
        let invalid = |message: String| ManifestError::Invalid {
            origin: origin.clone(),
            message,
        };
        let value =
            serde_norway::Value::deserialize(document).map_err(|e| invalid(e.to_string()))?;
        if value.is_null() {
            continue;
        }
        let header: Header =
            serde_norway::from_value(value.clone()).map_err(|e| invalid(e.to_string()))?;
        if header.kind.as_deref() != Some(KIND)
            || header.api_version.as_deref() != Some(API_VERSION)
        {
            return Err(invalid(format!(
                "expected apiVersion {API_VERSION} and kind {KIND}, found {} {}",
                header.api_version.as_deref().unwrap_or("<none>"),
                header.kind.as_deref().unwrap_or("<none>")
            )));
        }
        // Typos are errors where users type: `teir: critical` must not load as `standard`.
        // Only `spec` is checked; metadata carries many fields this loader does not need.
        let mut unknown = Vec::new();
        let document: Document = serde_ignored::deserialize(value, |path| {
            let path = path.to_string();
            if path.starts_with("spec.") {
                unknown.push(path);
            }
        })
        .map_err(|e| invalid(e.to_string()))?;
        if !unknown.is_empty() {
            return Err(invalid(format!("unknown field {}", unknown.join(", "))));
        }
        manifests.push(SplitRuleManifest {
            id: RuleId::new(
                document.metadata.namespace.as_deref(),
                document.metadata.name,
            ),
            spec: document.spec,
            origin,
        });
    }
    Ok(manifests)
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), ManifestError> {
    let io = |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_dir() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for entry in entries {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if entry.is_dir() {
            collect_files(&entry, files)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            files.push(entry);
        }
    }
    Ok(())
}

/// Compiles manifests into a rule set, quarantining every rule that fails validation
/// (illegal topic, compile error, failing test) so the rest still route.
pub fn compile_manifests(
    manifests: &[SplitRuleManifest],
) -> (crate::RuleSet, Vec<crate::QuarantinedRule>) {
    compile_manifests_with(
        manifests,
        crate::EvalMode::Fast,
        &crate::ProtectedTopics::none(),
    )
}

/// Like [`compile_manifests`], choosing how conditions are evaluated and which topics no rule
/// may target.
pub fn compile_manifests_with(
    manifests: &[SplitRuleManifest],
    mode: crate::EvalMode,
    protected: &crate::ProtectedTopics,
) -> (crate::RuleSet, Vec<crate::QuarantinedRule>) {
    let engine = crate::sandboxed_engine();
    let mut quarantined = Vec::new();
    let mut valid = Vec::new();
    for manifest in manifests {
        match crate::validate_spec(&engine, &manifest.spec) {
            Ok(_) => valid.push(manifest.definition()),
            Err(error) => quarantined.push(crate::QuarantinedRule {
                id: manifest.id.clone(),
                error,
                kept_previous: false,
            }),
        }
    }
    let (set, more) = crate::RuleSet::compile_guarded(valid, mode, None, protected);
    quarantined.extend(more);
    (set, quarantined)
}
