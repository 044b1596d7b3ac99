//! Decides what the router routes with: the mounted bundle when it is valid, else the fallback
//! copy, else nothing (not ready). Never exits because of a bad config.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use streamsplit_rules::bundle_shards::{
    api_version_of, assemble, parse_manifest, ShardError, SHARDED_API_VERSION,
};
use streamsplit_rules::{BundleError, EvalMode, ProtectedTopics, RuleBundle, BUNDLE_FILE_NAME};

use super::fallback::FallbackStore;
use crate::run::live_rules::LiveRules;
use crate::run::Router;

/// Where the live rules came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The mounted ConfigMap.
    Mounted,
    /// The local fallback copy.
    Fallback,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Source::Mounted => "mounted",
            Source::Fallback => "fallback",
        }
    }
}

/// Loads bundles and swaps them into the router.
pub struct Reloader {
    router: Arc<Router>,
    config_dir: PathBuf,
    fallback: Option<FallbackStore>,
    /// Digest of the mounted bytes last looked at, so unchanged (or unchanged garbage) content
    /// is not re-processed on every poll.
    last_digest: Option<[u8; 32]>,
    mounted_missing_reported: bool,
    source: Option<Source>,
    mode: EvalMode,
    eval_budget: Duration,
    /// This router's own source and exception topics, which no rule may target.
    protected: ProtectedTopics,
}

impl Reloader {
    /// Loads the initial rules: the mounted bundle, else the fallback copy, else none.
    pub fn start(
        router: Arc<Router>,
        config_dir: PathBuf,
        fallback: Option<FallbackStore>,
        mode: EvalMode,
        eval_budget: Duration,
        protected: ProtectedTopics,
    ) -> Self {
        let mut reloader = Reloader {
            mode,
            eval_budget,
            protected,
            router,
            config_dir,
            fallback,
            last_digest: None,
            mounted_missing_reported: false,
            source: None,
        };
        reloader.check();
        if reloader.source.is_none() {
            reloader.load_fallback();
        }
        if reloader.source.is_none() {
            tracing::error!(
                config_dir = %reloader.config_dir.display(),
                "no valid rule bundle mounted and no fallback copy: consuming nothing, not ready, until one is mounted"
            );
        }
        reloader
    }

    /// The config directory watched.
    pub fn config_dir(&self) -> &PathBuf {
        &self.config_dir
    }

    fn load_fallback(&mut self) {
        let Some(store) = &self.fallback else {
            return;
        };
        match store.read() {
            Ok(bytes) => match RuleBundle::parse(&bytes) {
                Ok(bundle) => {
                    tracing::warn!(
                        path = %store.path().display(), version = %bundle.version,
                        "routing with the local fallback copy until a valid bundle is mounted"
                    );
                    self.apply(bundle, &bytes, Source::Fallback);
                }
                Err(error) => {
                    tracing::error!(path = %store.path().display(), %error, "fallback copy is unusable")
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::error!(path = %store.path().display(), %error, "cannot read the fallback copy")
            }
        }
    }

    /// Re-reads the mounted bundle and swaps it in if its content changed and is valid.
    pub fn check(&mut self) {
        let path = self.config_dir.join(BUNDLE_FILE_NAME);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => {
                if !self.mounted_missing_reported {
                    tracing::warn!(path = %path.display(), %error, "mounted bundle unreadable; keeping the current rules");
                    self.mounted_missing_reported = true;
                }
                self.last_digest = None;
                return;
            }
        };
        self.mounted_missing_reported = false;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if self.last_digest == Some(digest) {
            return;
        }
        self.last_digest = Some(digest);
        let parsed = match api_version_of(&bytes).as_deref() {
            Some(SHARDED_API_VERSION) => self.assemble_shards(&bytes),
            _ => RuleBundle::parse(&bytes).map(|bundle| Some((bundle, bytes.clone()))),
        };
        match parsed {
            // Shards not all synced yet: keep the current rules, look again at the next poll.
            Ok(None) => self.last_digest = None,
            Ok(Some((bundle, raw))) => {
                let live_version = self.router.rules.load().version.clone();
                if self.source == Some(Source::Mounted) && bundle.version == *live_version {
                    return;
                }
                self.apply(bundle, &raw, Source::Mounted);
            }
            Err(error) => {
                self.router
                    .metrics
                    .config_reloads
                    .with_label_values(&["rejected"])
                    .inc();
                tracing::error!(path = %path.display(), %error, "bundle rejected; keeping the current rules");
            }
        }
    }

