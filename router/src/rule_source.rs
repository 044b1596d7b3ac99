//! Where `run` gets its rules: SplitRule manifests (standalone) or the operator's bundle in a
//! mounted config directory (hot-reloaded).

use std::path::PathBuf;
use std::time::Duration;

use streamsplit_rules::{
    compile_manifests_with, content_version, load_manifests, EvalMode, ManifestError,
    ProtectedTopics,
};

use crate::metrics::Metrics;
use crate::run::live_rules::LiveRules;

/// Compiles manifests once; rules that fail validation are quarantined and logged.
pub fn from_manifests(
    paths: &[PathBuf],
    mode: EvalMode,
    eval_budget: Duration,
    protected: &ProtectedTopics,
    metrics: &Metrics,
) -> Result<LiveRules, ManifestError> {
    let manifests = load_manifests(paths)?;
    let (rules, quarantined) = compile_manifests_with(&manifests, mode, protected);
    let rules = rules.with_eval_budget(eval_budget);
    for rule in &quarantined {
        tracing::error!(rule = %rule.id, reason = rule.error.reason(), error = %rule.error, "rule quarantined");
    }
    let definitions: Vec<_> = rules.rules().iter().map(|r| r.definition.clone()).collect();
    let version = content_version(&definitions);
    metrics.rules_active.set(rules.active_count() as i64);
    metrics.rules_quarantined.set(quarantined.len() as i64);
    metrics
        .config_version_info
        .with_label_values(&[&version, "manifests"])
        .set(1);
    tracing::info!(rules = rules.rules().len(), quarantined = quarantined.len(), %version, "rules loaded");
    Ok(LiveRules::new(rules, version, metrics))
}
