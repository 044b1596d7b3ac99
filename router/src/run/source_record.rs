//! A consumed record kept until all its copies are acknowledged, and the exception record built
//! from it.

use std::sync::Arc;

use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::Message;
use streamsplit_rules::RecordMeta;

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
/// Header present (`true`) when the exception record holds only a prefix of the original value,
/// because the broker refused the whole record for its size.
pub const HEADER_EXCEPTION_TRUNCATED: &str = "streamsplit.exception.truncated";
/// Header with the original record's size in bytes (key + value + headers), on truncated
/// exception records.
pub const HEADER_EXCEPTION_ORIGINAL_SIZE: &str = "streamsplit.exception.original-size";

/// Lineage header on every routed copy: the rule (`namespace/name`) that produced it.
pub const HEADER_LINEAGE_RULE: &str = "streamsplit.rule";
/// Lineage header on every routed copy: the version of the bundle that routed it.
pub const HEADER_LINEAGE_BUNDLE_VERSION: &str = "streamsplit.bundle.version";

/// Most bytes of the original value a truncated exception record keeps.
pub const TRUNCATED_VALUE_BYTES: usize = 4 * 1024;
/// Most bytes of the original key, and of the error message, a truncated exception record keeps.
pub const TRUNCATED_KEY_BYTES: usize = 1024;

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
    /// Every kind, for zero-valued metric series.
    pub const ALL: [ExceptionKind; 3] = [
        ExceptionKind::Decode,
        ExceptionKind::Rule,
        ExceptionKind::Produce,
    ];

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

    /// What conditions read as `meta`.
    pub fn meta(&self) -> RecordMeta<'_> {
        RecordMeta {
            key: self.key.as_deref(),
            headers: self.headers.as_ref().map_or_else(Vec::new, |headers| {
                headers.iter().map(|h| (h.key, h.value)).collect()
            }),
            topic: &self.topic,
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
        }
    }

    /// Bytes the record holds: key, value and headers.
    pub fn size(&self) -> usize {
        let headers = self.headers.as_ref().map_or(0, |headers| {
            headers
                .iter()
                .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
                .sum()
        });
        self.key.as_ref().map_or(0, Vec::len) + self.payload.as_ref().map_or(0, Vec::len) + headers
    }

    /// Key and value of an exception record: the originals, or bounded prefixes when truncated.
    pub fn exception_key_and_value(&self, truncated: bool) -> (Option<&[u8]>, Option<&[u8]>) {
        let limit = |limit: usize| if truncated { limit } else { usize::MAX };
        (
            prefix(self.key.as_deref(), limit(TRUNCATED_KEY_BYTES)),
            prefix(self.payload.as_deref(), limit(TRUNCATED_VALUE_BYTES)),
        )
    }

    /// Original headers plus the exception headers. A truncated exception record leaves the
    /// original headers out (they may be what made the record too large) and bounds the message.
    pub fn exception_headers(
        &self,
        kind: ExceptionKind,
        message: &str,
        rule: Option<&str>,
        truncated: bool,
    ) -> OwnedHeaders {
        let original = self.headers.as_ref().filter(|_| !truncated);
        let mut headers = OwnedHeaders::new_with_capacity(original.map_or(0, |h| h.count()) + 8);
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
        let original_size = self.size().to_string();
        let message = if truncated {
            truncate_utf8(message, TRUNCATED_KEY_BYTES)
        } else {
            message
        };
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
        if truncated {
            extra.push((HEADER_EXCEPTION_TRUNCATED, "true"));
            extra.push((HEADER_EXCEPTION_ORIGINAL_SIZE, &original_size));
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

impl SourceRecord {
    /// Original headers plus the lineage headers of a copy made by `rule` with bundle `version`:
    /// with them a consumer can trace a copy to its rule and source record, and deduplicate
    /// copies a restart produced twice (same source topic, partition and offset).
    pub fn lineage_headers(&self, rule: &str, version: &str) -> OwnedHeaders {
        let count = self.headers.as_ref().map_or(0, |h| h.count());
        let mut headers = OwnedHeaders::new_with_capacity(count + 5);
        if let Some(original) = &self.headers {
            for header in original.iter() {
                headers = headers.insert(header);
            }
        }
        let partition = self.partition.to_string();
        let offset = self.offset.to_string();
        for (key, value) in [
            (HEADER_LINEAGE_RULE, rule),
            (HEADER_LINEAGE_BUNDLE_VERSION, version),
            (HEADER_SOURCE_TOPIC, &*self.topic),
            (HEADER_SOURCE_PARTITION, partition.as_str()),
            (HEADER_SOURCE_OFFSET, offset.as_str()),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        headers
    }
}

/// The longest prefix of `text` of at most `limit` bytes that ends on a character boundary.
fn truncate_utf8(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn prefix(bytes: Option<&[u8]>, limit: usize) -> Option<&[u8]> {
    bytes.map(|b| &b[..b.len().min(limit)])
}
