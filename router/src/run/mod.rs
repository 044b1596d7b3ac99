//! `streamsplit-router run`: consume the source topics and route every record.
//!
//! Each record is copied into a [`SourceRecord`], evaluated by exactly one rule-set snapshot, and
//! its copies handed to the tier producers with a shared [`InFlightRecord`]. The offset is
//! committed only once every copy (and exception record) is acknowledged.

pub mod consumer;
pub mod in_flight;
pub mod kafka_config;
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
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use consumer::{commit_list, RouterConsumerContext};
use in_flight::{CopyKind, CopyTicket, InFlightRecord};
use kafka_config::KafkaSettings;
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
    /// Longest wait for in-flight copies at shutdown and on revoke.
    pub drain_timeout: Duration,
    /// Most records whose copies may be in flight at once; consumption waits beyond it.
    pub max_in_flight: usize,
}

/// Why the router could not run.
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
}

/// Shared state of a running router, read by the HTTP endpoints.
pub struct Router {
    /// The live rules; replaced atomically on reload.
    pub rules: ArcSwap<LiveRules>,
    /// Metrics.
    pub metrics: Metrics,
    /// Benchmark baseline: copy every record here without evaluating rules.
    pub pass_through: Option<PassThrough>,
    rules_loaded: AtomicBool,
}

/// Where pass-through copies go.
pub struct PassThrough {
    topic: Arc<str>,
    label: Arc<str>,
    routed: prometheus::IntCounter,
}

impl PassThrough {
    /// Copies to `topic`, counted as rule `pass-through`.
    pub fn new(topic: &str, metrics: &Metrics) -> Self {
        PassThrough {
            topic: Arc::from(topic),
            label: Arc::from("pass-through"),
            routed: metrics
                .records_routed
                .with_label_values(&["pass-through", topic, "standard"]),
        }
    }
}

impl Router {
    /// A router routing with `rules`; `loaded` says whether they came from a real source.
    pub fn new(rules: LiveRules, loaded: bool, metrics: Metrics) -> Self {
        Router {
            rules: ArcSwap::from_pointee(rules),
            metrics,
            pass_through: None,
            rules_loaded: AtomicBool::new(loaded),
        }
    }

    /// Replaces the live rules; records already being evaluated finish on the old set.
    pub fn swap_rules(&self, rules: LiveRules) {
        self.rules.store(Arc::new(rules));
        self.rules_loaded.store(true, Ordering::Release);
    }

    /// Whether a rule set from a real source (not the empty placeholder) is live.
    pub fn is_rules_loaded(&self) -> bool {
        self.rules_loaded.load(Ordering::Acquire)
    }
}

/// Consumes and routes until `shutdown` resolves, then drains and commits.
pub async fn run(
    settings: RunSettings,
    router: Arc<Router>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let metrics = router.metrics.clone();
    let tracker = Arc::new(OffsetTracker::default());
    let (failed_tx, failed_rx) = mpsc::unbounded_channel();
    let producers = Arc::new(
        Producers::new(
            &settings.kafka,
            &settings.exception_topic,
            failed_tx,
            metrics.clone(),
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
        revoke_flush_timeout: settings.drain_timeout,
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
        failed_rx,
        Arc::clone(&producers),
    ));
    let committer = tokio::spawn(commit_periodically(
        Arc::clone(&consumer),
        Arc::clone(&tracker),
        metrics.clone(),
        settings.commit_interval,
    ));

    let mut topic_names: HashMap<String, Arc<str>> = HashMap::new();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            permit = Arc::clone(&in_flight).acquire_owned() => permit.ok(),
        };
        let message = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            message = consumer.recv() => message,
        };
        let tickets = match message {
            Ok(message) => prepare(&message, &router, &tracker, &mut topic_names, permit),
            Err(error) => {
                tracing::warn!(%error, "consumer error");
                continue;
            }
        };
        for ticket in tickets {
            producers.send(Box::new(ticket)).await;
        }
    }

    tracing::info!("shutting down: draining in-flight copies");
    committer.abort();
    drain(&producers, &tracker, settings.drain_timeout).await;
    let commits = tracker.pending_commits();
    if !commits.is_empty() {
        match consumer.commit(&commit_list(&commits), CommitMode::Sync) {
            Ok(()) => tracker.mark_committed(&commits),
            Err(error) => tracing::warn!(
                %error, "final commit failed; uncommitted records will be routed again"
            ),
        }
    }
    repair.abort();
    drop(consumer);
    tracing::info!("stopped");
    Ok(())
}

