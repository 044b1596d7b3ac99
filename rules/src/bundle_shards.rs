//! Bundles larger than one ConfigMap (`streamsplit.io/bundle/v2`): the rules are split into
//! gzip-compressed shards, each in a ConfigMap of its own, and a small manifest names the shards
//! with their digests and the bundle's version. A router assembles the rules only when every
//! shard it has matches its digest and the whole hashes to the manifest's version, so it never
//! runs half an old and half a new bundle, whatever order the kubelet refreshes the files in.
//!
//! ```json
//! {"apiVersion": "streamsplit.io/bundle/v2", "pool": "default", "version": "sha256:…",
//!  "generatedAt": "…", "shards": [{"file": "shard-0.json.gz", "digest": "sha256:…", "rules": 4100}]}
//! ```

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bundle::{content_version, BundleError, RuleBundle, BUNDLE_API_VERSION};
use crate::definition::RuleDefinition;

/// Format identifier of a sharded bundle's manifest.
pub const SHARDED_API_VERSION: &str = "streamsplit.io/bundle/v2";
/// Largest compressed shard: a ConfigMap holds at most 1 MiB, and `binaryData` is base64
/// (4/3 of the bytes), with room for metadata.
pub const MAX_SHARD_BYTES: usize = 700 * 1024;
/// Largest decompressed shard a router accepts (a defence against a crafted ConfigMap).
pub const MAX_SHARD_INFLATED_BYTES: u64 = 256 * 1024 * 1024;
/// Uncompressed JSON per shard the splitter aims for before compressing (rule JSON compresses
/// about 5 to 10 times, so a shard stays well under [`MAX_SHARD_BYTES`]).
pub const TARGET_RAW_SHARD_BYTES: usize = 4 * 1024 * 1024;

/// The manifest: which shards make the bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShardManifest {
    /// Always [`SHARDED_API_VERSION`].
    pub api_version: String,
    /// Router pool.
    pub pool: String,
    /// Content version of all rules together (as in v1).
    pub version: String,
    /// When the operator built it; informational.
    pub generated_at: String,
    /// The shards, in rule order.
    pub shards: Vec<ShardRef>,
}

/// One shard as the manifest names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShardRef {
    /// File name in the config directory (the ConfigMap key).
    pub file: String,
    /// `sha256:` + hex SHA-256 of the compressed bytes.
    pub digest: String,
    /// Rules in the shard.
    pub rules: usize,
}

/// A bundle split for publishing: the manifest and each shard's compressed bytes.
#[derive(Clone, Debug)]
pub struct ShardedBundle {
    /// What goes into `bundle.json`.
    pub manifest: ShardManifest,
    /// `(file, compressed bytes)` per shard, in manifest order.
    pub shards: Vec<(String, Vec<u8>)>,
}

/// File name of shard `index`.
pub fn shard_file(index: usize) -> String {
    format!("shard-{index}.json.gz")
}

fn digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Splits `bundle` into shards of at most [`MAX_SHARD_BYTES`] compressed each.
pub fn split(bundle: &RuleBundle) -> ShardedBundle {
    split_with(bundle, TARGET_RAW_SHARD_BYTES)
}

