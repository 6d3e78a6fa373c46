//! One replica of one partition on this broker: its log, its idempotent producers, its
//! role (leader, follower, offline) at a leader epoch, the ISR and the high watermark.
//! Handlers talk to a `Partition`, never to a `Log` and its lock directly.
//!
//! # Roles
//! The role comes from the metadata image ([`Partition::apply_metadata`]):
//! - **Leader** at epoch E: appends stamp E in each batch's partition leader epoch and the
//!   log's leader-epoch cache records where E began. Followers' Fetches (with a replica id)
//!   report their log end offsets; the [`ReplicaSet`] turns them into the high watermark
//!   and ISR changes, which are proposed to the controller with the partition epoch
//!   (AlterPartition) and take effect once committed.
//! - **Follower** of broker L at epoch E: the replica fetcher asks L where this log's
//!   latest epoch ends on L (OffsetForLeaderEpoch), truncates what diverges, then appends
//!   what it fetches with the leader's offsets and epochs. Its high watermark is the
//!   leader's, capped by its own log end.
//! - **Offline**: no leader; nothing is served or fetched.
//!
//! # Invariants
//! - Consumers read below the high watermark only; acks=all is answered once the high
//!   watermark passes the append (every ISR member has it), so any replica the controller
//!   may elect holds every acknowledged record.
//! - The high watermark never moves back while this broker leads at one epoch.
//! - Lock order: the log's lock, then `state`, then `producers`. A leader append checks
//!   the role under the log's write lock, so no append lands after the role changed.
//! - Waiters for acks=all watch [`HighWatermark`]; a change of leader epoch or role fails
//!   them with NOT_LEADER_OR_FOLLOWER (their records may be truncated by the new leader).

pub mod replica_set;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ironlog_metadata::{BrokerId, PartitionState, NO_LEADER};
use ironlog_storage::batch::BatchHeader;
use ironlog_storage::{AppendInfo, Log, LogError, LogHandle, LogValidator, ReadResult};
use tokio::sync::watch;

use crate::producer_state::{Check, PartitionProducers, ProducerBatch};
use crate::replica_manager::{read, write, ReplicaError};
pub use replica_set::ReplicaSet;

/// What a partition serves now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower(BrokerId),
    Offline,
}

/// The high watermark with the leadership it belongs to; acks=all waiters watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HighWatermark {
    pub offset: i64,
    pub leader_epoch: i32,
    pub leading: bool,
}

/// What [`Partition::apply_metadata`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Unchanged,
    /// Same leadership, new replicas or ISR.
    Membership,
    BecameLeader {
        unclean: bool,
    },
    BecameFollower(BrokerId),
    WentOffline,
}

/// An ISR change for the controller (AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<BrokerId>,
}

/// A consumer's (or a follower's) read.
#[derive(Debug)]
pub struct PartitionRead {
    pub result: ReadResult,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

#[derive(Debug)]
struct State {
    role: Role,
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: Vec<BrokerId>,
    /// The committed ISR, from the image.
    isr: Vec<BrokerId>,
    min_insync_replicas: usize,
    /// Leader: the followers' progress. `None` unless leading.
    replica_set: Option<ReplicaSet>,
    /// Follower: the high watermark as last heard from the leader.
    follower_high_watermark: i64,
    /// Follower: the log must be reconciled with the leader before fetching.
    needs_truncation: bool,
}

pub struct Partition {
    topic: String,
    index: i32,
    node_id: BrokerId,
    log: LogHandle,
    state: Mutex<State>,
    producers: Mutex<PartitionProducers>,
    high_watermark: watch::Sender<HighWatermark>,
    /// Bumped after appends and high-watermark moves: long-polling Fetches wait on it.
    activity: Arc<watch::Sender<u64>>,
    /// The log end offset of the last producer snapshot written.
    last_snapshot: Mutex<Option<i64>>,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Partition({}-{})", self.topic, self.index)
    }
}

