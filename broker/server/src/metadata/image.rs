//! The metadata image and the records that change it. Pure: no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One topic as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub replication_factor: i16,
    /// Topic-level config overrides (only keys set explicitly).
    pub configs: BTreeMap<String, String>,
}

/// A change to the metadata image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    TopicCreated(TopicMeta),
    PartitionsIncreased {
        topic: String,
        partitions: i32,
    },
    TopicConfigsReplaced {
        topic: String,
        configs: BTreeMap<String, String>,
    },
    TopicDeleted {
        topic: String,
    },
    /// Producer ids `[first, first + count)` are taken.
    ProducerIdsAllocated {
        first: i64,
        count: i64,
    },
}

/// The whole cluster metadata at one point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub cluster_id: String,
    pub topics: BTreeMap<String, TopicMeta>,
    /// The next producer id that has not been handed out.
    pub next_producer_id: i64,
}

impl MetadataImage {
    pub fn new(cluster_id: String) -> Self {
        MetadataImage {
            cluster_id,
            topics: BTreeMap::new(),
            next_producer_id: 0,
        }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<&TopicMeta> {
        self.topics.values().find(|t| t.id == id)
    }

    /// Applies a record. Records are validated before they are proposed, so applying one
    /// that doesn't fit (e.g. deleting a missing topic) is a no-op rather than an error:
    /// replaying a log must never fail halfway.
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::TopicCreated(topic) => {
                self.topics.insert(topic.name.clone(), topic.clone());
            }
            MetadataRecord::PartitionsIncreased { topic, partitions } => {
                if let Some(t) = self.topics.get_mut(topic) {
                    t.partitions = t.partitions.max(*partitions);
                }
            }
            MetadataRecord::TopicConfigsReplaced { topic, configs } => {
                if let Some(t) = self.topics.get_mut(topic) {
                    t.configs = configs.clone();
                }
            }
            MetadataRecord::TopicDeleted { topic } => {
                self.topics.remove(topic);
            }
            MetadataRecord::ProducerIdsAllocated { first, count } => {
                self.next_producer_id = self.next_producer_id.max(first + count);
            }
        }
    }
}

/// Kafka's topic name rule: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name {name:?} is not allowed"));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters long, the limit is 249",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("topic name {name:?} contains {c:?}; legal characters are ASCII alphanumerics, '.', '_' and '-'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, partitions: i32) -> TopicMeta {
        TopicMeta {
            name: name.into(),
            id: Uuid::new_v4(),
            partitions,
            replication_factor: 1,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn records_apply_in_order() {
        let mut image = MetadataImage::new("c".into());
        let t = topic("a", 1);
        image.apply(&MetadataRecord::TopicCreated(t.clone()));
        image.apply(&MetadataRecord::PartitionsIncreased {
            topic: "a".into(),
            partitions: 3,
        });
        image.apply(&MetadataRecord::PartitionsIncreased {
            topic: "a".into(),
            partitions: 2,
        });
        assert_eq!(
            image.topic("a").unwrap().partitions,
            3,
            "partition counts never shrink"
        );
        assert_eq!(image.topic_by_id(t.id).unwrap().name, "a");
        image.apply(&MetadataRecord::ProducerIdsAllocated {
            first: 0,
            count: 1000,
        });
        assert_eq!(image.next_producer_id, 1000);
        image.apply(&MetadataRecord::TopicDeleted { topic: "a".into() });
        assert!(image.topic("a").is_none());
        image.apply(&MetadataRecord::TopicDeleted { topic: "a".into() });
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
