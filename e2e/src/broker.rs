//! The test broker and what tests do with it: create topics, produce, read whole topics, and
//! inspect committed offsets.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// Environment variable naming an external cluster to test against instead of the local broker.
pub const BROKERS_ENV: &str = "STREAMSPLIT_TEST_BROKERS";
/// Environment variable naming the second test broker (nisshi).
pub const NISSHI_ENV: &str = "STREAMSPLIT_TEST_NISSHI";
const TIMEOUT: Duration = Duration::from_secs(15);

/// A reachable Kafka cluster.
#[derive(Debug)]
pub struct Broker {
    /// bootstrap.servers
    pub bootstrap: String,
    /// Further client properties (TLS, SASL) every client of the helpers uses.
    pub properties: Vec<(String, String)>,
}

/// A record read back from a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// Its timestamp in milliseconds, when it has one.
    pub timestamp: Option<i64>,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl ReadRecord {
    /// The value of a header, as text.
    pub fn header(&self, key: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// A record to produce.
#[derive(Clone, Debug, Default)]
pub struct TestRecord {
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A name no other test (or earlier run) uses: topics and groups never collide.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        millis % 1_000_000_000
    )
}

impl Broker {
    /// The shared broker: `STREAMSPLIT_TEST_BROKERS` if set, else the one `e2e/kafka/up.sh`
    /// starts (or finds running). Panics with the reason when neither works: no silent skips.
    pub fn shared() -> &'static Broker {
        static BROKER: OnceLock<Broker> = OnceLock::new();
        BROKER.get_or_init(|| match Self::start() {
            Ok(broker) => broker,
            Err(error) => panic!("no Kafka broker for the tests: {error:#}"),
        })
    }

    /// The second, independent broker: nisshi (`STREAMSPLIT_TEST_NISSHI` if set, else the one
    /// `STREAMSPLIT_KAFKA_KIND=nisshi e2e/kafka/up.sh` starts, building it on first use).
    pub fn nisshi() -> &'static Broker {
        static BROKER: OnceLock<Broker> = OnceLock::new();
        BROKER.get_or_init(|| {
            let started = match std::env::var(NISSHI_ENV) {
                Ok(bootstrap) if !bootstrap.trim().is_empty() => Ok(bootstrap),
                _ => crate::run_up_script_with(
                    "e2e/kafka/up.sh",
                    NISSHI_ENV,
                    &[("STREAMSPLIT_KAFKA_KIND", "nisshi")],
                ),
            };
            match started {
                Ok(bootstrap) => Broker::at(bootstrap),
                Err(error) => panic!("no nisshi broker for the tests: {error:#}"),
            }
        })
    }

    fn start() -> anyhow::Result<Broker> {
        if let Ok(bootstrap) = std::env::var(BROKERS_ENV) {
            if !bootstrap.trim().is_empty() {
                return Ok(Broker::at(bootstrap));
            }
        }
        let bootstrap = crate::run_up_script("e2e/kafka/up.sh", BROKERS_ENV)?;
        Ok(Broker::at(bootstrap))
    }

    /// A plaintext broker at `bootstrap`.
    pub fn at(bootstrap: impl Into<String>) -> Broker {
        Broker {
            bootstrap: bootstrap.into(),
            properties: Vec::new(),
        }
    }

    /// Client settings pointing at this broker.
    pub fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// Creates topics with the given partition counts (existing ones are left as they are).
    pub fn create_topics(&self, topics: &[(&str, i32)]) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.config().create()?;
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
            .collect();
        let results = futures::executor::block_on(
            admin.create_topics(&new, &AdminOptions::new().operation_timeout(Some(TIMEOUT))),
        )?;
        for result in results {
            match result {
                Ok(_) => {}
                Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => anyhow::bail!("cannot create topic {topic}: {code}"),
            }
        }
        Ok(())
    }

    /// Deletes a topic.
    pub fn delete_topic(&self, topic: &str) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.config().create()?;
        let results = futures::executor::block_on(admin.delete_topics(
            &[topic],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        ))?;
        for result in results {
            if let Err((topic, code)) = result {
                anyhow::bail!("cannot delete topic {topic}: {code}");
            }
        }
        Ok(())
    }

    /// Produces records and waits until all are acknowledged.
    pub fn produce(&self, topic: &str, records: &[TestRecord]) -> anyhow::Result<()> {
        let producer: BaseProducer = self
            .config()
            .set("acks", "all")
            .set("linger.ms", "5")
            .create()?;
        for record in records {
            let mut headers = OwnedHeaders::new();
            for (key, value) in &record.headers {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
            let mut base = BaseRecord::to(topic)
                .payload(&record.value)
                .headers(headers);
            if let Some(key) = &record.key {
                base = base.key(key);
            }
            loop {
                match producer.send(base) {
                    Ok(()) => break,
                    Err((error, back)) => {
                        anyhow::ensure!(
                            error.rdkafka_error_code()
                                == Some(rdkafka::types::RDKafkaErrorCode::QueueFull),
                            "produce to {topic} failed: {error}"
                        );
                        producer.poll(Duration::from_millis(10));
                        base = back;
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(30))?;
        Ok(())
    }

    fn partitions(&self, consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<i32>> {
        let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        anyhow::ensure!(!partitions.is_empty(), "topic {topic} has no partitions");
        Ok(partitions)
    }

    /// High watermark of each partition.
    pub fn high_watermarks(&self, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
        let consumer: BaseConsumer = self.config().create()?;
        let mut marks = BTreeMap::new();
        for partition in self.partitions(&consumer, topic)? {
            let (_, high) = consumer.fetch_watermarks(topic, partition, TIMEOUT)?;
            marks.insert(partition, high);
        }
        Ok(marks)
    }

    /// Every record currently in `topic` (from the beginning to the high watermarks).
    pub fn read_all(&self, topic: &str) -> anyhow::Result<Vec<ReadRecord>> {
        let marks = self.high_watermarks(topic)?;
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", crate::unique_name("reader"))
            .set("enable.auto.commit", "false")
            .create()?;
        let mut assignment = TopicPartitionList::new();
        for partition in marks.keys() {
            assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let mut remaining: BTreeMap<i32, i64> = marks.into_iter().filter(|(_, h)| *h > 0).collect();
        let mut records = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !remaining.is_empty() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "reading {topic} timed out; missing {remaining:?}"
            );
            let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let message = message?;
            if let Some(high) = remaining.get(&message.partition()) {
                if message.offset() + 1 >= *high {
                    remaining.remove(&message.partition());
                }
            }
            records.push(ReadRecord {
                partition: message.partition(),
                offset: message.offset(),
                timestamp: message.timestamp().to_millis(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
                headers: message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        Ok(records)
    }

    /// Waits until `group` has committed the high watermark of every partition of `topic`, as
    /// it was when the wait started: everything produced so far is routed.
    pub fn wait_for_commit(
        &self,
        group: &str,
        topic: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let high = self.high_watermarks(topic)?;
        crate::wait_until(
            &format!("group {group} to commit {high:?} on {topic}"),
            timeout,
            || {
                let committed = self.committed(group, topic).ok()?;
                high.iter()
                    .all(|(p, h)| *h == 0 || committed.get(p).is_some_and(|c| c >= h))
                    .then_some(())
            },
        )
    }

    /// Offsets committed by `group` on each partition of `topic` (absent when none).
    pub fn committed(&self, group: &str, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        let mut list = TopicPartitionList::new();
        for partition in self.partitions(&consumer, topic)? {
            list.add_partition(topic, partition);
        }
        let committed = consumer.committed_offsets(list, TIMEOUT)?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some((e.partition(), offset)),
                _ => None,
            })
            .collect())
    }
}

/// A broker of the test's own (noida-db, or nisshi on SQLite, on a port of its own) that the
/// test may stop and restart with its data: for broker-bounce scenarios that must not disturb
/// other tests.
#[derive(Debug)]
pub struct PrivateBroker {
    /// The client view of it.
    pub broker: Broker,
    port: u16,
    state: std::path::PathBuf,
    nisshi: bool,
}

/// How a private broker is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopSignal {
    /// A graceful stop.
    Term,
    /// A crash.
    Kill,
}

impl PrivateBroker {
    /// Starts a fresh noida-db on a free port with its state under `state`.
    pub fn start(state: &std::path::Path) -> anyhow::Result<Self> {
        Self::start_kind(state, false)
    }

    /// Starts a fresh nisshi with SQLite storage on a free port with its state under `state`.
    pub fn start_nisshi(state: &std::path::Path) -> anyhow::Result<Self> {
        Self::start_kind(state, true)
    }

    fn start_kind(state: &std::path::Path, nisshi: bool) -> anyhow::Result<Self> {
        let port = crate::free_port();
        let broker = Self {
            broker: Broker::at(format!("127.0.0.1:{port}")),
            port,
            state: state.to_path_buf(),
            nisshi,
        };
        broker.up(false)?;
        Ok(broker)
    }

    fn up(&self, keep_data: bool) -> anyhow::Result<()> {
        use anyhow::Context;
        let script = crate::repo_root().join("e2e/kafka/up.sh");
        let output = std::process::Command::new("bash")
            .arg(&script)
            .env("STREAMSPLIT_KAFKA_PORT", self.port.to_string())
            .env("STREAMSPLIT_STATE", &self.state)
            .env(
                "STREAMSPLIT_KAFKA_KEEP_DATA",
                if keep_data { "1" } else { "0" },
            )
            .env(
                "STREAMSPLIT_KAFKA_KIND",
                if self.nisshi { "nisshi" } else { "noida" },
            )
            .env("STREAMSPLIT_KAFKA_PERSIST", "1")
            .output()
            .context("cannot run e2e/kafka/up.sh")?;
        anyhow::ensure!(
            output.status.success(),
            "e2e/kafka/up.sh failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    fn pid(&self) -> anyhow::Result<i32> {
        let path = self.state.join(format!("kafka-{}/pid", self.port));
        let text = std::fs::read_to_string(&path)?;
        Ok(text.trim().parse()?)
    }

    /// Stops the broker and waits until its process is gone.
    pub fn stop(&self, signal: StopSignal) -> anyhow::Result<()> {
        let pid = self.pid()?;
        let name = match signal {
            StopSignal::Term => "-TERM",
            StopSignal::Kill => "-KILL",
        };
        std::process::Command::new("kill")
            .args([name, &pid.to_string()])
            .status()?;
        crate::wait_until(
            &format!("broker process {pid} to exit"),
            Duration::from_secs(30),
            || {
                let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
                    && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .is_ok_and(|s| s.contains(") Z "));
                (!alive).then_some(())
            },
        )
    }

    /// Waits until the broker's data directory holds `topics` (noida-db persists its state every
    /// second or two; a topic created since the last snapshot does not survive a SIGKILL).
    /// nisshi's SQLite storage commits what it acknowledges: nothing to wait for.
    pub fn wait_until_persisted(&self, topics: &[&str]) -> anyhow::Result<()> {
        if self.nisshi {
            return Ok(());
        }
        let data = self.state.join(format!("kafka-{}/data", self.port));
        crate::wait_until(
            &format!("the broker to persist {topics:?}"),
            Duration::from_secs(30),
            || {
                let mut text = String::new();
                for entry in std::fs::read_dir(&data).ok()?.flatten() {
                    text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
                }
                topics.iter().all(|t| text.contains(t)).then_some(())
            },
        )
    }

    /// Starts the broker again on the same port with the data it had.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.up(true)
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.stop(StopSignal::Kill);
    }
}
