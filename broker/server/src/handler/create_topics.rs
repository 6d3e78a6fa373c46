//! CreateTopics (key 19).

use std::collections::BTreeMap;
use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use ironlog_protocol::kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::{error_code, str_bytes};
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::replica_manager::{NewTopic, ReplicaError};
use ironlog_protocol::ResponseError;

const API: &str = "CreateTopics";
/// DescribeConfigs' DEFAULT_CONFIG and DYNAMIC_TOPIC_CONFIG sources.
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_TOPIC: i8 = 1;

pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatableTopicResult::default().with_name(topic.name.clone());
        if !access.may_create_topic(&name) {
            result.error_code =
                error_code(broker, API, Some(ResponseError::TopicAuthorizationFailed));
            result.error_message = Some(str_bytes(format!(
                "{} may not create topic {name} (CREATE on the cluster or the topic)",
                access.principal()
            )));
            if version >= 5 {
                result.num_partitions = -1;
                result.replication_factor = -1;
                result.configs = None;
            }
            topics.push(result);
            continue;
        }
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
                    broker.config.default_replication_factor
                } else {
                    topic.replication_factor
                },
                configs,
                assignments: None,
            })
        } else if topic.num_partitions != -1 || topic.replication_factor != -1 {
            Err(ReplicaError::InvalidPartitions(
                "give either assignments or num_partitions/replication_factor, not both".into(),
            ))
        } else {
            manual_assignment(&topic.assignments).map(|lists| NewTopic {
                name: name.clone(),
                partitions: lists.len() as i32,
                replication_factor: lists.first().map_or(0, |l| l.len() as i16),
                configs,
                assignments: Some(lists),
            })
        };
        let outcome = match new {
            Err(e) => Err(e),
            Ok(new) if request.validate_only => broker
                .replicas
                .validate_new_topic(&new)
                .map(|()| (uuid::Uuid::nil(), new)),
            Ok(new) => broker
                .replicas
                .create_topic(new.clone())
                .await
                .map(|meta| (meta.id, new)),
        };
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
        topics.push(result);
    }
    CreateTopicsResponse::default().with_topics(topics)
}

/// A manual replica assignment as replica lists in partition order: partitions must be
/// 0..n without gaps, all of one replication factor. Whether the brokers exist is checked
/// when the command is applied.
fn manual_assignment(
    assignments: &[ironlog_protocol::kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment],
) -> Result<Vec<Vec<i32>>, ReplicaError> {
    let mut sorted: Vec<_> = assignments.iter().collect();
    sorted.sort_unstable_by_key(|a| a.partition_index);
    if sorted
        .iter()
        .enumerate()
        .any(|(i, a)| a.partition_index != i as i32)
    {
        return Err(ReplicaError::InvalidPartitions(
            "assigned partitions must be 0..n without gaps".into(),
        ));
    }
    let lists: Vec<Vec<i32>> = sorted
        .iter()
        .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
        .collect();
    if lists
        .iter()
        .any(|l| l.len() != lists[0].len() || l.is_empty())
    {
        return Err(ReplicaError::InvalidReplicaAssignment(
            "every partition needs the same, non-zero number of replicas".into(),
        ));
    }
    Ok(lists)
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
