//! Consumer-group membership with the classic protocol, as a consumer (not an admin) takes
//! part: JoinGroup (with the MEMBER_ID_REQUIRED round trip), SyncGroup (the leader assigns
//! with Kafka's range assignor, so Java and librdkafka consumers can share the group),
//! Heartbeat, OffsetCommit under the member's generation, LeaveGroup.
//!
//! [`GroupMembership`] is the state a member carries between calls; the pure parts
//! (subscription and assignment encoding, [`range_assign`]) are separate functions.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::client::Target;
use crate::error::{
    check, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, ILLEGAL_GENERATION,
    MEMBER_ID_REQUIRED, NOT_COORDINATOR, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID,
};
use crate::{Client, ClientError};

/// The consumer protocol type and the one assignor this member offers.
const PROTOCOL_TYPE: &str = "consumer";
const RANGE_ASSIGNOR: &str = "range";
/// Join attempts before giving up (each MEMBER_ID_REQUIRED, rebalance or coordinator move
/// uses one).
const MAX_JOIN_ATTEMPTS: u32 = 10;

/// A member of a consumer group: who it is, in which generation, and what it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembership {
    pub group: String,
    /// The topics this member subscribes to.
    pub topics: Vec<String>,
    /// Empty until the coordinator has assigned one.
    pub member_id: String,
    /// `-1` until the member has joined.
    pub generation_id: i32,
    /// The coordinator's node id.
    pub coordinator: i32,
    /// The partitions assigned in this generation, sorted.
    pub assignment: Vec<(String, i32)>,
    /// Kafka's `session.timeout.ms`: no heartbeat for this long and the member is removed.
    pub session_timeout: Duration,
    /// Kafka's `max.poll.interval.ms`: how long a rebalance waits for this member to rejoin.
    pub rebalance_timeout: Duration,
}

impl GroupMembership {
    /// A member that has not joined yet.
    pub fn new(group: &str, topics: &[String], session_timeout: Duration) -> GroupMembership {
        GroupMembership {
            group: group.to_owned(),
            topics: topics.to_vec(),
            member_id: String::new(),
            generation_id: -1,
            coordinator: -1,
            assignment: Vec::new(),
            session_timeout,
            rebalance_timeout: Duration::from_secs(60),
        }
    }
}

/// Whether `error` means the member must rejoin the group (a rebalance started, its
/// generation is over, or the coordinator forgot it or moved).
pub fn needs_rejoin(error: &ClientError) -> bool {
    matches!(
        error.code(),
        Some(
            REBALANCE_IN_PROGRESS
                | ILLEGAL_GENERATION
                | UNKNOWN_MEMBER_ID
                | NOT_COORDINATOR
                | COORDINATOR_NOT_AVAILABLE
                | COORDINATOR_LOAD_IN_PROGRESS
        )
    )
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Encodes a consumer-protocol message with its leading version, as group metadata and
/// assignments carry it.
fn encode_versioned<M: Encodable>(message: &M, version: i16) -> Result<Bytes, ClientError> {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&version.to_be_bytes());
    message
        .encode(&mut buf, version)
        .map_err(|e| ClientError::protocol("encoding consumer protocol metadata", e))?;
    Ok(buf.freeze())
}

/// The JoinGroup metadata of a consumer subscribing to `topics` (ConsumerProtocolSubscription
/// v0, which every consumer implementation reads).
pub fn encode_subscription(topics: &[String]) -> Result<Bytes, ClientError> {
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| str_bytes(t)).collect());
    encode_versioned(&subscription, 0)
}

/// The topics of a member's JoinGroup metadata (empty if it does not decode).
pub fn decode_subscription(bytes: &Bytes) -> Vec<String> {
    use bytes::Buf as _;
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    let layout = &ironlog_wire::schema::tables::consumer_protocol_subscription::CONSUMER_PROTOCOL_SUBSCRIPTION;
    ironlog_wire::schema::decode::<ConsumerProtocolSubscription>(layout, &mut buf, version)
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

/// The SyncGroup assignment of one member (ConsumerProtocolAssignment v0).
pub fn encode_assignment(partitions: &[(String, i32)]) -> Result<Bytes, ClientError> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                TopicPartition::default()
                    .with_topic(TopicName(str_bytes(topic)))
                    .with_partitions(partitions)
            })
            .collect(),
    );
    encode_versioned(&assignment, 0)
}

