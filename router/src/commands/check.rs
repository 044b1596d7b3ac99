//! `check`: compile every rule and run its tests, one line per rule.

use std::io::Write;
use std::path::PathBuf;

use streamsplit_rules::{load_manifests, sandboxed_engine, validate_spec, ManifestError};

/// Prints a verdict per rule; returns whether all passed.
pub fn check(paths: &[PathBuf], out: &mut impl Write) -> Result<bool, ManifestError> {
    let manifests = load_manifests(paths)?;
    let engine = sandboxed_engine();
    let mut all_ok = true;
    for manifest in &manifests {
        let line = match validate_spec(&engine, &manifest.spec) {
            Ok(_) => format!(
                "ok    {} -> {} ({}, {}, {} tests)",
                manifest.id,
                manifest.spec.target_topic,
                manifest.spec.tier.as_str(),
                manifest.spec.mode.as_str(),
                manifest.spec.tests.len()
            ),
            Err(error) => {
                all_ok = false;
                format!("FAIL  {} ({}): {error}", manifest.id, manifest.origin)
            }
        };
        // Output goes to a terminal or pipe; a closed pipe is not worth failing the check over.
        let _ = writeln!(out, "{line}");
    }
    if manifests.is_empty() {
        let _ = writeln!(out, "no SplitRule found");
        all_ok = false;
    }
    Ok(all_ok)
}
