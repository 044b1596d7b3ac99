//! Decides the fate of copies librdkafka gave up on, so that no record is ever lost:
//!
//! | error \ copy            | critical | standard           | best-effort | exception record      |
//! |-------------------------|----------|--------------------|-------------|-----------------------|
//! | too large               | exception topic | exception topic | exception topic | sent again truncated |
//! | topic missing/forbidden | exception topic | exception topic | exception topic | retried (stall, not ready) |
//! | producer lost (fatal, fenced, sequence, purged) | retried on a fresh producer | retried | retried | retried |
//! | transient (timeout)     | retried  | exception topic    | dropped, counted | retried           |
//!
//! Failures are logged summarised (see [`super::failure_log`]).

use std::sync::Arc;
use std::time::Duration;

use streamsplit_rules::Tier;
use tokio::sync::mpsc::UnboundedReceiver;

use super::failure_log::{FailureLog, SUMMARY_INTERVAL};
use super::health::Health;
use super::in_flight::{CopyKind, CopyTicket};
use super::kafka_config::ProducerRole;
use super::producers::{classify, ErrorClass, FailedCopy, Producers, RepairEvent};
use super::source_record::ExceptionKind;
use crate::metrics::Metrics;

/// Longest wait between two attempts of the same copy.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);

fn backoff(attempts: u32) -> Duration {
    let millis = 100u64.saturating_mul(1 << attempts.min(6));
    Duration::from_millis(millis).min(MAX_RETRY_BACKOFF)
}

/// What to do with a failed copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Repair {
    Retry,
    Truncate,
    ToExceptionTopic,
    Drop,
}

impl Repair {
    fn label(self) -> &'static str {
        match self {
            Repair::Retry => "retrying",
            Repair::Truncate => "sending a truncated exception record",
            Repair::ToExceptionTopic => "sending the record to the exception topic",
            Repair::Drop => "dropping the best-effort copy",
        }
    }
}

fn decide(kind: &CopyKind, class: ErrorClass) -> Repair {
    match (kind, class) {
        (CopyKind::Exception { truncated, .. }, ErrorClass::TooLarge) if !truncated => {
            Repair::Truncate
        }
        (CopyKind::Exception { .. }, _) => Repair::Retry,
        (_, ErrorClass::ProducerLost) => Repair::Retry,
        (_, ErrorClass::TooLarge | ErrorClass::Permanent) => Repair::ToExceptionTopic,
        (CopyKind::Route { tier, .. }, ErrorClass::Transient) => match tier {
            Tier::Critical => Repair::Retry,
            Tier::Standard => Repair::ToExceptionTopic,
            Tier::BestEffort => Repair::Drop,
        },
    }
}

fn role_of(kind: &CopyKind) -> ProducerRole {
    match kind {
        CopyKind::Route { tier, .. } => ProducerRole::Tier(*tier),
        CopyKind::Exception { .. } => ProducerRole::Exception,
    }
}

/// Runs until every sender is gone.
pub async fn repair_failed_copies(
    mut events: UnboundedReceiver<RepairEvent>,
    producers: Arc<Producers>,
    metrics: Metrics,
    health: Arc<Health>,
) {
    let mut log = FailureLog::default();
    let mut summary = tokio::time::interval(SUMMARY_INTERVAL);
    summary.tick().await;
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = summary.tick() => {
                log.summarise();
                continue;
            }
        };
        match event {
            None => return,
            Some(RepairEvent::ProducerFatal(role)) => replace(&producers, role),
            Some(RepairEvent::Failed(failed)) => {
                repair(failed, &producers, &metrics, &health, &mut log)
            }
        }
    }
}

fn replace(producers: &Producers, role: ProducerRole) {
    if let Err(error) = producers.replace_if_fatal(role) {
        tracing::error!(producer = role.label(), %error, "cannot create a replacement producer; retrying with the next failure");
    }
}