impl Partition {
    /// A replica on `log`, offline until the first [`Partition::apply_metadata`].
    /// `checkpointed_high_watermark` is the last one written before a restart.
    pub fn open(
        topic: &str,
        index: i32,
        node_id: BrokerId,
        log: LogHandle,
        checkpointed_high_watermark: Option<i64>,
        activity: Arc<watch::Sender<u64>>,
    ) -> Self {
        let (producers, high_watermark) = {
            let log = read(&log);
            let hw = checkpointed_high_watermark
                .unwrap_or(0)
                .clamp(log.log_start_offset(), log.log_end_offset());
            (recover_producer_state(&log), hw)
        };
        Partition {
            topic: topic.to_string(),
            index,
            node_id,
            log,
            state: Mutex::new(State {
                role: Role::Offline,
                leader_epoch: -1,
                partition_epoch: -1,
                replicas: Vec::new(),
                isr: Vec::new(),
                min_insync_replicas: 1,
                replica_set: None,
                follower_high_watermark: high_watermark,
                needs_truncation: false,
            }),
            producers: Mutex::new(producers),
            high_watermark: watch::channel(HighWatermark {
                offset: high_watermark,
                leader_epoch: -1,
                leading: false,
            })
            .0,
            activity,
            last_snapshot: Mutex::new(None),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn index(&self) -> i32 {
        self.index
    }

    /// Snapshots the idempotent producers if the log moved since the last snapshot
    /// (called periodically and at shutdown).
    pub fn snapshot_producers(&self) -> std::io::Result<()> {
        let log = read(&self.log);
        let offset = log.log_end_offset();
        let mut last = self.last_snapshot.lock().unwrap_or_else(|e| e.into_inner());
        if *last == Some(offset) {
            return Ok(());
        }
        let mut producers = self.producers().clone();
        producers.expire_below(log.log_start_offset());
        if producers.is_empty() && last.is_none() {
            *last = Some(offset);
            return Ok(());
        }
        write_producer_snapshot(log.dir(), &ProducerSnapshot { offset, producers })?;
        *last = Some(offset);
        Ok(())
    }

    fn discard_producer_snapshot(&self, log: &Log) {
        let path = log.dir().join(PRODUCER_SNAPSHOT_FILE);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove the producer snapshot");
            }
        }
        *self.last_snapshot.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The log, for what only reads or maintains it (retention, the cleaner, metrics).
    pub fn log(&self) -> &LogHandle {
        &self.log
    }

    /// Whether appends fsync (`flush.messages` set): they then run off the async workers.
    pub fn fsyncs_on_append(&self) -> bool {
        read(&self.log).config().flush_messages.is_some()
    }

    pub fn role(&self) -> Role {
        self.state().role
    }

    pub fn leader_epoch(&self) -> i32 {
        self.state().leader_epoch
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.borrow().offset
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn producers(&self) -> MutexGuard<'_, PartitionProducers> {
        self.producers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn not_leader(&self) -> ReplicaError {
        ReplicaError::NotLeader {
            topic: self.topic.clone(),
            partition: self.index,
        }
    }

    fn log_error(&self, source: LogError) -> ReplicaError {
        ReplicaError::Log {
            topic: self.topic.clone(),
            partition: self.index,
            source,
        }
    }

    fn publish_high_watermark(&self, state: &State) {
        let value = HighWatermark {
            offset: match &state.replica_set {
                Some(set) if state.role == Role::Leader => set.high_watermark(),
                _ => state.follower_high_watermark,
            },
            leader_epoch: state.leader_epoch,
            leading: state.role == Role::Leader,
        };
        let moved = self.high_watermark.send_if_modified(|hw| {
            let changed = *hw != value;
            *hw = value;
            changed
        });
        if moved {
            self.notify_activity();
        }
    }

    fn notify_activity(&self) {
        self.activity.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Follows the partition's committed state. Becoming leader starts a new leader epoch
    /// in the log at its end; becoming follower (or a new epoch of the leader) marks the
    /// log for truncation against the new leader.
    pub fn apply_metadata(
        &self,
        meta: &PartitionState,
        min_insync_replicas: usize,
        now_ms: i64,
    ) -> Result<Transition, ReplicaError> {
        let role = if meta.leader == self.node_id {
            Role::Leader
        } else if meta.leader == NO_LEADER {
            Role::Offline
        } else {
            Role::Follower(meta.leader)
        };
        let min_insync_replicas = min_insync_replicas.max(1);
        {
            // Most metadata changes are about other partitions: answer those without
            // taking the log's lock.
            let state = self.state();
            if state.role == role
                && state.leader_epoch == meta.leader_epoch
                && state.partition_epoch == meta.partition_epoch
                && state.min_insync_replicas == min_insync_replicas
            {
                return Ok(Transition::Unchanged);
            }
        }
        let mut log = write(&self.log);
        let mut state = self.state();
        state.min_insync_replicas = min_insync_replicas;
        let same_leadership = state.role == role && state.leader_epoch == meta.leader_epoch;
        if same_leadership && state.partition_epoch == meta.partition_epoch {
            return Ok(Transition::Unchanged);
        }
        state.partition_epoch = meta.partition_epoch;
        state.replicas = meta.replicas.clone();
        state.isr = meta.isr.clone();
        let leader_end = log.log_end_offset();
        if same_leadership {
            if let Some(set) = state.replica_set.as_mut() {
                set.update_membership(&meta.replicas, &meta.isr, now_ms);
                set.advance_high_watermark(leader_end);
            }
            self.publish_high_watermark(&state);
            return Ok(Transition::Membership);
        }
        let was_leading = state.role == Role::Leader;
        let high_watermark = match &state.replica_set {
            Some(set) => set.high_watermark(),
            None => state.follower_high_watermark,
        };
        state.role = role;
        state.leader_epoch = meta.leader_epoch;
        let transition = match role {
            Role::Leader => {
                log.assign_leader_epoch(meta.leader_epoch, leader_end)
                    .map_err(|e| self.log_error(e))?;
                let mut set = ReplicaSet::new(
                    self.node_id,
                    &meta.replicas,
                    &meta.isr,
                    high_watermark,
                    leader_end,
                    now_ms,
                );
                set.advance_high_watermark(leader_end);
                state.replica_set = Some(set);
                state.needs_truncation = false;
                Transition::BecameLeader {
                    unclean: meta.recovering,
                }
            }
            Role::Follower(leader) => {
                state.replica_set = None;
                state.follower_high_watermark = high_watermark.min(leader_end);
                state.needs_truncation = true;
                Transition::BecameFollower(leader)
            }
            Role::Offline => {
                state.replica_set = None;
                state.follower_high_watermark = high_watermark.min(leader_end);
                Transition::WentOffline
            }
        };
        if was_leading && role != Role::Leader {
            tracing::info!(topic = %self.topic, partition = self.index,
                leader_epoch = meta.leader_epoch, ?role, "no longer the leader");
        }
        self.publish_high_watermark(&state);
        Ok(transition)
    }

    /// Checks a Fetch's or ListOffsets' `current_leader_epoch` (-1: not given) against
    /// this leader's: older → FENCED_LEADER_EPOCH, newer → UNKNOWN_LEADER_EPOCH.
    fn check_leader(&self, state: &State, current_leader_epoch: i32) -> Result<(), ReplicaError> {
        if state.role != Role::Leader {
            return Err(self.not_leader());
        }
        if current_leader_epoch >= 0 && current_leader_epoch != state.leader_epoch {
            return Err(ReplicaError::LeaderEpoch {
                topic: self.topic.clone(),
                partition: self.index,
                ours: state.leader_epoch,
                theirs: current_leader_epoch,
            });
        }
        Ok(())
    }

    /// Appends a producer's batches as the leader, all or nothing (validation outside the
    /// log's lock; producer checks, epoch stamping and the write under it). `acks` -1
    /// refuses with NOT_ENOUGH_REPLICAS when the ISR is below `min.insync.replicas`.
    /// Returns the append and the leader epoch it was made in (for
    /// [`Partition::wait_for_replication`]).
    pub fn append_as_leader(
        &self,
        records: &mut [u8],
        acks: i16,
        now_ms: i64,
    ) -> Result<(AppendInfo, i32), ReplicaError> {
        let validator = LogValidator::new(read(&self.log).config());
        let records = validator
            .validate(records, &mut validator.decoder(), now_ms)
            .map_err(|source| ReplicaError::InvalidRecords {
                topic: self.topic.clone(),
                partition: self.index,
                source,
            })?;
        let mut log = write(&self.log);
        let mut state = self.state();
        if state.role != Role::Leader {
            return Err(self.not_leader());
        }
        if acks == -1 && state.isr.len() < state.min_insync_replicas {
            return Err(ReplicaError::NotEnoughReplicas {
                topic: self.topic.clone(),
                partition: self.index,
                isr: state.isr.len(),
                min: state.min_insync_replicas,
                after_append: false,
            });
        }
        let epoch = state.leader_epoch;
        let producer = producer_batch(&records);
        let mut producers = self.producers();
        if let Some(batch) = &producer {
            match producers.check(batch) {
                Check::Append => {}
                Check::Duplicate {
                    first_offset,
                    last_offset,
                } => {
                    tracing::debug!(topic = %self.topic, partition = self.index,
                        producer_id = batch.producer_id, "duplicate batch not appended again");
                    return Ok((
                        AppendInfo {
                            first_offset,
                            last_offset,
                            log_append_time: -1,
                            max_timestamp: -1,
                            offset_of_max_timestamp: last_offset,
                            record_count: 0,
                            bytes: 0,
                        },
                        epoch,
                    ));
                }
                Check::OutOfOrder { expected, got } => {
                    return Err(ReplicaError::OutOfOrderSequence {
                        producer_id: batch.producer_id,
                        expected,
                        got,
                    })
                }
                Check::FencedEpoch { current, got } => {
                    return Err(ReplicaError::InvalidProducerEpoch {
                        producer_id: batch.producer_id,
                        current,
                        got,
                    })
                }
            }
        }
        let info = log
            .append_validated(records, Some(epoch), now_ms)
            .map_err(|e| self.log_error(e))?;
        if let Some(batch) = &producer {
            producers.record(batch, info.first_offset, info.last_offset);
        }
        drop(producers);
        if let Some(set) = state.replica_set.as_mut() {
            set.advance_high_watermark(log.log_end_offset());
        }
        self.publish_high_watermark(&state);
        self.notify_activity();
        Ok((info, epoch))
    }

    /// Waits until the high watermark passes `last_offset` (every ISR member has the
    /// append) in leader epoch `epoch`, for at most `timeout`. Then the ISR must still
    /// hold `min.insync.replicas` members (else NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    pub async fn wait_for_replication(
        &self,
        last_offset: i64,
        epoch: i32,
        timeout: Duration,
    ) -> Result<(), ReplicaError> {
        let mut hw = self.high_watermark.subscribe();
        let wait =
            hw.wait_for(|hw| !hw.leading || hw.leader_epoch != epoch || hw.offset > last_offset);
        let reached = match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(hw)) => *hw,
            Ok(Err(_)) => return Err(self.not_leader()),
            Err(_) => {
                return Err(ReplicaError::ReplicationTimeout {
                    topic: self.topic.clone(),
                    partition: self.index,
                    timeout_ms: timeout.as_millis() as u64,
                })
            }
        };
        if !reached.leading || reached.leader_epoch != epoch {
            return Err(self.not_leader());
        }
        let state = self.state();
        if state.isr.len() < state.min_insync_replicas {
            return Err(ReplicaError::NotEnoughReplicas {
                topic: self.topic.clone(),
                partition: self.index,
                isr: state.isr.len(),
                min: state.min_insync_replicas,
                after_append: true,
            });
        }
        Ok(())
    }

