//! `streamsplit-router run`: consume the source topics and route every record.
//!
//! Each record is copied into a [`SourceRecord`], evaluated by exactly one rule-set snapshot, and
//! its copies handed to the tier producers with a shared [`InFlightRecord`]. The offset is
//! committed only once every copy (and exception record) is acknowledged.

pub mod consumer;
pub mod failure_log;
pub mod health;
pub mod in_flight;
pub mod kafka_config;
pub mod known_topics;
pub mod lanes;
pub mod live_rules;
pub mod offsets;
pub mod producers;
pub mod repair;
pub mod source_record;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use thiserror::Error;
use tokio::sync::{mpsc, Notify};

use streamsplit_rules::copy_shape::CopyError;
use streamsplit_rules::EvalError;

use crate::metrics::Metrics;
use consumer::{commit_list, RouterConsumerContext};
use health::Health;
use in_flight::{CopyKind, CopyTicket, InFlightRecord};
use kafka_config::KafkaSettings;
use lanes::{Lane, LaneLimits, Lanes};
use live_rules::LiveRules;
use offsets::OffsetTracker;
use producers::Producers;
use source_record::{ExceptionKind, SourceRecord};

/// Everything `run` needs besides the rules.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// Broker connection.
    pub kafka: KafkaSettings,
    /// Topics to consume.
    pub source_topics: Vec<String>,
    /// Consumer group.
    pub group: String,
    /// Where faulty records go.
    pub exception_topic: String,
    /// How often finished offsets are committed.
    pub commit_interval: Duration,
    /// Longest wait for in-flight copies at shutdown (all of it) and on revoke.
    pub drain_timeout: Duration,
    /// How much may be in flight per lane.
    pub lanes: LaneLimits,
    /// How long the pipeline may have work but make no progress before `/healthz` fails.
    pub stall_timeout: Duration,
    /// Whether every routed copy carries the lineage headers (rule, bundle version, source
    /// topic/partition/offset).
    pub lineage_headers: bool,
}

/// Why the router could not run, or stopped routing.
#[derive(Debug, Error)]
pub enum RunError {
    /// A Kafka client could not be created or subscribed.
    #[error("{context}: {source}")]
    Kafka {
        /// What was being done.
        context: &'static str,
        /// The client error.
        source: KafkaError,
    },
    /// The consumer failed in a way it cannot recover from (for example fenced by another
    /// member with the same instance id); what was done is committed, the rest is routed again
    /// after restart.
    #[error("the consumer failed fatally: {0}")]
    FatalConsumer(String),
}

/// Shared state of a running router, read by the HTTP endpoints.
pub struct Router {
    /// The live rules; replaced atomically on reload.
    pub rules: ArcSwap<LiveRules>,
    /// Metrics.
    pub metrics: Metrics,
    /// Progress and fault state for `/healthz` and `/readyz`.
    pub health: Arc<Health>,
    /// Benchmark baseline: copy every record here without evaluating rules.
    pub pass_through: Option<PassThrough>,
    /// Which topics exist, for templated target topics.
    pub known_topics: known_topics::KnownTopics,
    rules_loaded: AtomicBool,
    rules_loaded_notify: Notify,
}

/// Where pass-through copies go: spread over the given topics by source offset, so the
/// baseline writes to as many topics (and batches as well or as badly) as the rules it is
/// compared with.
pub struct PassThrough {
    label: Arc<str>,
    targets: Vec<(Arc<str>, Arc<in_flight::RouteCounters>)>,
}

impl PassThrough {
    /// Copies to `topics` (at least one), counted as rule `pass-through`.
    pub fn new(topics: &[String], metrics: &Metrics) -> Self {
        let targets = topics
            .iter()
            .map(|topic| {
                let counters = Arc::new(in_flight::RouteCounters {
                    routed: metrics.records_routed.with_label_values(&[
                        "pass-through",
                        topic,
                        "standard",
                    ]),
                    dropped: metrics
                        .rule_copies_dropped
                        .with_label_values(&["pass-through"]),
                    failed: metrics
                        .rule_copies_failed
                        .with_label_values(&["pass-through"]),
                });
                (Arc::from(topic.as_str()), counters)
            })
            .collect();
        PassThrough {
            label: Arc::from("pass-through"),
            targets,
        }
    }

