//! `maxRecordsPerSecond`: a token bucket per rule and router process, holding one second of
//! copies. A match that finds the bucket empty is dropped and counted (throttled), never
//! queued: a rule over its budget must not hold back the records behind it.
//!
//! The limit is per router pod (a pool of three routers copies up to three times the figure):
//! routers share nothing on the data path. A hot swap that leaves a rule's limit unchanged keeps
//! its bucket.

use std::sync::Mutex;
use std::time::Instant;

/// A rule's token bucket.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: u32,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimiter {
    /// A full bucket of `per_second` tokens.
    pub fn new(per_second: u32, now: Instant) -> Self {
        RateLimiter {
            per_second,
            state: Mutex::new(Bucket {
                tokens: f64::from(per_second),
                refilled: now,
            }),
        }
    }

    /// The limit it enforces.
    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Takes one token at `now`; false when the rule is over its limit.
    pub fn try_take(&self, now: Instant) -> bool {
        let mut bucket = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let capacity = f64::from(self.per_second);
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * capacity).min(capacity);
        bucket.refilled = bucket.refilled.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Why a `maxRecordsPerSecond` is unusable.
pub fn validate_rate(rate: Option<u32>) -> Result<(), String> {
    match rate {
        Some(0) => {
            Err("maxRecordsPerSecond must be at least 1 (suspend the rule to copy nothing)".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_of_one_second_then_the_rate() {
        let start = Instant::now();
        let limiter = RateLimiter::new(100, start);
        let burst = (0..1000).filter(|_| limiter.try_take(start)).count();
        assert_eq!(burst, 100);
        let later = start + Duration::from_millis(500);
        let refilled = (0..1000).filter(|_| limiter.try_take(later)).count();
        assert_eq!(refilled, 50);
        let much_later = start + Duration::from_secs(60);
        let capped = (0..1000).filter(|_| limiter.try_take(much_later)).count();
        assert_eq!(
            capped, 100,
            "idle time never builds more than one second of tokens"
        );
    }

    #[test]
    fn zero_is_refused() {
        assert!(validate_rate(Some(0)).is_err());
        assert!(validate_rate(Some(1)).is_ok());
        assert!(validate_rate(None).is_ok());
    }
}
