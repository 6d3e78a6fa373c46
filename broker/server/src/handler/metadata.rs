//! Metadata (key 3): brokers, the controller, topics and their partitions, from this
//! broker's metadata image (every broker answers the same once it has applied the same
//! changes). Asking for a missing topic creates it when auto-creation is on and the client
//! allows it; two clients doing so at once both get the one topic.

use std::sync::Arc;

use ironlog_metadata::{MetadataImage, NO_LEADER};
use ironlog_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use ironlog_protocol::kafka_protocol::messages::{MetadataRequest, MetadataResponse};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes, AUTHORIZED_OPERATIONS_OMITTED};
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::metadata::TopicMeta;
use crate::replica_manager::{NewTopic, ReplicaError};
use ironlog_metadata::acl::AclOperation;

const API: &str = "Metadata";

pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    listener: &str,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
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
        None => {
            let image = broker.replicas.metadata();
            // Topics the principal may not describe are left out, as if they didn't exist.
            image
                .topics
                .values()
                .filter(|t| access.topic(AclOperation::Describe, &t.name))
                .map(|t| topic_response(&image, t))
                .collect()
        }
        Some(names) => {
            let mut topics = Vec::with_capacity(names.len());
            for name in names {
                topics.push(requested_topic(broker, access, name, allow_auto_create).await);
            }
            topics
        }
    };

    // Brokers and the controller from the image as it is after any auto-creation.
    let image = broker.replicas.metadata();
    let brokers = image
        .live_brokers()
        .filter_map(|b| {
            // Brokers without the client's listener are left out, as in Kafka.
            let (host, port) = b.endpoint(listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(b.id.into())
                    .with_host(str_bytes(host))
                    .with_port(port)
                    .with_rack(b.rack.clone().map(str_bytes)),
            )
        })
        .collect();
    let mut response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_controller_id(broker.cluster.controller_id().unwrap_or(-1).into())
        .with_topics(topics);
    if version >= 2 {
        response.cluster_id = Some(str_bytes(image.cluster_id.clone()));
    }
    if (8..=10).contains(&version) {
        response.cluster_authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
    }
    response
}

async fn requested_topic(
    broker: &Arc<Broker>,
    access: &Access,
    name: String,
    allow_auto_create: bool,
) -> MetadataResponseTopic {
    let image = broker.replicas.metadata();
    let describable = access.topic(AclOperation::Describe, &name);
    if let Some(t) = image.topic(&name) {
        if describable {
            return topic_response(&image, t);
        }
    }
    let error = if image.topic(&name).is_some() {
        // Exists, but not for this principal: no id, no partitions.
        ResponseError::TopicAuthorizationFailed
    } else if allow_auto_create
        && broker.config.auto_create_topics
        && access.may_create_topic(&name)
    {
        let created = broker
            .replicas
            .create_topic(NewTopic {
                name: name.clone(),
                partitions: broker.config.default_partitions,
                replication_factor: broker.config.default_replication_factor,
                configs: Default::default(),
                assignments: None,
            })
            .await;
        match created {
            Ok(meta) => return topic_response(&broker.replicas.metadata(), &meta),
            // Another client (through this or another broker) created it first.
            Err(ReplicaError::TopicExists(_)) => {
                let image = broker.replicas.metadata();
                match image.topic(&name) {
                    Some(t) => return topic_response(&image, t),
                    None => ResponseError::LeaderNotAvailable,
                }
            }
            Err(e) => {
                tracing::info!(topic = %name, error = %e, "not auto-creating topic");
                e.error_code()
            }
        }
    } else if describable {
        ResponseError::UnknownTopicOrPartition
    } else {
        ResponseError::TopicAuthorizationFailed
    };
    MetadataResponseTopic::default()
        .with_error_code(error_code(broker, API, Some(error)))
        .with_name(Some(str_bytes(name).into()))
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

fn topic_response(image: &MetadataImage, topic: &TopicMeta) -> MetadataResponseTopic {
    let partitions = topic
        .assignments
        .iter()
        .enumerate()
        .map(|(p, state)| {
            let offline: Vec<_> = state
                .replicas
                .iter()
                .filter(|r| !image.is_live(**r))
                .map(|r| (*r).into())
                .collect();
            let error = if state.leader == NO_LEADER {
                ResponseError::LeaderNotAvailable.code()
            } else {
                0
            };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(p as i32)
                .with_leader_id(state.leader.into())
                .with_leader_epoch(state.leader_epoch)
                .with_replica_nodes(state.replicas.iter().map(|r| (*r).into()).collect())
                .with_isr_nodes(state.isr.iter().map(|r| (*r).into()).collect())
                .with_offline_replicas(offline)
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(str_bytes(topic.name.clone()).into()))
        .with_topic_id(topic.id)
        .with_is_internal(topic.name.starts_with("__"))
        .with_partitions(partitions)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}
