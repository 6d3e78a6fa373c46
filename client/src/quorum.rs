//! The metadata quorum via DescribeQuorum (KIP-595 / KIP-836): the Raft leader, its epoch,
//! the high watermark (the commit index) and each voter's and observer's replication
//! progress, as `kafka-metadata-quorum describe` shows them.

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response::ReplicaState;
use kafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::client::Target;
use crate::error::check;
use crate::{Client, ClientError};

/// The Raft log of the cluster metadata, the only partition DescribeQuorum describes.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
pub const METADATA_PARTITION: i32 = 0;

/// One voter's or observer's replication progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplica {
    pub replica_id: i32,
    /// `-1` when the leader has not heard from it.
    pub log_end_offset: i64,
    /// Milliseconds since the epoch; `-1` when unknown (or DescribeQuorum v0).
    pub last_fetch_timestamp: i64,
    pub last_caught_up_timestamp: i64,
}

impl QuorumReplica {
    /// How far the replica is behind the high watermark, when its log end offset is known.
    pub fn lag(&self, high_watermark: i64) -> Option<i64> {
        (self.log_end_offset >= 0).then(|| (high_watermark - self.log_end_offset).max(0))
    }
}

/// The answer to DescribeQuorum for the metadata partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumDescription {
    /// `None` while there is no leader.
    pub leader_id: Option<i32>,
    /// The Raft term.
    pub leader_epoch: i32,
    /// The commit index: the highest offset a majority of voters has.
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplica>,
    /// Replicas that follow the log without voting (Raft learners).
    pub observers: Vec<QuorumReplica>,
}

fn replicas(states: Vec<ReplicaState>) -> Vec<QuorumReplica> {
    let mut out: Vec<QuorumReplica> = states
        .into_iter()
        .map(|r| QuorumReplica {
            replica_id: r.replica_id.0,
            log_end_offset: r.log_end_offset,
            last_fetch_timestamp: r.last_fetch_timestamp,
            last_caught_up_timestamp: r.last_caught_up_timestamp,
        })
        .collect();
    out.sort_by_key(|r| r.replica_id);
    out
}

/// Converts a DescribeQuorum response into the public type.
pub(crate) fn convert_quorum(
    response: DescribeQuorumResponse,
) -> Result<QuorumDescription, ClientError> {
    let context = || format!("DescribeQuorum for {METADATA_TOPIC}-{METADATA_PARTITION}");
    check(
        response.error_code,
        response.error_message.as_deref(),
        context,
    )?;
    let partition = response
        .topics
        .into_iter()
        .filter(|t| t.topic_name.0.as_str() == METADATA_TOPIC)
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == METADATA_PARTITION)
        .ok_or_else(|| ClientError::protocol(context(), "the metadata partition is missing"))?;
    check(
        partition.error_code,
        partition.error_message.as_deref(),
        context,
    )?;
    Ok(QuorumDescription {
        leader_id: (partition.leader_id.0 >= 0).then_some(partition.leader_id.0),
        leader_epoch: partition.leader_epoch,
        high_watermark: partition.high_watermark,
        voters: replicas(partition.current_voters),
        observers: replicas(partition.observers),
    })
}

impl Client {
    /// The metadata quorum. Sent to the controller, which in a Raft cluster is the leader.
    ///
    /// # Errors
    /// [`ClientError::UnsupportedApi`] when the broker does not list DescribeQuorum (API
    /// key 55) in ApiVersions; a [`ClientError::Kafka`] (e.g. UNSUPPORTED_VERSION or
    /// NOT_LEADER_OR_FOLLOWER after the retries) when it refuses.
    pub async fn describe_quorum(&self) -> Result<QuorumDescription, ClientError> {
        let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
            .with_partitions(vec![
                PartitionData::default().with_partition_index(METADATA_PARTITION)
            ])]);
        self.with_retries(None, || async {
            convert_quorum(self.send(Target::Controller, &request).await?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_quorum_response;
    use kafka_protocol::messages::BrokerId;

    fn state(id: i32, leo: i64) -> ReplicaState {
        ReplicaState::default()
            .with_replica_id(BrokerId(id))
            .with_log_end_offset(leo)
            .with_last_fetch_timestamp(-1)
            .with_last_caught_up_timestamp(-1)
    }

    fn response(error: i16, leader: i32) -> DescribeQuorumResponse {
        DescribeQuorumResponse::default().with_topics(vec![
            describe_quorum_response::TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
                .with_partitions(vec![describe_quorum_response::PartitionData::default()
                    .with_partition_index(0)
                    .with_error_code(error)
                    .with_leader_id(BrokerId(leader))
                    .with_leader_epoch(7)
                    .with_high_watermark(100)
                    .with_current_voters(vec![state(3, 90), state(1, 100), state(2, -1)])
                    .with_observers(vec![state(4, 40)])]),
        ])
    }

    #[test]
    fn converts_quorum_and_computes_lag() {
        let q = convert_quorum(response(0, 1)).unwrap();
        assert_eq!(q.leader_id, Some(1));
        assert_eq!(q.leader_epoch, 7);
        assert_eq!(q.high_watermark, 100);
        assert_eq!(
            q.voters.iter().map(|v| v.replica_id).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let lags: Vec<Option<i64>> = q.voters.iter().map(|v| v.lag(q.high_watermark)).collect();
        assert_eq!(lags, vec![Some(0), None, Some(10)]);
        assert_eq!(q.observers[0].lag(q.high_watermark), Some(60));
        assert_eq!(convert_quorum(response(0, -1)).unwrap().leader_id, None);
    }

    #[test]
    fn errors_are_reported_not_hidden() {
        let e = convert_quorum(response(6, 1)).unwrap_err();
        assert_eq!(e.code(), Some(6), "{e}");
        let e = convert_quorum(DescribeQuorumResponse::default().with_error_code(35)).unwrap_err();
        assert!(e.to_string().contains("UNSUPPORTED_VERSION"), "{e}");
        let e = convert_quorum(DescribeQuorumResponse::default()).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
