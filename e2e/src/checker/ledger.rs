//! Reads what the router wrote and accounts for every expected copy, per topic.

use std::collections::{BTreeMap, BTreeSet};

use super::oracle::{Expectation, Expected};
use super::workload::Workload;
use crate::Broker;

/// The account of one topic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicRow {
    /// Topic name (or `exceptions`).
    pub topic: String,
    /// Tier of the topic's rule, `exception` for the exception topic.
    pub tier: String,
    /// Copies the oracle asked for.
    pub expected: usize,
    /// Expected copies present at least once.
    pub delivered: usize,
    /// Expected copies absent (best-effort topics: see `dropped`).
    pub lost: usize,
    /// Best-effort copies absent: dropped, which the tier allows.
    pub dropped: usize,
    /// Copies absent whose failure the exception topic records (reason `produce`, naming the
    /// rule): accounted for, as the router promises, not lost.
    pub diverted: usize,
    /// Copies present more than once, counted beyond the first.
    pub duplicated: usize,
    /// Copies present that no rule asked for.
    pub unexpected: usize,
}

/// The account of a whole run.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    /// One row per target topic, then the exception topic.
    pub rows: Vec<TopicRow>,
    /// Source records whose copies (each present once) carry more than one bundle version in
    /// their `streamsplit.bundle.version` lineage header: evaluated by two rule sets, which the
    /// router's atomic swap forbids. Records with a duplicated copy are left out: a redelivery
    /// after a crash or rebalance may rightly be evaluated by a newer version.
    pub split_records: usize,
    /// Copies on target topics without the version lineage header.
    pub unversioned: usize,
    /// Distinct bundle versions the copies carry (a swap scenario needs two or more for
    /// `split_records` to mean anything).
    pub versions_seen: usize,
}

/// A copy's identity: which record, and (on the exception topic) which kind and rule.
type CopyId = (String, Option<(String, Option<String>)>);

/// What a scenario tells the ledger beyond the oracle's prediction.
#[derive(Clone, Debug, Default)]
pub struct Allowances<'a> {
    /// Exception records of rules whose identity starts with one of these are left out (rules
    /// a scenario swaps in that the oracle does not know).
    pub ignored: &'a [&'a str],
    /// Target topics deleted mid-run, with the keys of the copies they held just before: those
    /// copies were delivered and went with the topic.
    pub destroyed: BTreeMap<String, BTreeSet<String>>,
}

impl Ledger {
    /// Reads every target topic and the exception topic to the end and accounts for them.
    /// Copies of records in `required` must be there; copies of the other expected records
    /// (produced, but lost by the broker itself) may be there and are not unexpected.
    pub fn read(
        broker: &Broker,
        workload: &Workload,
        exceptions: &str,
        expectation: &Expectation,
        required: &BTreeSet<String>,
    ) -> anyhow::Result<Ledger> {
        let allowances = Allowances::default();
        Self::read_allowing(
            broker,
            workload,
            exceptions,
            expectation,
            required,
            &allowances,
        )
    }