    /// A consumer's read: up to the high watermark, as the leader.
    pub fn read_for_consumer(
        &self,
        fetch_offset: i64,
        max_bytes: u64,
        min_one_batch: bool,
        current_leader_epoch: i32,
    ) -> Result<PartitionRead, ReplicaError> {
        let log = read(&self.log);
        let high_watermark = {
            let state = self.state();
            self.check_leader(&state, current_leader_epoch)?;
            self.high_watermark()
        };
        // An offset between the high watermark and the log end is valid, just not
        // readable yet (Kafka answers it with no records).
        let result = if fetch_offset >= high_watermark && fetch_offset <= log.log_end_offset() {
            ReadResult {
                data: bytes::Bytes::new(),
                first_batch_offset: None,
                log_start_offset: log.log_start_offset(),
                log_end_offset: log.log_end_offset(),
            }
        } else {
            log.read_up_to(fetch_offset, max_bytes, min_one_batch, Some(high_watermark))
                .map_err(|e| self.log_error(e))?
        };
        Ok(PartitionRead {
            result,
            high_watermark,
            log_start_offset: log.log_start_offset(),
        })
    }

    /// A follower's Fetch: reads up to the log end, and records the follower's progress
    /// (its fetch offset is its log end). Returns what to propose if the follower has
    /// caught up and may join the ISR.
    pub fn read_for_follower(
        &self,
        replica: BrokerId,
        fetch_offset: i64,
        max_bytes: u64,
        current_leader_epoch: i32,
        now_ms: i64,
    ) -> Result<(PartitionRead, Option<IsrChange>), ReplicaError> {
        let log = read(&self.log);
        let leader_end = log.log_end_offset();
        let mut state = self.state();
        self.check_leader(&state, current_leader_epoch)?;
        let (leader_epoch, partition_epoch) = (state.leader_epoch, state.partition_epoch);
        let set = state
            .replica_set
            .as_mut()
            .ok_or_else(|| self.not_leader())?;
        if !set.record_fetch(replica, fetch_offset.min(leader_end), leader_end, now_ms) {
            return Err(ReplicaError::NotReplica {
                topic: self.topic.clone(),
                partition: self.index,
                replica,
            });
        }
        set.advance_high_watermark(leader_end);
        let expand = set.expand_candidate(replica).map(|isr| {
            set.set_pending(isr.clone());
            IsrChange {
                leader_epoch,
                partition_epoch,
                isr,
            }
        });
        let high_watermark = set.high_watermark();
        self.publish_high_watermark(&state);
        drop(state);
        let result = log
            .read_up_to(fetch_offset, max_bytes, true, None)
            .map_err(|e| self.log_error(e))?;
        Ok((
            PartitionRead {
                result,
                high_watermark,
                log_start_offset: log.log_start_offset(),
            },
            expand,
        ))
    }

