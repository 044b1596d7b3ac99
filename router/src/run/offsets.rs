//! Which source offsets may be committed: only those below the first record whose copies are not
//! all acknowledged. Records finish out of order (tiers, retries); commits never run ahead, and
//! commits are serialised so that a periodic commit can never land after a revoke's commit and
//! move an offset backwards.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A source partition.
pub type PartitionKey = (Arc<str>, i32);

/// Where a consumed record sits: its partition, offset and the assignment it belongs to.
#[derive(Clone, Debug)]
pub struct RecordPosition {
    /// Source topic and partition.
    pub partition: PartitionKey,
    /// Source offset.
    pub offset: i64,
    /// Assignment generation; completions from a revoked assignment are ignored.
    pub generation: u64,
}

#[derive(Debug, Default)]
struct PartitionProgress {
    generation: u64,
    /// Offsets consumed and not yet passed by the commit point, in consumption order.
    pending: VecDeque<(i64, bool)>,
    /// Next offset to consume after everything before it is done (the committable offset).
    committable: Option<i64>,
    /// Last offset handed out for committing.
    committed: Option<i64>,
}

/// Tracks completion per partition. Shared by the consume loop and delivery callbacks.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: Mutex<HashMap<PartitionKey, PartitionProgress>>,
    next_generation: Mutex<u64>,
    /// Held from choosing commit points until the commit returned.
    commit: Mutex<()>,
    /// Records finished since start (progress, for health).
    finished: AtomicU64,
}

impl OffsetTracker {
    fn lock(&self) -> MutexGuard<'_, HashMap<PartitionKey, PartitionProgress>> {
        // A panic while holding this lock would already have aborted routing; keep going with
        // the data as it is rather than poisoning every later commit.
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts tracking newly assigned partitions under a fresh generation.
    pub fn assign(&self, partitions: impl IntoIterator<Item = PartitionKey>) {
        let generation = {
            let mut next = self
                .next_generation
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *next += 1;
            *next
        };
        let mut map = self.lock();
        for key in partitions {
            map.insert(
                key,
                PartitionProgress {
                    generation,
                    ..PartitionProgress::default()
                },
            );
        }
    }

    /// Registers a consumed record; must precede sending any of its copies.
    pub fn register(&self, partition: &PartitionKey, offset: i64) -> RecordPosition {
        let mut map = self.lock();
        let progress = map.entry(partition.clone()).or_default();
        progress.pending.push_back((offset, false));
        RecordPosition {
            partition: partition.clone(),
            offset,
            generation: progress.generation,
        }
    }

    /// Marks a record done (all copies acknowledged) and advances the commit point.
    pub fn complete(&self, position: &RecordPosition) {
        let mut map = self.lock();
        let Some(progress) = map.get_mut(&position.partition) else {
            return;
        };
        if progress.generation != position.generation {
            return;
        }
        if let Ok(index) = progress
            .pending
            .binary_search_by_key(&position.offset, |(offset, _)| *offset)
        {
            progress.pending[index].1 = true;
            self.finished.fetch_add(1, Ordering::Relaxed);
        }
        while let Some(&(offset, true)) = progress.pending.front() {
            progress.pending.pop_front();
            progress.committable = Some(offset + 1);
        }
    }

    /// Records finished since start.
    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    /// Commits the pending commit points with `commit`, serialised with every other commit of
    /// this tracker; marks them committed when `commit` succeeds.
    pub fn commit_pending<E>(
        &self,
        commit: impl FnOnce(&[(PartitionKey, i64)]) -> Result<(), E>,
    ) -> Result<(), E> {
        let _serialised = self.commit.lock().unwrap_or_else(|p| p.into_inner());
        let commits = self.pending_commits();
        if commits.is_empty() {
            return Ok(());
        }
        commit(&commits)?;
        self.mark_committed(&commits);
        Ok(())
    }

    /// Stops tracking revoked partitions and commits their final points with `commit`,
    /// serialised with every other commit of this tracker.
    pub fn revoke_and_commit<E>(
        &self,
        partitions: &[PartitionKey],
        commit: impl FnOnce(&[(PartitionKey, i64)]) -> Result<(), E>,
    ) -> Result<(), E> {
        let _serialised = self.commit.lock().unwrap_or_else(|p| p.into_inner());
        let commits = self.revoke(partitions);
        if commits.is_empty() {
            return Ok(());
        }
        commit(&commits)
    }

    /// Commit points not yet committed: `(partition, next offset to consume)`.
    pub fn pending_commits(&self) -> Vec<(PartitionKey, i64)> {
        self.lock()
            .iter()
            .filter_map(|(key, progress)| {
                let committable = progress.committable?;
                (progress.committed != Some(committable)).then(|| (key.clone(), committable))
            })
            .collect()
    }

