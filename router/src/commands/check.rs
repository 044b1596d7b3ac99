//! `check`: compile every rule and run its tests, one line per rule.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use streamsplit_rules::engine::sandboxed_engine_with_budget;
use streamsplit_rules::{load_manifests, validate_spec, ManifestError};

/// Prints a verdict per rule; returns whether all passed. Tests run under the same limits as
/// routing, `eval_budget` included.
pub fn check(
    paths: &[PathBuf],
    eval_budget: Duration,
    out: &mut impl Write,
) -> Result<bool, ManifestError> {
    let manifests = load_manifests(paths)?;
    let engine = sandboxed_engine_with_budget(eval_budget);
    let mut all_ok = true;
    for manifest in &manifests {
        let line = match validate_spec(&engine, &manifest.spec) {
            Ok(_) => format!(
                "ok    {} -> {} ({}, {}{}{}, {} tests)",
                manifest.id,
                manifest.spec.target_topic,
                manifest.spec.tier.as_str(),
                manifest.spec.mode.as_str(),
                manifest
                    .spec
                    .sample
                    .map(|s| format!(", sample {s}"))
                    .unwrap_or_default(),
                [
                    (manifest.spec.project.is_some(), ", projected"),
                    (manifest.spec.transform.is_some(), ", transformed"),
                    (manifest.spec.key.is_some(), ", re-keyed"),
                    (
                        streamsplit_rules::topic_template::is_template(&manifest.spec.target_topic),
                        ", templated topic",
                    ),
                    (
                        manifest.spec.max_records_per_second.is_some(),
                        ", rate-limited"
                    ),
                    (manifest.spec.exclusive_group.is_some(), ", exclusive group"),
                ]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, text)| *text)
                .collect::<String>(),
                manifest.spec.tests.len()
            ),
            Err(error) => {
                all_ok = false;
                format!(
                    "FAIL  {} ({}): {} ({error})",
                    manifest.id,
                    manifest.origin,
                    error.reason()
                )
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
