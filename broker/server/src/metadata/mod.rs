//! Cluster metadata as the broker uses it: the image and commands come from
//! [`ironlog_metadata`] (replicated by the quorum, see [`crate::cluster`]); topic configs
//! (which keys a topic accepts and how they become a log config) are here.

pub mod topic_config;

pub use ironlog_metadata::{MetadataImage, TopicMeta};
