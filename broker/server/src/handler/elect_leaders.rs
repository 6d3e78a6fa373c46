//! ElectLeaders (key 43): make each partition's preferred replica (its first) the leader
//! again, when it is live and in sync. A null partition list means every partition whose
//! leader is not its preferred replica. Unclean elections are refused: they would lose
//! acknowledged records.

use std::sync::Arc;

use ironlog_metadata::MetadataCommand;
use ironlog_protocol::kafka_protocol::messages::elect_leaders_response::{
    PartitionResult, ReplicaElectionResult,
};
use ironlog_protocol::kafka_protocol::messages::{
    ElectLeadersRequest, ElectLeadersResponse, TopicName,
};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::broker::Broker;
use crate::cluster::ClusterError;

const API: &str = "ElectLeaders";
const PREFERRED: i8 = 0;

pub async fn handle(
    broker: &Arc<Broker>,
    request: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    if version >= 1 && request.election_type != PREFERRED {
        return ElectLeadersResponse::default().with_error_code(error_code(
            broker,
            API,
            Some(ResponseError::InvalidRequest),
        ));
    }
    let image = broker.replicas.metadata();
    let wanted: Vec<(String, Vec<i32>)> = match request.topic_partitions {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect(),
        None => image
            .topics
            .values()
            .filter_map(|t| {
                let ps: Vec<i32> = t
                    .assignments
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.replicas.first() != Some(&s.leader))
                    .map(|(p, _)| p as i32)
                    .collect();
                (!ps.is_empty()).then(|| (t.name.clone(), ps))
            })
            .collect(),
    };
    let mut results = Vec::with_capacity(wanted.len());
    for (topic, partitions) in wanted {
        let mut partition_results = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let outcome = broker
                .cluster
                .propose(MetadataCommand::ElectPreferred {
                    topic: topic.clone(),
                    partition,
                })
                .await;
            let mut result = PartitionResult::default().with_partition_id(partition);
            if let Err(e) = outcome {
                use ironlog_metadata::CommandError as C;
                let code = match &e {
                    ClusterError::Rejected(C::ElectionNotNeeded { .. }) => {
                        ResponseError::ElectionNotNeeded
                    }
                    ClusterError::Rejected(C::PreferredLeaderNotAvailable { .. }) => {
                        ResponseError::PreferredLeaderNotAvailable
                    }
                    ClusterError::Rejected(C::UnknownTopic(_) | C::UnknownPartition { .. }) => {
                        ResponseError::UnknownTopicOrPartition
                    }
                    _ => ResponseError::RequestTimedOut,
                };
                result.error_code = error_code(broker, API, Some(code));
                result.error_message = Some(str_bytes(e.to_string()));
            }
            partition_results.push(result);
        }
        results.push(
            ReplicaElectionResult::default()
                .with_topic(TopicName(str_bytes(topic)))
                .with_partition_result(partition_results),
        );
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}