    /// As leader: the followers not caught up within `lag_max_ms`, as an ISR change.
    pub fn shrink_isr_candidate(&self, now_ms: i64, lag_max_ms: i64) -> Option<IsrChange> {
        let mut state = self.state();
        let (leader_epoch, partition_epoch) = (state.leader_epoch, state.partition_epoch);
        let set = state.replica_set.as_mut()?;
        let isr = set.shrink_candidate(now_ms, lag_max_ms)?;
        set.set_pending(isr.clone());
        Some(IsrChange {
            leader_epoch,
            partition_epoch,
            isr,
        })
    }

    /// As leader after an unclean election: the ISR as it is, to commit (which ends the
    /// recovery state).
    pub fn current_isr_change(&self) -> Option<IsrChange> {
        let mut state = self.state();
        let (leader_epoch, partition_epoch, isr) =
            (state.leader_epoch, state.partition_epoch, state.isr.clone());
        let set = state.replica_set.as_mut()?;
        if set.pending().is_some() {
            return None;
        }
        set.set_pending(isr.clone());
        Some(IsrChange {
            leader_epoch,
            partition_epoch,
            isr,
        })
    }

    /// A proposed ISR change was refused or could not be committed.
    pub fn isr_change_failed(&self) {
        if let Some(set) = self.state().replica_set.as_mut() {
            set.clear_pending();
        }
    }

