//! ListPartitionReassignments (key 46): partitions being moved, with their replicas and
//! the replicas being added and removed.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use ironlog_protocol::kafka_protocol::messages::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};

use super::str_bytes;
use crate::broker::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: ListPartitionReassignmentsRequest,
    _version: i16,
) -> ListPartitionReassignmentsResponse {
    let image = broker.replicas.metadata();
    // (topic, partitions asked for; None = all)
    let wanted: Vec<(String, Option<Vec<i32>>)> = match request.topics {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), Some(t.partition_indexes)))
            .collect(),
        None => image.topics.keys().map(|t| (t.clone(), None)).collect(),
    };
    let topics = wanted
        .into_iter()
        .filter_map(|(name, partitions)| {
            let topic = image.topic(&name)?;
            let ongoing: Vec<_> = topic
                .assignments
                .iter()
                .enumerate()
                .filter(|(p, state)| {
                    state.is_reassigning()
                        && partitions
                            .as_ref()
                            .is_none_or(|ps| ps.contains(&(*p as i32)))
                })
                .map(|(p, state)| {
                    OngoingPartitionReassignment::default()
                        .with_partition_index(p as i32)
                        .with_replicas(state.replicas.iter().map(|r| (*r).into()).collect())
                        .with_adding_replicas(state.adding.iter().map(|r| (*r).into()).collect())
                        .with_removing_replicas(
                            state.removing.iter().map(|r| (*r).into()).collect(),
                        )
                })
                .collect();
            (!ongoing.is_empty()).then(|| {
                OngoingTopicReassignment::default()
                    .with_name(TopicName(str_bytes(name)))
                    .with_partitions(ongoing)
            })
        })
        .collect();
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}
