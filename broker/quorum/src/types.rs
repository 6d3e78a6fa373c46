//! The openraft type configuration, declared once. Everything here is crate-private: the rest
//! of the broker sees [`crate::Quorum`], never openraft.

use std::io::Cursor;

use ironlog_metadata::{CommandResult, MetadataCommand};

openraft::declare_raft_types!(
    /// Ironlog's metadata log: entries carry [`MetadataCommand`]s, applying one answers a
    /// [`CommandResult`]; nodes are controller listeners (`host:port`).
    pub(crate) TypeConfig:
        D = MetadataCommand,
        R = CommandResult,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
);

pub(crate) type NodeId = u64;
pub(crate) type Node = openraft::BasicNode;
pub(crate) type Entry = openraft::Entry<TypeConfig>;
pub(crate) type LogId = openraft::LogId<NodeId>;
pub(crate) type Vote = openraft::Vote<NodeId>;
pub(crate) type StorageError = openraft::StorageError<NodeId>;
pub(crate) type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub(crate) type Raft = openraft::Raft<TypeConfig>;
pub(crate) type RaftMetrics = openraft::RaftMetrics<NodeId, Node>;