    /// A sharded bundle (`streamsplit.io/bundle/v2`): the manifest's shards from the config
    /// directory, each checked against its digest. `Ok(None)` while the kubelet has not synced
    /// every shard; the bytes returned are the assembled bundle in the one-file format, which is
    /// what the fallback copy keeps.
    fn assemble_shards(
        &self,
        manifest_bytes: &[u8],
    ) -> Result<Option<(RuleBundle, Vec<u8>)>, BundleError> {
        let manifest = parse_manifest(manifest_bytes)?;
        match assemble(&manifest, |file| std::fs::read(self.config_dir.join(file))) {
            Ok(bundle) => {
                let raw = bundle.to_json().into_bytes();
                Ok(Some((bundle, raw)))
            }
            Err(ShardError::Invalid(error)) => Err(error),
            // Missing or stale: the kubelet has not synced every shard yet.
            Err(error) => {
                tracing::info!(version = %manifest.version, %error, "waiting for every shard of the bundle; keeping the current rules");
                Ok(None)
            }
        }
    }

    fn apply(&mut self, bundle: RuleBundle, raw: &[u8], source: Source) {
        let metrics = &self.router.metrics;
        let live = self.router.rules.load();
        let (rules, quarantined) =
            bundle.compile_with(self.mode, Some(&live.rules), &self.protected);
        let rules = rules.with_eval_budget(self.eval_budget);
        drop(live);
        for rule in &quarantined {
            let outcome = if rule.kept_previous {
                "rule quarantined; its previous version keeps routing"
            } else {
                "rule quarantined"
            };
            tracing::error!(rule = %rule.id, reason = rule.error.reason(), error = %rule.error, "{outcome}");
        }
        // What the fallback copy holds: the mounted bundle as published, or, when rules kept a
        // previous version, the rule set as it actually runs, so a restart runs the same.
        let fallback_bytes = if quarantined.iter().any(|q| q.kept_previous) {
            let effective = RuleBundle::build(
                &bundle.pool,
                rules.rules().iter().map(|r| r.definition.clone()),
            );
            effective.to_json().into_bytes()
        } else {
            raw.to_vec()
        };
        let result = if quarantined.is_empty() {
            "success"
        } else {
            "partial"
        };
        metrics.config_reloads.with_label_values(&[result]).inc();
        metrics.rules_active.set(rules.active_count() as i64);
        let time_quarantined = rules
            .rules()
            .iter()
            .filter(|r| r.is_time_quarantined())
            .count();
        metrics
            .rules_quarantined
            .set((quarantined.len() + time_quarantined) as i64);
        metrics.config_version_info.reset();
        metrics
            .config_version_info
            .with_label_values(&[&bundle.version, source.label()])
            .set(1);
        tracing::info!(
            version = %bundle.version, source = source.label(), rules = rules.rules().len(),
            quarantined = quarantined.len(), "rule set swapped in"
        );
        self.router
            .swap_rules(LiveRules::new(rules, bundle.version.clone(), metrics));
        self.source = Some(source);
        if source == Source::Mounted {
            if let Some(store) = &self.fallback {
                if let Err(error) = store.save(&fallback_bytes) {
                    tracing::warn!(path = %store.path().display(), %error, "cannot write the fallback copy");
                }
            }
        }
    }
}
