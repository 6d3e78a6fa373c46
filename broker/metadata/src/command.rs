//! The commands the metadata log carries, and what applying one answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acl::{AclBinding, AclBindingFilter};
use crate::image::{BrokerId, BrokerRegistration, TopicMeta};
use crate::quota::QuotaAlteration;
use crate::security::{ScramCredential, ScramMechanism};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopic {
    pub name: String,
    /// Chosen by the proposer, so a retried command names the same topic.
    pub id: Uuid,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
    /// Explicit replica lists, one per partition (CreateTopics' `assignments`); placed by
    /// the controller's rule when `None`.
    pub assignments: Option<Vec<Vec<BrokerId>>>,
}

/// What a single-node data directory from before clustering held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyImport {
    /// The node that wrote it: every imported partition is placed on it.
    pub node: BrokerId,
    pub topics: Vec<TopicMeta>,
    pub next_producer_id: i64,
}

/// A change to the metadata, as proposed to the quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// The quorum's first command: sets the cluster id and, when a single-node data
    /// directory is being upgraded, imports its topics and producer ids. A no-op once
    /// the cluster id is set.
    Bootstrap {
        cluster_id: String,
        legacy: Option<LegacyImport>,
    },
    /// A broker (re)starts: registered and unfenced. Partitions left without a leader whose
    /// last in-sync replicas include this broker get it back as leader; an offline partition
    /// where it is a replica but not in sync gets it as an unclean leader, only if the
    /// topic enables [`crate::unclean_election_enabled`].
    RegisterBroker(BrokerRegistration),
    /// A broker stopped heartbeating: fenced, and its leaderships move to other live in-sync
    /// replicas; failing those, to a live out-of-sync replica if the topic enables unclean
    /// election, else the partition goes offline. Ignored if `incarnation` is not the
    /// registered one (the broker has restarted since).
    FenceBroker {
        id: BrokerId,
        incarnation: Uuid,
    },
    /// A broker is shutting down cleanly: like fencing, asked for by the broker itself.
    ControlledShutdown {
        id: BrokerId,
        incarnation: Uuid,
    },
    CreateTopic(NewTopic),
    /// Grows a topic to `total` partitions.
    CreatePartitions {
        topic: String,
        total: i32,
        assignments: Option<Vec<Vec<BrokerId>>>,
    },
    /// Replaces a topic's config overrides. Enabling unclean leader election elects leaders
    /// for the topic's offline partitions at once.
    ReplaceTopicConfigs {
        topic: String,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        topic: String,
    },
    /// Hands out `count` producer ids: answered with [`CommandResult::ProducerIds`].
    AllocateProducerIds {
        count: i64,
    },
    /// A partition leader changes the in-sync replicas (Kafka's AlterPartition, KRaft
    /// semantics). Refused, in this order, for an unknown partition, a leader or leader
    /// epoch that is not the current one ([`CommandError::NotLeader`]), a stale
    /// `partition_epoch` ([`CommandError::StalePartitionEpoch`]), an added member that is
    /// not a registered unfenced broker ([`CommandError::IneligibleReplica`]), and an ISR
    /// without the leader or with a non-replica ([`CommandError::InvalidRequest`]).
    /// Accepted, it bumps the partition epoch, ends leader recovery
    /// ([`crate::PartitionState::recovering`]) and completes a reassignment once every
    /// added replica is in sync.
    AlterPartition {
        topic: String,
        partition: i32,
        leader: BrokerId,
        leader_epoch: i32,
        isr: Vec<BrokerId>,
        /// The partition epoch the leader's proposal is based on. `None` only in commands
        /// written before partition epochs were checked: then not checked.
        #[serde(default)]
        partition_epoch: Option<i32>,
    },
    /// Starts moving a partition to `target` replicas, or cancels (`None`).
    Reassign {
        topic: String,
        partition: i32,
        target: Option<Vec<BrokerId>>,
    },
    /// Makes the preferred replica (the first) the leader, if it is in sync and live.
    ElectPreferred {
        topic: String,
        partition: i32,
    },
    /// Stores `user`'s credential for its mechanism, replacing one stored before (an
    /// upsertion of AlterUserScramCredentials). Refused with
    /// [`CommandError::UnacceptableCredential`] for an empty user name, iterations outside
    /// [`crate::security::MIN_SCRAM_ITERATIONS`]`..=`[`crate::security::MAX_SCRAM_ITERATIONS`],
    /// an empty salt, or a stored or server key that is not the mechanism's
    /// [`ScramMechanism::digest_len`] long ([`crate::validate_scram_credential`]).
    UpsertScramCredential {
        user: String,
        credential: ScramCredential,
    },
    /// Removes `user`'s credential for `mechanism`; a user whose last credential goes is
    /// forgotten. Refused with [`CommandError::UnacceptableCredential`] for an empty user
    /// name and [`CommandError::ResourceNotFound`] when the user has no credential for
    /// `mechanism`.
    DeleteScramCredential {
        user: String,
        mechanism: ScramMechanism,
    },
    /// Adds ACL bindings; one stored already is left as it is. Refused as a whole with
    /// [`CommandError::InvalidRequest`] if any binding breaks [`AclBinding::validate`]
    /// (the broker checks each before proposing, to answer per binding).
    CreateAcls {
        acls: Vec<AclBinding>,
    },
    /// Removes the bindings each filter matches ([`AclBindingFilter::matches`]), the
    /// filters in order: answered [`CommandResult::AclsDeleted`]. Never refused (a filter
    /// matching nothing removes nothing).
    DeleteAcls {
        filters: Vec<AclBindingFilter>,
    },
    /// Sets and removes client quotas (AlterClientQuotas), the entries in order. Every
    /// entry is checked first ([`QuotaAlteration::validate`]): an entity that is not a
    /// user, client-id, user + client-id or ip (or has an empty name, or an ip name that
    /// is no address), a key the entity may not have, or a value that is not finite and
    /// above 0 (or, for the byte and connection rates, not a whole number) refuses the whole
    /// command with [`CommandError::InvalidRequest`]. An entity left without quotas is
    /// forgotten.
    AlterClientQuotas {
        entries: Vec<QuotaAlteration>,
    },
}

