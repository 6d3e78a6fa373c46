//! The pure core of the group coordinator: one consumer group's state machine.
//!
//! [`GroupMetadata`] is driven by events (`join`, `sync`, `heartbeat`, `leave`, `commit`,
//! `tick`) that each carry the current time `now` (ms). It never reads a clock, never does
//! I/O and never generates ids (the shell passes a fresh member id in with each join), so
//! every transition is table-testable. What the shell must do is returned as [`Effect`]s:
//! complete a parked JoinGroup/SyncGroup, persist the group, write offset tombstones.
//!
//! States and transitions follow Kafka's classic protocol (`GroupCoordinator.scala`):
//!
//! ```text
//!  Empty ──join──▶ PreparingRebalance ──all joined / deadline──▶ CompletingRebalance
//!    ▲                  ▲       │ (no member left)                   │ leader SyncGroup
//!    └──────────────────┼───────┘                                    ▼
//!                       └──── join / leave / session expiry ──── Stable
//!  any ──DeleteGroups / offsets expired──▶ Dead
//! ```

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

/// A group's state, named as Kafka names it in DescribeGroups/ListGroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Why a group operation was refused. [`GroupError::response_error`] is the one place these
/// become Kafka error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("member {0:?} is not a member of the group")]
    UnknownMemberId(String),
    #[error("generation {got} is not the group's current generation {current}")]
    IllegalGeneration { current: i32, got: i32 },
    #[error("the group is rebalancing; rejoin")]
    RebalanceInProgress,
    #[error("group.instance.id {0:?} is owned by another member id")]
    FencedInstanceId(String),
    #[error("no protocol in common with the group (or empty protocol type/list)")]
    InconsistentGroupProtocol,
    #[error("a member id was assigned ({0}); rejoin with it")]
    MemberIdRequired(String),
    #[error("session timeout {got} ms is outside [{min}, {max}] ms")]
    InvalidSessionTimeout { got: i32, min: i32, max: i32 },
    #[error("the group is being deleted")]
    Dead,
    #[error("the group does not exist")]
    GroupIdNotFound,
    #[error("the group still has members")]
    NonEmptyGroup,
    #[error("commit metadata is {len} bytes, the limit is {max}")]
    MetadataTooLarge { len: usize, max: usize },
    #[error("the group is subscribed to topic {0:?}")]
    SubscribedToTopic(String),
    #[error("group id must not be empty")]
    InvalidGroupId,
    /// The group's `__consumer_offsets` partition is led by another broker (or none yet).
    #[error("this broker is not the group's coordinator")]
    NotCoordinator,
}

impl GroupError {
    pub fn response_error(&self) -> ironlog_protocol::ResponseError {
        use ironlog_protocol::ResponseError as E;
        match self {
            GroupError::UnknownMemberId(_) => E::UnknownMemberId,
            GroupError::IllegalGeneration { .. } => E::IllegalGeneration,
            GroupError::RebalanceInProgress => E::RebalanceInProgress,
            GroupError::FencedInstanceId(_) => E::FencedInstanceId,
            GroupError::InconsistentGroupProtocol => E::InconsistentGroupProtocol,
            GroupError::MemberIdRequired(_) => E::MemberIdRequired,
            GroupError::InvalidSessionTimeout { .. } => E::InvalidSessionTimeout,
            GroupError::Dead => E::CoordinatorNotAvailable,
            GroupError::GroupIdNotFound => E::GroupIdNotFound,
            GroupError::NonEmptyGroup => E::NonEmptyGroup,
            GroupError::MetadataTooLarge { .. } => E::OffsetMetadataTooLarge,
            GroupError::SubscribedToTopic(_) => E::GroupSubscribedToTopic,
            GroupError::InvalidGroupId => E::InvalidGroupId,
            GroupError::NotCoordinator => E::NotCoordinator,
        }
    }
}

