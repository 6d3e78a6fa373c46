//! CreateTopics (key 19).

use std::collections::BTreeMap;
use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use ironlog_protocol::kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::{error_code, str_bytes};
use crate::broker::Broker;
use crate::replica_manager::{NewTopic, ReplicaError};

const API: &str = "CreateTopics";
/// DescribeConfigs' DEFAULT_CONFIG and DYNAMIC_TOPIC_CONFIG sources.
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_TOPIC: i8 = 1;

pub fn handle(
    broker: &Arc<Broker>,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let node = broker.config.node_id;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let mut result = CreatableTopicResult::default().with_name(topic.name.clone());
            let configs: BTreeMap<String, String> = topic
                .configs
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| (c.name.to_string(), v.to_string()))
                })
                .collect();
            let new = if topic.assignments.is_empty() {
                Ok(NewTopic {
                    name: name.clone(),
                    partitions: if topic.num_partitions == -1 {
                        broker.config.default_partitions
                    } else {
                        topic.num_partitions
                    },
                    replication_factor: if topic.replication_factor == -1 {
                        1
                    } else {
                        topic.replication_factor
                    },
                    configs,
                })
            } else if topic.num_partitions != -1 || topic.replication_factor != -1 {
                Err(ReplicaError::InvalidPartitions(
                    "give either assignments or num_partitions/replication_factor, not both".into(),
                ))
            } else {
                manual_assignment(node, &topic.assignments).map(|(partitions, rf)| NewTopic {
                    name: name.clone(),
                    partitions,
                    replication_factor: rf,
                    configs,
                })
            };
            let outcome = new.and_then(|new| {
                if request.validate_only {
                    broker
                        .replicas
                        .validate_new_topic(&new)
                        .map(|()| (uuid::Uuid::nil(), new))
                } else {
                    broker
                        .replicas
                        .create_topic(new.clone())
                        .map(|meta| (meta.id, new))
                }
            });
            match outcome {
                Ok((id, new)) => {
                    if version >= 5 {
                        result.num_partitions = new.partitions;
                        result.replication_factor = new.replication_factor;
                        result.configs = Some(effective_configs(broker, &new.configs));
                    }
                    if version >= 7 {
                        result.topic_id = id;
                    }
                }
                Err(e) => {
                    result.error_code = error_code(broker, API, Some(e.error_code()));
                    result.error_message = Some(str_bytes(e.to_string()));
                    if version >= 5 {
                        result.num_partitions = -1;
                        result.replication_factor = -1;
                        result.configs = None;
                    }
                }
            }
            result
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

/// Checks a manual replica assignment: partitions 0..n, each on this broker alone.
fn manual_assignment(
    node: i32,
    assignments: &[ironlog_protocol::kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment],
) -> Result<(i32, i16), ReplicaError> {
    let mut indexes: Vec<i32> = assignments.iter().map(|a| a.partition_index).collect();
    indexes.sort_unstable();
    if indexes.iter().enumerate().any(|(i, p)| *p != i as i32) {
        return Err(ReplicaError::InvalidPartitions(
            "assigned partitions must be 0..n without gaps".into(),
        ));
    }
    for a in assignments {
        if a.broker_ids.iter().any(|b| b.0 != node) || a.broker_ids.is_empty() {
            return Err(ReplicaError::InvalidReplicationFactor(format!(
                "partition {} is assigned to brokers {:?}; only broker {node} exists",
                a.partition_index,
                a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>()
            )));
        }
    }
    let rf = assignments.first().map_or(1, |a| a.broker_ids.len() as i16);
    Ok((assignments.len() as i32, rf))
}

fn effective_configs(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    let mut all = broker.replicas.default_topic_configs();
    all.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    all.into_iter()
        .map(|(name, value)| {
            let source = if overrides.contains_key(&name) {
                SOURCE_TOPIC
            } else {
                SOURCE_DEFAULT
            };
            CreatableTopicConfigs::default()
                .with_name(str_bytes(name))
                .with_value(Some(str_bytes(value)))
                .with_config_source(source)
        })
        .collect()
}
