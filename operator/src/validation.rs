//! Rule validation off the async runtime and bounded in time.
//!
//! Compiling a condition and running its tests is CPU work on input any rule author controls (a
//! 1 MB condition, many slow tests). It runs on the blocking pool so the controller, the lease
//! and the publisher keep running, and a verdict that takes too long is `Timeout`.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use streamsplit_rules::{sandboxed_engine, validate_spec, RuleError, SplitRuleSpec};

/// Longest time one rule's validation may take before it is reported as `Timeout`.
pub const VALIDATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The verdict on a spec: pool, topic name, compilation and tests.
pub async fn validate(spec: &SplitRuleSpec) -> Result<(), RuleError> {
    validate_within(spec, VALIDATION_TIMEOUT).await
}

/// Validations running at once: one per core. A cold start validates every rule; thousands of
/// blocking threads sharing two cores would make every one of them slow enough to time out, a
/// verdict about the machine, not the rule.
fn validation_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// [`validate`] with an explicit time limit, counted from when a slot is free.
pub async fn validate_within(spec: &SplitRuleSpec, limit: Duration) -> Result<(), RuleError> {
    let spec = spec.clone();
    let slot = validation_slots()
        .acquire()
        .await
        .map_err(|e| RuleError::Aborted(e.to_string()))?;
    // The slot stays taken until the work really ends, also after a timeout.
    let slot: SemaphorePermit<'static> = slot;
    let task = tokio::task::spawn_blocking(move || {
        let verdict = validate_spec(&sandboxed_engine(), &spec).map(|_| ());
        drop(slot);
        verdict
    });
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(join_error)) => Err(RuleError::Aborted(join_error.to_string())),
        // The blocking task cannot be cancelled, but the engine's own limits end it soon.
        Err(_elapsed) => Err(RuleError::Timeout(limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(condition: &str, tests: usize) -> SplitRuleSpec {
        let tests: Vec<serde_json::Value> = (0..tests)
            .map(|i| serde_json::json!({"name": format!("t{i}"), "record": {}, "expect": "match"}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "condition": condition, "targetTopic": "t", "tests": tests
        }))
        .unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn slow_rule_tests_time_out_without_blocking_the_runtime() {
        // Every test is quick; together they outlast the limit.
        let slow = spec("true", 100_000);
        let ticker = tokio::spawn(async {
            let mut ticks = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks += 1;
                if ticks == 3 {
                    return ticks;
                }
            }
        });
        let verdict = validate_within(&slow, Duration::from_millis(100)).await;
        assert!(matches!(verdict, Err(RuleError::Timeout(_))), "{verdict:?}");
        assert_eq!(verdict.unwrap_err().reason(), "Timeout");
        assert!(
            ticker.is_finished(),
            "the runtime kept running other tasks during validation"
        );
        assert_eq!(validate(&spec("true", 1)).await, Ok(()));
    }
}
