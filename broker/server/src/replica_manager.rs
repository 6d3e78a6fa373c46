//! The partitions this broker hosts: topic lifecycle (create, grow, reconfigure, delete) on
//! top of the metadata store and the log manager, and the append/read paths the Produce and
//! Fetch handlers use.
//!
//! Topic changes are proposed to the metadata quorum ([`crate::cluster`]); this broker's
//! logs follow the applied image: [`ReplicaManager::sync_logs`] creates the logs of
//! partitions assigned to this broker and deletes the others, whenever the image changes.
//! Produce, Fetch and ListOffsets are served by a partition's leader only; elsewhere they
//! get NOT_LEADER_OR_FOLLOWER and the client refreshes its metadata.
//!
//! Each hosted partition is a [`Partition`] (its log, producers, role, ISR and high
//! watermark); the manager creates them as logs are created, and hands every metadata
//! change to them ([`Partition::apply_metadata`]), whoever applies it (the metadata follower,
//! or an admin handler that has just proposed the change). What the changes mean for
//! replication is published here for the tasks that act on it: the replica fetchers watch
//! [`ReplicaManager::subscribe_follower_changes`], and ISR changes to commit are queued for
//! [`ReplicaManager::take_isr_changes`].
//!
//! Why `std::sync::RwLock` around each log rather than a tokio lock: the critical sections
//! are short, never held across an `.await`, and appends to one partition must be serialised
//! anyway; a blocking lock keeps the storage crate free of async.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use ironlog_protocol::ResponseError;
use ironlog_storage::records::RecordError;
use ironlog_storage::{
    AppendInfo, Log, LogConfig, LogError, LogManager, LogManagerError, OffsetCheckpoint,
    RecordViolation, TopicPartition, ValidationError,
};
use tokio::sync::watch;
use uuid::Uuid;

use crate::cluster::{Cluster, ClusterError};
use crate::metadata::topic_config;
use crate::partition::{IsrChange, Partition, Role, Transition};
use ironlog_metadata::apply::check_partitions_per_command;
use ironlog_metadata::{
    validate_topic_name, BrokerId, CommandError, CommandResult, MetadataCommand, MetadataImage,
    TopicMeta,
};

/// Why a topic or partition operation failed. [`ReplicaError::error_code`] is the one
/// place these become Kafka error codes.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("partition {partition} of topic {topic:?} does not exist")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    #[error("invalid topic name: {0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// A request that is well formed but asks for more than one operation may do.
    #[error("{0}")]
    PolicyViolation(String),
    #[error("{0}")]
    InvalidConfig(#[from] topic_config::TopicConfigError),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("this broker does not lead partition {topic}-{partition}")]
    NotLeader { topic: String, partition: i32 },
    #[error("{0}")]
    Cluster(ClusterError),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("partition {topic}-{partition}: {source}")]
    Log {
        topic: String,
        partition: i32,
        source: LogError,
    },
    #[error("partition {topic}-{partition}: records refused: {source}")]
    InvalidRecords {
        topic: String,
        partition: i32,
        source: ValidationError,
    },
    #[error("{0}")]
    LogManager(#[from] LogManagerError),
    #[error("producer {producer_id}: expected sequence {expected}, got {got} (a batch was lost or reordered)")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    #[error("producer {producer_id}: epoch {got} is fenced by epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        current: i16,
        got: i16,
    },
    #[error("partition {topic}-{partition}: {isr} in-sync replicas, min.insync.replicas is {min}{}", if *after_append { " (the records were appended but not acknowledged)" } else { "" })]
    NotEnoughReplicas {
        topic: String,
        partition: i32,
        isr: usize,
        min: usize,
        after_append: bool,
    },
    #[error(
        "partition {topic}-{partition}: the request's leader epoch {theirs} is not ours ({ours})"
    )]
    LeaderEpoch {
        topic: String,
        partition: i32,
        ours: i32,
        theirs: i32,
    },
    #[error("partition {topic}-{partition}: broker {replica} is not a replica")]
    NotReplica {
        topic: String,
        partition: i32,
        replica: i32,
    },
    #[error("partition {topic}-{partition}: the in-sync replicas did not all have the records within {timeout_ms} ms")]
    ReplicationTimeout {
        topic: String,
        partition: i32,
        timeout_ms: u64,
    },
}

