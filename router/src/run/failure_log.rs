//! Produce failures, summarised: the first failure of a kind (producer, topic, reason) in an
//! interval is logged at once with its error; repeats are counted and logged as one line when
//! the interval ends. A broker bounce with thousands of stuck copies stays readable; the
//! `streamsplit_produce_errors_total` counter carries the exact rates.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;

use super::producers::error_reason;

/// How often repeated failures are summarised.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Hash, PartialEq, Eq)]
struct FailureKey {
    copy: &'static str,
    topic: Arc<str>,
    reason: String,
    action: &'static str,
}

/// Failures seen in the current interval.
#[derive(Debug, Default)]
pub struct FailureLog {
    repeats: HashMap<FailureKey, u64>,
}

impl FailureLog {
    /// Notes one failure of a copy (`route` or `exception`) to `topic`, and what is done about
    /// it (`retrying`, `to the exception topic`, ...).
    pub fn record(
        &mut self,
        copy: &'static str,
        topic: &Arc<str>,
        error: &KafkaError,
        action: &'static str,
    ) {
        let key = FailureKey {
            copy,
            topic: Arc::clone(topic),
            reason: error_reason(error),
            action,
        };
        match self.repeats.get_mut(&key) {
            Some(repeats) => *repeats += 1,
            None => {
                tracing::warn!(
                    copy, topic = %topic, %error, action,
                    "produce failed; repeats of this failure are summarised every {}s",
                    SUMMARY_INTERVAL.as_secs()
                );
                self.repeats.insert(key, 0);
            }
        }
    }

    /// Logs one line per failure kind that repeated, and starts a new interval. Returns how many
    /// lines were logged.
    pub fn summarise(&mut self) -> usize {
        let mut lines = 0;
        for (key, repeats) in self.repeats.drain() {
            if repeats == 0 {
                continue;
            }
            lines += 1;
            tracing::warn!(
                copy = key.copy, topic = %key.topic, reason = %key.reason, action = key.action,
                repeats, "produce failed {repeats} more times in the last {}s",
                SUMMARY_INTERVAL.as_secs()
            );
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn repeats_are_counted_not_logged_one_by_one() {
        let mut log = FailureLog::default();
        let topic: Arc<str> = Arc::from("t");
        let error = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        for _ in 0..1000 {
            log.record("route", &topic, &error, "retrying");
        }
        log.record("exception", &topic, &error, "retrying");
        assert_eq!(log.summarise(), 1, "one summary for the repeated kind");
        assert_eq!(log.summarise(), 0, "a new interval starts empty");
    }
}
