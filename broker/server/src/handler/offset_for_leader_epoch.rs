//! OffsetForLeaderEpoch (key 23): where a leader epoch ends in the leader's log.
//!
//! For each partition, the answer is the largest epoch ≤ the requested one that this
//! leader's log has, and the offset where it ends (the start of the next epoch, or the log
//! end for the current one); `(-1, -1)` if the log has no such epoch. A follower asks it
//! for its own latest epoch after a leader change and truncates what diverges (see
//! `crate::partition`); clients (KIP-320) ask it to detect log truncation after a leader
//! change. `current_leader_epoch` (v2+) is checked as in Fetch.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use ironlog_protocol::kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};

use super::error_code;
use crate::authorizer::Access;
use crate::broker::Broker;
use ironlog_metadata::acl::AclOperation;
use ironlog_protocol::ResponseError;

const API: &str = "OffsetForLeaderEpoch";

pub fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: OffsetForLeaderEpochRequest,
    version: i16,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.to_string();
            // Followers (v3+ with a replica id) need CLUSTER_ACTION, clients DESCRIBE.
            let refused = if version >= 3 && request.replica_id.0 >= 0 {
                (!access.cluster(AclOperation::ClusterAction))
                    .then_some(ResponseError::ClusterAuthorizationFailed)
            } else {
                (!access.topic(AclOperation::Describe, &name))
                    .then_some(ResponseError::TopicAuthorizationFailed)
            };
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let mut out = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let current = if version >= 2 {
                        p.current_leader_epoch
                    } else {
                        -1
                    };
                    if let Some(refused) = refused {
                        out.error_code = error_code(broker, API, Some(refused));
                        return out;
                    }
                    let answer = broker
                        .replicas
                        .leader_partition(&name, p.partition)
                        .and_then(|partition| {
                            partition.end_offset_for_epoch(p.leader_epoch, current)
                        });
                    match answer {
                        Ok((epoch, end_offset)) => {
                            out.leader_epoch = epoch;
                            out.end_offset = end_offset;
                        }
                        Err(e) => out.error_code = error_code(broker, API, Some(e.error_code())),
                    }
                    out
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