/// Kafka's `RangeAssignor`: for each topic, its partitions in order are split into
/// contiguous ranges over the members subscribed to it, sorted by member id; the first
/// `partitions % members` members get one more.
///
/// `members` are `(member id, subscribed topics)`; `partition_counts` the partitions of each
/// topic (topics missing from it are skipped). Every member is in the result, possibly with
/// nothing assigned.
pub fn range_assign(
    members: &[(String, Vec<String>)],
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<(String, i32)>> {
    let mut out: BTreeMap<String, Vec<(String, i32)>> = members
        .iter()
        .map(|(id, _)| (id.clone(), Vec::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let mut subscribed: Vec<&str> = members
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(id, _)| id.as_str())
            .collect();
        subscribed.sort_unstable();
        subscribed.dedup();
        if subscribed.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribed.len() as i32;
        let (per_member, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in subscribed.iter().enumerate() {
            let take = per_member + i32::from((i as i32) < extra);
            if let Some(owned) = out.get_mut(*member) {
                owned.extend((next..next + take).map(|p| (topic.clone(), p)));
            }
            next += take;
        }
    }
    out
}

impl Client {
    /// Joins (or rejoins) `membership`'s group and returns once it has an assignment in a
    /// new generation. The leader computes the assignment for everyone with
    /// [`range_assign`]. JoinGroup waits for the whole rebalance, so it gets the rebalance
    /// timeout on top of the request timeout.
    ///
    /// # Errors
    /// Errors from the coordinator other than the rebalance ones this loop handles, or the
    /// rebalance not completing within a bounded number of attempts.
    pub async fn join_group(&self, membership: &mut GroupMembership) -> Result<(), ClientError> {
        let mut last_error = None;
        for _ in 0..MAX_JOIN_ATTEMPTS {
            if membership.coordinator < 0 {
                membership.coordinator = self.find_group_coordinator(&membership.group).await?;
            }
            match self.join_and_sync(membership).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    match e.code() {
                        Some(MEMBER_ID_REQUIRED) => {} // member_id was set from the response
                        Some(UNKNOWN_MEMBER_ID) => membership.member_id.clear(),
                        Some(REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION) => {}
                        Some(
                            NOT_COORDINATOR
                            | COORDINATOR_NOT_AVAILABLE
                            | COORDINATOR_LOAD_IN_PROGRESS,
                        ) => {
                            membership.coordinator = -1;
                            tokio::time::sleep(self.config().retry_backoff).await;
                        }
                        _ if e.is_retriable() => {
                            membership.coordinator = -1;
                            tokio::time::sleep(self.config().retry_backoff).await;
                        }
                        _ => return Err(e),
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            ClientError::InvalidArgument("joining the group never completed".into())
        }))
    }

    /// One JoinGroup + SyncGroup round.
    async fn join_and_sync(&self, membership: &mut GroupMembership) -> Result<(), ClientError> {
        let group = membership.group.clone();
        let target = Target::Node(membership.coordinator);
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&group)))
            .with_session_timeout_ms(millis(membership.session_timeout))
            .with_rebalance_timeout_ms(millis(membership.rebalance_timeout))
            .with_member_id(str_bytes(&membership.member_id))
            .with_protocol_type(str_bytes(PROTOCOL_TYPE))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(str_bytes(RANGE_ASSIGNOR))
                .with_metadata(encode_subscription(&membership.topics)?)]);
        let timeout = self.config().request_timeout + membership.rebalance_timeout;
        let joined: JoinGroupResponse = self
            .send_with_timeout(target, &request, Some(timeout))
            .await?;
        if joined.error_code == MEMBER_ID_REQUIRED {
            // KIP-394: the coordinator names the member; join again with that id.
            membership.member_id = joined.member_id.to_string();
        }
        check(joined.error_code, None, || format!("JoinGroup {group:?}"))?;
        membership.member_id = joined.member_id.to_string();
        membership.generation_id = joined.generation_id;

        let assignments = if joined.leader == joined.member_id && !joined.skip_assignment {
            self.leader_assignments(&joined).await?
        } else {
            Vec::new()
        };
        let sync_version = self.version_for::<SyncGroupRequest>(target).await?;
        let mut sync = SyncGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&group)))
            .with_generation_id(joined.generation_id)
            .with_member_id(joined.member_id.clone())
            .with_assignments(assignments);
        if sync_version >= 5 {
            sync.protocol_type = Some(str_bytes(PROTOCOL_TYPE));
            sync.protocol_name = Some(str_bytes(RANGE_ASSIGNOR));
        }
        let synced = self.send_with_timeout(target, &sync, Some(timeout)).await?;
        check(synced.error_code, None, || format!("SyncGroup {group:?}"))?;
        let mut assignment: Vec<(String, i32)> =
            crate::groups::decode_assignment(&synced.assignment)
                .into_iter()
                .filter(|(topic, _)| membership.topics.contains(topic))
                .collect();
        assignment.sort();
        membership.assignment = assignment;
        Ok(())
    }

    /// The leader's SyncGroup assignments: range over the partition counts in metadata.
    async fn leader_assignments(
        &self,
        joined: &JoinGroupResponse,
    ) -> Result<Vec<SyncGroupRequestAssignment>, ClientError> {
        let members: Vec<(String, Vec<String>)> = joined
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), decode_subscription(&m.metadata)))
            .collect();
        let mut topics: Vec<String> = members.iter().flat_map(|(_, t)| t.clone()).collect();
        topics.sort_unstable();
        topics.dedup();
        let metadata = self.metadata(Some(&topics)).await?;
        let counts: BTreeMap<String, i32> = metadata
            .topics
            .iter()
            .filter(|t| t.error.is_none())
            .map(|t| (t.name.clone(), t.partitions.len() as i32))
            .collect();
        range_assign(&members, &counts)
            .into_iter()
            .map(|(member, partitions)| {
                Ok(SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(member))
                    .with_assignment(encode_assignment(&partitions)?))
            })
            .collect()
    }

    /// Tells the coordinator the member is alive.
    ///
    /// # Errors
    /// REBALANCE_IN_PROGRESS and the other codes of [`needs_rejoin`] mean: commit what was
    /// consumed, then [`Client::join_group`] again.
    pub async fn heartbeat(&self, membership: &GroupMembership) -> Result<(), ClientError> {
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes(&membership.group)))
            .with_generation_id(membership.generation_id)
            .with_member_id(str_bytes(&membership.member_id));
        let response = self
            .send(Target::Node(membership.coordinator), &request)
            .await?;
        check(response.error_code, None, || {
            format!("Heartbeat in group {:?}", membership.group)
        })
    }

    /// Commits `offsets` (the next offset to consume, per topic-partition) as this member.
    pub async fn commit_member_offsets(
        &self,
        membership: &GroupMembership,
        offsets: &BTreeMap<(String, i32), i64>,
    ) -> Result<(), ClientError> {
        let group = &membership.group;
        if offsets.is_empty() {
            return Ok(());
        }
        let request = crate::groups::offset_commit_request(
            group,
            membership.generation_id,
            &membership.member_id,
            offsets,
        );
        let response = self
            .send(Target::Node(membership.coordinator), &request)
            .await?;
        crate::groups::check_offset_commit(group, response)
    }

    /// Leaves the group, so it rebalances now instead of after the session timeout.
    pub async fn leave_group(&self, membership: &GroupMembership) -> Result<(), ClientError> {
        if membership.member_id.is_empty() || membership.coordinator < 0 {
            return Ok(());
        }
        let target = Target::Node(membership.coordinator);
        let mut request =
            LeaveGroupRequest::default().with_group_id(GroupId(str_bytes(&membership.group)));
        // v3+ name a batch of members; older versions the one member.
        if self.version_for::<LeaveGroupRequest>(target).await? >= 3 {
            request.members =
                vec![MemberIdentity::default().with_member_id(str_bytes(&membership.member_id))];
        } else {
            request.member_id = str_bytes(&membership.member_id);
        }
        let response = self.send(target, &request).await?;
        let context = || format!("LeaveGroup {:?}", membership.group);
        check(response.error_code, None, context)?;
        for m in response.members {
            check(m.error_code, None, context)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        list.iter()
            .map(|(id, topics)| {
                (
                    id.to_string(),
                    topics.iter().map(|t| t.to_string()).collect(),
                )
            })
            .collect()
    }

    fn tps(list: &[(&str, i32)]) -> Vec<(String, i32)> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn range_assignment_splits_each_topic_into_contiguous_ranges() {
        // Kafka's RangeAssignorTest.testTwoConsumersTwoTopicsSixPartitions / ...ThreeConsumers.
        let counts = BTreeMap::from([("t1".to_string(), 3), ("t2".to_string(), 2)]);
        let got = range_assign(
            &members(&[("c1", &["t1", "t2"]), ("c0", &["t1", "t2"])]),
            &counts,
        );
        assert_eq!(got["c0"], tps(&[("t1", 0), ("t1", 1), ("t2", 0)]));
        assert_eq!(got["c1"], tps(&[("t1", 2), ("t2", 1)]));

        let got = range_assign(
            &members(&[("a", &["t1"]), ("b", &["t1", "t2"]), ("c", &["t1"])]),
            &counts,
        );
        assert_eq!(got["a"], tps(&[("t1", 0)]));
        assert_eq!(got["b"], tps(&[("t1", 1), ("t2", 0), ("t2", 1)]));
        assert_eq!(got["c"], tps(&[("t1", 2)]));
    }

    #[test]
    fn range_assignment_leaves_extra_members_empty_and_skips_unknown_topics() {
        let counts = BTreeMap::from([("t".to_string(), 1)]);
        let got = range_assign(&members(&[("b", &["t"]), ("a", &["t", "gone"])]), &counts);
        assert_eq!(got["a"], tps(&[("t", 0)]));
        assert_eq!(got["b"], vec![]);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn subscription_and_assignment_round_trip() {
        let topics = vec!["orders".to_string(), "payments".to_string()];
        let encoded = encode_subscription(&topics).unwrap();
        assert_eq!(&encoded[..2], &[0, 0], "version 0 prefix");
        assert_eq!(decode_subscription(&encoded), topics);
        assert!(decode_subscription(&Bytes::from_static(&[0])).is_empty());

        let partitions = tps(&[("orders", 0), ("orders", 2), ("payments", 1)]);
        let encoded = encode_assignment(&partitions).unwrap();
        assert_eq!(crate::groups::decode_assignment(&encoded), partitions);
    }

    #[test]
    fn rebalance_errors_ask_for_a_rejoin() {
        for code in [REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID] {
            assert!(needs_rejoin(&ClientError::kafka(code, None, "heartbeat")));
        }
        assert!(!needs_rejoin(&ClientError::kafka(3, None, "heartbeat")));
        assert!(!needs_rejoin(&ClientError::InvalidArgument("x".into())));
    }
}
