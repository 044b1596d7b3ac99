//! Decides the fate of copies librdkafka gave up on, so that no record is ever lost:
//! critical copies are retried until delivered unless the error is permanent; every other failed
//! copy becomes an exception record; exception records are retried forever.

use std::sync::Arc;
use std::time::Duration;

use streamsplit_rules::Tier;
use tokio::sync::mpsc::UnboundedReceiver;

use super::in_flight::{CopyKind, CopyTicket};
use super::producers::{is_permanent, FailedCopy, Producers};
use super::source_record::ExceptionKind;

/// Longest wait between two attempts of the same copy.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);

fn backoff(attempts: u32) -> Duration {
    let millis = 100u64.saturating_mul(1 << attempts.min(6));
    Duration::from_millis(millis).min(MAX_RETRY_BACKOFF)
}

/// What to do with a failed copy.
#[derive(Debug, PartialEq, Eq)]
enum Repair {
    Retry,
    ToExceptionTopic,
}

fn decide(ticket: &CopyTicket, permanent: bool) -> Repair {
    match &ticket.kind {
        CopyKind::Exception { .. } => Repair::Retry,
        CopyKind::Route {
            tier: Tier::Critical,
            ..
        } if !permanent => Repair::Retry,
        CopyKind::Route { .. } => Repair::ToExceptionTopic,
    }
}

/// Runs until every sender is gone.
pub async fn repair_failed_copies(
    mut failed: UnboundedReceiver<FailedCopy>,
    producers: Arc<Producers>,
) {
    while let Some(FailedCopy { mut ticket, error }) = failed.recv().await {
        let producers = Arc::clone(&producers);
        let source = &ticket.record.source;
        match decide(&ticket, is_permanent(&error)) {
            Repair::Retry => {
                tracing::warn!(
                    topic = %source.topic, partition = source.partition, offset = source.offset,
                    attempts = ticket.attempts, %error, copy = ?kind_label(&ticket),
                    "produce failed; retrying"
                );
                ticket.attempts += 1;
                tokio::spawn(async move {
                    tokio::time::sleep(backoff(ticket.attempts)).await;
                    producers.send(ticket).await;
                });
            }
            Repair::ToExceptionTopic => {
                let rule = match &ticket.kind {
                    CopyKind::Route { rule, topic, .. } => {
                        tracing::warn!(
                            rule = %rule, target = %topic, %error,
                            "copy failed permanently; sending the record to the exception topic"
                        );
                        Some(Arc::clone(rule))
                    }
                    CopyKind::Exception { rule, .. } => rule.clone(),
                };
                let target = match &ticket.kind {
                    CopyKind::Route { topic, .. } => topic.to_string(),
                    CopyKind::Exception { .. } => String::new(),
                };
                let exception = Box::new(CopyTicket {
                    record: Arc::clone(&ticket.record),
                    kind: CopyKind::Exception {
                        kind: ExceptionKind::Produce,
                        message: format!("cannot produce to {target}: {error}"),
                        rule,
                    },
                    attempts: 0,
                });
                tokio::spawn(async move { producers.send(exception).await });
            }
        }
    }
}

fn kind_label(ticket: &CopyTicket) -> &'static str {
    match ticket.kind {
        CopyKind::Route { .. } => "route",
        CopyKind::Exception { .. } => "exception",
    }
}