/// Broker-wide group settings (Kafka's `group.*` and `offsets.*` broker configs).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group
    /// waits for more members, so consumers started together share one rebalance.
    pub initial_rebalance_delay_ms: i64,
    /// `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub max_metadata_bytes: usize,
    /// How long a new member may wait in a join before it is dropped (Kafka: 5 minutes).
    pub new_member_join_timeout_ms: i64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            max_metadata_bytes: 4096,
            new_member_join_timeout_ms: 300_000,
        }
    }
}

/// A member of a group, as Kafka's `MemberMetadata`.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// `(protocol name, metadata)` in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    awaiting_join: bool,
    awaiting_sync: bool,
    last_heartbeat_ms: i64,
    is_new: bool,
}

impl MemberMetadata {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// A committed offset with its metadata string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// A JoinGroup as the core sees it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a dynamic member joining without an id gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
    /// The id this member gets if it needs a new one (made by the shell).
    pub new_member_id: String,
}

/// One member in the leader's JoinGroup response.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// What a JoinGroup answers.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinResult {
    pub error: Option<GroupError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub members: Vec<JoinMember>,
    pub skip_assignment: bool,
}

impl JoinResult {
    fn error(member_id: &str, error: GroupError) -> JoinResult {
        JoinResult {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// What a SyncGroup answers.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncResult {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    fn error(error: GroupError) -> SyncResult {
        SyncResult {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// The answer to a JoinGroup or SyncGroup: now, or later through an [`Effect`].
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<T> {
    Now(T),
    /// The shell parks the request under the member id until an effect completes it.
    Parked {
        member_id: String,
    },
}

/// Work for the shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    CompleteJoin {
        member_id: String,
        result: JoinResult,
    },
    CompleteSync {
        member_id: String,
        result: SyncResult,
    },
    /// Persist the group's metadata (members, generation, assignments).
    StoreGroup,
    /// Write tombstones for these committed offsets (they were removed from the group).
    DeleteOffsets(Vec<(String, i32)>),
    /// The group is gone: tombstone its metadata (its offsets come in `DeleteOffsets`).
    DeleteGroup,
    /// A rebalance started (for metrics).
    RebalanceStarted,
}

/// Offset-commit identity: who commits under which generation.
#[derive(Debug, Clone)]
pub struct CommitRequest<'a> {
    pub member_id: &'a str,
    pub group_instance_id: Option<&'a str>,
    pub generation_id: i32,
}

/// One consumer group: membership, generation, assignments and committed offsets.
#[derive(Debug, Clone)]
pub struct GroupMetadata {
    pub group_id: String,
    state: GroupState,
    state_since_ms: i64,
    generation_id: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader_id: Option<String>,
    members: BTreeMap<String, MemberMetadata>,
    /// group.instance.id → member id.
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    pending_members: HashMap<String, i64>,
    rebalance_deadline_ms: Option<i64>,
    /// While the first rebalance of an empty group waits for more members: the latest the
    /// wait may last.
    initial_delay_max_ms: Option<i64>,
    sync_deadline_ms: Option<i64>,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
}

/// The persistent part of a group (what `__consumer_offsets` stores).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSnapshot {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<StoredMember>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

impl GroupMetadata {
    pub fn new(group_id: impl Into<String>, now: i64) -> Self {
        GroupMetadata {
            group_id: group_id.into(),
            state: GroupState::Empty,
            state_since_ms: now,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_deadline_ms: None,
            initial_delay_max_ms: None,
            sync_deadline_ms: None,
            offsets: BTreeMap::new(),
        }
    }

