//! Consumer-group admin calls on [`Client`]: list, describe, committed offsets, admin
//! offset commits (reset), delete. Group requests go to the group's coordinator, found
//! with FindCoordinator.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest,
    GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::Target;
use crate::error::check;
use crate::{Client, ClientError};

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    /// Empty when the broker's ListGroups is older than v4.
    pub state: String,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<GroupMember>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Decoded from the consumer-protocol assignment (empty for other protocols).
    pub assignment: Vec<(String, i32)>,
}

/// A committed offset and its metadata string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub metadata: String,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// The topic-partitions of a consumer-protocol assignment (empty if it does not decode).
pub fn decode_assignment(bytes: &Bytes) -> Vec<(String, i32)> {
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    let layout =
        &ironlog_wire::schema::tables::consumer_protocol_assignment::CONSUMER_PROTOCOL_ASSIGNMENT;
    let Ok(a) =
        ironlog_wire::schema::decode::<ConsumerProtocolAssignment>(layout, &mut buf, version)
    else {
        return Vec::new();
    };
    a.assigned_partitions
        .iter()
        .flat_map(|tp| {
            tp.partitions
                .iter()
                .map(move |p| (tp.topic.0.to_string(), *p))
        })
        .collect()
}

impl Client {
    /// The node id of `group`'s coordinator.
    pub async fn find_group_coordinator(&self, group: &str) -> Result<i32, ClientError> {
        // v4+ batch keys in `coordinator_keys`; older versions have the single `key`.
        let batched = self
            .version_for::<FindCoordinatorRequest>(Target::Any)
            .await?
            >= 4;
        let mut request = FindCoordinatorRequest::default().with_key_type(0);
        if batched {
            request.coordinator_keys = vec![str_bytes(group)];
        } else {
            request.key = str_bytes(group);
        }
        let response = self.send(Target::Any, &request).await?;
        if let Some(c) = response.coordinators.first() {
            check(c.error_code, c.error_message.as_deref(), || {
                format!("FindCoordinator for group {group:?}")
            })?;
            return Ok(c.node_id.0);
        }
        check(
            response.error_code,
            response.error_message.as_deref(),
            || format!("FindCoordinator for group {group:?}"),
        )?;
        Ok(response.node_id.0)
    }

    /// Every group on every broker.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, ClientError> {
        let metadata = self.metadata(Some(&[])).await?;
        let mut out = Vec::new();
        for broker in &metadata.brokers {
            let response = self
                .send(Target::Node(broker.id), &ListGroupsRequest::default())
                .await?;
            check(response.error_code, None, || {
                format!("ListGroups on broker {}", broker.id)
            })?;
            out.extend(response.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription, ClientError> {
        let node = self.find_group_coordinator(group).await?;
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(group))]);
        let response = self.send(Target::Node(node), &request).await?;
        let g =
            response.groups.into_iter().next().ok_or_else(|| {
                ClientError::protocol("DescribeGroups", "no group in the response")
            })?;
        check(g.error_code, g.error_message.as_deref(), || {
            format!("DescribeGroups for {group:?}")
        })?;
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members: g
                .members
                .into_iter()
                .map(|m| GroupMember {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: decode_assignment(&m.member_assignment),
                })
                .collect(),
        })
    }

    /// Every offset `group` has committed.
    pub async fn committed_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<(String, i32), CommittedOffset>, ClientError> {
        let node = self.find_group_coordinator(group).await?;
        // v8+ batch groups; older versions name one group.
        let batched = self
            .version_for::<OffsetFetchRequest>(Target::Node(node))
            .await?
            >= 8;
        let mut request = OffsetFetchRequest::default();
        if batched {
            request.groups = vec![
                kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(str_bytes(group)))
                    .with_topics(None),
            ];
        } else {
            request.group_id = GroupId(str_bytes(group));
            request.topics = None;
        }
        let response = self.send(Target::Node(node), &request).await?;
        let mut out = BTreeMap::new();
        let context = || format!("OffsetFetch for group {group:?}");
        if let Some(g) = response.groups.into_iter().next() {
            check(g.error_code, None, context)?;
            for t in g.topics {
                for p in t.partitions {
                    check(p.error_code, None, context)?;
                    if p.committed_offset >= 0 {
                        out.insert(
                            (t.name.0.to_string(), p.partition_index),
                            CommittedOffset {
                                offset: p.committed_offset,
                                metadata: p.metadata.map(|m| m.to_string()).unwrap_or_default(),
                            },
                        );
                    }
                }
            }
            return Ok(out);
        }
        check(response.error_code, None, context)?;
        for t in response.topics {
            for p in t.partitions {
                check(p.error_code, None, context)?;
                if p.committed_offset >= 0 {
                    out.insert(
                        (t.name.0.to_string(), p.partition_index),
                        CommittedOffset {
                            offset: p.committed_offset,
                            metadata: p.metadata.map(|m| m.to_string()).unwrap_or_default(),
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    /// Commits offsets as an admin (generation -1, no member): only accepted while the
    /// group has no active members.
    pub async fn commit_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<(String, i32), i64>,
    ) -> Result<(), ClientError> {
        let node = self.find_group_coordinator(group).await?;
        let request = offset_commit_request(group, -1, "", offsets);
        let response = self.send(Target::Node(node), &request).await?;
        check_offset_commit(group, response)
    }

    /// Deletes an empty group and its committed offsets.
    pub async fn delete_group(&self, group: &str) -> Result<(), ClientError> {
        let node = self.find_group_coordinator(group).await?;
        let request =
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str_bytes(group))]);
        let response = self.send(Target::Node(node), &request).await?;
        for r in response.results {
            check(r.error_code, None, || format!("DeleteGroups for {group:?}"))?;
        }
        Ok(())
    }
}

/// An OffsetCommit of `offsets` (the next offset to consume, per topic-partition) for
/// `group`, as member `member_id` of `generation` (-1 and "" for an admin commit).
pub(crate) fn offset_commit_request(
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &BTreeMap<(String, i32), i64>,
) -> OffsetCommitRequest {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in offsets {
        topics.entry(topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(str_bytes(""))),
        );
    }
    OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(str_bytes(member_id))
        .with_retention_time_ms(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(str_bytes(t)))
                        .with_partitions(ps)
                })
                .collect(),
        )
}

/// `Ok` if every partition of an OffsetCommit response was committed.
pub(crate) fn check_offset_commit(
    group: &str,
    response: kafka_protocol::messages::OffsetCommitResponse,
) -> Result<(), ClientError> {
    for t in response.topics {
        for p in t.partitions {
            check(p.error_code, None, || {
                format!(
                    "OffsetCommit for group {group:?}, {}-{}",
                    t.name.0.as_str(),
                    p.partition_index
                )
            })?;
        }
    }
    Ok(())
}
