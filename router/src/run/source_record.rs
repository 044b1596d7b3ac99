//! A consumed record kept until all its copies are acknowledged, and the exception record built
//! from it.

use std::sync::Arc;

use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::Message;

/// Header naming why a record is on the exception topic: `decode`, `rule` or `produce`.
pub const HEADER_EXCEPTION_KIND: &str = "streamsplit.exception.kind";
/// Header with the human-readable error.
pub const HEADER_EXCEPTION_MESSAGE: &str = "streamsplit.exception.message";
/// Header naming the rule (`namespace/name`) involved, when there is one.
pub const HEADER_EXCEPTION_RULE: &str = "streamsplit.exception.rule";
/// Header with the source topic.
pub const HEADER_SOURCE_TOPIC: &str = "streamsplit.source.topic";
/// Header with the source partition (decimal).
pub const HEADER_SOURCE_PARTITION: &str = "streamsplit.source.partition";
/// Header with the source offset (decimal).
pub const HEADER_SOURCE_OFFSET: &str = "streamsplit.source.offset";

/// Why a record went to the exception topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionKind {
    /// The value is not a JSON object.
    Decode,
    /// A rule's condition failed on it.
    Rule,
    /// A copy could not be produced.
    Produce,
}

impl ExceptionKind {
    /// Header and metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::Decode => "decode",
            ExceptionKind::Rule => "rule",
            ExceptionKind::Produce => "produce",
        }
    }
}

/// The parts of a source record that every copy reproduces unchanged.
#[derive(Debug)]
pub struct SourceRecord {
    /// Source topic.
    pub topic: Arc<str>,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Original key.
    pub key: Option<Vec<u8>>,
    /// Original value.
    pub payload: Option<Vec<u8>>,
    /// Original headers.
    pub headers: Option<OwnedHeaders>,
    /// Original timestamp in milliseconds, when the record had one.
    pub timestamp: Option<i64>,
}

impl SourceRecord {
    /// Copies what must outlive the consumer's buffer.
    pub fn from_message(message: &BorrowedMessage<'_>, topic: Arc<str>) -> Self {
        SourceRecord {
            topic,
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers: message.headers().map(|h| h.detach()),
            timestamp: message.timestamp().to_millis(),
        }
    }

    /// Original headers plus the exception headers.
    pub fn exception_headers(
        &self,
        kind: ExceptionKind,
        message: &str,
        rule: Option<&str>,
    ) -> OwnedHeaders {
        let original = self.headers.as_ref();
        let mut headers = OwnedHeaders::new_with_capacity(original.map_or(0, |h| h.count()) + 6);
        if let Some(original) = original {
            for header in original.iter() {
                headers = headers.insert(Header {
                    key: header.key,
                    value: header.value,
                });
            }
        }
        let partition = self.partition.to_string();
        let offset = self.offset.to_string();
        let mut extra = vec![
            (HEADER_EXCEPTION_KIND, kind.as_str()),
            (HEADER_EXCEPTION_MESSAGE, message),
            (HEADER_SOURCE_TOPIC, &*self.topic),
            (HEADER_SOURCE_PARTITION, &partition),
            (HEADER_SOURCE_OFFSET, &offset),
        ];
        if let Some(rule) = rule {
            extra.push((HEADER_EXCEPTION_RULE, rule));
        }
        for (key, value) in extra {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        headers
    }
}
