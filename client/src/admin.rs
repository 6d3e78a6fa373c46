//! Typed admin operations: topics, partitions, configs, cluster, reassignments, records.

use std::collections::BTreeMap;

use kafka_protocol::messages::{
    alter_configs_request,
    alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic},
    create_partitions_request::CreatePartitionsTopic,
    create_topics_request::{CreatableTopic, CreatableTopicConfig},
    delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic},
    delete_topics_request::DeleteTopicState,
    describe_configs_request::DescribeConfigsResource,
    incremental_alter_configs_request, AlterConfigsRequest, AlterPartitionReassignmentsRequest,
    BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteRecordsRequest,
    DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::{BrokerInfo, Client, ClusterMetadata, Target};
use crate::error::{check, ClientError};

/// Config resource type "topic" in DescribeConfigs / AlterConfigs.
const RESOURCE_TOPIC: i8 = 2;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// `-1` asks the broker for its default (`num.partitions`).
    pub num_partitions: i32,
    /// `-1` asks the broker for its default (`default.replication.factor`).
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

/// Where a config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopicConfig,
    DynamicBrokerConfig,
    DynamicDefaultBrokerConfig,
    StaticBrokerConfig,
    DefaultConfig,
    DynamicBrokerLoggerConfig,
    ClientMetricsConfig,
    GroupConfig,
    Unknown,
}

impl ConfigSource {
    fn from_wire(source: i8) -> ConfigSource {
        match source {
            1 => ConfigSource::DynamicTopicConfig,
            2 => ConfigSource::DynamicBrokerConfig,
            3 => ConfigSource::DynamicDefaultBrokerConfig,
            4 => ConfigSource::StaticBrokerConfig,
            5 => ConfigSource::DefaultConfig,
            6 => ConfigSource::DynamicBrokerLoggerConfig,
            7 => ConfigSource::ClientMetricsConfig,
            8 => ConfigSource::GroupConfig,
            _ => ConfigSource::Unknown,
        }
    }
}

/// One config of a topic as described by the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    /// `None` for sensitive values and for configs without a value.
    pub value: Option<String>,
    pub read_only: bool,
    pub source: ConfigSource,
    /// True when the value is the built-in default (not set on the topic or broker).
    pub is_default: bool,
    pub sensitive: bool,
}

/// The answer to DescribeCluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    pub cluster_id: String,
    pub controller_id: Option<i32>,
    /// Unfenced brokers, plus fenced ones when the broker speaks DescribeCluster v2.
    pub brokers: Vec<BrokerInfo>,
    /// Ids of the listed brokers the cluster reports fenced (DescribeCluster v2+ only).
    pub fenced: Vec<i32>,
}

/// An ongoing partition reassignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub removing_replicas: Vec<i32>,
}

/// The outcome of one item (topic or partition) of a batch admin request.
pub type ItemResult<K, T = ()> = Vec<(K, Result<T, ClientError>)>;

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn opt_string(s: Option<StrBytes>) -> Option<String> {
    s.map(|s| s.to_string())
}

