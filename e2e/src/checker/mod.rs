//! The accounting checker: proves the router's delivery promise under faults.
//!
//! A [`workload`] of records with unique keys and a known mix (matching no rule, one rule, several
//! rules across the tiers, shadow and suspended rules, rule errors, and a share of malformed
//! records) is produced at a steady rate while a scenario injects faults. The [`oracle`] asks
//! `streamsplit-router eval` (the same rules, the same engine) what each record must become:
//! copies on target topics and exception records. The [`ledger`] reads every target topic and
//! the exception topic to the end and reports, per topic: expected, delivered, lost, duplicated,
//! unexpected, and for best-effort topics the dropped count.

pub mod ledger;
pub mod oracle;
pub mod workload;

pub use ledger::{Ledger, TopicRow};
pub use oracle::{Expectation, Oracle};
pub use workload::{Workload, WorkloadRecord};
