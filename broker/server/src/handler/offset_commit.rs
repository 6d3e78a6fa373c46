//! OffsetCommit (key 8): store consumers' positions in `__consumer_offsets`. The response
//! is sent once the records are on every in-sync replica of the group's partition (Kafka's
//! acks=all for commits), for at most `OFFSET_COMMIT_TIMEOUT`; otherwise the commit is
//! answered COORDINATOR_NOT_AVAILABLE (ISR too small, timed out) or NOT_COORDINATOR
//! (leadership moved), which clients retry. Generation -1 with an empty member id is a
//! standalone (or admin) commit, allowed while the group has no members.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use ironlog_protocol::kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use ironlog_protocol::ResponseError;

use super::error_code;
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::group::coordinator::CommitError;
use crate::group::metadata::{CommitRequest, CommittedOffset};
use crate::replica_manager::now_ms;
use ironlog_metadata::acl::AclOperation;

const API: &str = "OffsetCommit";
/// Kafka's offsets.commit.timeout.ms.
const OFFSET_COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: OffsetCommitRequest,
    _version: i16,
) -> OffsetCommitResponse {
    let now = now_ms();
    let group_id = request.group_id.0.to_string();
    // (topic, partition) → error, in request order.
    let mut outcome: Vec<((String, i32), Option<ResponseError>)> = Vec::new();
    let mut to_commit = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let readable = access.topic(AclOperation::Read, &name);
        for p in &topic.partitions {
            let tp = (name.clone(), p.partition_index);
            if !readable {
                outcome.push((tp, Some(ResponseError::TopicAuthorizationFailed)));
                continue;
            }
            if !broker.replicas.partition_exists(&name, p.partition_index) {
                outcome.push((tp, Some(ResponseError::UnknownTopicOrPartition)));
                continue;
            }
            outcome.push((tp.clone(), None));
            to_commit.push((
                tp,
                CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    commit_timestamp_ms: now,
                },
            ));
        }
    }
    let identity = CommitRequest {
        member_id: &request.member_id,
        group_instance_id: request.group_instance_id.as_deref(),
        generation_id: request.generation_id_or_member_epoch,
    };
    let result = if group_id.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else if !access.group(AclOperation::Read, &group_id) {
        Err(ResponseError::GroupAuthorizationFailed)
    } else if to_commit.is_empty() {
        Ok((Vec::new(), None))
    } else {
        broker
            .groups
            .commit_offsets(&broker.replicas, &group_id, &identity, to_commit, now)
            .map_err(|e| {
                tracing::debug!(group = %group_id, error = %e, "offset commit refused");
                e.response_error()
            })
    };
    let result = match result {
        Ok((per_partition, Some(appended))) => {
            let replicated = appended
                .partition
                .wait_for_replication(
                    appended.last_offset,
                    appended.leader_epoch,
                    OFFSET_COMMIT_TIMEOUT,
                )
                .await;
            match replicated {
                Ok(()) => Ok(per_partition),
                Err(e) => {
                    tracing::debug!(group = %group_id, error = %e, "offset commit not replicated");
                    Err(match e.error_code() {
                        ResponseError::NotLeaderOrFollower => ResponseError::NotCoordinator,
                        _ => ResponseError::CoordinatorNotAvailable,
                    })
                }
            }
        }
        Ok((per_partition, None)) => Ok(per_partition),
        Err(e) => Err(e),
    };
    match result {
        Err(e) => {
            for (_, err) in outcome.iter_mut() {
                err.get_or_insert(e);
            }
        }
        Ok(per_partition) => {
            for (tp, r) in per_partition {
                let code = match r {
                    Ok(()) => continue,
                    Err(CommitError::Group(e)) => e.response_error(),
                    Err(CommitError::Storage) => ResponseError::CoordinatorNotAvailable,
                };
                if let Some((_, err)) = outcome.iter_mut().find(|(t, _)| *t == tp) {
                    *err = Some(code);
                }
            }
        }
    }
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let err = outcome
                        .iter()
                        .find(|((t, i), _)| *t == *topic.name.0 && *i == p.partition_index)
                        .and_then(|(_, e)| *e);
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error_code(broker, API, err))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
