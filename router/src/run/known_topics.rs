//! Which topics exist, for copies whose topic a template rendered: the router never creates
//! topics, so a rendered topic the cluster does not have sends the record to the exception
//! topic instead of into a producer that would wait for it (or auto-create it).
//!
//! The list comes from cluster metadata, fetched on demand: when it is older than
//! [`MAX_AGE`], or when a topic is missing from it and the last fetch is older than
//! [`MISS_REFRESH`] (so a topic created a moment ago is found within about a second). Only a
//! topic the metadata positively lacks is refused: when metadata cannot be fetched, the copy is
//! produced as usual and the producer's retries and failure handling apply (nothing is lost).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest time a topic list is trusted.
pub const MAX_AGE: Duration = Duration::from_secs(10);
/// Shortest time between two fetches caused by missing topics.
pub const MISS_REFRESH: Duration = Duration::from_secs(1);

/// The cached topic list.
#[derive(Debug, Default)]
pub struct KnownTopics {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    topics: Option<HashSet<String>>,
    fetched: Option<Instant>,
}

impl KnownTopics {
    /// Whether `topic` exists (or existence cannot be checked now). `fetch` lists the
    /// cluster's topics; it runs at most as often as the module says.
    pub fn exists<E: std::fmt::Display>(
        &self,
        topic: &str,
        now: Instant,
        fetch: impl FnOnce() -> Result<HashSet<String>, E>,
    ) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let age = state.fetched.map(|at| now.saturating_duration_since(at));
        let listed = state.topics.as_ref().map(|t| t.contains(topic));
        let stale = age.is_none_or(|age| age >= MAX_AGE);
        let retry_miss = listed != Some(true) && age.is_none_or(|age| age >= MISS_REFRESH);
        if stale || retry_miss {
            state.fetched = Some(now);
            match fetch() {
                Ok(topics) => state.topics = Some(topics),
                Err(error) => {
                    tracing::warn!(%error, "cannot list topics to check a rendered target topic; producing without the check");
                    state.topics = None;
                }
            }
        }
        state.topics.as_ref().is_none_or(|t| t.contains(topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(names: &[&str]) -> Result<HashSet<String>, String> {
        Ok(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn a_missing_topic_is_looked_up_again_at_most_once_a_second() {
        let known = KnownTopics::default();
        let start = Instant::now();
        assert!(known.exists("a", start, || listing(&["a"])));
        let mut fetched = false;
        assert!(!known.exists("b", start, || {
            fetched = true;
            listing(&["a", "b"])
        }));
        assert!(
            !fetched,
            "a miss within a second of the last fetch does not fetch again"
        );
        let later = start + MISS_REFRESH;
        assert!(known.exists("b", later, || listing(&["a", "b"])));
    }

    #[test]
    fn a_listed_topic_is_trusted_until_the_list_is_old() {
        let known = KnownTopics::default();
        let start = Instant::now();
        assert!(known.exists("a", start, || listing(&["a"])));
        assert!(
            known.exists("a", start + MISS_REFRESH * 5, || -> Result<_, String> {
                panic!("no fetch for a listed topic within MAX_AGE")
            })
        );
        assert!(!known.exists("a", start + MAX_AGE, || listing(&[])));
    }

    #[test]
    fn without_metadata_every_topic_is_produced_to() {
        let known = KnownTopics::default();
        assert!(known.exists("a", Instant::now(), || Err("broker down")));
    }
}