    /// The one copy of the record at `offset`.
    fn kinds(&self, offset: i64) -> Vec<CopyKind> {
        self.target(offset)
            .map(|(topic, counters)| CopyKind::Route {
                rule: Arc::clone(&self.label),
                topic: Arc::clone(topic),
                tier: streamsplit_rules::Tier::Standard,
                value: None,
                key: None,
                counters: Arc::clone(counters),
            })
            .into_iter()
            .collect()
    }

    fn target(&self, offset: i64) -> Option<&(Arc<str>, Arc<in_flight::RouteCounters>)> {
        let count = i64::try_from(self.targets.len()).ok().filter(|n| *n > 0)?;
        self.targets
            .get(usize::try_from(offset.rem_euclid(count)).ok()?)
    }
}

impl Router {
    /// A router routing with `rules`; `loaded` says whether they came from a real source.
    pub fn new(rules: LiveRules, loaded: bool, metrics: Metrics) -> Self {
        Router {
            rules: ArcSwap::from_pointee(rules),
            metrics,
            health: Arc::new(Health::default()),
            pass_through: None,
            known_topics: Default::default(),
            rules_loaded: AtomicBool::new(loaded),
            rules_loaded_notify: Notify::new(),
        }
    }

    /// Replaces the live rules; records already being evaluated finish on the old set. The
    /// metric series of rules that are gone are removed.
    pub fn swap_rules(&self, rules: LiveRules) {
        let old = self.rules.swap(Arc::new(rules));
        old.remove_series_missing_from(&self.rules.load(), &self.metrics);
        self.rules_loaded.store(true, Ordering::Release);
        self.rules_loaded_notify.notify_waiters();
    }

    /// Whether a rule set from a real source (not the empty placeholder) is live.
    pub fn is_rules_loaded(&self) -> bool {
        self.rules_loaded.load(Ordering::Acquire)
    }

    /// Resolves once a rule set from a real source is live.
    async fn rules_loaded(&self) {
        loop {
            let notified = self.rules_loaded_notify.notified();
            if self.is_rules_loaded() {
                return;
            }
            notified.await;
        }
    }
}

