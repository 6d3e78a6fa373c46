//! OffsetFetch (key 9): committed offsets of a group. A null topic list (v2+) means every
//! partition the group has committed; a partition without a commit answers offset -1.
//! v8+ batch several groups in one request.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use ironlog_protocol::kafka_protocol::messages::{
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};

use super::{error_code, str_bytes};
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::group::metadata::CommittedOffset;
use ironlog_metadata::acl::AclOperation;
use ironlog_protocol::ResponseError;

const API: &str = "OffsetFetch";

/// `(topic, [(partition, committed)])` for one group, in request order (or sorted for "all").
/// A requested topic the principal may not describe has no offsets: its partitions answer
/// TOPIC_AUTHORIZATION_FAILED ([`denied`]).
type Fetched = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

fn fetch(
    broker: &Broker,
    access: &Access,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Fetched {
    match topics {
        None => {
            // Every committed topic the principal may describe; the others are left out.
            let mut out: Fetched = Vec::new();
            for ((topic, partition), o) in broker.groups.fetch_offsets(group, None) {
                if !access.topic(AclOperation::Describe, &topic) {
                    continue;
                }
                match out.last_mut() {
                    Some((t, ps)) if *t == topic => ps.push((partition, Some(o))),
                    _ => out.push((topic, vec![(partition, Some(o))])),
                }
            }
            out
        }
        Some(topics) => {
            let wanted: Vec<(String, i32)> = topics
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                .collect();
            let found = broker.groups.fetch_offsets(group, Some(&wanted));
            let found: std::collections::HashMap<_, _> = found
                .into_iter()
                .filter(|((t, _), _)| access.topic(AclOperation::Describe, t))
                .collect();
            topics
                .into_iter()
                .map(|(t, ps)| {
                    let parts = ps
                        .into_iter()
                        .map(|p| (p, found.get(&(t.clone(), p)).cloned()))
                        .collect();
                    (t, parts)
                })
                .collect()
        }
    }
}

/// TOPIC_AUTHORIZATION_FAILED when the principal may not describe `topic`.
fn denied(broker: &Broker, access: &Access, topic: &str) -> i16 {
    if access.topic(AclOperation::Describe, topic) {
        0
    } else {
        error_code(broker, API, Some(ResponseError::TopicAuthorizationFailed))
    }
}

fn fields(o: &Option<CommittedOffset>) -> (i64, i32, String) {
    match o {
        Some(o) => (o.offset, o.leader_epoch, o.metadata.clone()),
        None => (-1, -1, String::new()),
    }
}

pub fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| {
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                if !access.group(AclOperation::Describe, &g.group_id.0) {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(error_code(
                            broker,
                            API,
                            Some(ResponseError::GroupAuthorizationFailed),
                        ));
                }
                if let Err(e) = broker.groups.check_coordinator(&g.group_id.0) {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(error_code(broker, API, Some(e.response_error())));
                }
                let fetched = fetch(broker, access, &g.group_id.0, topics);
                let topics = fetched
                    .into_iter()
                    .map(|(t, ps)| {
                        let code = denied(broker, access, &t);
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(str_bytes(t)))
                            .with_partitions(
                                ps.iter()
                                    .map(|(p, o)| {
                                        let (offset, epoch, metadata) = fields(o);
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(*p)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(str_bytes(metadata)))
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let not_coordinator = if access.group(AclOperation::Describe, &request.group_id.0) {
        broker
            .groups
            .check_coordinator(&request.group_id.0)
            .err()
            .map(|e| error_code(broker, API, Some(e.response_error())))
    } else {
        Some(error_code(
            broker,
            API,
            Some(ResponseError::GroupAuthorizationFailed),
        ))
    };
    if let (Some(code), true) = (not_coordinator, version >= 2) {
        return OffsetFetchResponse::default().with_error_code(code);
    }
    let fetched = fetch(broker, access, &request.group_id.0, topics);
    let topics = fetched
        .into_iter()
        .map(|(t, ps)| {
            let code = denied(broker, access, &t);
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(t)))
                .with_partitions(
                    ps.iter()
                        .map(|(p, o)| {
                            let (offset, epoch, metadata) = fields(o);
                            let mut out = OffsetFetchResponsePartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(offset)
                                .with_metadata(Some(str_bytes(metadata)));
                            if version >= 5 {
                                out.committed_leader_epoch = epoch;
                            }
                            // v0-v1 carry errors per partition only.
                            out.error_code = not_coordinator.unwrap_or(code);
                            out
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