impl Client {
    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.config().request_timeout.as_millis()).unwrap_or(i32::MAX)
    }

    /// Cluster metadata for `topics`, or for all topics when `None`. Topics that do not exist
    /// are listed with an UNKNOWN_TOPIC_OR_PARTITION `error`.
    pub async fn metadata(
        &self,
        topics: Option<&[String]>,
    ) -> Result<ClusterMetadata, ClientError> {
        self.refresh_metadata(topics).await
    }

    /// Creates topics. The outer error is for the request as a whole; each topic has its own
    /// result, e.g. `ClientError::Kafka { name: "TOPIC_ALREADY_EXISTS", .. }`.
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<ItemResult<String>, ClientError> {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(validate_only)
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(topic_name(&t.name))
                            .with_num_partitions(t.num_partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(str_bytes(k))
                                            .with_value(Some(str_bytes(v)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = self
            .with_retries(None, || self.send(Target::Controller, &request))
            .await?;
        Ok(response
            .topics
            .into_iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let result = check(t.error_code, t.error_message.as_deref(), || {
                    format!("create topic {name}")
                });
                (name, result)
            })
            .collect())
    }

    /// Creates one topic; its per-topic error becomes the error.
    pub async fn create_topic(
        &self,
        topic: &NewTopic,
        validate_only: bool,
    ) -> Result<(), ClientError> {
        single(
            self.create_topics(std::slice::from_ref(topic), validate_only)
                .await?,
            &topic.name,
        )
    }

    /// Deletes topics by name.
    pub async fn delete_topics(
        &self,
        topics: &[String],
    ) -> Result<ItemResult<String>, ClientError> {
        // Both fields are set; the encoder writes the one the negotiated version has.
        let request = DeleteTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topic_names(topics.iter().map(|t| topic_name(t)).collect())
            .with_topics(
                topics
                    .iter()
                    .map(|t| DeleteTopicState::default().with_name(Some(topic_name(t))))
                    .collect(),
            );
        let response = self
            .with_retries(None, || self.send(Target::Controller, &request))
            .await?;
        for t in topics {
            self.invalidate_topic(t);
        }
        Ok(response
            .responses
            .into_iter()
            .map(|t| {
                let name = t.name.map(|n| n.0.to_string()).unwrap_or_default();
                let result = check(t.error_code, t.error_message.as_deref(), || {
                    format!("delete topic {name}")
                });
                (name, result)
            })
            .collect())
    }

    /// Deletes one topic.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), ClientError> {
        single(self.delete_topics(&[topic.to_owned()]).await?, topic)
    }

    /// Grows `topic` to `new_total` partitions (Kafka cannot shrink).
    pub async fn create_partitions(&self, topic: &str, new_total: i32) -> Result<(), ClientError> {
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(topic))
                .with_count(new_total)
                // Null, not the crate's default empty list: the broker places the new
                // partitions. Kafka's controller refuses an empty list as "0 assignments
                // for N new partitions".
                .with_assignments(None)]);
        let response = self
            .with_retries(Some(topic), || self.send(Target::Controller, &request))
            .await?;
        self.invalidate_topic(topic);
        let results = response
            .results
            .into_iter()
            .map(|r| {
                let name = r.name.0.to_string();
                let result = check(r.error_code, r.error_message.as_deref(), || {
                    format!("create partitions for topic {name} (new total {new_total})")
                });
                (name, result)
            })
            .collect();
        single(results, topic)
    }

    /// All configs of `topic`, sorted by name.
    pub async fn describe_configs(&self, topic: &str) -> Result<Vec<ConfigEntry>, ClientError> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(str_bytes(topic))
                .with_configuration_keys(None),
        ]);
        let response = self
            .with_retries(Some(topic), || self.send(Target::Any, &request))
            .await?;
        let Some(result) = response.results.into_iter().next() else {
            return Err(ClientError::protocol(
                format!("DescribeConfigs for topic {topic}"),
                "response has no result",
            ));
        };
        check(result.error_code, result.error_message.as_deref(), || {
            format!("describe configs of topic {topic}")
        })?;
        let mut entries: Vec<ConfigEntry> = result
            .configs
            .into_iter()
            .map(|c| {
                let source = ConfigSource::from_wire(c.config_source);
                ConfigEntry {
                    name: c.name.to_string(),
                    value: opt_string(c.value),
                    read_only: c.read_only,
                    source,
                    is_default: source == ConfigSource::DefaultConfig,
                    sensitive: c.is_sensitive,
                }
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Sets and deletes topic config overrides. Uses IncrementalAlterConfigs; on brokers
    /// without it, falls back to AlterConfigs with the merged full set of overrides (which
    /// replaces all overrides, so a concurrent change by someone else can be lost).
    pub async fn incremental_alter_configs(
        &self,
        topic: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), ClientError> {
        match self
            .version_for::<IncrementalAlterConfigsRequest>(Target::Any)
            .await
        {
            Ok(_) => {}
            Err(ClientError::UnsupportedApi { .. }) => {
                return self.alter_configs_full(topic, set, delete).await;
            }
            Err(e) => return Err(e),
        }
        let mut configs = Vec::new();
        for (name, value) in set {
            configs.push(
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(str_bytes(name))
                    .with_config_operation(OP_SET)
                    .with_value(Some(str_bytes(value))),
            );
        }
        for name in delete {
            configs.push(
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(str_bytes(name))
                    .with_config_operation(OP_DELETE)
                    .with_value(None),
            );
        }
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(str_bytes(topic))
                .with_configs(configs),
        ]);
        let response = self
            .with_retries(Some(topic), || self.send(Target::Any, &request))
            .await?;
        for r in response.responses {
            check(r.error_code, r.error_message.as_deref(), || {
                format!("alter configs of topic {topic}")
            })?;
        }
        Ok(())
    }

    async fn alter_configs_full(
        &self,
        topic: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), ClientError> {
        let current = self.describe_configs(topic).await?;
        let merged = merge_overrides(&current, set, delete);
        let request = AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(str_bytes(topic))
                .with_configs(
                    merged
                        .iter()
                        .map(|(k, v)| {
                            alter_configs_request::AlterableConfig::default()
                                .with_name(str_bytes(k))
                                .with_value(Some(str_bytes(v)))
                        })
                        .collect(),
                ),
        ]);
        let response = self
            .with_retries(Some(topic), || self.send(Target::Any, &request))
            .await?;
        for r in response.responses {
            check(r.error_code, r.error_message.as_deref(), || {
                format!("alter configs of topic {topic}")
            })?;
        }
        Ok(())
    }

    /// Cluster id, controller and brokers via DescribeCluster.
    ///
    /// # Errors
    /// [`ClientError::UnsupportedApi`] on brokers older than Kafka 2.8.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, ClientError> {
        // v2 can list fenced brokers too (KIP-1073); older versions list unfenced ones only.
        let version = self
            .with_retries(None, || {
                self.version_for::<DescribeClusterRequest>(Target::Any)
            })
            .await?;
        let request = DescribeClusterRequest::default().with_include_fenced_brokers(version >= 2);
        let response = self
            .with_retries(None, || self.send(Target::Any, &request))
            .await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            || "describe cluster".to_owned(),
        )?;
        let mut fenced: Vec<i32> = response
            .brokers
            .iter()
            .filter(|b| b.is_fenced)
            .map(|b| b.broker_id.0)
            .collect();
        fenced.sort_unstable();
        let mut brokers: Vec<BrokerInfo> = response
            .brokers
            .into_iter()
            .map(|b| BrokerInfo {
                id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: opt_string(b.rack),
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        Ok(ClusterDescription {
            cluster_id: response.cluster_id.to_string(),
            controller_id: (response.controller_id.0 >= 0).then_some(response.controller_id.0),
            brokers,
            fenced,
        })
    }

    /// All ongoing partition reassignments.
    pub async fn list_partition_reassignments(
        &self,
    ) -> Result<Vec<PartitionReassignment>, ClientError> {
        let request = ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(None);
        let response = self
            .with_retries(None, || self.send(Target::Controller, &request))
            .await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            || "list partition reassignments".to_owned(),
        )?;
        let ids = |v: Vec<BrokerId>| v.into_iter().map(|b| b.0).collect::<Vec<_>>();
        let mut out = Vec::new();
        for t in response.topics {
            for p in t.partitions {
                out.push(PartitionReassignment {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    replicas: ids(p.replicas),
                    adding_replicas: ids(p.adding_replicas),
                    removing_replicas: ids(p.removing_replicas),
                });
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(out)
    }

    /// Starts (`Some(replicas)`) or cancels (`None`) reassignments of partitions of `topic`.
    pub async fn alter_partition_reassignments(
        &self,
        topic: &str,
        reassignments: &BTreeMap<i32, Option<Vec<i32>>>,
    ) -> Result<ItemResult<i32>, ClientError> {
        let request = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(vec![ReassignableTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    reassignments
                        .iter()
                        .map(|(p, replicas)| {
                            ReassignablePartition::default()
                                .with_partition_index(*p)
                                .with_replicas(
                                    replicas
                                        .as_ref()
                                        .map(|r| r.iter().map(|b| BrokerId(*b)).collect()),
                                )
                        })
                        .collect(),
                )]);
        let response = self
            .with_retries(Some(topic), || self.send(Target::Controller, &request))
            .await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            || format!("alter partition reassignments of topic {topic}"),
        )?;
        Ok(response
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .map(|p| {
                let partition = p.partition_index;
                let result = check(p.error_code, p.error_message.as_deref(), || {
                    format!("reassign partition {topic}-{partition}")
                });
                (partition, result)
            })
            .collect())
    }

    /// Deletes records of `topic` below the given offset per partition (`-1` = high
    /// watermark). Returns the new low watermark of each partition.
    pub async fn delete_records(
        &self,
        topic: &str,
        before: &BTreeMap<i32, i64>,
    ) -> Result<ItemResult<i32, i64>, ClientError> {
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        let mut out = Vec::new();
        for (&partition, &offset) in before {
            match self.leader_for(topic, partition).await {
                Ok(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .push((partition, offset)),
                Err(e) => out.push((partition, Err(e))),
            }
        }
        for (leader, partitions) in by_leader {
            let request = DeleteRecordsRequest::default()
                .with_timeout_ms(self.timeout_ms())
                .with_topics(vec![DeleteRecordsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|(p, o)| {
                                DeleteRecordsPartition::default()
                                    .with_partition_index(*p)
                                    .with_offset(*o)
                            })
                            .collect(),
                    )]);
            let response = self.send(Target::Node(leader), &request).await?;
            for p in response.topics.into_iter().flat_map(|t| t.partitions) {
                let partition = p.partition_index;
                let result = check(p.error_code, None, || {
                    format!("delete records of {topic}-{partition}")
                })
                .map(|()| p.low_watermark);
                out.push((partition, result));
            }
        }
        out.sort_by_key(|(p, _)| *p);
        Ok(out)
    }
}