/// Consumes and routes until `shutdown` resolves, then drains and commits.
///
/// Nothing is consumed before a rule set from a real source (mounted bundle, fallback copy or
/// manifests) is live: a router without rules would otherwise commit records it never copied.
pub async fn run(
    settings: RunSettings,
    router: Arc<Router>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    tokio::pin!(shutdown);
    if !router.is_rules_loaded() {
        tracing::warn!("no rule set loaded yet: not consuming until a bundle is mounted");
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("stopped before any rule set was loaded; nothing was consumed");
                return Ok(());
            }
            _ = router.rules_loaded() => tracing::info!("rule set loaded; starting to consume"),
        }
    }
    let metrics = router.metrics.clone();
    let health = Arc::clone(&router.health);
    health.set_stall_timeout(settings.stall_timeout);
    let tracker = Arc::new(OffsetTracker::default());
    let (repair_tx, repair_rx) = mpsc::unbounded_channel();
    let producers = Arc::new(
        Producers::new(
            &settings.kafka,
            &settings.exception_topic,
            repair_tx,
            metrics.clone(),
            Arc::clone(&health),
        )
        .map_err(|source| RunError::Kafka {
            context: "cannot create producers",
            source,
        })?,
    );
    let context = RouterConsumerContext {
        tracker: Arc::clone(&tracker),
        producers: Arc::clone(&producers),
        metrics: metrics.clone(),
        health: Arc::clone(&health),
        revoke_flush_timeout: settings.drain_timeout,
        shutdown_deadline: std::sync::Mutex::new(None),
    };
    let consumer: Arc<StreamConsumer<RouterConsumerContext>> = Arc::new(
        settings
            .kafka
            .consumer(&settings.group)
            .create_with_context(context)
            .map_err(|source| RunError::Kafka {
                context: "cannot create consumer",
                source,
            })?,
    );
    let topics: Vec<&str> = settings.source_topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|source| RunError::Kafka {
            context: "cannot subscribe to the source topics",
            source,
        })?;
    tracing::info!(topics = ?settings.source_topics, group = %settings.group, "routing");

    let repair = tokio::spawn(repair::repair_failed_copies(
        repair_rx,
        Arc::clone(&producers),
        metrics.clone(),
        Arc::clone(&health),
    ));
    let committer = tokio::spawn(commit_periodically(
        Arc::clone(&consumer),
        Arc::clone(&tracker),
        metrics.clone(),
        Arc::clone(&health),
        settings.commit_interval,
    ));

    let lanes = Lanes::new(settings.lanes);
    let mut topic_names: HashMap<String, Arc<str>> = HashMap::new();
    let mut outcome = Ok(());
    'consume: loop {
        let message = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            message = consumer.recv() => message,
        };
        let tickets = match message {
            Ok(message) => {
                health.progressed();
                prepare(
                    &message,
                    &router,
                    &consumer,
                    &tracker,
                    &mut topic_names,
                    settings.lineage_headers,
                )
            }
            Err(error) => {
                if let Some((code, reason)) = consumer.client().fatal_error() {
                    tracing::error!(?code, %reason, "fatal consumer error: draining, committing and exiting");
                    outcome = Err(RunError::FatalConsumer(format!("{code:?}: {reason}")));
                    break;
                }
                tracing::warn!(%error, "consumer error");
                continue;
            }
        };
        for ticket in tickets {
            let admitted = tokio::select! {
                biased;
                _ = &mut shutdown => break 'consume,
                admitted = admit(ticket, &lanes, &metrics) => admitted,
            };
            if let Some(ticket) = admitted {
                producers.send(Box::new(ticket)).await;
            }
        }
    }

    let deadline = Instant::now() + settings.drain_timeout;
    tracing::info!(timeout = ?settings.drain_timeout, "shutting down: draining in-flight copies");
    consumer.context().set_shutdown_deadline(deadline);
    committer.abort();
    drain(&producers, &tracker, deadline).await;
    let committed =
        tracker.commit_pending(|commits| consumer.commit(&commit_list(commits), CommitMode::Sync));
    if let Err(error) = committed {
        tracing::warn!(%error, "final commit failed; uncommitted records will be routed again");
    }
    repair.abort();
    close(consumer);
    tracing::info!("stopped");
    outcome
}

/// Longest wait for the consumer to leave its group at shutdown; offsets are committed already.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Closes the consumer (its revoke callback commits nothing new and flushes nothing: the drain
/// is over) on a thread of its own, waiting at most [`CLOSE_TIMEOUT`], so a broker that does not
/// answer cannot hold the process past its grace period.
fn close(consumer: Arc<StreamConsumer<RouterConsumerContext>>) {
    consumer.context().set_shutdown_deadline(Instant::now());
    let (closed_tx, closed) = std::sync::mpsc::channel();
    let closer = std::thread::Builder::new()
        .name("consumer-close".into())
        .spawn(move || {
            drop(consumer);
            let _ = closed_tx.send(());
        });
    if closer.is_err() || closed.recv_timeout(CLOSE_TIMEOUT).is_err() {
        tracing::warn!(
            timeout = ?CLOSE_TIMEOUT,
            "the consumer did not close in time; exiting anyway (offsets are committed)"
        );
    }
}

/// Gives a copy its share of its lane: waits for room in the critical and standard lanes; a
/// best-effort copy that finds its lane full is dropped and counted instead (`None`).
async fn admit(mut ticket: CopyTicket, lanes: &Lanes, metrics: &Metrics) -> Option<CopyTicket> {
    let lane = ticket.kind.lane();
    let bytes = ticket.record.source.size();
    let permit = if lane == Lane::BestEffort {
        lanes.try_acquire(lane, bytes)
    } else {
        Some(lanes.acquire(lane, bytes).await)
    };
    match permit {
        Some(permit) => {
            ticket.permit = Some(permit);
            Some(ticket)
        }
        None => {
            metrics.dropped_best_effort();
            if let CopyKind::Route { counters, .. } = &ticket.kind {
                counters.dropped.inc();
            }
            ticket.record.copy_finished();
            None
        }
    }
}

