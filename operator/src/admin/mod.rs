//! The operator's view of a Kafka cluster's admin API: a small trait, the seam through which the
//! topic, roll and drain logic run. [`kafka::KafkaAdmin`] implements it over the Kafka protocol
//! (ironlog-client); tests use [`fake::FakeAdmin`].

pub mod fake;
pub mod kafka;

use std::collections::{BTreeMap, BTreeSet};

use futures::future::BoxFuture;

/// Broker node id (= pod ordinal in an operator-managed cluster).
pub type BrokerId = i32;

/// One partition as Metadata reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    pub leader: Option<BrokerId>,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
}

impl PartitionInfo {
    pub fn under_replicated(&self) -> bool {
        self.isr.len() < self.replicas.len()
    }
}

/// One topic as Metadata reports it, partitions by index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicInfo {
    pub partitions: BTreeMap<i32, PartitionInfo>,
}

impl TopicInfo {
    /// Replication factor (of partition 0; Kafka keeps it uniform per topic).
    pub fn replication_factor(&self) -> usize {
        self.partitions
            .values()
            .next()
            .map_or(0, |p| p.replicas.len())
    }
}

/// What Metadata tells about the whole cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// Registered brokers that are not fenced (Metadata lists only those).
    pub brokers: BTreeSet<BrokerId>,
    pub topics: BTreeMap<String, TopicInfo>,
    /// The active controller (in Ironlog, the metadata quorum's Raft leader), when known.
    pub controller: Option<BrokerId>,
}

impl ClusterMetadata {
    /// Every partition, as `(topic, index, info)`.
    pub fn partitions(&self) -> impl Iterator<Item = (&str, i32, &PartitionInfo)> {
        self.topics.iter().flat_map(|(t, info)| {
            info.partitions
                .iter()
                .map(move |(i, p)| (t.as_str(), *i, p))
        })
    }

    /// Partitions whose ISR is smaller than their replica list.
    pub fn under_replicated(&self) -> usize {
        self.partitions()
            .filter(|(_, _, p)| p.under_replicated())
            .count()
    }
}

/// A topic config entry as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    pub value: Option<String>,
    /// Set on the topic itself (not a broker or built-in default).
    pub is_topic_override: bool,
}

/// A new replica list for one partition.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<BrokerId>,
}

/// Admin failures, classified for the controllers' decisions.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The cluster does not offer the API: the operator refuses the action (NotSupported).
    #[error("the cluster does not support the {api} API")]
    Unsupported { api: String },
    /// The cluster answered with a Kafka error.
    #[error("{operation}: {name} (Kafka error {code}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        operation: String,
        code: i16,
        name: String,
        message: Option<String>,
    },
    /// No broker could be reached or the connection broke.
    #[error("cluster unreachable: {0}")]
    Unreachable(String),
    /// Anything else (protocol errors, invalid arguments).
    #[error("{0}")]
    Other(String),
}

/// Kafka error code UNKNOWN_TOPIC_OR_PARTITION.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

impl AdminError {
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            AdminError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// The Kafka admin operations the operator needs. Object-safe so controllers can hold
/// `Arc<dyn Admin>`.
pub trait Admin: Send + Sync {
    /// Brokers and every topic with leader, replicas and ISR.
    fn metadata(&self) -> BoxFuture<'_, AdminResult<ClusterMetadata>>;
    fn create_topic<'a>(
        &'a self,
        name: &'a str,
        partitions: i32,
        replication_factor: i16,
        config: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, AdminResult<()>>;
    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AdminResult<()>>;
    /// Grows the topic to `total` partitions.
    fn create_partitions<'a>(&'a self, name: &'a str, total: i32)
        -> BoxFuture<'a, AdminResult<()>>;
    fn describe_topic_config<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, AdminResult<BTreeMap<String, ConfigEntry>>>;
    /// Sets `set` and removes the overrides named in `delete` (IncrementalAlterConfigs).
    fn alter_topic_config<'a>(
        &'a self,
        name: &'a str,
        set: &'a BTreeMap<String, String>,
        delete: &'a [String],
    ) -> BoxFuture<'a, AdminResult<()>>;
    /// Partitions with a reassignment in progress.
    fn list_reassignments(&self) -> BoxFuture<'_, AdminResult<Vec<(String, i32)>>>;
    fn alter_reassignments<'a>(
        &'a self,
        moves: &'a [Reassignment],
    ) -> BoxFuture<'a, AdminResult<()>>;
}

/// Opens admin connections; the controllers call it once per reconcile.
pub trait AdminConnector: Send + Sync {
    fn connect<'a>(&'a self, bootstrap: &'a str) -> BoxFuture<'a, AdminResult<Box<dyn Admin>>>;
}
