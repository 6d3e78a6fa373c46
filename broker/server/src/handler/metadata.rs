//! Metadata (key 3): brokers, the controller, topics and their partitions. Asking for a
//! missing topic creates it when auto-creation is on and the client allows it.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use ironlog_protocol::kafka_protocol::messages::{MetadataRequest, MetadataResponse};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes, AUTHORIZED_OPERATIONS_OMITTED};
use crate::broker::Broker;
use crate::metadata::TopicMeta;
use crate::replica_manager::{NewTopic, ReplicaError};

const API: &str = "Metadata";

pub fn handle(broker: &Arc<Broker>, request: MetadataRequest, version: i16) -> MetadataResponse {
    let node = broker.config.node_id;
    // v0: an empty list means all topics; v1+: null means all topics.
    let requested: Option<Vec<String>> = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .map(|t| match t.name {
                    Some(name) => name.0.to_string(),
                    None => broker
                        .replicas
                        .metadata()
                        .topic_by_id(t.topic_id)
                        .map(|m| m.name.clone())
                        .unwrap_or_default(),
                })
                .collect(),
        ),
    };
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;

    let topics = match requested {
        None => broker
            .replicas
            .metadata()
            .topics
            .values()
            .map(|t| topic_response(node, t, version))
            .collect(),
        Some(names) => names
            .into_iter()
            .map(|name| {
                if let Some(t) = broker.replicas.metadata().topic(&name) {
                    return topic_response(node, t, version);
                }
                let error = if allow_auto_create && broker.config.auto_create_topics {
                    match broker.replicas.create_topic(NewTopic {
                        name: name.clone(),
                        partitions: broker.config.default_partitions,
                        replication_factor: 1,
                        configs: Default::default(),
                    }) {
                        Ok(meta) => return topic_response(node, &meta, version),
                        Err(ReplicaError::TopicExists(_)) => {
                            match broker.replicas.metadata().topic(&name) {
                                Some(t) => return topic_response(node, t, version),
                                None => ResponseError::LeaderNotAvailable,
                            }
                        }
                        Err(e) => {
                            tracing::info!(topic = %name, error = %e, "not auto-creating topic");
                            e.error_code()
                        }
                    }
                } else {
                    ResponseError::UnknownTopicOrPartition
                };
                MetadataResponseTopic::default()
                    .with_error_code(error_code(broker, API, Some(error)))
                    .with_name(Some(str_bytes(name).into()))
                    .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
            })
            .collect(),
    };

    let mut response = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(node.into())
            .with_host(str_bytes(broker.config.advertised_host.clone()))
            .with_port(broker.config.advertised_port)
            .with_rack(None)])
        .with_controller_id(node.into())
        .with_topics(topics);
    if version >= 2 {
        response.cluster_id = Some(str_bytes(broker.replicas.metadata().cluster_id.clone()));
    }
    if (8..=10).contains(&version) {
        response.cluster_authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
    }
    response
}

fn topic_response(node: i32, topic: &TopicMeta, _version: i16) -> MetadataResponseTopic {
    let partitions = (0..topic.partitions)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(node.into())
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node.into()])
                .with_isr_nodes(vec![node.into()])
                .with_offline_replicas(vec![])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(str_bytes(topic.name.clone()).into()))
        .with_topic_id(topic.id)
        .with_is_internal(topic.name.starts_with("__"))
        .with_partitions(partitions)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}
