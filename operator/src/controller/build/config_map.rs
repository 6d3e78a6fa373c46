use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::{owned_meta, Names};
use crate::crd::KafkaCluster;

/// File in the ConfigMap holding the full broker configuration as Java properties.
pub const PROPERTIES_FILE: &str = "server.properties";

/// Kafka config keys the broker accepts today as flags, and the env var carrying each.
/// Every other key lands only in `server.properties` (mounted at /etc/ironlog) until the broker
/// learns to read a config file.
const ENV_KEYS: &[(&str, &str)] = &[
    ("auto.create.topics.enable", "IRONLOG_AUTO_CREATE_TOPICS"),
    ("num.partitions", "IRONLOG_DEFAULT_PARTITIONS"),
    ("log.level", "IRONLOG_LOG_LEVEL"),
];

/// The broker configuration split into what reaches the process as env and the full file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// `IRONLOG_*` env vars derived from `spec.config`, sorted by name.
    pub env: BTreeMap<String, String>,
    /// `server.properties` content.
    pub properties: String,
}

impl BrokerConfig {
    pub fn from_spec(config: &BTreeMap<String, String>) -> Self {
        let env = ENV_KEYS
            .iter()
            .filter_map(|(key, var)| config.get(*key).map(|v| (var.to_string(), v.clone())))
            .collect();
        let properties = config.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        Self { env, properties }
    }
}

/// The broker ConfigMap (`NAME-config`), holding `server.properties`.
pub fn build_config_map(kc: &KafkaCluster, config: &BrokerConfig) -> ConfigMap {
    ConfigMap {
        metadata: owned_meta(kc, Names::of(kc).config_map()),
        data: Some(BTreeMap::from([(
            PROPERTIES_FILE.to_string(),
            config.properties.clone(),
        )])),
        ..ConfigMap::default()
    }
}

/// Stable hash of the broker configuration (FNV-1a, hex). Stamped on the pod template so a config
/// change produces a new StatefulSet revision, which the operator then rolls one broker at a time.
pub fn config_hash(config: &BrokerConfig) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let env = config
        .env
        .iter()
        .flat_map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes(), b"\n"]);
    for chunk in env.chain([config.properties.as_bytes()]) {
        for b in chunk {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::cluster;

    fn spec_config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn known_keys_become_env_and_everything_goes_to_the_file() {
        let c = BrokerConfig::from_spec(&spec_config(&[
            ("num.partitions", "6"),
            ("retention.ms", "1000"),
            ("auto.create.topics.enable", "false"),
        ]));
        assert_eq!(
            c.env,
            spec_config(&[
                ("IRONLOG_AUTO_CREATE_TOPICS", "false"),
                ("IRONLOG_DEFAULT_PARTITIONS", "6")
            ])
        );
        assert_eq!(
            c.properties,
            "auto.create.topics.enable=false\nnum.partitions=6\nretention.ms=1000\n"
        );
    }

    #[test]
    fn config_map_carries_properties_and_owner() {
        let kc = cluster(3);
        let c = BrokerConfig::from_spec(&spec_config(&[("retention.ms", "5")]));
        let cm = build_config_map(&kc, &c);
        assert_eq!(cm.metadata.name.as_deref(), Some("events-config"));
        assert_eq!(cm.data.unwrap()[PROPERTIES_FILE], "retention.ms=5\n");
        assert_eq!(cm.metadata.owner_references.unwrap()[0].name, "events");
    }

    #[test]
    fn hash_is_stable_and_changes_with_config() {
        let a = BrokerConfig::from_spec(&spec_config(&[("num.partitions", "1")]));
        let b = BrokerConfig::from_spec(&spec_config(&[("num.partitions", "2")]));
        assert_eq!(config_hash(&a), config_hash(&a.clone()));
        assert_ne!(config_hash(&a), config_hash(&b));
        assert_eq!(
            config_hash(&BrokerConfig::from_spec(&BTreeMap::new())),
            "cbf29ce484222325"
        );
    }
}