/// Evaluates one record and builds the tickets of its copies. Registers the offset first so a
/// commit can never pass it before its copies are acknowledged.
fn prepare(
    message: &BorrowedMessage<'_>,
    router: &Router,
    consumer: &StreamConsumer<RouterConsumerContext>,
    tracker: &Arc<OffsetTracker>,
    topic_names: &mut HashMap<String, Arc<str>>,
    lineage_headers: bool,
) -> Vec<CopyTicket> {
    let started = Instant::now();
    let metrics = &router.metrics;
    metrics.records_consumed.inc();
    let topic = match topic_names.get(message.topic()) {
        Some(name) => Arc::clone(name),
        None => {
            let name: Arc<str> = Arc::from(message.topic());
            topic_names.insert(message.topic().to_string(), Arc::clone(&name));
            name
        }
    };
    let position = tracker.register(&(Arc::clone(&topic), message.partition()), message.offset());
    let source = SourceRecord::from_message(message, topic);

    let live = router.rules.load();
    let kinds = match &router.pass_through {
        Some(pass) => {
            metrics.records_evaluated.inc();
            pass.kinds(source.offset)
        }
        None => {
            let exists = |topic: &str| {
                router
                    .known_topics
                    .exists(topic, Instant::now(), || list_topics(consumer))
            };
            route_kinds(&live, &source, metrics, exists)
        }
    };
    let lineage = lineage_headers.then(|| Arc::clone(&live.version));
    drop(live);

    if kinds.is_empty() {
        tracker.complete(&position);
        metrics
            .record_processing_seconds
            .observe(started.elapsed().as_secs_f64());
        return Vec::new();
    }
    let record = Arc::new(InFlightRecord::new(
        source,
        lineage,
        position,
        kinds.len(),
        Arc::clone(tracker),
    ));
    let tickets = kinds
        .into_iter()
        .map(|kind| CopyTicket {
            record: Arc::clone(&record),
            kind,
            attempts: 0,
            permit: None,
        })
        .collect();
    metrics
        .record_processing_seconds
        .observe(started.elapsed().as_secs_f64());
    tickets
}

/// Every topic of the cluster, from its metadata.
fn list_topics(
    consumer: &StreamConsumer<RouterConsumerContext>,
) -> Result<std::collections::HashSet<String>, KafkaError> {
    let metadata = consumer.fetch_metadata(None, METADATA_TIMEOUT)?;
    Ok(metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect())
}