    /// [`Ledger::read`] with the scenario's [`Allowances`].
    pub fn read_allowing(
        broker: &Broker,
        workload: &Workload,
        exceptions: &str,
        expectation: &Expectation,
        required: &BTreeSet<String>,
        allowances: &Allowances<'_>,
    ) -> anyhow::Result<Ledger> {
        let ignored = allowances.ignored;
        let mut expected: BTreeMap<String, BTreeSet<CopyId>> = BTreeMap::new();
        for (key, copies) in &expectation.copies {
            for copy in copies {
                let (topic, id) = match copy {
                    Expected::Target(topic) => (topic.clone(), (key.clone(), None)),
                    Expected::Exception(kind, rule) => (
                        exceptions.to_string(),
                        (key.clone(), Some((kind.clone(), rule.clone()))),
                    ),
                };
                expected.entry(topic).or_default().insert(id);
            }
        }
        let mut rows = Vec::new();
        let mut topics = workload.topics();
        topics.push(exceptions.to_string());
        let read = |topic: &str| -> anyhow::Result<Vec<crate::ReadRecord>> {
            if broker.high_watermarks(topic).is_ok() {
                broker.read_all(topic)
            } else {
                Ok(Vec::new())
            }
        };
        // Copies that failed to produce and went to the exception topic, as (key, rule).
        let exception_records = read(exceptions)?;
        let produce_failures: BTreeSet<(String, String)> = exception_records
            .iter()
            .filter(|r| r.header("streamsplit.exception.kind").as_deref() == Some("produce"))
            .filter_map(|r| {
                let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default());
                Some((key.into_owned(), r.header("streamsplit.exception.rule")?))
            })
            .collect();
        let mut diverted_ids: BTreeSet<CopyId> = BTreeSet::new();
        // Per source record: the versions its copies carry, and whether a copy is duplicated.
        let mut versions: BTreeMap<String, (BTreeSet<String>, bool)> = BTreeMap::new();
        let mut unversioned = 0;
        for topic in topics {
            let is_exceptions = topic == exceptions;
            let mut seen: BTreeMap<CopyId, usize> = BTreeMap::new();
            let records = if is_exceptions {
                exception_records.clone()
            } else {
                read(&topic)?
            };
            for record in records {
                let key =
                    String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()).into_owned();
                let id = if is_exceptions {
                    let kind = record
                        .header("streamsplit.exception.kind")
                        .unwrap_or_default();
                    let rule = record.header("streamsplit.exception.rule");
                    if rule
                        .as_deref()
                        .is_some_and(|r| ignored.iter().any(|i| r.starts_with(i)))
                    {
                        continue;
                    }
                    (key, Some((kind, rule)))
                } else {
                    match record.header("streamsplit.bundle.version") {
                        Some(version) => {
                            versions.entry(key.clone()).or_default().0.insert(version);
                        }
                        None => unversioned += 1,
                    }
                    (key, None)
                };
                *seen.entry(id).or_insert(0) += 1;
            }
            for ((key, _), _) in seen.iter().filter(|(_, n)| **n > 1) {
                versions.entry(key.clone()).or_default().1 = true;
            }
            let mut allowed = expected.remove(&topic).unwrap_or_default();
            let wanted: BTreeSet<&CopyId> = allowed
                .iter()
                .filter(|(key, _)| required.contains(key))
                .collect();
            let destroyed = allowances.destroyed.get(&topic);
            let present = |id: &CopyId| {
                seen.contains_key(id) || destroyed.is_some_and(|keys| keys.contains(&id.0))
            };
            let delivered = wanted.iter().filter(|id| present(id)).count();
            let rule = workload.rule_of(&topic);
            let diverted: Vec<CopyId> = wanted
                .iter()
                .filter(|id| !present(id))
                .filter(|(key, _)| {
                    rule.as_ref()
                        .is_some_and(|rule| produce_failures.contains(&(key.clone(), rule.clone())))
                })
                .map(|(key, _)| (key.clone(), Some(("produce".to_string(), rule.clone()))))
                .collect();
            let absent = wanted.len() - delivered - diverted.len();
            let expected_count = wanted.len();
            if is_exceptions {
                allowed.extend(diverted_ids.iter().cloned());
            } else {
                diverted_ids.extend(diverted.iter().cloned());
            }
            let tier = if is_exceptions {
                "exception"
            } else {
                workload.tier_of(&topic).unwrap_or("?")
            };
            let best_effort = tier == "best-effort";
            rows.push(TopicRow {
                topic: if is_exceptions {
                    "exceptions".into()
                } else {
                    topic.clone()
                },
                tier: tier.to_string(),
                expected: expected_count,
                delivered,
                lost: if best_effort { 0 } else { absent },
                dropped: if best_effort { absent } else { 0 },
                diverted: diverted.len(),
                duplicated: seen.values().map(|n| n - 1).sum(),
                unexpected: seen.keys().filter(|id| !allowed.contains(*id)).count(),
            });
        }
        let split_records = versions
            .values()
            .filter(|(versions, duplicated)| !duplicated && versions.len() > 1)
            .count();
        let versions_seen = versions
            .values()
            .flat_map(|(versions, _)| versions)
            .collect::<BTreeSet<_>>()
            .len();
        Ok(Ledger {
            rows,
            split_records,
            unversioned,
            versions_seen,
        })
    }

    /// Sums over all rows.
    pub fn total(&self) -> TopicRow {
        let mut total = TopicRow {
            topic: "all".into(),
            ..TopicRow::default()
        };
        for row in &self.rows {
            total.expected += row.expected;
            total.delivered += row.delivered;
            total.lost += row.lost;
            total.dropped += row.dropped;
            total.diverted += row.diverted;
            total.duplicated += row.duplicated;
            total.unexpected += row.unexpected;
        }
        total
    }

    /// Exception records written (expected and delivered).
    pub fn exceptions(&self) -> usize {
        self.rows
            .iter()
            .find(|r| r.tier == "exception")
            .map_or(0, |r| r.delivered)
    }

    /// The per-topic table, for a test's output.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| topic | tier | expected | delivered | lost | dropped | diverted | duplicated | unexpected |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for row in self.rows.iter().chain(std::iter::once(&self.total())) {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                row.topic,
                row.tier,
                row.expected,
                row.delivered,
                row.lost,
                row.dropped,
                row.diverted,
                row.duplicated,
                row.unexpected
            ));
        }
        out
    }
}
