//! FindCoordinator (key 10): which broker coordinates a group: the leader of the group's
//! `__consumer_offsets` partition. The topic is created on the first group request, as
//! Kafka does. v0–v3 ask for one `key`; v4+ batch several `coordinator_keys` and get one
//! `Coordinator` entry per key. Transactional ids are answered like groups (transactions
//! are refused later, at InitProducerId).

use std::collections::BTreeMap;
use std::sync::Arc;

use ironlog_metadata::{MetadataImage, NO_LEADER};
use ironlog_protocol::kafka_protocol::messages::find_coordinator_response::Coordinator;
use ironlog_protocol::kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::group::coordinator::DEFAULT_OFFSETS_PARTITIONS;
use crate::group::offsets::{self, OFFSETS_TOPIC};
use crate::replica_manager::{NewTopic, ReplicaError};
use ironlog_metadata::acl::AclOperation;

const API: &str = "FindCoordinator";
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// `(node, host, port)` or the error to answer.
type Found = Result<(i32, String, i32), ResponseError>;

pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    listener: &str,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let keys: Vec<_> = if version >= 4 {
        request.coordinator_keys.clone()
    } else {
        vec![request.key.clone()]
    };
    let image = match request.key_type {
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => ensure_offsets_topic(broker).await,
        _ => Err(ResponseError::InvalidRequest),
    };
    let found: Vec<Found> = keys
        .iter()
        .map(|key| {
            if request.key_type == KEY_TYPE_GROUP && !access.group(AclOperation::Describe, key) {
                return Err(ResponseError::GroupAuthorizationFailed);
            }
            image
                .as_ref()
                .map_err(|e| *e)
                .and_then(|i| coordinator(i, key, listener))
        })
        .collect();
    if version >= 4 {
        let coordinators = keys
            .into_iter()
            .zip(found)
            .map(|(key, found)| {
                let (node, host, port, code) = fields(broker, found);
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(node.into())
                    .with_host(str_bytes(host))
                    .with_port(port)
                    .with_error_code(code)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let found = found
        .into_iter()
        .next()
        .unwrap_or(Err(ResponseError::InvalidRequest));
    let (node, host, port, code) = fields(broker, found);
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_node_id(node.into())
        .with_host(str_bytes(host))
        .with_port(port)
}

fn fields(broker: &Broker, found: Found) -> (i32, String, i32, i16) {
    match found {
        Ok((node, host, port)) => (node, host, port, 0),
        Err(e) => (-1, String::new(), -1, error_code(broker, API, Some(e))),
    }
}

/// The leader of `key`'s `__consumer_offsets` partition, at its address on `listener`.
fn coordinator(image: &MetadataImage, key: &str, listener: &str) -> Found {
    let topic = image
        .topic(OFFSETS_TOPIC)
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    let partition = offsets::partition_for(key, topic.partitions);
    let leader = topic.partition(partition).map_or(NO_LEADER, |p| p.leader);
    match image.brokers.get(&leader) {
        Some(b) if !b.fenced => match b.endpoint(listener) {
            Some((host, port)) => Ok((b.id, host.to_string(), port)),
            None => Err(ResponseError::CoordinatorNotAvailable),
        },
        _ => Err(ResponseError::CoordinatorNotAvailable),
    }
}

/// The image, with `__consumer_offsets` in it: created (compacted, like Kafka's) if it is
/// missing, with the replication factor `--offsets-topic-replication-factor` capped by the
/// live brokers.
async fn ensure_offsets_topic(broker: &Broker) -> Result<Arc<MetadataImage>, ResponseError> {
    let image = broker.replicas.metadata();
    if image.topic(OFFSETS_TOPIC).is_some() {
        return Ok(image);
    }
    let live = image.live_brokers().count().max(1);
    let replication_factor = broker
        .config
        .cluster
        .offsets_topic_replication_factor
        .min(live as i16);
    let created = broker
        .replicas
        .create_topic(NewTopic {
            name: OFFSETS_TOPIC.into(),
            partitions: DEFAULT_OFFSETS_PARTITIONS,
            replication_factor,
            configs: BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("segment.bytes".to_string(), "104857600".to_string()),
            ]),
            assignments: None,
        })
        .await;
    match created {
        Ok(_) | Err(ReplicaError::TopicExists(_)) => {
            let image = broker.replicas.metadata();
            // Coordinate the groups of partitions led here right away, rather than when
            // the metadata follower gets to it.
            broker.groups.follow_metadata(
                &broker.replicas,
                &image,
                crate::replica_manager::now_ms(),
            );
            Ok(image)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot create {OFFSETS_TOPIC}");
            Err(ResponseError::CoordinatorNotAvailable)
        }
    }
}