impl ReplicaError {
    pub fn error_code(&self) -> ResponseError {
        match self {
            ReplicaError::UnknownTopic(_) | ReplicaError::UnknownPartition { .. } => {
                ResponseError::UnknownTopicOrPartition
            }
            ReplicaError::TopicExists(_) => ResponseError::TopicAlreadyExists,
            ReplicaError::InvalidTopic(_) => ResponseError::InvalidTopicException,
            ReplicaError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            ReplicaError::PolicyViolation(_) => ResponseError::PolicyViolation,
            ReplicaError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            ReplicaError::InvalidConfig(_) => ResponseError::InvalidConfig,
            ReplicaError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            ReplicaError::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
            ReplicaError::Cluster(ClusterError::Quorum(_)) => ResponseError::RequestTimedOut,
            ReplicaError::Cluster(_) | ReplicaError::DataDir { .. } => {
                ResponseError::KafkaStorageError
            }
            ReplicaError::Log { source, .. } => log_error_code(source),
            ReplicaError::InvalidRecords { source, .. } => validation_error_code(source),
            ReplicaError::LogManager(LogManagerError::Log { source, .. }) => log_error_code(source),
            ReplicaError::LogManager(_) => ResponseError::KafkaStorageError,
            ReplicaError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            ReplicaError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            ReplicaError::NotEnoughReplicas {
                after_append: false,
                ..
            } => ResponseError::NotEnoughReplicas,
            ReplicaError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicasAfterAppend,
            ReplicaError::LeaderEpoch { ours, theirs, .. } if theirs < ours => {
                ResponseError::FencedLeaderEpoch
            }
            ReplicaError::LeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
            ReplicaError::NotReplica { .. } => ResponseError::NotLeaderOrFollower,
            ReplicaError::ReplicationTimeout { .. } => ResponseError::RequestTimedOut,
        }
    }

    /// The records a refused produce broke, for Produce v8+ `record_errors`.
    pub fn record_violations(&self) -> &[RecordViolation] {
        match self {
            ReplicaError::InvalidRecords {
                source: ValidationError::InvalidRecords { violations, .. },
                ..
            } => violations,
            _ => &[],
        }
    }
}

impl From<ClusterError> for ReplicaError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Rejected(e) => e.into(),
            other => ReplicaError::Cluster(other),
        }
    }
}

impl From<CommandError> for ReplicaError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::TopicExists(t) => ReplicaError::TopicExists(t),
            CommandError::UnknownTopic(t) => ReplicaError::UnknownTopic(t),
            CommandError::UnknownPartition { topic, partition } => {
                ReplicaError::UnknownPartition { topic, partition }
            }
            CommandError::InvalidTopic(m) => ReplicaError::InvalidTopic(m),
            CommandError::InvalidPartitions(m) => ReplicaError::InvalidPartitions(m),
            CommandError::InvalidReplicationFactor(m) => ReplicaError::InvalidReplicationFactor(m),
            CommandError::InvalidReplicaAssignment(m) => ReplicaError::InvalidReplicaAssignment(m),
            CommandError::NotLeader {
                topic, partition, ..
            } => ReplicaError::NotLeader { topic, partition },
            other => ReplicaError::PolicyViolation(other.to_string()),
        }
    }
}

/// Kafka error code for a storage error. KAFKA_STORAGE_ERROR only for what really went
/// wrong with the disk.
pub fn log_error_code(e: &LogError) -> ResponseError {
    match e {
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::Rejected { source, .. } => validation_error_code(source),
        LogError::InvalidRecords { source, .. } if source.is_unsupported_magic() => {
            ResponseError::UnsupportedForMessageFormat
        }
        LogError::InvalidRecords { .. } => ResponseError::CorruptMessage,
        LogError::Io { .. }
        | LogError::Offline { .. }
        | LogError::Corrupt { .. }
        | LogError::CleaningStale { .. } => ResponseError::KafkaStorageError,
    }
}

