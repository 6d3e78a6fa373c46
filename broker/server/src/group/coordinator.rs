//! The I/O shell around [`GroupMetadata`]: the group map, parked JoinGroup/SyncGroup
//! responses (oneshot channels), appends to `__consumer_offsets`, loading and unloading,
//! and the timer tick.
//!
//! A broker coordinates the groups whose `__consumer_offsets` partition it leads, as in
//! Kafka: [`GroupCoordinator::follow_metadata`] loads a partition's groups when this broker
//! becomes its leader and drops them when it stops being the leader; requests for other
//! groups are answered NOT_COORDINATOR, and the client asks FindCoordinator again.
//!
//! Why one `std::sync::Mutex` over all groups: every operation is short and never awaits
//! while holding it; the append to `__consumer_offsets` happens under it so that the order
//! of records in the log is the order in which the state changed (replay gives the same
//! state). Handlers await the returned oneshot receivers outside the lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use ironlog_protocol::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use ironlog_storage::batch;
use ironlog_storage::records::{RecordDecoder, DEFAULT_MAX_UNCOMPRESSED_BYTES};
use tokio::sync::oneshot;

use super::metadata::{
    CommitRequest, CommittedOffset, Effect, GroupConfig, GroupError, GroupMetadata, GroupState,
    JoinRequest, JoinResult, Reply, SyncResult,
};
use super::offsets::{self, OffsetsRecord, OFFSETS_TOPIC};
use crate::metrics::GroupMetrics;
use crate::replica_manager::{read, ReplicaError, ReplicaManager};

/// Kafka's `offsets.topic.num.partitions` default.
pub const DEFAULT_OFFSETS_PARTITIONS: i32 = 50;

/// Why the coordinator could not do its I/O.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error("{OFFSETS_TOPIC}: {0}")]
    Replica(#[from] ReplicaError),
    #[error("{OFFSETS_TOPIC} partition {partition}: cannot encode records: {reason}")]
    Encode { partition: i32, reason: String },
    #[error("{OFFSETS_TOPIC} partition {partition} at offset {offset}: {reason}")]
    Load {
        partition: i32,
        offset: i64,
        reason: String,
    },
}

/// A JoinGroup/SyncGroup answer that is ready or will be.
pub enum Pending<T> {
    Ready(T),
    Wait(oneshot::Receiver<T>),
}

/// Per-partition outcome of an OffsetDelete.
pub type DeleteResult = ((String, i32), Result<(), GroupError>);

/// Per-partition outcome of an offset commit.
pub type PartitionResult = ((String, i32), Result<(), CommitError>);

/// Where a coordinator's write landed in `__consumer_offsets`: an OffsetCommit is answered
/// once the partition's ISR has it ([`Partition::wait_for_replication`]).
pub struct Appended {
    pub partition: std::sync::Arc<crate::partition::Partition>,
    pub last_offset: i64,
    pub leader_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    Group(GroupError),
    /// The append to `__consumer_offsets` failed (a retriable coordinator error).
    Storage,
}

/// What DescribeGroups shows of a group.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Default)]
struct Inner {
    /// `__consumer_offsets`' partition count (0 until the topic exists).
    partitions: i32,
    /// The `__consumer_offsets` partitions this broker leads and has loaded.
    led: BTreeSet<i32>,
    groups: HashMap<String, GroupMetadata>,
    parked_joins: HashMap<(String, String), oneshot::Sender<JoinResult>>,
    parked_syncs: HashMap<(String, String), oneshot::Sender<SyncResult>>,
}

pub struct GroupCoordinator {
    config: GroupConfig,
    metrics: GroupMetrics,
    inner: Mutex<Inner>,
}

impl Inner {
    fn partition_for(&self, group: &str) -> Option<i32> {
        (self.partitions > 0).then(|| offsets::partition_for(group, self.partitions))
    }

    fn owns(&self, group: &str) -> Result<(), GroupError> {
        match self.partition_for(group) {
            Some(p) if self.led.contains(&p) => Ok(()),
            _ => Err(GroupError::NotCoordinator),
        }
    }
}