/// Longest wait for cluster metadata when checking a rendered topic.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// The copies (and exception records) the live rules ask for one record: evaluation, rule
/// statistics, and each delivered copy shaped by its rule. `exists` says whether a rendered
/// topic exists.
fn route_kinds(
    live: &LiveRules,
    source: &SourceRecord,
    metrics: &Metrics,
    exists: impl Fn(&str) -> bool,
) -> Vec<CopyKind> {
    let payload = source.payload.as_deref().unwrap_or_default();
    // Key and headers are only gathered when a condition, a sample or a copy shape reads them.
    let meta = if live.rules.reads_meta() {
        source.meta()
    } else {
        streamsplit_rules::RecordMeta::default()
    };
    let mut evaluation = match live.rules.evaluate_record(payload, &meta) {
        Ok(evaluation) => evaluation,
        Err(error) => {
            return vec![CopyKind::exception(
                ExceptionKind::Decode,
                error.to_string(),
                None,
            )]
        }
    };
    if live.rules.limits_rates() {
        live.rules.throttle(&mut evaluation, Instant::now());
    }
    metrics.records_evaluated.inc();
    let mut kinds = Vec::new();
    for &index in &evaluation.matches {
        live.stats[index].matches.inc();
    }
    for &index in &evaluation.sampled_out {
        live.stats[index].matches.inc();
        live.stats[index].sampled_out.inc();
    }
    for &index in &evaluation.excluded {
        live.stats[index].matches.inc();
        live.stats[index].excluded.inc();
    }
    for &index in &evaluation.throttled {
        live.stats[index].matches.inc();
        live.stats[index].throttled.inc();
    }
    for &index in &evaluation.quarantined {
        let stats = &live.stats[index];
        metrics.rules_quarantined.inc();
        tracing::error!(
            rule = %stats.id,
            overruns = streamsplit_rules::rule_set::QUARANTINE_AFTER_OVERRUNS,
            "rule quarantined: it kept exceeding its time budget or operation limit; its records go to the exception topic until it is changed"
        );
    }
    for failure in &evaluation.failures {
        let stats = &live.stats[failure.rule];
        stats.errors.inc();
        if matches!(
            failure.error,
            EvalError::TimeBudget | EvalError::OperationLimit(_)
        ) {
            stats.overruns.inc();
        }
        kinds.push(CopyKind::exception(
            ExceptionKind::Rule,
            failure.error.to_string(),
            Some(Arc::clone(&stats.id)),
        ));
    }
    for copy in live.rules.copies(&evaluation, payload, &meta) {
        let stats = &live.stats[copy.rule];
        let outcome = copy.outcome.and_then(|shaped| {
            if shaped.rendered && !exists(&shaped.topic) {
                return Err(CopyError::UnknownTopic {
                    template: stats.topic.to_string(),
                    topic: shaped.topic.into_owned(),
                });
            }
            Ok(shaped)
        });
        match outcome {
            Ok(shaped) => kinds.push(CopyKind::Route {
                rule: Arc::clone(&stats.id),
                topic: if shaped.rendered {
                    Arc::from(shaped.topic.as_ref())
                } else {
                    Arc::clone(&stats.topic)
                },
                tier: copy.tier,
                value: shaped.parts.value.map(Arc::from),
                key: shaped.parts.key.map(Arc::from),
                counters: Arc::clone(&stats.route),
            }),
            // Never the whole record instead: it could carry what the rule masks.
            Err(error) => {
                stats.errors.inc();
                kinds.push(CopyKind::exception(
                    ExceptionKind::Rule,
                    error.to_string(),
                    Some(Arc::clone(&stats.id)),
                ));
            }
        }
    }
    kinds
}

async fn commit_periodically(
    consumer: Arc<StreamConsumer<RouterConsumerContext>>,
    tracker: Arc<OffsetTracker>,
    metrics: Metrics,
    health: Arc<Health>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    let mut last_finished = tracker.finished();
    loop {
        ticker.tick().await;
        let consumer = Arc::clone(&consumer);
        let committing = Arc::clone(&tracker);
        let result = tokio::task::spawn_blocking(move || {
            committing
                .commit_pending(|commits| consumer.commit(&commit_list(commits), CommitMode::Sync))
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "commit failed; retrying at the next interval")
            }
            Err(error) => tracing::warn!(%error, "commit task failed"),
        }
        let finished = tracker.finished();
        if finished != last_finished {
            last_finished = finished;
            health.progressed();
        }
        health.set_has_work(!tracker.is_drained() || health.consumer_lag() > 0);
        for ((topic, partition), lag) in tracker.uncommitted() {
            metrics
                .commit_lag
                .with_label_values(&[&*topic, partition.to_string().as_str()])
                .set(lag as i64);
        }
    }
}

/// Waits until every registered record is done or `deadline` passes.
async fn drain(producers: &Arc<Producers>, tracker: &OffsetTracker, deadline: Instant) {
    while !tracker.is_drained() && Instant::now() < deadline {
        let producers = Arc::clone(producers);
        let step = (Instant::now() + Duration::from_millis(200)).min(deadline);
        let _ = tokio::task::spawn_blocking(move || producers.flush_until(step)).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !tracker.is_drained() {
        tracing::warn!(
            queued = producers.queued(),
            "drain timed out; unfinished records stay uncommitted and will be routed again"
        );
    }
}
