//! Polling with a deadline: how tests wait for a condition instead of sleeping.

use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes; the error names `what`.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    wait_until_every(what, timeout, Duration::from_millis(50), check)
}

/// [`wait_until`] polling every `interval`: for checks that are work for the system under test
/// (listing thousands of objects), so that the waiting does not slow down what it waits for.
pub fn wait_until_every<T>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(interval);
    }
}