fn repair(
    FailedCopy { mut ticket, error }: FailedCopy,
    producers: &Arc<Producers>,
    metrics: &Metrics,
    health: &Health,
    log: &mut FailureLog,
) {
    let role = role_of(&ticket.kind);
    if producers.is_fatal(role) {
        replace(producers, role);
    }
    let class = classify(&error);
    let decision = decide(&ticket.kind, class);
    let topic = match &ticket.kind {
        CopyKind::Route { topic, .. } => Arc::clone(topic),
        CopyKind::Exception { .. } => Arc::clone(producers.exception_topic()),
    };
    log.record(ticket.kind.label(), &topic, &error, decision.label());
    if matches!(ticket.kind, CopyKind::Exception { .. }) && class == ErrorClass::Permanent {
        health.exception_topic_unavailable(format!(
            "exception topic {topic} cannot be written: {error}"
        ));
    }
    let producers = Arc::clone(producers);
    match decision {
        Repair::Retry => {
            ticket.attempts += 1;
            tokio::spawn(async move {
                tokio::time::sleep(backoff(ticket.attempts)).await;
                producers.send(ticket).await;
            });
        }
        Repair::Truncate => {
            if let CopyKind::Exception { truncated, .. } = &mut ticket.kind {
                *truncated = true;
            }
            tokio::spawn(async move { producers.send(ticket).await });
        }
        Repair::Drop => {
            metrics.dropped_best_effort();
            if let CopyKind::Route { counters, .. } = &ticket.kind {
                counters.dropped.inc();
            }
            ticket.record.copy_finished();
        }
        Repair::ToExceptionTopic => {
            let CopyTicket {
                record,
                kind,
                permit,
                ..
            } = *ticket;
            let CopyKind::Route {
                rule,
                topic,
                counters,
                ..
            } = kind
            else {
                unreachable!("exception records are never redirected");
            };
            counters.failed.inc();
            let exception = Box::new(CopyTicket {
                record,
                kind: CopyKind::exception(
                    ExceptionKind::Produce,
                    format!("cannot produce to {topic}: {error}"),
                    Some(rule),
                ),
                attempts: 0,
                // The exception record takes over the failed copy's share of the budget.
                permit,
            });
            tokio::spawn(async move { producers.send(exception).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(tier: Tier) -> CopyKind {
        let counter = || prometheus::IntCounter::new("x", "x").unwrap();
        CopyKind::Route {
            rule: Arc::from("ns/r"),
            topic: Arc::from("t"),
            tier,
            value: None,
            key: None,
            counters: Arc::new(super::super::in_flight::RouteCounters {
                routed: counter(),
                dropped: counter(),
                failed: counter(),
            }),
        }
    }

    #[test]
    fn a_lost_producer_never_sends_a_copy_to_the_exception_topic() {
        for tier in [Tier::Critical, Tier::Standard, Tier::BestEffort] {
            assert_eq!(
                decide(&route(tier), ErrorClass::ProducerLost),
                Repair::Retry
            );
        }
    }

    #[test]
    fn exception_records_are_truncated_once_then_retried() {
        let mut kind = CopyKind::exception(ExceptionKind::Decode, "m".into(), None);
        assert_eq!(decide(&kind, ErrorClass::TooLarge), Repair::Truncate);
        if let CopyKind::Exception { truncated, .. } = &mut kind {
            *truncated = true;
        }
        assert_eq!(decide(&kind, ErrorClass::TooLarge), Repair::Retry);
        assert_eq!(decide(&kind, ErrorClass::Permanent), Repair::Retry);
    }

    #[test]
    fn transient_failures_follow_the_tier() {
        assert_eq!(
            decide(&route(Tier::Critical), ErrorClass::Transient),
            Repair::Retry
        );
        assert_eq!(
            decide(&route(Tier::Standard), ErrorClass::Transient),
            Repair::ToExceptionTopic
        );
        assert_eq!(
            decide(&route(Tier::BestEffort), ErrorClass::Transient),
            Repair::Drop
        );
        assert_eq!(
            decide(&route(Tier::Critical), ErrorClass::TooLarge),
            Repair::ToExceptionTopic
        );
    }
}
