//! Validation verdicts per rule uid and generation: a spec cannot change without its generation
//! changing, so each generation is compiled and tested once, not on every publication, and a
//! reconcile and a publication asking at once share one verdict (never one each, one of them
//! timing out).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use streamsplit_rules::RuleError;

type Cell = Arc<tokio::sync::OnceCell<Result<(), RuleError>>>;

/// The verdict cache.
#[derive(Default)]
pub struct Verdicts {
    cells: Mutex<HashMap<String, (Option<i64>, Cell)>>,
}

impl Verdicts {
    /// The verdict on generation `generation` of rule `uid`, computed by `validate` on first ask.
    /// Timeouts are kept too: re-running a rule that burns seconds on every publication would
    /// stall the pool ([`Verdicts::retry_timed_out`] is the way back).
    pub async fn get_or_validate<F>(
        &self,
        uid: &str,
        generation: Option<i64>,
        validate: impl FnOnce() -> F,
    ) -> Result<(), RuleError>
    where
        F: Future<Output = Result<(), RuleError>>,
    {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
            let entry = cells
                .entry(uid.to_string())
                .or_insert_with(|| (generation, Cell::default()));
            if entry.0 != generation {
                *entry = (generation, Cell::default());
            }
            Arc::clone(&entry.1)
        };
        cell.get_or_init(validate).await.clone()
    }

    /// Forgets a `Timeout` verdict on generation `generation` of rule `uid`, so that the next
    /// ask validates again. A timeout may say more about a busy machine (a cold start next to
    /// other work) than about the rule; the reconciler retries such rules now and then instead
    /// of keeping them out of their bundle until they are edited.
    pub fn retry_timed_out(&self, uid: &str, generation: Option<i64>) {
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        let timed_out = cells.get(uid).is_some_and(|(cached, cell)| {
            *cached == generation && matches!(cell.get(), Some(Err(RuleError::Timeout(_))))
        });
        if timed_out {
            cells.remove(uid);
        }
    }

    /// Drops the verdicts of rules not in `live` (deleted rules).
    pub fn retain(&self, live: &HashSet<String>) {
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        cells.retain(|uid, _| live.contains(uid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn each_generation_is_validated_once_and_only_timeouts_are_retried() {
        let verdicts = Verdicts::default();
        let runs = AtomicUsize::new(0);
        let validate = |verdict: Result<(), RuleError>| {
            runs.fetch_add(1, Ordering::SeqCst);
            async move { verdict }
        };
        let slow = Err(RuleError::Timeout(Duration::from_secs(5)));
        assert_eq!(
            verdicts
                .get_or_validate("a", Some(1), || validate(slow.clone()))
                .await,
            slow
        );
        // Kept: a publication asking again does not run it again.
        assert_eq!(
            verdicts
                .get_or_validate("a", Some(1), || validate(Ok(())))
                .await,
            slow
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Retried once asked to: the machine was only busy.
        verdicts.retry_timed_out("a", Some(1));
        assert_eq!(
            verdicts
                .get_or_validate("a", Some(1), || validate(Ok(())))
                .await,
            Ok(())
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // Other verdicts are never forgotten by a retry.
        verdicts.retry_timed_out("a", Some(1));
        assert_eq!(
            verdicts
                .get_or_validate("a", Some(1), || validate(slow.clone()))
                .await,
            Ok(())
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // A new generation is validated anew; deleted rules are forgotten.
        assert_eq!(
            verdicts
                .get_or_validate("a", Some(2), || validate(slow.clone()))
                .await,
            slow
        );
        verdicts.retry_timed_out("a", Some(1));
        assert_eq!(
            verdicts
                .get_or_validate("a", Some(2), || validate(Ok(())))
                .await,
            slow,
            "a retry names the generation it retries"
        );
        verdicts.retain(&HashSet::new());
        assert_eq!(
            verdicts
                .get_or_validate("a", Some(2), || validate(Ok(())))
                .await,
            Ok(())
        );
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }
}
