//! librdkafka settings for the router's consumer and per-tier producers.
//!
//! Defaults encode the delivery guarantees of each tier; `--kafka-property` values are applied
//! last so users can add TLS/SASL and tune anything.

use rdkafka::ClientConfig;
use streamsplit_rules::Tier;

/// How long a critical copy may sit in librdkafka before it is re-queued by the router.
const CRITICAL_MESSAGE_TIMEOUT_MS: &str = "300000";
/// How long a standard or best-effort copy is retried before it goes to the exception topic.
const BOUNDED_MESSAGE_TIMEOUT_MS: &str = "30000";
/// Best-effort copies in flight; beyond it best-effort copies are dropped.
pub const DEFAULT_BEST_EFFORT_QUEUE: usize = 10_000;

/// Which producer a setting is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProducerRole {
    /// Copies of a tier.
    Tier(Tier),
    /// Exception records: must never be lost.
    Exception,
}

impl ProducerRole {
    /// Every producer the router runs.
    pub const ALL: [ProducerRole; 4] = [
        ProducerRole::Tier(Tier::Critical),
        ProducerRole::Tier(Tier::Standard),
        ProducerRole::Tier(Tier::BestEffort),
        ProducerRole::Exception,
    ];

    /// Label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            ProducerRole::Tier(tier) => tier.as_str(),
            ProducerRole::Exception => "exception",
        }
    }
}

/// Connection settings shared by every client.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Extra librdkafka properties for every client, applied after the defaults.
    pub properties: Vec<(String, String)>,
    /// Extra properties for the consumer only, applied last.
    pub consumer_properties: Vec<(String, String)>,
    /// Extra properties for the producers only, applied last.
    pub producer_properties: Vec<(String, String)>,
    /// `group.instance.id` for static membership.
    pub instance_id: Option<String>,
    /// `queue.buffering.max.messages` of the best-effort producer.
    pub best_effort_queue: usize,
}

impl KafkaSettings {
    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        config
    }

    fn with_user_properties(
        &self,
        mut config: ClientConfig,
        specific: &[(String, String)],
    ) -> ClientConfig {
        for (key, value) in self.properties.iter().chain(specific) {
            config.set(key, value);
        }
        config
    }

    /// Consumer: manual commits of offsets the router has proven done.
    pub fn consumer(&self, group: &str) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("statistics.interval.ms", "5000")
            // Bound the prefetch (librdkafka's default is 64 MiB per partition queue).
            .set("queued.max.messages.kbytes", "16384");
        if let Some(instance_id) = &self.instance_id {
            config.set("group.instance.id", instance_id);
        }
        self.with_user_properties(config, &self.consumer_properties)
    }

    /// Producer for one role, with that role's guarantees.
    pub fn producer(&self, role: ProducerRole) -> ClientConfig {
        let mut config = self.base();
        // Topics belong to the operator: a copy to a missing topic is an error, never a new topic.
        config
            .set("linger.ms", "5")
            .set("allow.auto.create.topics", "false");
        match role {
            ProducerRole::Tier(Tier::Critical) | ProducerRole::Exception => {
                config
                    .set("acks", "all")
                    .set("enable.idempotence", "true")
                    .set("message.timeout.ms", CRITICAL_MESSAGE_TIMEOUT_MS);
            }
            ProducerRole::Tier(Tier::Standard) => {
                config
                    .set("acks", "all")
                    .set("enable.idempotence", "true")
                    .set("message.timeout.ms", BOUNDED_MESSAGE_TIMEOUT_MS);
            }
            ProducerRole::Tier(Tier::BestEffort) => {
                config
                    .set("acks", "1")
                    .set("message.timeout.ms", BOUNDED_MESSAGE_TIMEOUT_MS)
                    .set(
                        "queue.buffering.max.messages",
                        self.best_effort_queue.to_string(),
                    );
            }
        }
        self.with_user_properties(config, &self.producer_properties)
    }
}
