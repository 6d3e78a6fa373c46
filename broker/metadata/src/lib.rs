//! Ironlog's cluster metadata, KRaft-style: a [`MetadataImage`] that changes only by
//! applying [`MetadataCommand`]s in the order the Raft quorum committed them.
//!
//! Pure: no I/O, no clocks, no randomness. Every node applies the same commands to the same
//! image and gets the same result, so decisions that depend on the image (where a new
//! topic's replicas go, who leads a partition after its leader is fenced, whether a topic
//! name is taken) are made *in* [`MetadataImage::apply`], not by the node that proposed the
//! command. Two brokers auto-creating one topic at once both propose; the first command
//! applied creates it and the second is answered [`CommandError::TopicExists`].
//!
//! # Layout
//! - [`image`]: the [`MetadataImage`] and its parts, and read-only questions about it
//!   ([`MetadataImage::offline_partitions`], [`MetadataImage::preferred_leader_imbalance`]);
//! - [`command`]: the [`MetadataCommand`]s and what applying one answers;
//! - [`apply`]: how each command changes the image, leader election and ISR changes;
//! - [`placement`]: where a new partition's replicas go;
//! - [`security`]: SCRAM credentials ([`ScramCredential`]) and the image's questions
//!   about them ([`MetadataImage::scram_credential`]);
//! - [`acl`]: ACL bindings and filters with Kafka's wire codes, and the authorization
//!   decision ([`MetadataImage::acl_decision`], [`MetadataImage::describe_acls`]);
//! - [`quota`]: client quota entities and values, their filters and Kafka's precedence
//!   ([`MetadataImage::client_quota`], [`MetadataImage::describe_client_quotas`]).
//!
//! # Invariants of an applied image
//! - every topic has `partitions == assignments.len()`, and each partition's `replicas` are
//!   distinct registered brokers;
//! - `leader` is [`NO_LEADER`] or a live member of `isr`, and `isr` ⊆ `replicas`, each
//!   member once;
//! - a new partition's ISR is every live replica (all the logs are empty), led by the first;
//! - a partition with a leader has only live brokers in its ISR; one without keeps the
//!   members last in sync, so that one of them returning leads it again;
//! - a partition without a leader has no live in-sync replica, and, if its topic enables
//!   unclean election, no live replica at all;
//! - a leader from outside the ISR (unclean election) is the whole ISR and the partition is
//!   `recovering` until the leader's first ISR change;
//! - the ISR changes only by the current leader's AlterPartition at the current leader epoch
//!   (and partition epoch, when given), by fencing, by elections and by reassignments; a
//!   broker joins it only while live;
//! - a leader change bumps `leader_epoch`; every partition change bumps `partition_epoch`;
//! - a fenced broker leads no partition;
//! - producer ids below `next_producer_id` have been handed out, each once;
//! - every stored SCRAM credential passes [`validate_scram_credential`] and is filed under
//!   its own mechanism; a user without credentials is not listed;
//! - every stored ACL binding passes [`AclBinding::validate`], so none holds a filter-only
//!   or unknown value (the types cannot), an empty name or host, or a malformed principal;
//! - every client quota entity is normalized ([`ClientQuotaEntity::normalize`]: one of
//!   user, client-id, user + client-id, ip; ip names canonical), holds at least one quota,
//!   and only keys of its kind, each finite and above 0;
//! - the security metadata changes only by its own commands, each checked whole before
//!   any change: a refused one changes nothing.

pub mod acl;
pub mod apply;
pub mod command;
pub mod image;
pub mod placement;
pub mod quota;
pub mod security;

pub use acl::{
    AclBinding, AclBindingFilter, AclDecision, AclOperation, AclPermission, PatternFilter,
    PatternType, ResourceType,
};
pub use command::{CommandError, CommandResult, LegacyImport, MetadataCommand, NewTopic};
pub use image::{
    unclean_election_enabled, validate_topic_name, BrokerEndpoint, BrokerId, BrokerRegistration,
    MetadataImage, PartitionState, TopicMeta, NO_LEADER, UNCLEAN_LEADER_ELECTION_ENABLE,
};
pub use quota::{
    ClientQuotaEntity, EntityQuotas, QuotaAlteration, QuotaEntityType, QuotaFilterComponent,
    QuotaMatch, QuotaValue,
};
pub use security::{validate_scram_credential, ScramCredential, ScramMechanism};