    /// (ISR size, replica count, min.insync.replicas, follower lag in records, in ms) as
    /// leader; `None` otherwise.
    pub fn replication_status(&self, now_ms: i64) -> Option<(usize, usize, usize, i64, i64)> {
        let end = read(&self.log).log_end_offset();
        let state = self.state();
        let set = state.replica_set.as_ref()?;
        let (records, ms) = set.max_lag(end, now_ms);
        Some((
            state.isr.len(),
            state.replicas.len(),
            state.min_insync_replicas,
            records,
            ms,
        ))
    }

    /// OffsetForLeaderEpoch as leader: `(epoch, end offset)` of the largest epoch ≤
    /// `epoch` in this log, `(-1, -1)` if none.
    pub fn end_offset_for_epoch(
        &self,
        epoch: i32,
        current_leader_epoch: i32,
    ) -> Result<(i32, i64), ReplicaError> {
        let log = read(&self.log);
        self.check_leader(&self.state(), current_leader_epoch)?;
        Ok(log.end_offset_for_epoch(epoch))
    }

    // ---- follower side -------------------------------------------------------------

    /// As follower: `(leader, leader epoch, needs truncation, latest epoch in the log,
    /// log end)`; `None` unless following.
    pub fn follower_position(&self) -> Option<FollowerPosition> {
        let log = read(&self.log);
        let state = self.state();
        let Role::Follower(leader) = state.role else {
            return None;
        };
        Some(FollowerPosition {
            leader,
            leader_epoch: state.leader_epoch,
            needs_truncation: state.needs_truncation,
            latest_epoch: log.latest_epoch(),
            log_end_offset: log.log_end_offset(),
            log_start_offset: log.log_start_offset(),
        })
    }

