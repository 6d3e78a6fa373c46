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
//! - [`placement`]: where a new partition's replicas go.
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
//! - producer ids below `next_producer_id` have been handed out, each once.

pub mod apply;
pub mod command;
pub mod image;
pub mod placement;

pub use command::{CommandError, CommandResult, LegacyImport, MetadataCommand, NewTopic};
pub use image::{
    unclean_election_enabled, validate_topic_name, BrokerId, BrokerRegistration, MetadataImage,
    PartitionState, TopicMeta, NO_LEADER, UNCLEAN_LEADER_ELECTION_ENABLE,
};
