//! In-flight budgets per delivery lane, so that one stalled tier cannot starve another.
//!
//! Every copy holds a permit of its lane (copies and bytes) from the moment it is handed to a
//! producer until it is acknowledged, dropped or turned into an exception record (which keeps the
//! permit). The critical lane carries critical copies and exception records, which are never
//! dropped: when it is full, consumption waits. The standard lane waits too, but its copies time
//! out into the exception topic, so it frees itself within the standard delivery timeout. The
//! best-effort lane never waits: a copy that finds it full is dropped and counted.

use std::sync::Arc;

use streamsplit_rules::Tier;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes charged per copy on top of its key, value and headers (librdkafka's own bookkeeping).
const COPY_OVERHEAD_BYTES: usize = 256;

/// Which budget a copy draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Critical copies and exception records.
    Critical,
    /// Standard copies.
    Standard,
    /// Best-effort copies.
    BestEffort,
}

impl Lane {
    /// The lane of a tier's copies.
    pub fn of(tier: Tier) -> Self {
        match tier {
            Tier::Critical => Lane::Critical,
            Tier::Standard => Lane::Standard,
            Tier::BestEffort => Lane::BestEffort,
        }
    }
}

/// How much may be in flight.
#[derive(Clone, Copy, Debug)]
pub struct LaneLimits {
    /// Copies in flight per lane (critical and standard); beyond it consumption waits.
    pub copies: usize,
    /// Copies in flight in the best-effort lane; beyond it best-effort copies are dropped.
    pub best_effort_copies: usize,
    /// Bytes in flight over all lanes: half for the critical lane, a quarter each for standard
    /// and best-effort.
    pub bytes: usize,
}

struct Budget {
    copies: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    byte_capacity: usize,
}

impl Budget {
    fn new(copies: usize, bytes: usize) -> Self {
        let bytes = bytes.clamp(1, Semaphore::MAX_PERMITS);
        Budget {
            copies: Arc::new(Semaphore::new(copies.clamp(1, Semaphore::MAX_PERMITS))),
            bytes: Arc::new(Semaphore::new(bytes)),
            byte_capacity: bytes,
        }
    }

    /// A copy larger than the whole budget still goes, alone.
    fn charge(&self, bytes: usize) -> u32 {
        let charge = bytes.saturating_add(COPY_OVERHEAD_BYTES);
        u32::try_from(charge.min(self.byte_capacity)).unwrap_or(u32::MAX)
    }
}

/// A copy's share of its lane, released when dropped.
#[derive(Debug)]
pub struct LanePermit {
    _copy: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

/// The three lanes' budgets.
pub struct Lanes {
    critical: Budget,
    standard: Budget,
    best_effort: Budget,
}

impl Lanes {
    /// Budgets of the given size.
    pub fn new(limits: LaneLimits) -> Self {
        Lanes {
            critical: Budget::new(limits.copies, limits.bytes / 2),
            standard: Budget::new(limits.copies, limits.bytes / 4),
            best_effort: Budget::new(limits.best_effort_copies, limits.bytes / 4),
        }
    }

    fn budget(&self, lane: Lane) -> &Budget {
        match lane {
            Lane::Critical => &self.critical,
            Lane::Standard => &self.standard,
            Lane::BestEffort => &self.best_effort,
        }
    }

    /// Waits for room for a copy of `bytes` in `lane`.
    pub async fn acquire(&self, lane: Lane, bytes: usize) -> LanePermit {
        let budget = self.budget(lane);
        // The semaphores live as long as `self` and are never closed.
        let copy = Arc::clone(&budget.copies)
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("lane semaphores are never closed"));
        let bytes = Arc::clone(&budget.bytes)
            .acquire_many_owned(budget.charge(bytes))
            .await
            .unwrap_or_else(|_| unreachable!("lane semaphores are never closed"));
        LanePermit {
            _copy: copy,
            _bytes: bytes,
        }
    }

    /// Room for a copy of `bytes` in `lane` if there is some now.
    pub fn try_acquire(&self, lane: Lane, bytes: usize) -> Option<LanePermit> {
        let budget = self.budget(lane);
        let copy = Arc::clone(&budget.copies).try_acquire_owned().ok()?;
        let bytes = Arc::clone(&budget.bytes)
            .try_acquire_many_owned(budget.charge(bytes))
            .ok()?;
        Some(LanePermit {
            _copy: copy,
            _bytes: bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes() -> Lanes {
        Lanes::new(LaneLimits {
            copies: 2,
            best_effort_copies: 1,
            bytes: 4 * 1024 * 1024,
        })
    }

    #[test]
    fn a_full_best_effort_lane_leaves_the_other_lanes_alone() {
        let lanes = lanes();
        let held = lanes.try_acquire(Lane::BestEffort, 10).unwrap();
        assert!(lanes.try_acquire(Lane::BestEffort, 10).is_none());
        assert!(lanes.try_acquire(Lane::Critical, 10).is_some());
        assert!(lanes.try_acquire(Lane::Standard, 10).is_some());
        drop(held);
        assert!(lanes.try_acquire(Lane::BestEffort, 10).is_some());
    }

    #[test]
    fn bytes_bound_a_lane_and_an_oversized_copy_still_goes_alone() {
        let lanes = lanes();
        // The standard lane has 1 MiB.
        let big = lanes.try_acquire(Lane::Standard, 600 * 1024).unwrap();
        assert!(lanes.try_acquire(Lane::Standard, 600 * 1024).is_none());
        drop(big);
        let huge = lanes.try_acquire(Lane::Standard, 64 * 1024 * 1024).unwrap();
        assert!(lanes.try_acquire(Lane::Standard, 1).is_none());
        drop(huge);
        assert!(lanes.try_acquire(Lane::Standard, 1).is_some());
    }
}
