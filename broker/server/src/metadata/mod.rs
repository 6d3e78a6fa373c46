//! Cluster metadata: topics, their ids, partition counts and configs, the cluster id, and
//! producer id allocation.
//!
//! The state ([`MetadataImage`]) changes only by applying [`MetadataRecord`]s, the way
//! KRaft's `__cluster_metadata` log works. On a single node the records are applied to the
//! image and the image is persisted atomically to `<data_dir>/cluster-metadata.json`; the
//! Raft quorum will replace [`MetadataStore::propose`] without changing the image or the
//! handlers that read it.

pub mod image;
pub mod store;
pub mod topic_config;

pub use image::{MetadataImage, MetadataRecord, TopicMeta};
pub use store::{MetadataError, MetadataStore};