/// [`split`] aiming at `target_raw` bytes of uncompressed JSON per shard.
pub fn split_with(bundle: &RuleBundle, target_raw: usize) -> ShardedBundle {
    let mut groups: Vec<&[RuleDefinition]> = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (index, rule) in bundle.rules.iter().enumerate() {
        size += serde_json::to_vec(rule).map(|v| v.len()).unwrap_or(0) + 1;
        if size >= target_raw {
            groups.push(&bundle.rules[start..=index]);
            start = index + 1;
            size = 0;
        }
    }
    if start < bundle.rules.len() || bundle.rules.is_empty() {
        groups.push(&bundle.rules[start..]);
    }
    let mut compressed: Vec<(usize, Vec<u8>)> = Vec::new();
    while let Some(group) = groups.first().copied() {
        groups.remove(0);
        let bytes = gzip(&serde_json::to_vec(group).unwrap_or_default());
        if bytes.len() > MAX_SHARD_BYTES && group.len() > 1 {
            // Compresses worse than expected: halve it and try again.
            let (left, right) = group.split_at(group.len() / 2);
            groups.insert(0, right);
            groups.insert(0, left);
            continue;
        }
        compressed.push((group.len(), bytes));
    }
    let mut shards = Vec::new();
    let mut refs = Vec::new();
    for (index, (rules, bytes)) in compressed.into_iter().enumerate() {
        let file = shard_file(index);
        refs.push(ShardRef {
            file: file.clone(),
            digest: digest(&bytes),
            rules,
        });
        shards.push((file, bytes));
    }
    ShardedBundle {
        manifest: ShardManifest {
            api_version: SHARDED_API_VERSION.to_string(),
            pool: bundle.pool.clone(),
            version: bundle.version.clone(),
            generated_at: bundle.generated_at.clone(),
            shards: refs,
        },
        shards,
    }
}

/// Why shards do not (yet) make the manifest's bundle.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// A shard file is absent or unreadable (the kubelet may not have written it yet).
    #[error("shard {file} cannot be read: {reason}")]
    Missing {
        /// File name.
        file: String,
        /// I/O error.
        reason: String,
    },
    /// A shard's bytes do not match the manifest (an older or newer shard: not synced yet).
    #[error("shard {file} does not match the manifest (digest {found}, expected {expected})")]
    Stale {
        /// File name.
        file: String,
        /// Digest of the bytes present.
        found: String,
        /// Digest the manifest names.
        expected: String,
    },
    /// The shards match their digests but are not a bundle (corrupt or crafted).
    #[error(transparent)]
    Invalid(#[from] BundleError),
}

impl ShardError {
    /// Whether waiting may fix it (the kubelet refreshes projected files one sync at a time).
    pub fn is_transient(&self) -> bool {
        matches!(self, ShardError::Missing { .. } | ShardError::Stale { .. })
    }
}

/// Parses a v2 manifest.
pub fn parse_manifest(bytes: &[u8]) -> Result<ShardManifest, BundleError> {
    let manifest: ShardManifest =
        serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed(e.to_string()))?;
    if manifest.api_version != SHARDED_API_VERSION {
        return Err(BundleError::UnsupportedVersion {
            found: manifest.api_version,
        });
    }
    // Shards are files next to the manifest, never paths elsewhere.
    if let Some(bad) = manifest
        .shards
        .iter()
        .find(|s| s.file.is_empty() || s.file.starts_with('.') || s.file.contains(['/', '\\']))
    {
        return Err(BundleError::Malformed(format!(
            "shard file name {:?} is not a plain file name",
            bad.file
        )));
    }
    Ok(manifest)
}