/// The single item of a batch result, or an error if the broker answered for another name.
fn single(results: ItemResult<String>, name: &str) -> Result<(), ClientError> {
    match results.into_iter().find(|(n, _)| n == name) {
        Some((_, result)) => result,
        None => Err(ClientError::protocol(
            format!("response for {name}"),
            "the broker did not answer for this item",
        )),
    }
}

/// The full set of topic overrides after applying `set` and `delete` to `current`.
pub(crate) fn merge_overrides(
    current: &[ConfigEntry],
    set: &BTreeMap<String, String>,
    delete: &[String],
) -> BTreeMap<String, String> {
    let mut merged: BTreeMap<String, String> = current
        .iter()
        .filter(|c| c.source == ConfigSource::DynamicTopicConfig)
        .filter_map(|c| c.value.clone().map(|v| (c.name.clone(), v)))
        .collect();
    for name in delete {
        merged.remove(name);
    }
    merged.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str, source: ConfigSource) -> ConfigEntry {
        ConfigEntry {
            name: name.into(),
            value: Some(value.into()),
            read_only: false,
            source,
            is_default: source == ConfigSource::DefaultConfig,
            sensitive: false,
        }
    }

    #[test]
    fn merge_keeps_only_topic_overrides_and_applies_changes() {
        let current = vec![
            entry("retention.ms", "1000", ConfigSource::DynamicTopicConfig),
            entry(
                "cleanup.policy",
                "compact",
                ConfigSource::DynamicTopicConfig,
            ),
            entry("segment.bytes", "1073741824", ConfigSource::DefaultConfig),
            entry("min.insync.replicas", "2", ConfigSource::StaticBrokerConfig),
        ];
        let set = BTreeMap::from([("retention.ms".to_string(), "5000".to_string())]);
        let merged = merge_overrides(&current, &set, &["cleanup.policy".to_string()]);
        assert_eq!(
            merged,
            BTreeMap::from([("retention.ms".to_string(), "5000".to_string())])
        );
    }

    #[test]
    fn config_sources_from_wire() {
        assert_eq!(ConfigSource::from_wire(1), ConfigSource::DynamicTopicConfig);
        assert_eq!(ConfigSource::from_wire(5), ConfigSource::DefaultConfig);
        assert_eq!(ConfigSource::from_wire(-1), ConfigSource::Unknown);
    }

    #[test]
    fn single_picks_the_named_item() {
        let results: ItemResult<String> = vec![
            ("a".into(), Ok(())),
            (
                "b".into(),
                Err(ClientError::kafka(36, None, "create topic b")),
            ),
        ];
        let err = single(results, "b").unwrap_err();
        assert_eq!(err.code(), Some(36));
        assert!(single(vec![], "a").is_err());
    }
}
