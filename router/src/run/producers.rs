//! One producer per tier plus one for exceptions, so a slow or full lower tier never delays
//! critical copies, and the delivery callback that turns acknowledgements into commit progress.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use streamsplit_rules::Tier;
use tokio::sync::mpsc::UnboundedSender;

use super::in_flight::{CopyKind, CopyTicket};
use super::kafka_config::{KafkaSettings, ProducerRole};
use crate::metrics::Metrics;

/// How long to wait before offering a copy again to a full producer queue.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(2);

/// A copy librdkafka gave up on; the repair task decides its fate.
#[derive(Debug)]
pub struct FailedCopy {
    /// The copy.
    pub ticket: Box<CopyTicket>,
    /// The final error.
    pub error: KafkaError,
}

/// Delivery callbacks of one producer.
pub struct DeliveryContext {
    role: ProducerRole,
    failed: UnboundedSender<FailedCopy>,
    metrics: Metrics,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<CopyTicket>;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: Box<CopyTicket>) {
        match result {
            Ok(_) => {
                match &ticket.kind {
                    CopyKind::Route { routed, .. } => routed.inc(),
                    CopyKind::Exception { kind, .. } => self
                        .metrics
                        .exceptions
                        .with_label_values(&[kind.as_str()])
                        .inc(),
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
        let _ = self.failed.send(FailedCopy { ticket, error });
    }
}

/// Bounded label for an error: the librdkafka error code name.
pub fn error_reason(error: &KafkaError) -> String {
    match error.rdkafka_error_code() {
        Some(code) => format!("{code:?}"),
        None => "Other".to_string(),
    }
}

/// Errors no retry can fix: the copy must go to the exception topic.
pub fn is_permanent(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidMessage
        )
    )
}

type RouterProducer = ThreadedProducer<DeliveryContext>;

/// The router's producers.
pub struct Producers {
    critical: RouterProducer,
    standard: RouterProducer,
    best_effort: RouterProducer,
    exception: RouterProducer,
    exception_topic: Arc<str>,
    metrics: Metrics,
    failed: UnboundedSender<FailedCopy>,
}

impl Producers {
    /// Creates all four producers.
    pub fn new(
        settings: &KafkaSettings,
        exception_topic: &str,
        failed: UnboundedSender<FailedCopy>,
        metrics: Metrics,
    ) -> Result<Self, KafkaError> {
        let create = |role: ProducerRole| -> Result<RouterProducer, KafkaError> {
            settings
                .producer(role)
                .create_with_context(DeliveryContext {
                    role,
                    failed: failed.clone(),
                    metrics: metrics.clone(),
                })
        };
        Ok(Producers {
            critical: create(ProducerRole::Tier(Tier::Critical))?,
            standard: create(ProducerRole::Tier(Tier::Standard))?,
            best_effort: create(ProducerRole::Tier(Tier::BestEffort))?,
            exception: create(ProducerRole::Exception)?,
            exception_topic: Arc::from(exception_topic),
            metrics,
            failed,
        })
    }

    fn producer(&self, role: ProducerRole) -> &RouterProducer {
        match role {
            ProducerRole::Tier(Tier::Critical) => &self.critical,
            ProducerRole::Tier(Tier::Standard) => &self.standard,
            ProducerRole::Tier(Tier::BestEffort) => &self.best_effort,
            ProducerRole::Exception => &self.exception,
        }
    }

    /// Hands a copy to its producer. A full queue applies backpressure (the consume loop waits),
    /// except for best-effort copies, which are dropped and counted so they never hold up
    /// critical traffic. A copy librdkafka refuses outright is reported like a failed delivery.
    pub async fn send(&self, ticket: Box<CopyTicket>) {
        let record = Arc::clone(&ticket.record);
        let source = &record.source;
        let (role, topic, headers) = match &ticket.kind {
            CopyKind::Route { tier, topic, .. } => (
                ProducerRole::Tier(*tier),
                Arc::clone(topic),
                source.headers.clone(),
            ),
            CopyKind::Exception {
                kind,
                message,
                rule,
            } => (
                ProducerRole::Exception,
                Arc::clone(&self.exception_topic),
                Some(source.exception_headers(*kind, message, rule.as_deref())),
            ),
        };
        let producer = self.producer(role);
        let mut base = BaseRecord::with_opaque_to(&topic, ticket);
        if let Some(key) = &source.key {
            base = base.key(key.as_slice());
        }
        if let Some(payload) = &source.payload {
            base = base.payload(payload.as_slice());
        }
        if let Some(headers) = headers {
            base = base.headers(headers);
        }
        if let Some(timestamp) = source.timestamp {
            base = base.timestamp(timestamp);
        }
        loop {
            match producer.send(base) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if role == ProducerRole::Tier(Tier::BestEffort) {
                        self.metrics
                            .dropped
                            .with_label_values(&[role.label()])
                            .inc();
                        back.delivery_opaque.record.copy_finished();
                        return;
                    }
                    base = back;
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
                Err((error, back)) => {
                    self.metrics
                        .produce_errors
                        .with_label_values(&[role.label(), &error_reason(&error)])
                        .inc();
                    let _ = self.failed.send(FailedCopy {
                        ticket: back.delivery_opaque,
                        error,
                    });
                    return;
                }
            }
        }
    }

    /// Waits up to `timeout` for every queued copy of every producer to be acknowledged or failed.
    pub fn flush(&self, timeout: Duration) {
        for role in [
            ProducerRole::Tier(Tier::Critical),
            ProducerRole::Tier(Tier::Standard),
            ProducerRole::Tier(Tier::BestEffort),
            ProducerRole::Exception,
        ] {
            if let Err(error) = self.producer(role).flush(timeout) {
                tracing::warn!(producer = role.label(), %error, "flush did not complete");
            }
        }
    }
}
