//! AlterPartitionReassignments (key 45): start moving partitions to new replica lists, or
//! cancel a move (`replicas` null). The move completes when every added replica is in
//! sync; until followers replicate, that is immediate only for a partition whose leader
//! has no records (see `ironlog_metadata`'s `Reassign` and `AlterPartition`).

use std::sync::Arc;

use ironlog_metadata::{CommandError, MetadataCommand};
use ironlog_protocol::kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use ironlog_protocol::kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::broker::Broker;
use crate::cluster::ClusterError;
use crate::replica_manager::ReplicaError;

const API: &str = "AlterPartitionReassignments";

pub async fn handle(
    broker: &Arc<Broker>,
    request: AlterPartitionReassignmentsRequest,
    _version: i16,
) -> AlterPartitionReassignmentsResponse {
    // One proposal per partition, all in flight at once: the quorum commits them together
    // instead of one round trip after another (a drain can move hundreds of partitions).
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let proposals = topic.partitions.into_iter().map(|p| {
            let target = p
                .replicas
                .map(|r| r.into_iter().map(|b| b.0).collect::<Vec<i32>>());
            let command = MetadataCommand::Reassign {
                topic: name.clone(),
                partition: p.partition_index,
                target,
            };
            async move { (p.partition_index, broker.cluster.propose(command).await) }
        });
        let mut partitions = Vec::new();
        for (index, outcome) in futures::future::join_all(proposals).await {
            let mut result = ReassignablePartitionResponse::default().with_partition_index(index);
            match outcome {
                Ok(_) => tracing::info!(topic = %name, partition = index,
                    "partition reassignment started (or cancelled)"),
                Err(e) => {
                    let message = e.to_string();
                    let code = match e {
                        ClusterError::Rejected(CommandError::NoReassignmentInProgress {
                            ..
                        }) => ResponseError::NoReassignmentInProgress,
                        other => ReplicaError::from(other).error_code(),
                    };
                    result.error_code = error_code(broker, API, Some(code));
                    result.error_message = Some(str_bytes(message));
                }
            }
            partitions.push(result);
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    // A reassignment's idle partitions may already be complete: let this broker's logs
    // follow at once.
    if let Err(e) = broker.replicas.sync_logs(&broker.replicas.metadata()) {
        tracing::warn!(error = %e, "cannot sync logs after a reassignment");
    }
    AlterPartitionReassignmentsResponse::default().with_responses(responses)
}