impl GroupCoordinator {
    /// A coordinator of no groups yet: see [`GroupCoordinator::follow_metadata`].
    pub fn new(config: GroupConfig, metrics: GroupMetrics) -> GroupCoordinator {
        GroupCoordinator {
            config,
            metrics,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The `__consumer_offsets` partition of `group` (what FindCoordinator is about), once
    /// the topic exists.
    pub fn partition_for(&self, group: &str) -> Option<i32> {
        self.lock().partition_for(group)
    }

    /// `Err(NotCoordinator)` unless this broker coordinates `group`.
    pub fn check_coordinator(&self, group: &str) -> Result<(), GroupError> {
        self.lock().owns(group)
    }

    /// Loads the groups of `__consumer_offsets` partitions this broker has become the
    /// leader of and unloads those of partitions it no longer leads (their members'
    /// pending joins and syncs are answered NOT_COORDINATOR).
    pub fn follow_metadata(
        &self,
        replicas: &ReplicaManager,
        image: &ironlog_metadata::MetadataImage,
        now: i64,
    ) {
        let node = replicas.node_id();
        let (partitions, led): (i32, BTreeSet<i32>) = match image.topic(OFFSETS_TOPIC) {
            Some(t) => (
                t.partitions,
                t.assignments
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.leader == node)
                    .map(|(i, _)| i as i32)
                    .collect(),
            ),
            None => (0, BTreeSet::new()),
        };
        let mut inner = self.lock();
        if inner.partitions != partitions {
            // Created, or deleted and created again: start over.
            inner.led.clear();
            inner.groups.clear();
            inner.parked_joins.clear();
            inner.parked_syncs.clear();
            inner.partitions = partitions;
        }
        let lost: Vec<i32> = inner.led.difference(&led).copied().collect();
        let gained: Vec<i32> = led.difference(&inner.led).copied().collect();
        for partition in &lost {
            let partition = *partition;
            let before = inner.groups.len();
            inner
                .groups
                .retain(|g, _| offsets::partition_for(g, partitions) != partition);
            inner
                .parked_joins
                .retain(|(g, _), _| offsets::partition_for(g, partitions) != partition);
            inner
                .parked_syncs
                .retain(|(g, _), _| offsets::partition_for(g, partitions) != partition);
            inner.led.remove(&partition);
            tracing::info!(
                partition,
                groups = before - inner.groups.len(),
                "no longer coordinating the groups of {OFFSETS_TOPIC} partition"
            );
        }
        for partition in gained {
            match self.load_partition(&mut inner, replicas, partition, now) {
                Ok(records) => {
                    inner.led.insert(partition);
                    tracing::info!(
                        partition,
                        records,
                        "coordinating the groups of {OFFSETS_TOPIC} partition"
                    );
                }
                Err(e) => tracing::error!(partition, error = %e,
                    "cannot load {OFFSETS_TOPIC} partition; its groups stay unavailable until the next metadata change"),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic mid-operation leaves a group possibly half-updated but structurally
        // valid; refusing every later group request would be worse.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replays one `__consumer_offsets` partition into the group map; returns the records
    /// read.
    fn load_partition(
        &self,
        inner: &mut Inner,
        replicas: &ReplicaManager,
        partition: i32,
        now: i64,
    ) -> Result<u64, CoordinatorError> {
        let mut records = 0u64;
        let mut decoder = RecordDecoder::new(DEFAULT_MAX_UNCOMPRESSED_BYTES);
        {
            let log = replicas.log(OFFSETS_TOPIC, partition)?;
            let log = read(&log);
            let mut offset = log.log_start_offset();
            let end = log.log_end_offset();
            while offset < end {
                let chunk =
                    log.read(offset, 1 << 20, true)
                        .map_err(|e| CoordinatorError::Load {
                            partition,
                            offset,
                            reason: e.to_string(),
                        })?;
                if chunk.data.is_empty() {
                    break;
                }
                // Records are read with the bounded decoder: counts and lengths are checked
                // against the bytes present and compressed batches inflate under a cap, so
                // a damaged or hostile batch in this topic can't take the broker down at
                // start-up.
                let load_error = |reason: String| CoordinatorError::Load {
                    partition,
                    offset,
                    reason,
                };
                let data = &chunk.data[..];
                let mut next = offset;
                let mut position = 0;
                while position < data.len() {
                    let rest = &data[position..];
                    let size = match batch::check_header(rest, position, rest.len()) {
                        Ok(size) => size,
                        Err(batch::BatchError::Truncated { .. }) => break,
                        Err(e) => return Err(load_error(e.to_string())),
                    };
                    let batch_records = decoder
                        .records(&rest[..size], position)
                        .map_err(|e| load_error(e.to_string()))?;
                    let control = batch_records.header().is_control();
                    for record in batch_records {
                        let record = record.map_err(|e| load_error(e.to_string()))?;
                        next = next.max(record.offset + 1);
                        if record.offset < offset || control {
                            continue;
                        }
                        let Some(key) = record.key else { continue };
                        match offsets::decode(key, record.value) {
                            Ok(r) => {
                                records += 1;
                                replay(&mut inner.groups, r, now);
                            }
                            Err(e) => tracing::warn!(partition, offset = record.offset, error = %e,
                                "skipping a record of __consumer_offsets this broker cannot read"),
                        }
                    }
                    position += size;
                }
                if next <= offset {
                    break; // no progress: nothing decodable past here
                }
                offset = next;
            }
        }
        inner.groups.retain(|_, g| !g.is_removable());
        Ok(records)
    }

    // ---- Group membership -----------------------------------------------------------

    pub fn join(
        &self,
        replicas: &ReplicaManager,
        group_id: &str,
        req: JoinRequest,
        now: i64,
    ) -> Pending<JoinResult> {
        let mut inner = self.lock();
        if let Err(e) = inner.owns(group_id) {
            return Pending::Ready(JoinResult {
                error: Some(e),
                generation_id: -1,
                protocol_type: None,
                protocol_name: None,
                leader: String::new(),
                member_id: req.member_id.clone(),
                members: Vec::new(),
                skip_assignment: false,
            });
        }
        let group = inner
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| GroupMetadata::new(group_id, now));
        let (reply, effects) = group.join(&self.config, req, now);
        let pending = match reply {
            Reply::Now(result) => Pending::Ready(result),
            Reply::Parked { member_id } => {
                let (tx, rx) = oneshot::channel();
                let key = (group_id.to_string(), member_id.clone());
                if let Some(old) = inner.parked_joins.insert(key, tx) {
                    // A retried join supersedes the one still waiting.
                    let _ = old.send(JoinResult {
                        error: Some(GroupError::RebalanceInProgress),
                        generation_id: -1,
                        protocol_type: None,
                        protocol_name: None,
                        leader: String::new(),
                        member_id,
                        members: Vec::new(),
                        skip_assignment: false,
                    });
                }
                Pending::Wait(rx)
            }
        };
        self.apply(&mut inner, replicas, group_id, effects, now);
        pending
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &self,
        replicas: &ReplicaManager,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: i64,
    ) -> Pending<SyncResult> {
        let mut inner = self.lock();
        if let Err(e) = inner.owns(group_id) {
            return Pending::Ready(SyncResult {
                error: Some(e),
                protocol_type: None,
                protocol_name: None,
                assignment: Bytes::new(),
            });
        }
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Pending::Ready(SyncResult {
                error: Some(GroupError::UnknownMemberId(member_id.into())),
                protocol_type: None,
                protocol_name: None,
                assignment: Bytes::new(),
            });
        };
        let (reply, effects) = group.sync(
            member_id,
            group_instance_id,
            generation_id,
            protocol_type,
            protocol_name,
            assignments,
            now,
        );
        let pending = match reply {
            Reply::Now(result) => Pending::Ready(result),
            Reply::Parked { member_id } => {
                let (tx, rx) = oneshot::channel();
                inner
                    .parked_syncs
                    .insert((group_id.to_string(), member_id), tx);
                Pending::Wait(rx)
            }
        };
        self.apply(&mut inner, replicas, group_id, effects, now);
        pending
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now: i64,
    ) -> Result<(), GroupError> {
        let mut inner = self.lock();
        inner.owns(group_id)?;
        match inner.groups.get_mut(group_id) {
            None => Err(GroupError::UnknownMemberId(member_id.into())),
            Some(g) => g.heartbeat(member_id, group_instance_id, generation_id, now),
        }
    }

    /// LeaveGroup: `Err` for the whole request (unknown group), else one result per member.
    pub fn leave(
        &self,
        replicas: &ReplicaManager,
        group_id: &str,
        members: &[(String, Option<String>)],
        now: i64,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let mut inner = self.lock();
        inner.owns(group_id)?;
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Err(GroupError::UnknownMemberId(
                members.first().map(|m| m.0.clone()).unwrap_or_default(),
            ));
        };
        let (results, effects) = group.leave(&self.config, members, now);
        self.apply(&mut inner, replicas, group_id, effects, now);
        Ok(results)
    }

    /// Runs every group's timers (session expiry, rebalance deadlines, offset retention).
    pub fn tick(&self, replicas: &ReplicaManager, now: i64) {
        let mut inner = self.lock();
        let ids: Vec<String> = inner.groups.keys().cloned().collect();
        for id in ids {
            let Some(group) = inner.groups.get_mut(&id) else {
                continue;
            };
            let effects = group.tick(&self.config, now);
            if !effects.is_empty() {
                self.apply(&mut inner, replicas, &id, effects, now);
            }
        }
        inner.groups.retain(|_, g| g.state() != GroupState::Dead);
    }

    /// Carries out the core's effects. Called with the lock held.
    fn apply(
        &self,
        inner: &mut Inner,
        replicas: &ReplicaManager,
        group_id: &str,
        effects: Vec<Effect>,
        now: i64,
    ) {
        for effect in effects {
            match effect {
                Effect::CompleteJoin { member_id, result } => {
                    if let Some(tx) = inner
                        .parked_joins
                        .remove(&(group_id.to_string(), member_id))
                    {
                        let _ = tx.send(result);
                    }
                }
                Effect::CompleteSync { member_id, result } => {
                    if let Some(tx) = inner
                        .parked_syncs
                        .remove(&(group_id.to_string(), member_id))
                    {
                        let _ = tx.send(result);
                    }
                }
                Effect::StoreGroup => {
                    if let Some(g) = inner.groups.get(group_id) {
                        let value = offsets::group_value(&g.snapshot());
                        let record = (offsets::group_key(group_id), Some(value));
                        if let Err(e) =
                            self.append(replicas, inner.partition_for(group_id), vec![record], now)
                        {
                            tracing::error!(group = group_id, error = %e,
                                "could not persist group metadata; it will be stored again at the next change");
                        }
                    }
                }
                Effect::DeleteOffsets(partitions) => {
                    let records = partitions
                        .iter()
                        .map(|(t, p)| (offsets::offset_key(group_id, t, *p), None))
                        .collect::<Vec<_>>();
                    if !records.is_empty() {
                        if let Err(e) =
                            self.append(replicas, inner.partition_for(group_id), records, now)
                        {
                            tracing::error!(group = group_id, error = %e, "could not write offset tombstones");
                        }
                    }
                }
                Effect::DeleteGroup => {
                    let record = (offsets::group_key(group_id), None);
                    if let Err(e) =
                        self.append(replicas, inner.partition_for(group_id), vec![record], now)
                    {
                        tracing::error!(group = group_id, error = %e, "could not write group tombstone");
                    }
                }
                Effect::RebalanceStarted => {
                    self.metrics.rebalances.with_label_values(&[group_id]).inc();
                    tracing::debug!(group = group_id, "rebalance started");
                }
            }
        }
    }

    /// Appends `(key, value)` records to a group's `__consumer_offsets` partition as one
    /// uncompressed batch.
    fn append(
        &self,
        replicas: &ReplicaManager,
        partition: Option<i32>,
        records: Vec<(Bytes, Option<Bytes>)>,
        now: i64,
    ) -> Result<Appended, CoordinatorError> {
        let partition = partition.ok_or_else(|| {
            CoordinatorError::Replica(ReplicaError::UnknownTopic(OFFSETS_TOPIC.into()))
        })?;
        let records: Vec<Record> = records
            .into_iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: -1,
                timestamp: now,
                key: Some(key),
                value,
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| CoordinatorError::Encode {
            partition,
            reason: e.to_string(),
        })?;
        // Appended as with acks=1; OffsetCommit then waits for the ISR (see `Appended`).
        let (info, leader_epoch, partition) =
            replicas.append(OFFSETS_TOPIC, partition, &mut buf, 1)?;
        Ok(Appended {
            partition,
            last_offset: info.last_offset,
            leader_epoch,
        })
    }