/// Kafka error code for batches the [`LogValidator`] refuses, as Kafka answers them:
/// a bad header or CRC, or a codec stream that doesn't decompress, CORRUPT_MESSAGE;
/// records that don't parse or break a record rule INVALID_RECORD (Kafka's
/// `InvalidRecordException`, not retriable); a timestamp out of range, or LogAppendTime set
/// by a producer, INVALID_TIMESTAMP; a batch above max.message.bytes, or inflating past the
/// decompression limit, MESSAGE_TOO_LARGE, which makes a Java producer split the batch
/// rather than retry it unchanged.
pub fn validation_error_code(e: &ValidationError) -> ResponseError {
    if e.is_invalid_timestamp() {
        return ResponseError::InvalidTimestamp;
    }
    match e {
        ValidationError::Records(r) => records_error_code(r),
        ValidationError::TooLarge { .. } => ResponseError::MessageTooLarge,
        ValidationError::Empty
        | ValidationError::InvalidBatch { .. }
        | ValidationError::InvalidRecords { .. }
        | ValidationError::LogAppendTimeFromProducer { .. } => ResponseError::InvalidRecord,
    }
}

fn records_error_code(e: &RecordError) -> ResponseError {
    match e {
        RecordError::Batch(b) if b.is_unsupported_magic() => {
            ResponseError::UnsupportedForMessageFormat
        }
        RecordError::Batch(_) | RecordError::Decompression { .. } => ResponseError::CorruptMessage,
        RecordError::DecompressionLimit { .. } => ResponseError::MessageTooLarge,
        RecordError::TooManyRecords { .. }
        | RecordError::InvalidRecord { .. }
        | RecordError::MissingRecords { .. }
        | RecordError::TrailingBytes { .. }
        | RecordError::Compressed { .. } => ResponseError::InvalidRecord,
    }
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
    /// Explicit replica lists per partition (CreateTopics' `assignments`).
    pub assignments: Option<Vec<Vec<BrokerId>>>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub struct ReplicaManager {
    node_id: i32,
    cluster: Arc<Cluster>,
    logs: LogManager,
    /// Broker-wide topic config defaults (`--default-topic-config`).
    default_configs: Vec<(String, String)>,
    default_log_config: LogConfig,
    /// Bumped after every append and high-watermark move; long-polling fetches wait for
    /// it to change.
    appended: Arc<watch::Sender<u64>>,
    /// The partitions hosted here, one per local log.
    partitions: RwLock<HashMap<(String, i32), Arc<Partition>>>,
    /// High watermarks read from `replication-offset-checkpoint` at start-up.
    checkpointed: BTreeMap<TopicPartition, i64>,
    /// See [`ReplicaManager::subscribe_follower_changes`].
    follower_changes: watch::Sender<u64>,
    /// See [`ReplicaManager::take_isr_changes`].
    queued_isr_changes: Mutex<Vec<(Arc<Partition>, IsrChange)>>,
    /// `replication-offset-checkpoint`.
    hw_checkpoint: OffsetCheckpoint,
    /// What [`ReplicaManager::sync_logs`] last made the local logs match: topic name →
    /// (topic id, config overrides). Held for the whole sync, so syncs don't interleave.
    synced: Mutex<HashMap<String, SyncedTopic>>,
}

/// A topic as the local logs were last made to match it: its id and config overrides.
type SyncedTopic = (Uuid, BTreeMap<String, String>);

impl ReplicaManager {
    /// Opens the logs, then makes them agree with the applied metadata (see
    /// [`ReplicaManager::sync_logs`]).
    pub fn open(
        cluster: Arc<Cluster>,
        data_dir: &std::path::Path,
        default_configs: Vec<(String, String)>,
        write_behind_bytes: u64,
    ) -> Result<Self, ReplicaError> {
        std::fs::create_dir_all(data_dir).map_err(|source| ReplicaError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let base = LogConfig {
            write_behind_bytes,
            ..LogConfig::default()
        };
        let default_log_config = topic_config::log_config(&base, &default_configs)?;
        let logs = LogManager::open(data_dir, default_log_config.clone(), now_ms())?;
        let (appended, _) = watch::channel(0);
        let hw_checkpoint = OffsetCheckpoint::new(data_dir.join(HIGH_WATERMARK_FILE));
        // Without a usable checkpoint, high watermarks start at the log start and are
        // learnt again from the leaders.
        let checkpointed = hw_checkpoint.read().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ignoring the high-watermark checkpoint");
            BTreeMap::new()
        });
        let image = cluster.image();
        let manager = ReplicaManager {
            node_id: cluster.node_id(),
            cluster,
            logs,
            default_configs,
            default_log_config,
            appended: Arc::new(appended),
            partitions: RwLock::new(HashMap::new()),
            checkpointed,
            follower_changes: watch::channel(0).0,
            queued_isr_changes: Mutex::new(Vec::new()),
            hw_checkpoint,
            // Empty: logs on disk belong to the topics of the same name in the image.
            synced: Mutex::new(HashMap::new()),
        };
        manager.sync(&image, true)?;
        Ok(manager)
    }

    /// Makes this broker's logs match `image`: a partition assigned here (as leader,
    /// follower or reassignment target) gets a log; a log of a partition not assigned here,
    /// of a deleted topic, or of an older topic of the same name is deleted (see `sync` for
    /// logs found at start-up that no topic owns); topic configs
    /// are applied to the logs. Runs at start-up and after every metadata change.
    pub fn sync_logs(&self, image: &MetadataImage) -> Result<(), ReplicaError> {
        self.sync(image, false)
    }

    /// [`ReplicaManager::sync_logs`]; `at_open`: a log on disk of a topic the metadata has
    /// never heard of is not deleted but set aside as a `-stray` directory (the metadata
    /// log was lost or belongs to another cluster; the records may be all there is).
    fn sync(&self, image: &MetadataImage, at_open: bool) -> Result<(), ReplicaError> {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        let mut changed = false;
        let mut followers_changed = false;
        for (tp, _) in self.logs.logs() {
            let keep = image.topic(&tp.topic).is_some_and(|t| {
                synced.get(&t.name).is_none_or(|(id, _)| *id == t.id)
                    && t.partition(tp.partition)
                        .is_some_and(|p| p.replicas.contains(&self.node_id))
            });
            if !keep && at_open && image.topic(&tp.topic).is_none() {
                let stray = self.logs.detach_log(&tp.topic, tp.partition)?;
                tracing::warn!(%tp, moved_to = %stray.display(),
                    "a partition log on disk belongs to no topic in the cluster metadata; \
                     set aside, not deleted");
                changed = true;
            } else if !keep {
                tracing::info!(%tp, "removing log: the partition is no longer assigned to this broker");
                self.partitions
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(tp.topic.clone(), tp.partition));
                self.logs.delete_log(&tp.topic, tp.partition)?;
                changed = true;
            }
        }
        synced.retain(|name, _| image.topic(name).is_some());
        for topic in image.topics.values() {
            let configs_changed = synced
                .get(&topic.name)
                .is_none_or(|(id, configs)| *id != topic.id || *configs != topic.configs);
            let config = self.log_config(&topic.configs)?;
            let min_isr = self.min_insync_replicas(&topic.configs);
            for (partition, state) in topic.assignments.iter().enumerate() {
                let partition = partition as i32;
                if !state.replicas.contains(&self.node_id) {
                    continue;
                }
                match self.logs.get(&topic.name, partition) {
                    None => {
                        self.create_log(&topic.name, partition, config.clone())?;
                        tracing::info!(topic = %topic.name, partition, leader = state.leader,
                            "created log for a partition assigned to this broker");
                    }
                    Some(log) if configs_changed => {
                        write(&log).set_config(config.clone());
                    }
                    Some(_) => {}
                }
                let partition = self.hosted(&topic.name, partition)?;
                let now = now_ms();
                match partition.apply_metadata(state, min_isr, now)? {
                    Transition::Unchanged => {}
                    Transition::BecameLeader { unclean } => {
                        tracing::info!(topic = %topic.name, partition = partition.index(),
                            leader_epoch = state.leader_epoch, isr = ?state.isr, "became leader");
                        if unclean {
                            tracing::warn!(topic = %topic.name, partition = partition.index(),
                                leader_epoch = state.leader_epoch,
                                "unclean leader election: this replica leads although it was not \
                                 in sync; records only the previous in-sync replicas had are lost");
                            if let Some(change) = partition.current_isr_change() {
                                self.queued_isr_changes
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push((partition.clone(), change));
                            }
                        }
                        changed = true;
                    }
                    Transition::BecameFollower(leader) => {
                        tracing::info!(topic = %topic.name, partition = partition.index(), leader,
                            leader_epoch = state.leader_epoch, "following");
                        followers_changed = true;
                        changed = true;
                    }
                    Transition::WentOffline => {
                        followers_changed = true;
                        changed = true;
                    }
                    Transition::Membership => changed = true,
                }
            }
            synced.insert(topic.name.clone(), (topic.id, topic.configs.clone()));
        }
        if changed {
            self.appended.send_modify(|n| *n = n.wrapping_add(1));
        }
        if followers_changed {
            self.follower_changes
                .send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(())
    }

    /// Changes whenever a partition here starts or stops following a leader.
    pub fn subscribe_follower_changes(&self) -> watch::Receiver<u64> {
        self.follower_changes.subscribe()
    }

    /// ISR changes this broker's leaderships must propose (after an unclean election,
    /// committing the ISR ends the recovery state), taken once.
    pub fn take_isr_changes(&self) -> Vec<(Arc<Partition>, IsrChange)> {
        std::mem::take(
            &mut *self
                .queued_isr_changes
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// The partition of a local log, created on first use.
    fn hosted(&self, topic: &str, index: i32) -> Result<Arc<Partition>, ReplicaError> {
        if let Some(p) = self
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(topic.to_string(), index))
        {
            return Ok(p.clone());
        }
        let log = self
            .logs
            .get(topic, index)
            .ok_or_else(|| ReplicaError::UnknownPartition {
                topic: topic.into(),
                partition: index,
            })?;
        let mut partitions = self.partitions.write().unwrap_or_else(|e| e.into_inner());
        let key = (topic.to_string(), index);
        let checkpointed = self
            .checkpointed
            .get(&TopicPartition::new(topic, index))
            .copied();
        let partition = partitions.entry(key).or_insert_with(|| {
            Arc::new(Partition::open(
                topic,
                index,
                self.node_id,
                log,
                checkpointed,
                self.appended.clone(),
            ))
        });
        Ok(partition.clone())
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn metadata(&self) -> Arc<MetadataImage> {
        self.cluster.image()
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The topic config defaults in force: Kafka's, overridden by the broker's flags.
    pub fn default_topic_configs(&self) -> BTreeMap<String, String> {
        let mut all = topic_config::defaults();
        all.extend(self.default_configs.iter().cloned());
        all
    }

    fn log_config(&self, configs: &BTreeMap<String, String>) -> Result<LogConfig, ReplicaError> {
        let pairs: Vec<(String, String)> = configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(topic_config::log_config(&self.default_log_config, &pairs)?)
    }

    fn create_log(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<(), ReplicaError> {
        self.logs.create_log(topic, partition, config, now_ms())?;
        Ok(())
    }

    /// The topic's current metadata.
    fn topic(&self, name: &str) -> Result<TopicMeta, ReplicaError> {
        self.metadata()
            .topic(name)
            .cloned()
            .ok_or_else(|| ReplicaError::UnknownTopic(name.into()))
    }

    /// Whether the partition exists in the cluster (hosted here or not).
    pub fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.metadata().partition(topic, partition).is_some()
    }

    /// Checks a topic creation without doing it (CreateTopics' validate_only); the checks
    /// that need the cluster's state (name taken, brokers available) are repeated when the
    /// command is applied.
    pub fn validate_new_topic(&self, topic: &NewTopic) -> Result<(), ReplicaError> {
        validate_topic_name(&topic.name).map_err(ReplicaError::InvalidTopic)?;
        let image = self.metadata();
        if image.topic(&topic.name).is_some() {
            return Err(ReplicaError::TopicExists(topic.name.clone()));
        }
        if topic.assignments.is_none() {
            if topic.partitions < 1 {
                return Err(ReplicaError::InvalidPartitions(format!(
                    "number of partitions must be at least 1, got {}",
                    topic.partitions
                )));
            }
            check_partitions_per_command(topic.partitions)?;
            image.check_replication_factor(topic.replication_factor)?;
        }
        let pairs: Vec<_> = topic
            .configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        topic_config::validate(&pairs)?;
        Ok(())
    }

    /// Creates a topic through the metadata quorum. When this returns, the topic is in
    /// this broker's image and its local logs exist.
    pub async fn create_topic(&self, topic: NewTopic) -> Result<TopicMeta, ReplicaError> {
        self.validate_new_topic(&topic)?;
        let id = Uuid::new_v4();
        let result = self
            .cluster
            .propose(MetadataCommand::CreateTopic(ironlog_metadata::NewTopic {
                name: topic.name.clone(),
                id,
                partitions: topic.partitions,
                replication_factor: topic.replication_factor,
                configs: topic.configs,
                assignments: topic.assignments,
            }))
            .await;
        let meta = match result {
            Ok(CommandResult::TopicCreated(meta)) => meta,
            // The quorum layer retried our command across a leader change after it had
            // been applied once: the topic with our id is ours.
            Err(ClusterError::Rejected(CommandError::TopicExists(name))) => {
                match self.metadata().topic(&name) {
                    Some(meta) if meta.id == id => meta.clone(),
                    _ => return Err(ReplicaError::TopicExists(name)),
                }
            }
            Ok(other) => return Err(ClusterError::Unexpected(Box::new(other)).into()),
            Err(e) => return Err(e.into()),
        };
        self.sync_logs(&self.metadata())?;
        tracing::info!(topic = %meta.name, partitions = meta.partitions,
            replication_factor = meta.replication_factor, id = %meta.id, "created topic");
        Ok(meta)
    }

    pub async fn delete_topic(&self, name: &str) -> Result<TopicMeta, ReplicaError> {
        let meta = self.topic(name)?;
        self.cluster
            .propose(MetadataCommand::DeleteTopic { topic: name.into() })
            .await?;
        // The other brokers delete their logs when they apply the change.
        self.sync_logs(&self.metadata())?;
        tracing::info!(topic = name, "deleted topic");
        Ok(meta)
    }

    /// Grows a topic to `total` partitions (CreatePartitions).
    pub async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        assignments: Option<Vec<Vec<BrokerId>>>,
        validate_only: bool,
    ) -> Result<(), ReplicaError> {
        let meta = self.topic(name)?;
        if total <= meta.partitions {
            return Err(ReplicaError::InvalidPartitions(format!(
                "topic {name:?} has {} partitions; the new count must be larger, got {total}",
                meta.partitions
            )));
        }
        check_partitions_per_command(total - meta.partitions)?;
        if validate_only {
            return Ok(());
        }
        self.cluster
            .propose(MetadataCommand::CreatePartitions {
                topic: name.into(),
                total,
                assignments,
            })
            .await?;
        self.sync_logs(&self.metadata())?;
        tracing::info!(
            topic = name,
            from = meta.partitions,
            to = total,
            "increased partitions"
        );
        Ok(())
    }

    /// Replaces a topic's config overrides with `configs` (after validation).
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), ReplicaError> {
        self.topic(name)?;
        let pairs: Vec<_> = configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        topic_config::validate(&pairs)?;
        self.log_config(&configs)?;
        if validate_only {
            return Ok(());
        }
        self.cluster
            .propose(MetadataCommand::ReplaceTopicConfigs {
                topic: name.into(),
                configs,
            })
            .await?;
        self.sync_logs(&self.metadata())?;
        tracing::info!(topic = name, "altered topic configs");
        Ok(())
    }

    /// The partition, if the cluster has it and this broker hosts it;
    /// UNKNOWN_TOPIC_OR_PARTITION if the cluster has no such partition, NOT_LEADER_OR_FOLLOWER
    /// if it lives elsewhere.
    pub fn partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, ReplicaError> {
        let image = self.metadata();
        image
            .topic(topic)
            .ok_or_else(|| ReplicaError::UnknownTopic(topic.into()))?
            .partition(partition)
            .ok_or_else(|| ReplicaError::UnknownPartition {
                topic: topic.into(),
                partition,
            })?;
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(topic.to_string(), partition))
            .cloned()
            .ok_or_else(|| ReplicaError::NotLeader {
                topic: topic.into(),
                partition,
            })
    }

    /// The partition, if this broker leads it (else as [`ReplicaManager::partition`], or
    /// NOT_LEADER_OR_FOLLOWER).
    pub fn leader_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, ReplicaError> {
        let p = self.partition(topic, partition)?;
        if p.role() != Role::Leader {
            return Err(ReplicaError::NotLeader {
                topic: topic.into(),
                partition,
            });
        }
        Ok(p)
    }

    /// Every hosted partition.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The log of a partition this broker leads (see [`ReplicaManager::leader_partition`]).
    pub fn leader_log(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<RwLock<Log>>, ReplicaError> {
        Ok(self.leader_partition(topic, partition)?.log().clone())
    }

    /// The log of a partition, if this broker hosts it.
    pub fn log(&self, topic: &str, partition: i32) -> Result<Arc<RwLock<Log>>, ReplicaError> {
        Ok(self.partition(topic, partition)?.log().clone())
    }

    /// Appends a producer's batches to a partition this broker leads (see
    /// [`Partition::append_as_leader`]). Returns the append, the leader epoch it was made
    /// in and the partition (to wait on for acks=all).
    pub fn append(
        &self,
        topic: &str,
        partition: i32,
        records: &mut [u8],
        acks: i16,
    ) -> Result<(AppendInfo, i32, Arc<Partition>), ReplicaError> {
        let p = self.leader_partition(topic, partition)?;
        let (info, epoch) = p.append_as_leader(records, acks, now_ms())?;
        Ok((info, epoch, p))
    }

    /// `min.insync.replicas` of a topic with these overrides.
    pub fn min_insync_replicas(&self, configs: &BTreeMap<String, String>) -> usize {
        configs
            .get("min.insync.replicas")
            .or_else(|| {
                self.default_configs
                    .iter()
                    .rev()
                    .find(|(k, _)| k == "min.insync.replicas")
                    .map(|(_, v)| v)
            })
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1)
    }

    /// Something to wait on for "new data may have arrived".
    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Runs retention and time-based flushes (called from a timer).
    pub fn tick(&self) {
        if let Err(e) = self.logs.tick(now_ms()) {
            tracing::error!(error = %e, "log maintenance (retention, flush.ms) failed; will retry");
        }
    }

    /// Writes every hosted partition's high watermark to `replication-offset-checkpoint`
    /// (Kafka's file and format), so a restarted broker starts from where they were.
    pub fn checkpoint_high_watermarks(&self) -> Result<(), LogManagerError> {
        let entries: BTreeMap<TopicPartition, i64> = self
            .partitions()
            .iter()
            .map(|p| {
                (
                    TopicPartition::new(p.topic(), p.index()),
                    p.high_watermark(),
                )
            })
            .collect();
        self.hw_checkpoint.write(entries)
    }

    /// Snapshots every partition's idempotent producers that changed since the last one.
    pub fn snapshot_producers(&self) {
        for p in self.partitions() {
            if let Err(e) = p.snapshot_producers() {
                tracing::warn!(topic = p.topic(), partition = p.index(), error = %e,
                    "cannot write the producer snapshot; will retry");
            }
        }
    }

    /// Flushes every log and writes the clean-shutdown marker.
    pub fn shutdown(&self) -> Result<(), ReplicaError> {
        self.snapshot_producers();
        if let Err(e) = self.checkpoint_high_watermarks() {
            tracing::error!(error = %e, "cannot write the high-watermark checkpoint at shutdown");
        }
        Ok(self.logs.shutdown()?)
    }

    /// `(topic, partition, log start, log end, size bytes)` for every hosted partition.
    pub fn partition_stats(&self) -> Vec<(String, i32, i64, i64, u64)> {
        let mut stats = Vec::new();
        for (tp, log) in self.logs.logs() {
            let log = read(&log);
            stats.push((
                tp.topic,
                tp.partition,
                log.log_start_offset(),
                log.log_end_offset(),
                log.size_bytes(),
            ));
        }
        stats
    }
}

const HIGH_WATERMARK_FILE: &str = "replication-offset-checkpoint";

/// How long a Produce with acks=all may wait for the ISR.
pub fn replication_timeout(timeout_ms: i32) -> Duration {
    Duration::from_millis(timeout_ms.clamp(1, 300_000) as u64)
}

/// Locks a log for reading. A poisoned lock means a panic mid-append; the log's own
/// invariants are re-checked by recovery on the next start, and refusing all further reads
/// would turn one bug into an outage, so the guard is taken anyway.
pub fn read(log: &RwLock<Log>) -> std::sync::RwLockReadGuard<'_, Log> {
    log.read().unwrap_or_else(|e| e.into_inner())
}

/// Locks a log for writing; see [`read`] on poisoning.
pub fn write(log: &RwLock<Log>) -> std::sync::RwLockWriteGuard<'_, Log> {
    log.write().unwrap_or_else(|e| e.into_inner())
}
