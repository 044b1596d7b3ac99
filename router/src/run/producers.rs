//! One producer per tier plus one for exceptions, so a slow or full lower tier never delays
//! critical copies, and the delivery callback that turns acknowledgements into commit progress.
//!
//! A producer that librdkafka declares fatal (an idempotent producer whose sequence state the
//! broker lost in a restart, a fenced producer) is replaced by a new one; the copies it still
//! held come back through the delivery callback and are sent again on the new producer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use streamsplit_rules::Tier;
use tokio::sync::mpsc::UnboundedSender;

use super::health::Health;
use super::in_flight::{CopyKind, CopyTicket};
use super::kafka_config::{KafkaSettings, ProducerRole};
use crate::metrics::Metrics;

/// How long to wait before offering a copy again to a full producer queue.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(2);

/// What the repair task is told.
#[derive(Debug)]
pub enum RepairEvent {
    /// A copy librdkafka gave up on (or refused outright).
    Failed(FailedCopy),
    /// librdkafka reported a fatal error on a producer: it must be replaced.
    ProducerFatal(ProducerRole),
}

/// A copy librdkafka gave up on; the repair task decides its fate.
#[derive(Debug)]
pub struct FailedCopy {
    /// The copy.
    pub ticket: Box<CopyTicket>,
    /// The final error.
    pub error: KafkaError,
}

/// Callbacks of one producer.
pub struct DeliveryContext {
    role: ProducerRole,
    repair: UnboundedSender<RepairEvent>,
    metrics: Metrics,
    health: Arc<Health>,
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            tracing::error!(producer = self.role.label(), %error, reason, "producer failed fatally; replacing it");
            let _ = self.repair.send(RepairEvent::ProducerFatal(self.role));
        } else {
            tracing::debug!(producer = self.role.label(), %error, reason, "librdkafka error");
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<CopyTicket>;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: Box<CopyTicket>) {
        match result {
            Ok(_) => {
                match &ticket.kind {
                    CopyKind::Route { counters, .. } => counters.routed.inc(),
                    CopyKind::Exception { kind, .. } => {
                        self.health.exception_topic_available();
                        self.metrics
                            .exceptions
                            .with_label_values(&[kind.as_str()])
                            .inc()
                    }
                }
                ticket.record.copy_finished();
            }
            Err((error, _)) => self.report_failure(ticket, error.clone()),
        }
    }
}

impl DeliveryContext {
    fn report_failure(&self, ticket: Box<CopyTicket>, error: KafkaError) {
        self.metrics
            .produce_errors
            .with_label_values(&[self.role.label(), &error_reason(&error)])
            .inc();
        // If the repair task is gone the router is shutting down: the record stays uncommitted
        // and is consumed again after restart, so nothing is lost.
        let _ = self
            .repair
            .send(RepairEvent::Failed(FailedCopy { ticket, error }));
    }
}

/// Bounded label for an error: the librdkafka error code name.
pub fn error_reason(error: &KafkaError) -> String {
    match error.rdkafka_error_code() {
        Some(code) => format!("{code:?}"),
        None => "Other".to_string(),
    }
}

/// What a produce error means for the copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The record is larger than the broker or client accepts.
    TooLarge,
    /// No retry can fix it: the topic is missing, illegal or forbidden.
    Permanent,
    /// The producer, not the copy, failed: fatal or fenced idempotent state, a lost sequence,
    /// or the copy was purged from a producer being replaced. Sending again on a fresh
    /// producer fixes it.
    ProducerLost,
    /// Anything else (timeouts, broker unavailable): may succeed later.
    Transient,
}

/// Classifies a produce error.
pub fn classify(error: &KafkaError) -> ErrorClass {
    use RDKafkaErrorCode as Code;
    match error.rdkafka_error_code() {
        Some(Code::MessageSizeTooLarge | Code::InvalidMessageSize) => ErrorClass::TooLarge,
        Some(
            Code::UnknownTopic
            | Code::UnknownTopicOrPartition
            | Code::InvalidTopic
            | Code::TopicAuthorizationFailed
            | Code::InvalidRecord
            | Code::InvalidMessage,
        ) => ErrorClass::Permanent,
        Some(
            Code::Fatal
            | Code::PurgeQueue
            | Code::PurgeInflight
            | Code::OutOfOrderSequenceNumber
            | Code::DuplicateSequenceNumber
            | Code::UnknownProducerId
            | Code::InvalidProducerEpoch
            | Code::InvalidProducerIdMapping
            | Code::ProducerFenced,
        ) => ErrorClass::ProducerLost,
        _ => ErrorClass::Transient,
    }
}

type RouterProducer = ThreadedProducer<DeliveryContext>;

/// The router's producers.
pub struct Producers {
    critical: ArcSwap<RouterProducer>,
    standard: ArcSwap<RouterProducer>,
    best_effort: ArcSwap<RouterProducer>,
    exception: ArcSwap<RouterProducer>,
    settings: KafkaSettings,
    exception_topic: Arc<str>,
    metrics: Metrics,
    health: Arc<Health>,
    repair: UnboundedSender<RepairEvent>,
}

