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

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Broker, TestRecord};

/// Produces `records` to `source` at about `per_second`, on a thread of its own. A broker that
/// is down for the scenario is waited for, batch by batch.
pub fn produce_steadily(
    bootstrap: &str,
    source: &str,
    records: Vec<WorkloadRecord>,
    per_second: u64,
) -> std::thread::JoinHandle<()> {
    let broker = Broker::at(bootstrap);
    let source = source.to_string();
    std::thread::spawn(move || {
        let batch = (per_second / 10).max(1) as usize;
        for chunk in records.chunks(batch) {
            let started = Instant::now();
            let chunk: Vec<TestRecord> = chunk
                .iter()
                .map(|r| TestRecord {
                    key: Some(r.key.clone().into_bytes()),
                    value: r.value.clone(),
                    headers: Vec::new(),
                })
                .collect();
            while let Err(error) = broker.produce(&source, &chunk) {
                eprintln!("checker: producing again after: {error}");
                std::thread::sleep(Duration::from_millis(500));
            }
            std::thread::sleep(Duration::from_millis(100).saturating_sub(started.elapsed()));
        }
    })
}

/// Where a run's copies are and what predicts them.
pub struct Run<'a> {
    /// The broker.
    pub broker: &'a Broker,
    /// The workload.
    pub workload: &'a Workload,
    /// Every record produced.
    pub records: &'a [WorkloadRecord],
    /// The source topic.
    pub source: &'a str,
    /// The exception topic.
    pub exceptions: &'a str,
    /// The oracle.
    pub oracle: Oracle<'a>,
    /// Scratch directory for the oracle's input.
    pub scratch: &'a Path,
}

/// The account of a run.
pub struct Account {
    /// Per-topic rows.
    pub ledger: Ledger,
    /// Source records the broker kept (the router is accountable for these).
    pub records: usize,
    /// Acknowledged source records the broker lost by itself.
    pub lost_by_broker: usize,
}

impl Run<'_> {
    /// Accounts for every copy: the router must deliver the copies of every record the source
    /// topic holds; copies of records the broker lost by itself may exist and are not
    /// unexpected. Exception records of rules starting with one of `ignored` are left out.
    pub fn account(&self, ignored: &[&str]) -> anyhow::Result<Account> {
        self.account_allowing(&ledger::Allowances {
            ignored,
            ..Default::default()
        })
    }

    /// [`Run::account`] with the scenario's allowances (ignored rules, destroyed topics).
    pub fn account_allowing(&self, allowances: &ledger::Allowances<'_>) -> anyhow::Result<Account> {
        let in_source: BTreeSet<String> = self
            .broker
            .read_all(self.source)?
            .into_iter()
            .filter_map(|r| r.key)
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect();
        let records = self
            .records
            .iter()
            .filter(|r| in_source.contains(&r.key))
            .count();
        let expectation = self
            .oracle
            .predict(self.workload, self.records, self.scratch)?;
        let ledger = Ledger::read_allowing(
            self.broker,
            self.workload,
            self.exceptions,
            &expectation,
            &in_source,
            allowances,
        )?;
        Ok(Account {
            ledger,
            records,
            lost_by_broker: self.records.len() - records,
        })
    }
}
