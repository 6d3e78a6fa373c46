//! Per-log configuration, with Kafka's topic-config names and defaults.

use thiserror::Error;

/// Which timestamp the log stores in each batch's maxTimestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageTimestampType {
    /// Keep the producer's timestamps.
    CreateTime,
    /// Overwrite maxTimestamp with the broker's clock at append.
    LogAppendTime,
}

/// `cleanup.policy`. `Delete` applies retention.ms/bytes; `Compact` keeps the latest value
/// per key (the cleaner, in `cleaner.rs`) and is never trimmed by retention; `CompactDelete`
/// does both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    Delete,
    Compact,
    CompactDelete,
}

/// A topic config value the log layer cannot accept. The server maps every
/// variant to Kafka's `INVALID_CONFIG`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for topic config {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("unknown log config {key:?} (see LogConfig::SUPPORTED_KEYS)")]
    UnknownKey { key: String },
}

/// Configuration of one partition log. `Default` gives Kafka's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when an append would make the active segment larger.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is older than this.
    pub segment_ms: i64,
    /// `retention.ms`; `None` (Kafka's -1) keeps data forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`; `None` (Kafka's -1) means no size limit.
    pub retention_bytes: Option<u64>,
    /// `flush.messages`; `None` leaves flushing to the OS, `Some(1)` fsyncs every append.
    pub flush_messages: Option<u64>,
    /// `flush.ms`; `None` leaves flushing to the OS.
    pub flush_ms: Option<u64>,
    /// `index.interval.bytes`: bytes between sparse offset/time index entries.
    pub index_interval_bytes: u64,
    /// `segment.index.bytes`: a full index forces a roll.
    pub segment_index_bytes: u64,
    /// `max.message.bytes`: the largest batch accepted by `append`.
    pub max_message_bytes: u64,
    /// `message.timestamp.type`.
    pub message_timestamp_type: MessageTimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime record's
    /// timestamp may be (Kafka's default: no limit, `i64::MAX`).
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future (Kafka 4's default: one hour).
    pub message_timestamp_after_max_ms: i64,
    /// `cleanup.policy`: delete (retention), compact (the cleaner) or both.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long the cleaner keeps a tombstone after it first saw it
    /// (KIP-534's delete horizon).
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: a segment whose newest record is younger is not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record older than this is cleaned whatever the dirty
    /// ratio, and the active segment is rolled once its first record is this old.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: dirty bytes / cleanable bytes at which a log is cleaned.
    pub min_cleanable_dirty_ratio: f64,
    /// Not a topic config: the broker's `--log-write-behind-bytes`, the bytes behind the log
    /// end kept in the page cache (see [`crate::write_behind`]); 0 leaves it to the OS.
    pub write_behind_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_ms: Some(7 * 24 * 60 * 60 * 1000),
            retention_bytes: None,
            flush_messages: None,
            flush_ms: None,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            max_message_bytes: 1_048_588,
            message_timestamp_type: MessageTimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 60 * 60 * 1000,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            write_behind_bytes: crate::write_behind::DEFAULT_WINDOW,
        }
    }
}

/// Kafka's "no value" for `flush.messages` / `flush.ms`.
const KAFKA_LONG_MAX: &str = "9223372036854775807";

