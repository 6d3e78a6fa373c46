//! DescribeQuorum (key 55): the metadata quorum: its leader (the controller), term, commit
//! index (`high_watermark`), voters and learners (`observers`) with how far each has
//! replicated (`log_end_offset`, the Raft index it has matched). Only the leader tracks the
//! others' progress: elsewhere their `log_end_offset` is -1, so a tool asks the controller
//! (DescribeCluster's `controller_id`).

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::describe_quorum_response::{
    PartitionData, ReplicaState, TopicData,
};
use ironlog_protocol::kafka_protocol::messages::{
    DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use ironlog_protocol::ResponseError;
use ironlog_quorum::ReplicaStatus;

use super::{error_code, str_bytes};
use crate::broker::Broker;

const API: &str = "DescribeQuorum";
/// KRaft's metadata topic, the only "partition" this API describes.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeQuorumRequest,
    _version: i16,
) -> DescribeQuorumResponse {
    let status = broker.cluster.status();
    let now = crate::replica_manager::now_ms();
    let replica = |r: &ReplicaStatus| {
        let this_node = r.id == status.node_id;
        let matched = match (this_node, r.matched_index) {
            (true, _) => Some(status.applied_index.max(status.commit_index)),
            (false, m) => m,
        };
        // Kafka reports "now" for the node answering; other nodes' fetch times are not
        // tracked (-1).
        let at = if this_node { now } else { -1 };
        ReplicaState::default()
            .with_replica_id(r.id.into())
            .with_log_end_offset(matched.map_or(-1, |m| m as i64))
            .with_last_fetch_timestamp(at)
            .with_last_caught_up_timestamp(at)
    };
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let known = topic.topic_name.0.as_str() == METADATA_TOPIC;
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    if !known || p.partition_index != 0 {
                        return PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(error_code(
                                broker,
                                API,
                                Some(ResponseError::UnknownTopicOrPartition),
                            ))
                            .with_leader_id((-1).into())
                            .with_leader_epoch(-1)
                            .with_high_watermark(-1);
                    }
                    PartitionData::default()
                        .with_partition_index(0)
                        .with_leader_id(status.leader.unwrap_or(-1).into())
                        .with_leader_epoch(status.term as i32)
                        .with_high_watermark(status.commit_index as i64)
                        .with_current_voters(status.voters.iter().map(replica).collect())
                        .with_observers(status.learners.iter().map(replica).collect())
                })
                .collect();
            TopicData::default()
                .with_topic_name(TopicName(str_bytes(topic.topic_name.0.to_string())))
                .with_partitions(partitions)
        })
        .collect();
    DescribeQuorumResponse::default().with_topics(topics)
}