/// What applying a command answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    Done,
    TopicCreated(TopicMeta),
    ProducerIds {
        first: i64,
        count: i64,
    },
    /// Answers [`MetadataCommand::DeleteAcls`]: per filter, in order, the bindings it
    /// removed (a binding two filters match is removed by, and listed for, the first).
    AclsDeleted(Vec<Vec<AclBinding>>),
    Rejected(CommandError),
}

impl CommandResult {
    /// `Err` for [`CommandResult::Rejected`].
    pub fn into_result(self) -> Result<CommandResult, CommandError> {
        match self {
            CommandResult::Rejected(e) => Err(e),
            other => Ok(other),
        }
    }
}

/// Why a command changed nothing. The broker maps each to its Kafka error code, at its
/// handler boundary; the variants answering an AlterPartition name theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CommandError {
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("partition {partition} of topic {topic:?} does not exist")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("invalid topic name: {0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0} partitions in one request is more than the {max} allowed; create them in several requests", max = crate::apply::MAX_PARTITIONS_PER_COMMAND)]
    TooManyPartitions(i32),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("no reassignment of {topic}-{partition} is in progress")]
    NoReassignmentInProgress { topic: String, partition: i32 },
    #[error("the preferred leader of {topic}-{partition} already leads it")]
    ElectionNotNeeded { topic: String, partition: i32 },
    #[error("the preferred leader of {topic}-{partition} is not live and in sync")]
    PreferredLeaderNotAvailable { topic: String, partition: i32 },
    /// The proposer is not the current leader at the current leader epoch. Kafka answers a
    /// stale leader epoch FENCED_LEADER_EPOCH (74), another leader NOT_LEADER_OR_FOLLOWER (6).
    #[error("{topic}-{partition}: broker {leader} at leader epoch {leader_epoch} is not the current leader")]
    NotLeader {
        topic: String,
        partition: i32,
        leader: BrokerId,
        leader_epoch: i32,
    },
    /// An AlterPartition based on an older partition state (another change was applied
    /// since): Kafka's INVALID_UPDATE_VERSION (108).
    #[error("{topic}-{partition}: the ISR change is based on partition epoch {got}, but the partition is at {current}; retry from the current partition state")]
    StalePartitionEpoch {
        topic: String,
        partition: i32,
        current: i32,
        got: i32,
    },
    /// An AlterPartition adds to the ISR a broker that is not registered or is fenced:
    /// Kafka's INELIGIBLE_REPLICA (107).
    #[error("{topic}-{partition}: broker {replica} cannot join the ISR: it is not a registered, unfenced broker; the leader retries once it is back")]
    IneligibleReplica {
        topic: String,
        partition: i32,
        replica: BrokerId,
    },
    #[error("{0}")]
    InvalidRequest(String),
    /// A SCRAM credential the metadata does not store: Kafka's UNACCEPTABLE_CREDENTIAL (93).
    #[error("unacceptable credential: {0}")]
    UnacceptableCredential(String),
    /// What a command removes does not exist: Kafka's RESOURCE_NOT_FOUND (91).
    #[error("{0}")]
    ResourceNotFound(String),
}