    pub fn state(&self) -> GroupState {
        self.state
    }
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }
    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }
    pub fn members(&self) -> impl Iterator<Item = &MemberMetadata> {
        self.members.values()
    }
    pub fn member_count(&self) -> usize {
        self.members.len()
    }
    pub fn offsets(&self) -> &BTreeMap<(String, i32), CommittedOffset> {
        &self.offsets
    }
    pub fn offset(&self, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.offsets.get(&(topic.to_string(), partition))
    }
    /// The selected protocol's metadata of each member (subscriptions, for consumers).
    pub fn member_subscriptions(&self) -> Vec<Bytes> {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| m.metadata_for(&protocol))
            .collect()
    }

    /// Nothing worth keeping: no members and no offsets.
    pub fn is_removable(&self) -> bool {
        self.state == GroupState::Dead
            || (self.state == GroupState::Empty && self.offsets.is_empty())
    }

    fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    fn transition(&mut self, state: GroupState, now: i64) {
        self.state = state;
        self.state_since_ms = now;
    }

    fn is_fenced(&self, member_id: &str, instance: Option<&str>) -> bool {
        instance.is_some_and(|i| {
            self.static_members
                .get(i)
                .is_some_and(|owner| owner != member_id)
        })
    }

    /// Whether a member with these protocols could join (Kafka's `supportsProtocols`).
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }

    /// The protocol every member supports that most members prefer.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let mut votes: Vec<(&String, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(p, _)| candidates.contains(&p)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| *c == name) {
                    v.1 += 1;
                }
            }
        }
        // Highest vote wins; on a tie the first member's preference order decides.
        let best = votes.iter().map(|(_, n)| *n).max()?;
        votes
            .into_iter()
            .find(|(_, n)| *n == best)
            .map(|(c, _)| c.clone())
    }

    fn join_result_for(&self, member_id: &str, skip_assignment: bool) -> JoinResult {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let is_leader = self.leader_id.as_deref() == Some(member_id);
        JoinResult {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if is_leader {
                self.members
                    .values()
                    .map(|m| JoinMember {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        metadata: m.metadata_for(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            skip_assignment: is_leader && skip_assignment,
        }
    }

    // ---- JoinGroup ---------------------------------------------------------------------

    pub fn join(
        &mut self,
        config: &GroupConfig,
        req: JoinRequest,
        now: i64,
    ) -> (Reply<JoinResult>, Vec<Effect>) {
        let mut effects = Vec::new();
        fn refuse(member_id: &str, e: GroupError) -> (Reply<JoinResult>, Vec<Effect>) {
            (Reply::Now(JoinResult::error(member_id, e)), Vec::new())
        }
        if self.state == GroupState::Dead {
            return refuse(&req.member_id, GroupError::Dead);
        }
        if req.session_timeout_ms < config.min_session_timeout_ms
            || req.session_timeout_ms > config.max_session_timeout_ms
        {
            return refuse(
                &req.member_id,
                GroupError::InvalidSessionTimeout {
                    got: req.session_timeout_ms,
                    min: config.min_session_timeout_ms,
                    max: config.max_session_timeout_ms,
                },
            );
        }
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return refuse(&req.member_id, GroupError::InconsistentGroupProtocol);
        }
        if req.member_id.is_empty() {
            if let Some(instance) = req.group_instance_id.clone() {
                if let Some(old) = self.static_members.get(&instance).cloned() {
                    return self.replace_static_member(config, old, req, now);
                }
            } else if req.require_known_member_id {
                let id = req.new_member_id.clone();
                self.pending_members
                    .insert(id.clone(), now + i64::from(req.session_timeout_ms));
                return (
                    Reply::Now(JoinResult::error(
                        &id,
                        GroupError::MemberIdRequired(id.clone()),
                    )),
                    effects,
                );
            }
            let id = req.new_member_id.clone();
            return self.add_member_and_rebalance(id, req, now, config);
        }
        if self.pending_members.remove(&req.member_id).is_some() {
            let id = req.member_id.clone();
            return self.add_member_and_rebalance(id, req, now, config);
        }
        if self.is_fenced(&req.member_id, req.group_instance_id.as_deref()) {
            return refuse(
                &req.member_id,
                GroupError::FencedInstanceId(req.group_instance_id.clone().unwrap_or_default()),
            );
        }
        let Some(member) = self.members.get(&req.member_id) else {
            return refuse(
                &req.member_id,
                GroupError::UnknownMemberId(req.member_id.clone()),
            );
        };
        let same_protocols = member.protocols == req.protocols;
        let is_leader = self.leader_id.as_deref() == Some(req.member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member(&req, now);
                effects.extend(self.try_complete_join(now));
                (
                    Reply::Parked {
                        member_id: req.member_id,
                    },
                    effects,
                )
            }
            GroupState::CompletingRebalance if same_protocols => {
                // A retry of a join whose response was lost: answer with this generation.
                (
                    Reply::Now(self.join_result_for(&req.member_id, false)),
                    effects,
                )
            }
            GroupState::Stable if same_protocols && !is_leader => (
                Reply::Now(self.join_result_for(&req.member_id, false)),
                effects,
            ),
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member(&req, now);
                effects.extend(self.prepare_rebalance(config, now));
                effects.extend(self.try_complete_join(now));
                (
                    Reply::Parked {
                        member_id: req.member_id,
                    },
                    effects,
                )
            }
            GroupState::Empty | GroupState::Dead => refuse(
                &req.member_id,
                GroupError::UnknownMemberId(req.member_id.clone()),
            ),
        }
    }

    fn update_member(&mut self, req: &JoinRequest, now: i64) {
        if let Some(m) = self.members.get_mut(&req.member_id) {
            m.protocols = req.protocols.clone();
            m.session_timeout_ms = req.session_timeout_ms;
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            m.client_id = req.client_id.clone();
            m.client_host = req.client_host.clone();
            m.awaiting_join = true;
            m.last_heartbeat_ms = now;
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        req: JoinRequest,
        now: i64,
        config: &GroupConfig,
    ) -> (Reply<JoinResult>, Vec<Effect>) {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        self.members.insert(
            member_id.clone(),
            MemberMetadata {
                member_id: member_id.clone(),
                group_instance_id: req.group_instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                protocols: req.protocols,
                assignment: Bytes::new(),
                awaiting_join: true,
                awaiting_sync: false,
                last_heartbeat_ms: now,
                is_new: true,
            },
        );
        let mut effects = Vec::new();
        if self.state == GroupState::PreparingRebalance {
            if let Some(max) = self.initial_delay_max_ms {
                // A new member during the initial delay: wait a little longer for more.
                self.rebalance_deadline_ms =
                    Some((now + config.initial_rebalance_delay_ms).min(max));
            }
        } else {
            effects.extend(self.prepare_rebalance(config, now));
        }
        effects.extend(self.try_complete_join(now));
        (Reply::Parked { member_id }, effects)
    }

    fn replace_static_member(
        &mut self,
        config: &GroupConfig,
        old_id: String,
        req: JoinRequest,
        now: i64,
    ) -> (Reply<JoinResult>, Vec<Effect>) {
        let mut effects = Vec::new();
        let new_id = req.new_member_id.clone();
        let Some(mut member) = self.members.remove(&old_id) else {
            return (
                Reply::Now(JoinResult::error("", GroupError::UnknownMemberId(old_id))),
                effects,
            );
        };
        let instance = req.group_instance_id.clone().unwrap_or_default();
        if member.awaiting_join {
            effects.push(Effect::CompleteJoin {
                member_id: old_id.clone(),
                result: JoinResult::error(&old_id, GroupError::FencedInstanceId(instance.clone())),
            });
        }
        if member.awaiting_sync {
            effects.push(Effect::CompleteSync {
                member_id: old_id.clone(),
                result: SyncResult::error(GroupError::FencedInstanceId(instance.clone())),
            });
        }
        member.protocols = req.protocols.clone();
        member.member_id = new_id.clone();
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        member.last_heartbeat_ms = now;
        member.awaiting_join = false;
        member.awaiting_sync = false;
        self.members.insert(new_id.clone(), member);
        self.static_members.insert(instance, new_id.clone());
        if self.leader_id.as_deref() == Some(old_id.as_str()) {
            self.leader_id = Some(new_id.clone());
        }
        match self.state {
            GroupState::Stable if self.select_protocol() == self.protocol_name => {
                // Same protocol next generation: no rebalance; the member syncs and gets
                // its old assignment back.
                effects.push(Effect::StoreGroup);
                (Reply::Now(self.join_result_for(&new_id, true)), effects)
            }
            GroupState::PreparingRebalance => {
                if let Some(m) = self.members.get_mut(&new_id) {
                    m.awaiting_join = true;
                }
                effects.extend(self.try_complete_join(now));
                (Reply::Parked { member_id: new_id }, effects)
            }
            _ => {
                if let Some(m) = self.members.get_mut(&new_id) {
                    m.awaiting_join = true;
                }
                effects.extend(self.prepare_rebalance(config, now));
                effects.extend(self.try_complete_join(now));
                (Reply::Parked { member_id: new_id }, effects)
            }
        }
    }

    fn prepare_rebalance(&mut self, config: &GroupConfig, now: i64) -> Vec<Effect> {
        let mut effects = vec![Effect::RebalanceStarted];
        if self.state == GroupState::CompletingRebalance {
            // Members waiting for their assignment must rejoin instead.
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if m.awaiting_sync {
                    m.awaiting_sync = false;
                    effects.push(Effect::CompleteSync {
                        member_id: m.member_id.clone(),
                        result: SyncResult::error(GroupError::RebalanceInProgress),
                    });
                }
            }
        }
        let timeout = self.rebalance_timeout_ms();
        if self.state == GroupState::Empty {
            self.initial_delay_max_ms = Some(now + timeout);
            self.rebalance_deadline_ms = Some(now + config.initial_rebalance_delay_ms.min(timeout));
        } else {
            self.initial_delay_max_ms = None;
            self.rebalance_deadline_ms = Some(now + timeout);
        }
        self.sync_deadline_ms = None;
        self.transition(GroupState::PreparingRebalance, now);
        effects
    }

    /// Completes the join phase once every member has rejoined (never during the initial
    /// delay, which always runs to its deadline).
    fn try_complete_join(&mut self, now: i64) -> Vec<Effect> {
        let all_joined =
            self.members.values().all(|m| m.awaiting_join) && self.pending_members.is_empty();
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay_max_ms.is_none()
            && all_joined
        {
            self.complete_join(now)
        } else {
            Vec::new()
        }
    }

    fn complete_join(&mut self, now: i64) -> Vec<Effect> {
        let mut effects = Vec::new();
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join)
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.rebalance_deadline_ms = None;
        self.initial_delay_max_ms = None;
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader_id = None;
            self.transition(GroupState::Empty, now);
            effects.push(Effect::StoreGroup);
            return effects;
        }
        self.protocol_name = self.select_protocol();
        if !self
            .leader_id
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.transition(GroupState::CompletingRebalance, now);
        self.sync_deadline_ms = Some(now + self.rebalance_timeout_ms());
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            if let Some(m) = self.members.get_mut(&id) {
                m.awaiting_join = false;
                m.is_new = false;
                m.last_heartbeat_ms = now;
                m.assignment = Bytes::new();
            }
            effects.push(Effect::CompleteJoin {
                result: self.join_result_for(&id, false),
                member_id: id,
            });
        }
        effects
    }

    fn remove_member(&mut self, member_id: &str) -> Option<MemberMetadata> {
        let m = self.members.remove(member_id)?;
        if let Some(i) = &m.group_instance_id {
            if self.static_members.get(i).map(String::as_str) == Some(member_id) {
                self.static_members.remove(i);
            }
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = None;
        }
        Some(m)
    }

    /// Removes a member (left or expired) and moves the group on (Kafka's
    /// `removeMemberAndUpdateGroup`).
    fn remove_member_and_update(
        &mut self,
        config: &GroupConfig,
        member_id: &str,
        now: i64,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(m) = self.remove_member(member_id) else {
            return effects;
        };
        if m.awaiting_join {
            effects.push(Effect::CompleteJoin {
                member_id: member_id.to_string(),
                result: JoinResult::error(member_id, GroupError::UnknownMemberId(member_id.into())),
            });
        }
        if m.awaiting_sync {
            effects.push(Effect::CompleteSync {
                member_id: member_id.to_string(),
                result: SyncResult::error(GroupError::UnknownMemberId(member_id.into())),
            });
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                effects.extend(self.prepare_rebalance(config, now));
                effects.extend(self.try_complete_join(now));
            }
            GroupState::PreparingRebalance => effects.extend(self.try_complete_join(now)),
            GroupState::Empty | GroupState::Dead => {}
        }
        effects
    }

    // ---- SyncGroup ---------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: i64,
    ) -> (Reply<SyncResult>, Vec<Effect>) {
        let fail = |e| (Reply::Now(SyncResult::error(e)), Vec::new());
        if self.state == GroupState::Dead {
            return fail(GroupError::Dead);
        }
        if self.is_fenced(member_id, group_instance_id) {
            return fail(GroupError::FencedInstanceId(
                group_instance_id.unwrap_or_default().into(),
            ));
        }
        if !self.members.contains_key(member_id) {
            return fail(GroupError::UnknownMemberId(member_id.into()));
        }
        if generation_id != self.generation_id {
            return fail(GroupError::IllegalGeneration {
                current: self.generation_id,
                got: generation_id,
            });
        }
        if protocol_type.is_some_and(|p| Some(p) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|p| Some(p) != self.protocol_name.as_deref())
        {
            return fail(GroupError::InconsistentGroupProtocol);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                fail(GroupError::UnknownMemberId(member_id.into()))
            }
            GroupState::PreparingRebalance => fail(GroupError::RebalanceInProgress),
            GroupState::Stable => (Reply::Now(self.sync_result_for(member_id)), Vec::new()),
            GroupState::CompletingRebalance => {
                let mut effects = Vec::new();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.awaiting_sync = true;
                    m.last_heartbeat_ms = now;
                }
                if self.leader_id.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.member_id).unwrap_or_default();
                    }
                    self.sync_deadline_ms = None;
                    self.transition(GroupState::Stable, now);
                    effects.push(Effect::StoreGroup);
                    let waiting: Vec<String> = self
                        .members
                        .values()
                        .filter(|m| m.awaiting_sync)
                        .map(|m| m.member_id.clone())
                        .collect();
                    for id in waiting {
                        if let Some(m) = self.members.get_mut(&id) {
                            m.awaiting_sync = false;
                        }
                        effects.push(Effect::CompleteSync {
                            result: self.sync_result_for(&id),
                            member_id: id,
                        });
                    }
                }
                (
                    Reply::Parked {
                        member_id: member_id.to_string(),
                    },
                    effects,
                )
            }
        }
    }

    fn sync_result_for(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    // ---- Heartbeat / LeaveGroup ------------------------------------------------------

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now: i64,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::Dead);
        }
        if self.is_fenced(member_id, group_instance_id) {
            return Err(GroupError::FencedInstanceId(
                group_instance_id.unwrap_or_default().into(),
            ));
        }
        let current = self.generation_id;
        let state = self.state;
        let Some(m) = self.members.get_mut(member_id) else {
            return Err(GroupError::UnknownMemberId(member_id.into()));
        };
        if generation_id != current {
            return Err(GroupError::IllegalGeneration {
                current,
                got: generation_id,
            });
        }
        m.last_heartbeat_ms = now;
        match state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::Empty => Err(GroupError::UnknownMemberId(member_id.into())),
            _ => Ok(()),
        }
    }

    /// LeaveGroup for a batch of members: one result per `(member id, instance id)`.
    pub fn leave(
        &mut self,
        config: &GroupConfig,
        leaving: &[(String, Option<String>)],
        now: i64,
    ) -> (Vec<Result<(), GroupError>>, Vec<Effect>) {
        let mut effects = Vec::new();
        let mut results = Vec::with_capacity(leaving.len());
        for (member_id, instance) in leaving {
            if self.state == GroupState::Dead {
                results.push(Err(GroupError::Dead));
                continue;
            }
            let id = match instance {
                Some(i) => match self.static_members.get(i) {
                    None => {
                        results.push(Err(GroupError::UnknownMemberId(member_id.clone())));
                        continue;
                    }
                    Some(owner) if !member_id.is_empty() && owner != member_id => {
                        results.push(Err(GroupError::FencedInstanceId(i.clone())));
                        continue;
                    }
                    Some(owner) => owner.clone(),
                },
                None => member_id.clone(),
            };
            if self.pending_members.remove(&id).is_some() {
                results.push(Ok(()));
                effects.extend(self.try_complete_join(now));
                continue;
            }
            if !self.members.contains_key(&id) {
                results.push(Err(GroupError::UnknownMemberId(id)));
                continue;
            }
            effects.extend(self.remove_member_and_update(config, &id, now));
            results.push(Ok(()));
        }
        (results, effects)
    }

    // ---- Timers ------------------------------------------------------------------------

    /// Expires sessions, pending member ids and offsets, and ends rebalance phases whose
    /// deadline passed.
    pub fn tick(&mut self, config: &GroupConfig, now: i64) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.state == GroupState::Dead {
            return effects;
        }
        let expired_pending: Vec<String> = self
            .pending_members
            .iter()
            .filter(|(_, deadline)| now > **deadline)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired_pending {
            self.pending_members.remove(&id);
            effects.extend(self.try_complete_join(now));
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                let keep = if m.awaiting_join {
                    !m.is_new || now <= m.last_heartbeat_ms + config.new_member_join_timeout_ms
                } else if m.awaiting_sync {
                    true
                } else {
                    now <= m.last_heartbeat_ms + i64::from(m.session_timeout_ms)
                };
                !keep
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.group_id, member = %id, "member session expired");
            effects.extend(self.remove_member_and_update(config, &id, now));
        }
        if self.state == GroupState::PreparingRebalance
            && self.rebalance_deadline_ms.is_some_and(|d| now >= d)
        {
            effects.extend(self.complete_join(now));
        }
        if self.state == GroupState::CompletingRebalance
            && self.sync_deadline_ms.is_some_and(|d| now >= d)
        {
            // The leader never sent the assignment: drop the members that did not sync
            // and rebalance again.
            let unsynced: Vec<String> = self
                .members
                .values()
                .filter(|m| !m.awaiting_sync)
                .map(|m| m.member_id.clone())
                .collect();
            for id in &unsynced {
                self.remove_member(id);
            }
            effects.extend(self.prepare_rebalance(config, now));
            effects.extend(self.try_complete_join(now));
        }
        effects.extend(self.expire_offsets(config, now));
        effects
    }

    /// Kafka ≥ 2.1 rules: a consumer group's offsets expire `offsets.retention.minutes`
    /// after it became empty; a group without a protocol (standalone commits) expires each
    /// offset that long after its commit.
    fn expire_offsets(&mut self, config: &GroupConfig, now: i64) -> Vec<Effect> {
        let retention = config.offsets_retention_ms;
        let expired: Vec<(String, i32)> = match (self.state, &self.protocol_type) {
            (GroupState::Empty, Some(_)) if now - self.state_since_ms > retention => {
                self.offsets.keys().cloned().collect()
            }
            (_, None) => self
                .offsets
                .iter()
                .filter(|(_, o)| now - o.commit_timestamp_ms > retention)
                .map(|(k, _)| k.clone())
                .collect(),
            _ => Vec::new(),
        };
        if expired.is_empty() {
            return Vec::new();
        }
        for k in &expired {
            self.offsets.remove(k);
        }
        let mut effects = vec![Effect::DeleteOffsets(expired)];
        if self.state == GroupState::Empty && self.offsets.is_empty() {
            self.transition(GroupState::Dead, now);
            effects.push(Effect::DeleteGroup);
        }
        effects
    }

    // ---- Offsets -----------------------------------------------------------------------

    /// Checks that `req` may commit offsets now (Kafka's `doCommitOffsets` checks). A commit
    /// counts as a heartbeat.
    pub fn validate_commit(&mut self, req: &CommitRequest<'_>, now: i64) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::Dead);
        }
        if self.is_fenced(req.member_id, req.group_instance_id) {
            return Err(GroupError::FencedInstanceId(
                req.group_instance_id.unwrap_or_default().into(),
            ));
        }
        if req.generation_id < 0 && self.state == GroupState::Empty {
            return Ok(()); // a standalone or admin commit
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        let current = self.generation_id;
        let Some(m) = self.members.get_mut(req.member_id) else {
            return Err(GroupError::UnknownMemberId(req.member_id.into()));
        };
        if req.generation_id != current {
            return Err(GroupError::IllegalGeneration {
                current,
                got: req.generation_id,
            });
        }
        m.last_heartbeat_ms = now;
        Ok(())
    }

    /// Records offsets that are now durable.
    pub fn apply_commit(&mut self, offsets: Vec<((String, i32), CommittedOffset)>) {
        self.offsets.extend(offsets);
    }

    /// Removes offsets (OffsetDelete / a replayed tombstone); returns those that existed.
    pub fn remove_offsets(&mut self, partitions: &[(String, i32)]) -> Vec<(String, i32)> {
        partitions
            .iter()
            .filter(|k| self.offsets.remove(*k).is_some())
            .cloned()
            .collect()
    }

    /// DeleteGroups: only an empty group can go.
    pub fn delete(&mut self, now: i64) -> Result<Vec<Effect>, GroupError> {
        match self.state {
            GroupState::Dead => Err(GroupError::GroupIdNotFound),
            GroupState::Empty => {
                let offsets: Vec<(String, i32)> = self.offsets.keys().cloned().collect();
                self.offsets.clear();
                self.transition(GroupState::Dead, now);
                Ok(vec![Effect::DeleteOffsets(offsets), Effect::DeleteGroup])
            }
            _ => Err(GroupError::NonEmptyGroup),
        }
    }

    // ---- Persistence ---------------------------------------------------------------------

    pub fn snapshot(&self) -> GroupSnapshot {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupSnapshot {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp_ms: self.state_since_ms,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Restores a group from its stored metadata. Members come back as a Stable group and
    /// get one session timeout from `now` to heartbeat, as after a coordinator failover.
    pub fn restore(&mut self, snapshot: GroupSnapshot, now: i64) {
        self.generation_id = snapshot.generation_id;
        self.protocol_type = (!snapshot.protocol_type.is_empty()).then_some(snapshot.protocol_type);
        self.protocol_name = snapshot.protocol_name.clone();
        self.leader_id = snapshot.leader;
        self.members.clear();
        self.static_members.clear();
        let protocol = snapshot.protocol_name.unwrap_or_default();
        for m in snapshot.members {
            if let Some(i) = &m.group_instance_id {
                self.static_members.insert(i.clone(), m.member_id.clone());
            }
            self.members.insert(
                m.member_id.clone(),
                MemberMetadata {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: vec![(protocol.clone(), m.subscription)],
                    assignment: m.assignment,
                    awaiting_join: false,
                    awaiting_sync: false,
                    last_heartbeat_ms: now,
                    is_new: false,
                },
            );
        }
        let state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        self.state = state;
        self.state_since_ms = if state == GroupState::Empty {
            snapshot.current_state_timestamp_ms.min(now)
        } else {
            now
        };
    }
}

#[cfg(test)]
mod tests;
