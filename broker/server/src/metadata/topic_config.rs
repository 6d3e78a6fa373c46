//! Topic configs: which keys a topic accepts, their defaults, and how they become a
//! [`LogConfig`].
//!
//! Kafka rejects unknown topic config names, and so do we. Keys that the log layer acts on
//! are validated by [`LogConfig`]; the others are stored and reported by DescribeConfigs,
//! and validated here for type and range.

use std::collections::BTreeMap;

use ironlog_storage::LogConfig;

/// Topic configs stored and described, but acted on outside the log (or not yet at all).
const OTHER_KEYS: &[(&str, &str)] = &[
    ("compression.type", "producer"),
    ("file.delete.delay.ms", "60000"),
    ("min.insync.replicas", "1"),
    ("preallocate", "false"),
    ("unclean.leader.election.enable", "false"),
];

/// A topic config the broker won't accept. Maps to Kafka's INVALID_CONFIG.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopicConfigError {
    #[error("unknown topic config name {0:?}")]
    UnknownKey(String),
    #[error("invalid value {value:?} for topic config {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
}

/// Whether `key` is a topic config name this broker knows.
pub fn is_known(key: &str) -> bool {
    LogConfig::is_supported_key(key) || OTHER_KEYS.iter().any(|(k, _)| *k == key)
}

/// Every known key with its default value, sorted by key.
pub fn defaults() -> BTreeMap<String, String> {
    let mut all: BTreeMap<String, String> = LogConfig::defaults()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    all.extend(
        OTHER_KEYS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    all
}

/// Checks every pair; returns the first problem.
pub fn validate(pairs: &[(String, String)]) -> Result<(), TopicConfigError> {
    for (key, value) in pairs {
        if !is_known(key) {
            return Err(TopicConfigError::UnknownKey(key.clone()));
        }
        let invalid = |reason: &str| TopicConfigError::InvalidValue {
            key: key.clone(),
            value: value.clone(),
            reason: reason.to_string(),
        };
        match key.as_str() {
            "min.insync.replicas" => {
                value
                    .parse::<i32>()
                    .ok()
                    .filter(|v| *v >= 1)
                    .ok_or_else(|| invalid("must be an integer >= 1"))?;
            }
            "compression.type" => {
                if !["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]
                    .contains(&value.as_str())
                {
                    return Err(invalid(
                        "must be one of producer, uncompressed, gzip, snappy, lz4, zstd",
                    ));
                }
            }
            "preallocate" | "unclean.leader.election.enable" => {
                value
                    .parse::<bool>()
                    .map_err(|_| invalid("must be true or false"))?;
            }
            k if LogConfig::is_supported_key(k) => {}
            _ => {
                value
                    .parse::<i64>()
                    .ok()
                    .filter(|v| *v >= 0)
                    .ok_or_else(|| invalid("must be a non-negative integer"))?;
            }
        }
    }
    log_config(&LogConfig::default(), pairs)?;
    Ok(())
}

/// The log config of a topic: `base` (broker defaults) with the topic's log-layer overrides.
pub fn log_config(
    base: &LogConfig,
    pairs: &[(String, String)],
) -> Result<LogConfig, TopicConfigError> {
    base.clone()
        .with_overrides(
            pairs
                .iter()
                .filter(|(k, _)| LogConfig::is_supported_key(k))
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|e| match e {
            ironlog_storage::config::ConfigError::InvalidValue { key, value, reason } => {
                TopicConfigError::InvalidValue { key, value, reason }
            }
            ironlog_storage::config::ConfigError::UnknownKey { key } => {
                TopicConfigError::UnknownKey(key)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn known_keys_validate_and_unknown_are_refused() {
        assert_eq!(
            validate(&pairs(&[
                ("retention.ms", "1000"),
                ("min.insync.replicas", "2")
            ])),
            Ok(())
        );
        assert_eq!(
            validate(&pairs(&[("no.such", "1")])),
            Err(TopicConfigError::UnknownKey("no.such".into()))
        );
        assert!(matches!(
            validate(&pairs(&[("segment.bytes", "abc")])),
            Err(TopicConfigError::InvalidValue { key, .. }) if key == "segment.bytes"
        ));
        assert!(validate(&pairs(&[("min.insync.replicas", "0")])).is_err());
    }

    #[test]
    fn log_config_takes_only_log_keys() {
        let c = log_config(
            &LogConfig::default(),
            &pairs(&[("flush.messages", "1"), ("min.insync.replicas", "1")]),
        )
        .unwrap();
        assert_eq!(c.flush_messages, Some(1));
        assert!(defaults().contains_key("min.insync.replicas"));
        assert_eq!(defaults()["retention.ms"], "604800000");
    }
}
