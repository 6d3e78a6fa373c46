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
//! # Invariants of an applied image
//! - every topic has `partitions == assignments.len()`, and each partition's `replicas` are
//!   distinct registered brokers;
//! - `leader` is [`NO_LEADER`] or a member of `isr`, and `isr` ⊆ `replicas`;
//! - a leader change bumps `leader_epoch`; every partition change bumps `partition_epoch`;
//! - a fenced broker leads no partition;
//! - producer ids below `next_producer_id` have been handed out, each once.

pub mod apply;
pub mod command;
pub mod image;
pub mod placement;

pub use command::{CommandError, CommandResult, LegacyImport, MetadataCommand, NewTopic};
pub use image::{
    validate_topic_name, BrokerId, BrokerRegistration, MetadataImage, PartitionState, TopicMeta,
    NO_LEADER,
};