    /// Records that a commit of these points succeeded.
    pub fn mark_committed(&self, commits: &[(PartitionKey, i64)]) {
        let mut map = self.lock();
        for (key, offset) in commits {
            if let Some(progress) = map.get_mut(key) {
                progress.committed = Some(*offset);
            }
        }
    }

    /// Stops tracking revoked partitions, returning their final commit points.
    pub fn revoke(&self, partitions: &[PartitionKey]) -> Vec<(PartitionKey, i64)> {
        let mut map = self.lock();
        partitions
            .iter()
            .filter_map(|key| {
                let progress = map.remove(key)?;
                let committable = progress.committable?;
                (progress.committed != Some(committable)).then(|| (key.clone(), committable))
            })
            .collect()
    }

    /// Records consumed but not yet committable, per partition (the commit lag).
    pub fn uncommitted(&self) -> Vec<(PartitionKey, usize)> {
        self.lock()
            .iter()
            .map(|(key, progress)| (key.clone(), progress.pending.len()))
            .collect()
    }

    /// Whether every registered record is done.
    pub fn is_drained(&self) -> bool {
        self.lock().values().all(|p| p.pending.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PartitionKey {
        (Arc::from("src"), 0)
    }

    #[test]
    fn commit_point_waits_for_the_oldest_unfinished_record() {
        let tracker = OffsetTracker::default();
        tracker.assign([key()]);
        let positions: Vec<_> = (10..13).map(|o| tracker.register(&key(), o)).collect();
        tracker.complete(&positions[2]);
        tracker.complete(&positions[1]);
        assert!(
            tracker.pending_commits().is_empty(),
            "offset 10 is not done yet"
        );
        tracker.complete(&positions[0]);
        let commits = tracker.pending_commits();
        assert_eq!(commits, vec![(key(), 13)]);
        assert_eq!(
            tracker.pending_commits(),
            commits,
            "still pending until marked"
        );
        tracker.mark_committed(&commits);
        assert!(tracker.pending_commits().is_empty(), "nothing moved since");
        assert!(tracker.is_drained());
    }

    #[test]
    fn completions_from_a_revoked_assignment_are_ignored() {
        let tracker = OffsetTracker::default();
        tracker.assign([key()]);
        let old = tracker.register(&key(), 5);
        assert!(tracker.revoke(&[key()]).is_empty());
        tracker.assign([key()]);
        let new = tracker.register(&key(), 5);
        tracker.complete(&old);
        assert!(tracker.pending_commits().is_empty());
        tracker.complete(&new);
        assert_eq!(tracker.pending_commits(), vec![(key(), 6)]);
    }

    #[test]
    fn a_revoke_commit_waits_for_a_periodic_commit_in_progress() {
        use std::sync::mpsc::channel;
        use std::time::Duration;

        let tracker = Arc::new(OffsetTracker::default());
        tracker.assign([key()]);
        let first = tracker.register(&key(), 0);
        tracker.complete(&first);
        let (in_commit_tx, in_commit) = channel();
        let (release_tx, release) = channel::<()>();
        let (order_tx, order) = channel();
        let periodic = {
            let (tracker, order_tx) = (Arc::clone(&tracker), order_tx.clone());
            std::thread::spawn(move || {
                tracker.commit_pending(|commits| {
                    in_commit_tx.send(()).unwrap();
                    release.recv().unwrap();
                    order_tx.send(("periodic", commits.to_vec())).unwrap();
                    Ok::<(), ()>(())
                })
            })
        };
        in_commit.recv().unwrap();
        // The partition progresses and is revoked while the periodic commit is in flight.
        let second = tracker.register(&key(), 1);
        tracker.complete(&second);
        let revoking = {
            let tracker = Arc::clone(&tracker);
            std::thread::spawn(move || {
                tracker.revoke_and_commit(&[key()], |commits| {
                    order_tx.send(("revoke", commits.to_vec())).unwrap();
                    Ok::<(), ()>(())
                })
            })
        };
        assert!(
            order.recv_timeout(Duration::from_millis(300)).is_err(),
            "the revoke commit must not run while another commit is in flight"
        );
        release_tx.send(()).unwrap();
        periodic.join().unwrap().unwrap();
        revoking.join().unwrap().unwrap();
        let sequence: Vec<_> = order.try_iter().collect();
        assert_eq!(
            sequence,
            vec![("periodic", vec![(key(), 1)]), ("revoke", vec![(key(), 2)])],
            "the later, higher commit lands last"
        );
    }

    #[test]
    fn revoke_returns_uncommitted_progress() {
        let tracker = OffsetTracker::default();
        tracker.assign([key()]);
        let p = tracker.register(&key(), 0);
        tracker.register(&key(), 1);
        tracker.complete(&p);
        assert_eq!(tracker.revoke(&[key()]), vec![(key(), 1)]);
    }
}