impl LogConfig {
    /// The topic config keys this layer understands.
    pub const SUPPORTED_KEYS: &'static [&'static str] = &[
        "cleanup.policy",
        "delete.retention.ms",
        "flush.messages",
        "flush.ms",
        "index.interval.bytes",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.type",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.index.bytes",
        "segment.ms",
    ];

    /// True if `key` is one of [`LogConfig::SUPPORTED_KEYS`]; the server uses
    /// it to split topic configs between the log and other layers.
    pub fn is_supported_key(key: &str) -> bool {
        Self::SUPPORTED_KEYS.contains(&key)
    }

    /// Kafka defaults as `(key, value)` strings, for DescribeConfigs.
    pub fn defaults() -> Vec<(&'static str, String)> {
        LogConfig::default().to_topic_configs()
    }

    /// This config rendered as Kafka topic-config strings, sorted by key.
    pub fn to_topic_configs(&self) -> Vec<(&'static str, String)> {
        let opt_i = |v: Option<i64>| v.map_or("-1".to_string(), |v| v.to_string());
        let opt_u = |v: Option<u64>| v.map_or("-1".to_string(), |v| v.to_string());
        let opt_max = |v: Option<u64>| v.map_or(KAFKA_LONG_MAX.to_string(), |v| v.to_string());
        vec![
            (
                "cleanup.policy",
                match self.cleanup_policy {
                    CleanupPolicy::Delete => "delete",
                    CleanupPolicy::Compact => "compact",
                    CleanupPolicy::CompactDelete => "compact,delete",
                }
                .to_string(),
            ),
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            ("flush.messages", opt_max(self.flush_messages)),
            ("flush.ms", opt_max(self.flush_ms)),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            (
                "max.compaction.lag.ms",
                self.max_compaction_lag_ms.to_string(),
            ),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            (
                "message.timestamp.after.max.ms",
                self.message_timestamp_after_max_ms.to_string(),
            ),
            (
                "message.timestamp.before.max.ms",
                self.message_timestamp_before_max_ms.to_string(),
            ),
            (
                "message.timestamp.type",
                match self.message_timestamp_type {
                    MessageTimestampType::CreateTime => "CreateTime",
                    MessageTimestampType::LogAppendTime => "LogAppendTime",
                }
                .to_string(),
            ),
            (
                "min.cleanable.dirty.ratio",
                self.min_cleanable_dirty_ratio.to_string(),
            ),
            (
                "min.compaction.lag.ms",
                self.min_compaction_lag_ms.to_string(),
            ),
            ("retention.bytes", opt_u(self.retention_bytes)),
            ("retention.ms", opt_i(self.retention_ms)),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.index.bytes", self.segment_index_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
        ]
    }

    /// Builds a config from Kafka topic-config pairs on top of the defaults.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad key and value.
    pub fn from_topic_configs<'a, I>(pairs: I) -> Result<LogConfig, ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        LogConfig::default().with_overrides(pairs)
    }

    /// Applies Kafka topic-config pairs on top of `self` (e.g. a broker-wide default).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad key and value.
    pub fn with_overrides<'a, I>(mut self, pairs: I) -> Result<LogConfig, ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        for (key, value) in pairs {
            self.set(key, value)?;
        }
        Ok(self)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let long = || -> Result<i64, ConfigError> {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| invalid("not a 64-bit integer"))
        };
        let at_least = |min: i64| -> Result<u64, ConfigError> {
            let v = long()?;
            if v < min {
                return Err(invalid(&format!("must be at least {min}")));
            }
            // v >= min >= 0 here.
            Ok(v as u64)
        };
        // -1 means "unlimited" for retention; anything else must be >= 0.
        let unlimited_or_positive = || -> Result<Option<i64>, ConfigError> {
            match long()? {
                -1 => Ok(None),
                v if v >= 0 => Ok(Some(v)),
                _ => Err(invalid("must be -1 (unlimited) or >= 0")),
            }
        };
        // Kafka uses Long.MAX_VALUE as "never" for the flush settings.
        let flush = || -> Result<Option<u64>, ConfigError> {
            match long()? {
                i64::MAX => Ok(None),
                v if v >= 1 => Ok(Some(v as u64)),
                v if v == 0 && key == "flush.ms" => Ok(Some(0)),
                _ => Err(invalid("must be at least 1")),
            }
        };
        match key {
            "segment.bytes" => self.segment_bytes = at_least(14)?,
            "segment.ms" => self.segment_ms = at_least(1)? as i64,
            "retention.ms" => self.retention_ms = unlimited_or_positive()?,
            "retention.bytes" => self.retention_bytes = unlimited_or_positive()?.map(|v| v as u64),
            "flush.messages" => self.flush_messages = flush()?,
            "flush.ms" => self.flush_ms = flush()?,
            "index.interval.bytes" => self.index_interval_bytes = at_least(0)?,
            "segment.index.bytes" => self.segment_index_bytes = at_least(8)?,
            "max.message.bytes" => self.max_message_bytes = at_least(0)?,
            "message.timestamp.after.max.ms" => {
                self.message_timestamp_after_max_ms = at_least(0)? as i64
            }
            "message.timestamp.before.max.ms" => {
                self.message_timestamp_before_max_ms = at_least(0)? as i64
            }
            "delete.retention.ms" => self.delete_retention_ms = at_least(0)? as i64,
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = at_least(0)? as i64,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = at_least(1)? as i64,
            "min.cleanable.dirty.ratio" => {
                self.min_cleanable_dirty_ratio = value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=1.0).contains(v))
                    .ok_or_else(|| invalid("must be a number between 0 and 1"))?;
            }
            "message.timestamp.type" => {
                self.message_timestamp_type = match value.trim() {
                    "CreateTime" => MessageTimestampType::CreateTime,
                    "LogAppendTime" => MessageTimestampType::LogAppendTime,
                    _ => return Err(invalid("must be CreateTime or LogAppendTime")),
                }
            }
            "cleanup.policy" => {
                let mut delete = false;
                let mut compact = false;
                for part in value.split(',').map(str::trim) {
                    match part {
                        "delete" => delete = true,
                        "compact" => compact = true,
                        _ => return Err(invalid("must be a list of delete and/or compact")),
                    }
                }
                self.cleanup_policy = match (delete, compact) {
                    (true, true) => CleanupPolicy::CompactDelete,
                    (false, true) => CleanupPolicy::Compact,
                    _ => CleanupPolicy::Delete,
                };
            }
            _ => {
                return Err(ConfigError::UnknownKey {
                    key: key.to_string(),
                })
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip() {
        let pairs = LogConfig::defaults();
        assert_eq!(pairs.len(), LogConfig::SUPPORTED_KEYS.len());
        let cfg =
            LogConfig::from_topic_configs(pairs.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        assert_eq!(cfg, LogConfig::default());
    }

    #[test]
    fn parses_overrides() {
        let cfg = LogConfig::from_topic_configs([
            ("retention.ms", "-1"),
            ("retention.bytes", "1000"),
            ("flush.messages", "1"),
            ("message.timestamp.type", "LogAppendTime"),
            ("cleanup.policy", "compact,delete"),
            ("segment.bytes", "1024"),
        ])
        .unwrap();
        assert_eq!(cfg.retention_ms, None);
        assert_eq!(cfg.retention_bytes, Some(1000));
        assert_eq!(cfg.flush_messages, Some(1));
        assert_eq!(
            cfg.message_timestamp_type,
            MessageTimestampType::LogAppendTime
        );
        assert_eq!(cfg.cleanup_policy, CleanupPolicy::CompactDelete);
        assert_eq!(cfg.segment_bytes, 1024);
    }

    #[test]
    fn errors_name_key_and_value() {
        let err = LogConfig::from_topic_configs([("segment.bytes", "abc")]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("segment.bytes") && msg.contains("abc"),
            "{msg}"
        );
        let err = LogConfig::from_topic_configs([("retention.ms", "-5")]).unwrap_err();
        assert!(err.to_string().contains("retention.ms"));
        assert!(matches!(
            LogConfig::from_topic_configs([("compression.type", "zstd")]),
            Err(ConfigError::UnknownKey { .. })
        ));
    }
}