/// Evaluates one record and builds the tickets of its copies. Registers the offset first so a
/// commit can never pass it before its copies are acknowledged.
fn prepare(
    message: &BorrowedMessage<'_>,
    router: &Router,
    tracker: &Arc<OffsetTracker>,
    topic_names: &mut HashMap<String, Arc<str>>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
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
    let mut kinds = Vec::new();
    let evaluated = match &router.pass_through {
        Some(pass) => {
            kinds.push(CopyKind::Route {
                rule: Arc::clone(&pass.label),
                topic: Arc::clone(&pass.topic),
                tier: streamsplit_rules::Tier::Standard,
                routed: pass.routed.clone(),
            });
            Ok(None)
        }
        None => live
            .rules
            .evaluate(source.payload.as_deref().unwrap_or_default())
            .map(Some),
    };
    match evaluated {
        Ok(None) => {}
        Err(error) => kinds.push(CopyKind::Exception {
            kind: ExceptionKind::Decode,
            message: error.to_string(),
            rule: None,
        }),
        Ok(Some(evaluation)) => {
            for &index in &evaluation.matches {
                live.stats[index].matches.inc();
            }
            for failure in &evaluation.failures {
                let stats = &live.stats[failure.rule];
                stats.errors.inc();
                kinds.push(CopyKind::Exception {
                    kind: ExceptionKind::Rule,
                    message: failure.error.to_string(),
                    rule: Some(Arc::clone(&stats.id)),
                });
            }
            for delivery in live.rules.deliveries(&evaluation) {
                let stats = &live.stats[delivery.rule];
                kinds.push(CopyKind::Route {
                    rule: Arc::clone(&stats.id),
                    topic: Arc::clone(&stats.topic),
                    tier: delivery.tier,
                    routed: stats.routed.clone(),
                });
            }
        }
    }
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
        position,
        kinds.len(),
        Arc::clone(tracker),
        permit,
    ));
    let tickets = kinds
        .into_iter()
        .map(|kind| CopyTicket {
            record: Arc::clone(&record),
            kind,
            attempts: 0,
        })
        .collect();
    metrics
        .record_processing_seconds
        .observe(started.elapsed().as_secs_f64());
    tickets
}

async fn commit_periodically(
    consumer: Arc<StreamConsumer<RouterConsumerContext>>,
    tracker: Arc<OffsetTracker>,
    metrics: Metrics,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        let commits = tracker.pending_commits();
        if !commits.is_empty() {
            let consumer = Arc::clone(&consumer);
            let list = commit_list(&commits);
            let result =
                tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync)).await;
            match result {
                Ok(Ok(())) => tracker.mark_committed(&commits),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "commit failed; retrying at the next interval")
                }
                Err(error) => tracing::warn!(%error, "commit task failed"),
            }
        }
        for ((topic, partition), lag) in tracker.uncommitted() {
            metrics
                .commit_lag
                .with_label_values(&[&*topic, partition.to_string().as_str()])
                .set(lag as i64);
        }
    }
}

/// Waits until every registered record is done or the timeout passes.
async fn drain(producers: &Arc<Producers>, tracker: &OffsetTracker, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !tracker.is_drained() && Instant::now() < deadline {
        let producers = Arc::clone(producers);
        let _ =
            tokio::task::spawn_blocking(move || producers.flush(Duration::from_millis(200))).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !tracker.is_drained() {
        tracing::warn!(
            "drain timed out; unfinished records stay uncommitted and will be routed again"
        );
    }
}