    // ---- Offsets --------------------------------------------------------------------

    /// OffsetCommit: validates the committer, appends the offsets durably, then makes them
    /// visible. `Err` for a group-level refusal.
    pub fn commit_offsets(
        &self,
        replicas: &ReplicaManager,
        group_id: &str,
        req: &CommitRequest<'_>,
        offsets_in: Vec<((String, i32), CommittedOffset)>,
        now: i64,
    ) -> Result<(Vec<PartitionResult>, Option<Appended>), GroupError> {
        let mut inner = self.lock();
        inner.owns(group_id)?;
        let group = inner
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| GroupMetadata::new(group_id, now));
        let validation = group.validate_commit(req, now);
        if let Err(e) = validation {
            if group.is_removable() {
                inner.groups.remove(group_id);
            }
            return Err(e);
        }
        let max = self.config.max_metadata_bytes;
        let mut results = Vec::with_capacity(offsets_in.len());
        let mut accepted = Vec::new();
        for (tp, o) in offsets_in {
            if o.metadata.len() > max {
                results.push((
                    tp,
                    Err(CommitError::Group(GroupError::MetadataTooLarge {
                        len: o.metadata.len(),
                        max,
                    })),
                ));
            } else {
                accepted.push((tp, o));
            }
        }
        if accepted.is_empty() {
            return Ok((results, None));
        }
        let records = accepted
            .iter()
            .map(|((t, p), o)| {
                (
                    offsets::offset_key(group_id, t, *p),
                    Some(offsets::offset_value(o)),
                )
            })
            .collect();
        match self.append(replicas, inner.partition_for(group_id), records, now) {
            Ok(appended) => {
                for (tp, _) in &accepted {
                    results.push((tp.clone(), Ok(())));
                }
                if let Some(g) = inner.groups.get_mut(group_id) {
                    g.apply_commit(accepted);
                }
                Ok((results, Some(appended)))
            }
            Err(e) => {
                tracing::error!(group = group_id, error = %e, "offset commit not stored");
                for (tp, _) in accepted {
                    results.push((tp, Err(CommitError::Storage)));
                }
                Ok((results, None))
            }
        }
    }

    /// OffsetFetch: committed offsets of `partitions` (all of the group's when `None`).
    /// Partitions without a commit are absent from the map.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> BTreeMap<(String, i32), CommittedOffset> {
        let inner = self.lock();
        let Some(group) = inner.groups.get(group_id) else {
            return BTreeMap::new();
        };
        match partitions {
            None => group.offsets().clone(),
            Some(ps) => ps
                .iter()
                .filter_map(|tp| group.offsets().get(tp).map(|o| (tp.clone(), o.clone())))
                .collect(),
        }
    }

    /// OffsetDelete: removes committed offsets of topics the group does not subscribe to.
    /// `subscribed` decodes a member's subscription into topic names.
    pub fn delete_offsets(
        &self,
        replicas: &ReplicaManager,
        group_id: &str,
        partitions: &[(String, i32)],
        subscribed: impl Fn(&Bytes) -> Vec<String>,
        now: i64,
    ) -> Result<Vec<DeleteResult>, GroupError> {
        let mut inner = self.lock();
        inner.owns(group_id)?;
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Err(GroupError::GroupIdNotFound);
        };
        if group.state() == GroupState::Dead {
            return Err(GroupError::GroupIdNotFound);
        }
        let topics: Vec<String> = if group.state() == GroupState::Empty {
            Vec::new()
        } else {
            group
                .member_subscriptions()
                .iter()
                .flat_map(&subscribed)
                .collect()
        };
        let mut results = Vec::new();
        let mut removable = Vec::new();
        for tp in partitions {
            if topics.contains(&tp.0) {
                results.push((tp.clone(), Err(GroupError::SubscribedToTopic(tp.0.clone()))));
            } else {
                removable.push(tp.clone());
                results.push((tp.clone(), Ok(())));
            }
        }
        let removed = group.remove_offsets(&removable);
        self.apply(
            &mut inner,
            replicas,
            group_id,
            vec![Effect::DeleteOffsets(removed)],
            now,
        );
        Ok(results)
    }

    // ---- Admin ----------------------------------------------------------------------

    /// `(group id, protocol type, state)` of every group.
    pub fn list_groups(&self) -> Vec<(String, String, GroupState)> {
        let inner = self.lock();
        let mut groups: Vec<_> = inner
            .groups
            .values()
            .filter(|g| g.state() != GroupState::Dead)
            .map(|g| {
                (
                    g.group_id.clone(),
                    g.protocol_type().unwrap_or_default().to_string(),
                    g.state(),
                )
            })
            .collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        groups
    }

    /// DescribeGroups; an unknown group describes as Dead with no members, as in Kafka.
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let inner = self.lock();
        let Some(g) = inner.groups.get(group_id) else {
            return GroupDescription {
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol_name: String::new(),
                members: Vec::new(),
            };
        };
        let protocol = g.protocol_name().unwrap_or_default().to_string();
        let stable = g.state() == GroupState::Stable;
        GroupDescription {
            state: g.state(),
            protocol_type: g.protocol_type().unwrap_or_default().to_string(),
            protocol_name: protocol.clone(),
            members: g
                .members()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m
                        .protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .map(|(_, b)| b.clone())
                        .unwrap_or_default(),
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }

    /// DeleteGroups for one group.
    pub fn delete_group(
        &self,
        replicas: &ReplicaManager,
        group_id: &str,
        now: i64,
    ) -> Result<(), GroupError> {
        let mut inner = self.lock();
        inner.owns(group_id)?;
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Err(GroupError::GroupIdNotFound);
        };
        let effects = group.delete(now)?;
        self.apply(&mut inner, replicas, group_id, effects, now);
        inner.groups.remove(group_id);
        self.metrics.forget_group(group_id);
        Ok(())
    }

    /// Refreshes the lag and member gauges: lag = log end offset − committed offset.
    pub fn update_metrics(&self, replicas: &ReplicaManager) {
        type GroupLagInput = (String, usize, Vec<((String, i32), i64)>);
        let snapshot: Vec<GroupLagInput> = {
            let inner = self.lock();
            inner
                .groups
                .values()
                .map(|g| {
                    (
                        g.group_id.clone(),
                        g.member_count(),
                        g.offsets()
                            .iter()
                            .map(|(tp, o)| (tp.clone(), o.offset))
                            .collect(),
                    )
                })
                .collect()
        };
        self.metrics.lag.reset();
        self.metrics.members.reset();
        for (group, members, offsets) in snapshot {
            self.metrics
                .members
                .with_label_values(&[group.as_str()])
                .set(members as i64);
            for ((topic, partition), committed) in offsets {
                let Ok(hosted) = replicas.partition(&topic, partition) else {
                    continue;
                };
                let end = hosted.high_watermark();
                let p = partition.to_string();
                self.metrics
                    .lag
                    .with_label_values(&[group.as_str(), topic.as_str(), p.as_str()])
                    .set((end - committed).max(0));
            }
        }
    }
}

/// Applies one replayed record to the group map.
fn replay(groups: &mut HashMap<String, GroupMetadata>, record: OffsetsRecord, now: i64) {
    match record {
        OffsetsRecord::Offset {
            group,
            topic,
            partition,
            value,
        } => {
            let g = groups
                .entry(group.clone())
                .or_insert_with(|| GroupMetadata::new(group, now));
            match value {
                Some(o) => g.apply_commit(vec![((topic, partition), o)]),
                None => {
                    g.remove_offsets(&[(topic, partition)]);
                }
            }
        }
        OffsetsRecord::Group { group, value } => match value {
            Some(snapshot) => groups
                .entry(group.clone())
                .or_insert_with(|| GroupMetadata::new(group, now))
                .restore(snapshot, now),
            None => {
                // The group was deleted; offsets after this record start a new group.
                if let Some(old) = groups.remove(&group) {
                    let mut fresh = GroupMetadata::new(group.clone(), now);
                    fresh.apply_commit(
                        old.offsets()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    );
                    groups.insert(group, fresh);
                }
            }
        },
    }
}