    /// Reconciles this follower's log with the leader's answer to OffsetForLeaderEpoch
    /// for our latest epoch: `(leader's epoch, its end offset)`. Truncates to the smaller
    /// of the leader's end offset and where that epoch ends here. `None` (our log has no
    /// epochs: written before leader epochs, or empty) truncates to the high watermark.
    /// Ignored if the leadership changed since `leader_epoch`.
    pub fn truncate_to_leader(
        &self,
        leader_epoch: i32,
        answer: Option<(i32, i64)>,
    ) -> Result<(), ReplicaError> {
        let mut log = write(&self.log);
        let mut state = self.state();
        if !matches!(state.role, Role::Follower(_)) || state.leader_epoch != leader_epoch {
            return Ok(());
        }
        let end = log.log_end_offset();
        let target = match answer {
            Some((epoch, offset)) if epoch >= 0 && offset >= 0 => {
                let ours = if Some(epoch) == log.latest_epoch() {
                    end
                } else {
                    log.end_offset_for_epoch(epoch).1
                };
                offset.min(if ours < 0 { end } else { ours })
            }
            _ => state.follower_high_watermark.min(end),
        };
        if target < end {
            let new_end = log.truncate_to(target).map_err(|e| self.log_error(e))?;
            tracing::info!(topic = %self.topic, partition = self.index, leader_epoch,
                from = end, to = new_end, "truncated records the new leader does not have");
            // A snapshot taken above the new end describes records that are gone.
            self.discard_producer_snapshot(&log);
            *self.producers() = recover_producer_state(&log);
            state.follower_high_watermark = state.follower_high_watermark.min(new_end);
        }
        state.needs_truncation = false;
        self.publish_high_watermark(&state);
        Ok(())
    }

    /// A fetched append did not fit our log: reconcile with the leader again before the
    /// next fetch.
    pub fn request_truncation(&self, leader_epoch: i32) {
        let mut state = self.state();
        if matches!(state.role, Role::Follower(_)) && state.leader_epoch == leader_epoch {
            state.needs_truncation = true;
        }
    }

    /// The leader's log no longer has our fetch offset: it starts above our end
    /// (retention, DeleteRecords). Starts this log over at `leader_log_start`.
    pub fn restart_at(&self, leader_epoch: i32, leader_log_start: i64) -> Result<(), ReplicaError> {
        let mut log = write(&self.log);
        let state = self.state();
        if !matches!(state.role, Role::Follower(_)) || state.leader_epoch != leader_epoch {
            return Ok(());
        }
        if leader_log_start > log.log_end_offset() {
            log.truncate_fully_and_start_at(leader_log_start)
                .map_err(|e| self.log_error(e))?;
            self.discard_producer_snapshot(&log);
            *self.producers() = PartitionProducers::default();
            tracing::info!(topic = %self.topic, partition = self.index, start = leader_log_start,
                "our log ends below the leader's log start: started over at it");
        }
        Ok(())
    }

    /// Appends what the leader sent, keeping its offsets and epochs, and takes the
    /// leader's high watermark (capped by our log end) and log start offset.
    pub fn append_as_follower(
        &self,
        leader_epoch: i32,
        records: &[u8],
        leader_high_watermark: i64,
        leader_log_start: i64,
        now_ms: i64,
    ) -> Result<AppendInfo, ReplicaError> {
        let mut log = write(&self.log);
        let mut state = self.state();
        if !matches!(state.role, Role::Follower(_))
            || state.leader_epoch != leader_epoch
            || state.needs_truncation
        {
            return Err(self.not_leader());
        }
        let start = log.log_end_offset();
        let info = log
            .append_as_follower(records, now_ms)
            .map_err(|e| self.log_error(e))?;
        if info.record_count > 0 {
            let mut producers = self.producers();
            for_each_producer_batch(records, |batch, first, last| {
                if last >= start {
                    producers.record(&batch, first, last);
                }
            });
        }
        if leader_log_start > log.log_start_offset() && leader_log_start <= log.log_end_offset() {
            log.delete_records_before(leader_log_start)
                .map_err(|e| self.log_error(e))?;
        }
        state.follower_high_watermark = leader_high_watermark.min(log.log_end_offset());
        self.publish_high_watermark(&state);
        Ok(info)
    }
}

/// A follower's position, for the replica fetcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerPosition {
    pub leader: BrokerId,
    pub leader_epoch: i32,
    pub needs_truncation: bool,
    pub latest_epoch: Option<i32>,
    pub log_end_offset: i64,
    pub log_start_offset: i64,
}

/// The producer snapshot file in a partition directory (see [`crate::producer_state`]).
pub const PRODUCER_SNAPSHOT_FILE: &str = "producer-state.snapshot";

