//! A record whose copies are on their way, and the ticket each copy carries through librdkafka.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use prometheus::IntCounter;
use streamsplit_rules::Tier;

use super::lanes::{Lane, LanePermit};
use super::offsets::{OffsetTracker, RecordPosition};
use super::source_record::{ExceptionKind, SourceRecord};

/// A consumed record, done when its last outstanding copy is acknowledged or dropped.
#[derive(Debug)]
pub struct InFlightRecord {
    /// The record as consumed.
    pub source: SourceRecord,
    /// Version of the bundle that routed it, when its copies carry lineage headers.
    pub lineage: Option<Arc<str>>,
    position: RecordPosition,
    outstanding: AtomicUsize,
    tracker: Arc<OffsetTracker>,
}

impl InFlightRecord {
    /// A record expecting `copies` acknowledgements (at least one); `lineage` is the version of
    /// the bundle that routed it when its copies carry lineage headers.
    pub fn new(
        source: SourceRecord,
        lineage: Option<Arc<str>>,
        position: RecordPosition,
        copies: usize,
        tracker: Arc<OffsetTracker>,
    ) -> Self {
        InFlightRecord {
            source,
            lineage,
            position,
            outstanding: AtomicUsize::new(copies),
            tracker,
        }
    }

    /// One copy is finished for good (acknowledged, or a counted best-effort drop).
    pub fn copy_finished(&self) {
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.tracker.complete(&self.position);
        }
    }
}

/// What became of a rule's copies: with the rule's matches they form the accounting identity
/// `matches (active) = routed + dropped + failed + sampled out` (plus copies merged into an
/// earlier rule's copy to the same topic).
#[derive(Debug)]
pub struct RouteCounters {
    /// Copies acknowledged by the broker.
    pub routed: IntCounter,
    /// Best-effort copies dropped.
    pub dropped: IntCounter,
    /// Copies that could not be produced and went to the exception topic instead.
    pub failed: IntCounter,
}

/// What a copy is.
#[derive(Clone, Debug)]
pub enum CopyKind {
    /// A copy to a rule's target topic.
    Route {
        /// `namespace/name` of the rule.
        rule: Arc<str>,
        /// Target topic.
        topic: Arc<str>,
        /// Producer tier.
        tier: Tier,
        /// The copy's value when the rule shapes it (else the record's own).
        value: Option<Arc<[u8]>>,
        /// The copy's key when the rule re-keys it (else the record's own).
        key: Option<Arc<[u8]>>,
        /// The rule's copy counters.
        counters: Arc<RouteCounters>,
    },
    /// A copy to the exception topic.
    Exception {
        /// Why.
        kind: ExceptionKind,
        /// The error text.
        message: String,
        /// The rule involved, if any.
        rule: Option<Arc<str>>,
        /// Whether the broker refused the full record for its size, so that only a bounded
        /// prefix is sent (marked by the `streamsplit.exception.truncated` header).
        truncated: bool,
    },
}

impl CopyKind {
    /// An exception record carrying the whole original record.
    pub fn exception(kind: ExceptionKind, message: String, rule: Option<Arc<str>>) -> Self {
        CopyKind::Exception {
            kind,
            message,
            rule,
            truncated: false,
        }
    }

    /// The lane whose budget the copy draws from.
    pub fn lane(&self) -> Lane {
        match self {
            CopyKind::Route { tier, .. } => Lane::of(*tier),
            CopyKind::Exception { .. } => Lane::Critical,
        }
    }

    /// `route` or `exception`, for logs.
    pub fn label(&self) -> &'static str {
        match self {
            CopyKind::Route { .. } => "route",
            CopyKind::Exception { .. } => "exception",
        }
    }
}

/// Travels with one copy through librdkafka and comes back in the delivery callback.
#[derive(Debug)]
pub struct CopyTicket {
    /// The record being copied.
    pub record: Arc<InFlightRecord>,
    /// Where the copy goes.
    pub kind: CopyKind,
    /// Produce attempts made so far by the router (librdkafka's own retries not counted).
    pub attempts: u32,
    /// The copy's share of its lane's budget, released when the copy is done.
    pub permit: Option<LanePermit>,
}
