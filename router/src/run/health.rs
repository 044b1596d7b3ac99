//! What `/healthz` and `/readyz` report beyond partitions and rules: whether the pipeline still
//! makes progress while it has work, and whether exception records can be written at all.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shared progress and fault state of a running router.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// Milliseconds since `started` of the last progress (a record consumed or finished).
    last_progress_ms: AtomicU64,
    has_work: AtomicBool,
    consumer_lag: AtomicI64,
    stall_timeout_ms: AtomicU64,
    exception_topic_problem: Mutex<Option<String>>,
    /// The consumer's last connection error (TLS, authentication, brokers down) while it has
    /// no partitions: why `/readyz` fails, in words an operator can act on.
    kafka_problem: Mutex<Option<String>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            started: Instant::now(),
            last_progress_ms: AtomicU64::new(0),
            has_work: AtomicBool::new(false),
            consumer_lag: AtomicI64::new(0),
            stall_timeout_ms: AtomicU64::new(u64::MAX),
            exception_topic_problem: Mutex::new(None),
            kafka_problem: Mutex::new(None),
        }
    }
}

impl Health {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How long the pipeline may make no progress while it has work before `/healthz` fails.
    pub fn set_stall_timeout(&self, timeout: Duration) {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.stall_timeout_ms.store(millis, Ordering::Relaxed);
    }

    /// Something moved: a record was consumed or finished.
    pub fn progressed(&self) {
        self.last_progress_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    /// Records behind the high watermarks of the assigned partitions (librdkafka statistics).
    pub fn set_consumer_lag(&self, lag: i64) {
        self.consumer_lag.store(lag, Ordering::Relaxed);
    }

    /// The last total consumer lag reported.
    pub fn consumer_lag(&self) -> i64 {
        self.consumer_lag.load(Ordering::Relaxed)
    }

    /// Whether records wait to be routed or copies to be acknowledged.
    pub fn set_has_work(&self, has_work: bool) {
        self.has_work.store(has_work, Ordering::Relaxed);
    }

    /// `Err` with the reason when the pipeline has had work but no progress for too long.
    pub fn liveness(&self) -> Result<(), String> {
        if !self.has_work.load(Ordering::Relaxed) {
            return Ok(());
        }
        let idle = self
            .now_ms()
            .saturating_sub(self.last_progress_ms.load(Ordering::Relaxed));
        let limit = self.stall_timeout_ms.load(Ordering::Relaxed);
        if idle > limit {
            Err(format!(
                "stalled: no record consumed or finished for {} while records or copies are pending",
                humantime::format_duration(Duration::from_millis(idle - idle % 1000))
            ))
        } else {
            Ok(())
        }
    }

    /// Exception records cannot be written (missing topic, no permission): routing stalls on
    /// purpose, since no record may be skipped.
    pub fn exception_topic_unavailable(&self, cause: String) {
        *self.lock_problem() = Some(cause);
    }

    /// An exception record was acknowledged.
    pub fn exception_topic_available(&self) {
        let mut problem = self.lock_problem();
        if problem.is_some() {
            *problem = None;
        }
    }

    /// Why exception records cannot be written, if they cannot.
    pub fn exception_topic_problem(&self) -> Option<String> {
        self.lock_problem().clone()
    }

    /// The consumer cannot talk to Kafka (bad CA, bad credentials, brokers unreachable).
    pub fn kafka_unavailable(&self, cause: String) {
        *self.kafka_problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(cause);
    }

    /// The consumer got partitions: whatever failed before works now.
    pub fn kafka_available(&self) {
        *self.kafka_problem.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The last Kafka connection error since partitions were last assigned, if any.
    pub fn kafka_problem(&self) -> Option<String> {
        self.kafka_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock_problem(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.exception_topic_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls_only_count_while_there_is_work() {
        let health = Health::default();
        health.set_stall_timeout(Duration::ZERO);
        health.progressed();
        assert!(health.liveness().is_ok(), "no work, no stall");
        health.set_has_work(true);
        let deadline = Instant::now() + Duration::from_secs(5);
        while health.liveness().is_ok() && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(health.liveness().unwrap_err().starts_with("stalled"));
        health.set_stall_timeout(Duration::from_secs(3600));
        assert!(health.liveness().is_ok());
    }
}