/// Assembles the manifest's bundle from its shards, read through `read` (file name → bytes),
/// verifying every digest and the version of the whole.
pub fn assemble(
    manifest: &ShardManifest,
    read: impl Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Result<RuleBundle, ShardError> {
    let mut rules = Vec::new();
    for shard in &manifest.shards {
        let bytes = read(&shard.file).map_err(|e| ShardError::Missing {
            file: shard.file.clone(),
            reason: e.to_string(),
        })?;
        let found = digest(&bytes);
        if found != shard.digest {
            return Err(ShardError::Stale {
                file: shard.file.clone(),
                found,
                expected: shard.digest.clone(),
            });
        }
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .take(MAX_SHARD_INFLATED_BYTES)
            .read_to_end(&mut json)
            .map_err(|e| BundleError::Malformed(format!("shard {}: {e}", shard.file)))?;
        let part: Vec<RuleDefinition> = serde_json::from_slice(&json)
            .map_err(|e| BundleError::Malformed(format!("shard {}: {e}", shard.file)))?;
        if part.len() != shard.rules {
            return Err(BundleError::Malformed(format!(
                "shard {} holds {} rules, the manifest says {}",
                shard.file,
                part.len(),
                shard.rules
            ))
            .into());
        }
        rules.extend(part);
    }
    let computed = content_version(&rules);
    if computed != manifest.version {
        return Err(BundleError::VersionMismatch {
            declared: manifest.version.clone(),
            computed,
        }
        .into());
    }
    Ok(RuleBundle {
        api_version: BUNDLE_API_VERSION.to_string(),
        pool: manifest.pool.clone(),
        version: manifest.version.clone(),
        generated_at: manifest.generated_at.clone(),
        rules,
    })
}

/// The `apiVersion` of bundle bytes, to choose between [`RuleBundle::parse`] and
/// [`parse_manifest`].
pub fn api_version_of(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        api_version: String,
    }
    serde_json::from_slice::<Head>(bytes)
        .ok()
        .map(|h| h.api_version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mode, RuleId, Tier};
    use std::collections::HashMap;

    fn rules(count: usize) -> Vec<RuleDefinition> {
        (0..count)
            .map(|i| RuleDefinition {
                id: RuleId::new(Some("team"), format!("rule-{i:06}")),
                // Varied text, so compression has work to do.
                condition: format!(
                    r#"record.app == "app-{}" && record.level >= {}"#,
                    i * 7919 % 100_003,
                    i % 7
                ),
                target_topic: format!("team.topic-{}", i % 97),
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
            })
            .collect()
    }

    #[test]
    fn a_large_bundle_splits_into_bounded_shards_and_assembles_back() {
        let bundle = RuleBundle::build("default", rules(60_000));
        let sharded = split(&bundle);
        assert!(sharded.shards.len() > 1, "60 000 rules need several shards");
        assert!(sharded
            .shards
            .iter()
            .all(|(_, bytes)| bytes.len() <= MAX_SHARD_BYTES));
        let files: HashMap<String, Vec<u8>> = sharded.shards.iter().cloned().collect();
        let manifest = parse_manifest(&serde_json::to_vec(&sharded.manifest).unwrap()).unwrap();
        let read = |f: &str| {
            files
                .get(f)
                .cloned()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        };
        let assembled = assemble(&manifest, read).unwrap();
        assert_eq!(assembled.rules, bundle.rules);
        assert_eq!(assembled.version, bundle.version);
    }

    #[test]
    fn a_missing_or_stale_shard_is_transient_and_a_wrong_version_is_not() {
        let old = split(&RuleBundle::build("default", rules(30_000)));
        let mut edited = rules(30_000);
        edited[0].condition = "record.level > 100".into();
        let new = split(&RuleBundle::build("default", edited));
        assert!(new.shards.len() > 1 && old.shards[0].1 != new.shards[0].1);
        let read = |files: &HashMap<String, Vec<u8>>, f: &str| {
            files
                .get(f)
                .cloned()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        };
        let transient = |result: Result<RuleBundle, ShardError>| match result {
            Err(error) => error.is_transient(),
            Ok(_) => false,
        };
        // The kubelet refreshed every shard but the first: the router must wait.
        let mixed: HashMap<String, Vec<u8>> = new
            .shards
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, shard)| if i == 0 { old.shards[0].clone() } else { shard })
            .collect();
        assert!(transient(assemble(&new.manifest, |f| read(&mixed, f))));
        assert!(transient(assemble(&new.manifest, |_| Err(
            std::io::ErrorKind::NotFound.into()
        ))));

        let mut lying = new.manifest.clone();
        lying.version = "sha256:0000000000000000".into();
        let files: HashMap<String, Vec<u8>> = new.shards.iter().cloned().collect();
        match assemble(&lying, |f| read(&files, f)) {
            Err(error) => assert!(!error.is_transient(), "{error}"),
            Ok(_) => panic!("a manifest whose version does not match its shards was accepted"),
        }
    }
}