impl Producers {
    /// Creates all four producers.
    pub fn new(
        settings: &KafkaSettings,
        exception_topic: &str,
        repair: UnboundedSender<RepairEvent>,
        metrics: Metrics,
        health: Arc<Health>,
    ) -> Result<Self, KafkaError> {
        let create = |role| Self::create(settings, role, &repair, &metrics, &health);
        Ok(Producers {
            critical: ArcSwap::from_pointee(create(ProducerRole::Tier(Tier::Critical))?),
            standard: ArcSwap::from_pointee(create(ProducerRole::Tier(Tier::Standard))?),
            best_effort: ArcSwap::from_pointee(create(ProducerRole::Tier(Tier::BestEffort))?),
            exception: ArcSwap::from_pointee(create(ProducerRole::Exception)?),
            settings: settings.clone(),
            exception_topic: Arc::from(exception_topic),
            metrics,
            health,
            repair,
        })
    }

    fn create(
        settings: &KafkaSettings,
        role: ProducerRole,
        repair: &UnboundedSender<RepairEvent>,
        metrics: &Metrics,
        health: &Arc<Health>,
    ) -> Result<RouterProducer, KafkaError> {
        settings
            .producer(role)
            .create_with_context(DeliveryContext {
                role,
                repair: repair.clone(),
                metrics: metrics.clone(),
                health: Arc::clone(health),
            })
    }

    fn slot(&self, role: ProducerRole) -> &ArcSwap<RouterProducer> {
        match role {
            ProducerRole::Tier(Tier::Critical) => &self.critical,
            ProducerRole::Tier(Tier::Standard) => &self.standard,
            ProducerRole::Tier(Tier::BestEffort) => &self.best_effort,
            ProducerRole::Exception => &self.exception,
        }
    }

    /// The exception topic.
    pub fn exception_topic(&self) -> &Arc<str> {
        &self.exception_topic
    }

    /// Whether the producer of `role` is in a fatal state and must be replaced.
    pub fn is_fatal(&self, role: ProducerRole) -> bool {
        self.slot(role).load().client().fatal_error().is_some()
    }

    /// Replaces the producer of `role` if it is fatal. The old producer is dropped on a blocking
    /// thread: dropping purges it, and its copies come back as `PurgeQueue`/`PurgeInflight`
    /// failures that the repair task sends again on the new producer.
    pub fn replace_if_fatal(&self, role: ProducerRole) -> Result<bool, KafkaError> {
        let slot = self.slot(role);
        let Some((code, reason)) = slot.load().client().fatal_error() else {
            return Ok(false);
        };
        let fresh = Self::create(
            &self.settings,
            role,
            &self.repair,
            &self.metrics,
            &self.health,
        )?;
        let old = slot.swap(Arc::new(fresh));
        self.metrics
            .producer_replacements
            .with_label_values(&[role.label()])
            .inc();
        tracing::warn!(producer = role.label(), ?code, %reason, "replaced a fatally failed producer; its pending copies are sent again");
        tokio::task::spawn_blocking(move || drop(old));
        Ok(true)
    }

    /// Hands a copy to its producer. A full librdkafka queue makes the copy wait (the lane
    /// budgets normally keep queues below their limit). A copy librdkafka refuses outright is
    /// reported like a failed delivery.
    pub async fn send(&self, ticket: Box<CopyTicket>) {
        let record = Arc::clone(&ticket.record);
        let source = &record.source;
        // The ticket moves into librdkafka below; a shaped value and key must outlive it here.
        let (shaped_value, shaped_key) = match &ticket.kind {
            CopyKind::Route { value, key, .. } => (value.clone(), key.clone()),
            CopyKind::Exception { .. } => (None, None),
        };
        let (role, topic, key, payload, headers) = match &ticket.kind {
            CopyKind::Route {
                tier, topic, rule, ..
            } => (
                ProducerRole::Tier(*tier),
                Arc::clone(topic),
                shaped_key.as_deref().or(source.key.as_deref()),
                shaped_value.as_deref().or(source.payload.as_deref()),
                match &record.lineage {
                    Some(version) => Some(source.lineage_headers(rule, version)),
                    None => source.headers.clone(),
                },
            ),
            CopyKind::Exception {
                kind,
                message,
                rule,
                truncated,
            } => {
                let (key, payload) = source.exception_key_and_value(*truncated);
                (
                    ProducerRole::Exception,
                    Arc::clone(&self.exception_topic),
                    key,
                    payload,
                    Some(source.exception_headers(*kind, message, rule.as_deref(), *truncated)),
                )
            }
        };
        let mut base = BaseRecord::with_opaque_to(&topic, ticket);
        if let Some(key) = key {
            base = base.key(key);
        }
        if let Some(payload) = payload {
            base = base.payload(payload);
        }
        if let Some(headers) = headers {
            base = base.headers(headers);
        }
        if let Some(timestamp) = source.timestamp {
            base = base.timestamp(timestamp);
        }
        loop {
            let producer = self.slot(role).load_full();
            match producer.send(base) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    base = back;
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
                Err((error, back)) => {
                    self.metrics
                        .produce_errors
                        .with_label_values(&[role.label(), &error_reason(&error)])
                        .inc();
                    let _ = self.repair.send(RepairEvent::Failed(FailedCopy {
                        ticket: back.delivery_opaque,
                        error,
                    }));
                    return;
                }
            }
        }
    }

    /// Waits until every queued copy of every producer is acknowledged or failed, or `deadline`
    /// passes: one deadline for all producers, never one timeout each.
    pub fn flush_until(&self, deadline: Instant) {
        for role in ProducerRole::ALL {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if let Err(error) = self.slot(role).load().flush(remaining) {
                tracing::debug!(producer = role.label(), %error, "flush did not complete");
            }
        }
    }

    /// Copies queued in librdkafka over all producers.
    pub fn queued(&self) -> i32 {
        ProducerRole::ALL
            .iter()
            .map(|role| self.slot(*role).load().in_flight_count())
            .sum()
    }
}