#[derive(serde::Serialize, serde::Deserialize)]
struct ProducerSnapshot {
    /// The log end offset the snapshot was taken at: it covers every batch below it.
    offset: i64,
    producers: PartitionProducers,
}

/// Rebuilds idempotent producers' recent batches, so a producer retrying a batch that was
/// appended just before a crash, a restart or a failover gets the original offsets
/// instead of a duplicate, and an idle producer's next sequence is checked. From the
/// snapshot if it is at or below the log end (and not below the log start), then the
/// batch headers after it; without a usable snapshot, from the last two segments.
pub fn recover_producer_state(log: &Log) -> PartitionProducers {
    let snapshot = std::fs::read(log.dir().join(PRODUCER_SNAPSHOT_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<ProducerSnapshot>(&bytes).ok())
        .filter(|s| s.offset <= log.log_end_offset() && s.offset >= log.log_start_offset());
    let (mut state, from) = match snapshot {
        Some(s) => (s.producers, s.offset),
        None => {
            let bases = log.segment_base_offsets();
            let from = bases
                .iter()
                .rev()
                .nth(1)
                .or(bases.last())
                .copied()
                .unwrap_or(0);
            (PartitionProducers::default(), from)
        }
    };
    let mut offset = from.max(log.log_start_offset());
    while offset < log.log_end_offset() {
        let data = match log.read(offset, 1 << 20, true) {
            Ok(read) if !read.data.is_empty() => read.data,
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(dir = %log.dir().display(), error = %e, "stopped rebuilding producer state");
                break;
            }
        };
        let mut next = offset;
        for_each_batch_header(&data, |header| {
            next = header.last_offset() + 1;
            if let Some(batch) = stored_producer_batch(header) {
                if header.last_offset() >= offset {
                    state.record(&batch, header.base_offset(), header.last_offset());
                }
            }
        });
        if next <= offset {
            break;
        }
        offset = next;
    }
    state
}

/// Writes the producer snapshot (temp file, fsync, rename, directory fsync).
fn write_producer_snapshot(
    dir: &std::path::Path,
    snapshot: &ProducerSnapshot,
) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(snapshot).map_err(std::io::Error::other)?;
    ironlog_storage::write_atomically(&dir.join(PRODUCER_SNAPSHOT_FILE), &bytes)
}

fn for_each_batch_header(data: &[u8], mut f: impl FnMut(&BatchHeader<'_>)) {
    let Ok(batches) = ironlog_storage::parse_batches(data) else {
        return;
    };
    for info in &batches {
        let Some(header) = BatchHeader::new(&data[info.range()]) else {
            break;
        };
        f(&header);
    }
}

/// Calls `f(batch, first offset, last offset)` for each batch of an idempotent producer
/// in `data` (control batches skipped).
fn for_each_producer_batch(data: &[u8], mut f: impl FnMut(ProducerBatch, i64, i64)) {
    for_each_batch_header(data, |header| {
        if let Some(batch) = stored_producer_batch(header) {
            f(batch, header.base_offset(), header.last_offset());
        }
    });
}

/// The idempotence fields of one stored batch; `None` for non-idempotent producers and
/// control batches.
fn stored_producer_batch(header: &BatchHeader<'_>) -> Option<ProducerBatch> {
    (header.producer_id() >= 0 && !header.is_control()).then(|| sequence_range(header, header))
}

/// Producer id and epoch from `first`, the sequences from `first` to the end of `last`.
fn sequence_range(first: &BatchHeader<'_>, last: &BatchHeader<'_>) -> ProducerBatch {
    ProducerBatch {
        producer_id: first.producer_id(),
        epoch: first.producer_epoch(),
        first_sequence: first.base_sequence(),
        last_sequence: last.base_sequence().wrapping_add(last.last_offset_delta()),
    }
}

/// The idempotence fields of an append: producer id and epoch from the first batch, the
/// sequence range from the first to the last batch. `None` for non-idempotent producers
/// (producer id -1).
fn producer_batch(records: &ironlog_storage::ValidatedRecords<'_>) -> Option<ProducerBatch> {
    let header = |b: &ironlog_storage::ValidBatch| BatchHeader::new(&records.bytes()[b.range()]);
    let first = header(records.batches().first()?)?;
    if first.producer_id() < 0 {
        return None;
    }
    let last = header(records.batches().last()?)?;
    Some(sequence_range(&first, &last))
}
