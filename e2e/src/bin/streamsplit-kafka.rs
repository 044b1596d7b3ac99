//! Small Kafka tool for the demo and for debugging tests, built on the test harness:
//!
//!   streamsplit-kafka create TOPIC[:PARTITIONS]...
//!   streamsplit-kafka produce TOPIC FILE      (one record value per line)
//!   streamsplit-kafka count TOPIC...          (records per topic)
//!   streamsplit-kafka show TOPIC              (values and streamsplit headers)
//!   streamsplit-kafka wait-committed GROUP TOPIC [SECONDS]
//!                                             (until GROUP committed all of TOPIC)
//!
//! The broker is `STREAMSPLIT_TEST_BROKERS` or the one `e2e/kafka/up.sh` starts.

use std::process::ExitCode;

use streamsplit_e2e::{Broker, TestRecord};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("streamsplit-kafka: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let broker = Broker::shared();
    match args.split_first() {
        Some((command, rest)) if command == "create" => {
            let topics: Vec<(String, i32)> = rest
                .iter()
                .map(|spec| match spec.split_once(':') {
                    Some((name, parts)) => Ok((name.to_string(), parts.parse()?)),
                    None => Ok((spec.clone(), 1)),
                })
                .collect::<anyhow::Result<_>>()?;
            let refs: Vec<(&str, i32)> = topics.iter().map(|(n, p)| (n.as_str(), *p)).collect();
            broker.create_topics(&refs)
        }
        Some((command, [topic, file])) if command == "produce" => {
            let text = std::fs::read_to_string(file)?;
            let records: Vec<TestRecord> = text
                .lines()
                .map(|line| TestRecord { value: line.as_bytes().to_vec(), ..TestRecord::default() })
                .collect();
            broker.produce(topic, &records)?;
            println!("produced {} records to {topic}", records.len());
            Ok(())
        }
        Some((command, topics)) if command == "count" && !topics.is_empty() => {
            for topic in topics {
                let count: i64 = broker.high_watermarks(topic)?.values().sum();
                println!("{count:>8}  {topic}");
            }
            Ok(())
        }
        Some((command, [topic])) if command == "show" => {
            for record in broker.read_all(topic)? {
                let value = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default());
                println!("{value}");
                for (key, value) in &record.headers {
                    if key.starts_with("streamsplit.") {
                        let value = String::from_utf8_lossy(value.as_deref().unwrap_or_default());
                        println!("    {key}: {value}");
                    }
                }
            }
            Ok(())
        }
        Some((command, [group, topic, rest @ ..])) if command == "wait-committed" => {
            let seconds: u64 = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(60);
            broker.wait_for_commit(group, topic, std::time::Duration::from_secs(seconds))
        }
        _ => anyhow::bail!(
            "usage: streamsplit-kafka create TOPIC[:PARTITIONS]... | produce TOPIC FILE | count TOPIC... | show TOPIC | wait-committed GROUP TOPIC [SECONDS]"
        ),
    }
}
