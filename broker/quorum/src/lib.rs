//! Ironlog's controller quorum: the Raft log that replicates the cluster metadata,
//! KRaft-style, on [openraft] 0.9.
//!
//! The rest of the broker sees [`Quorum`] only: propose a [`MetadataCommand`], watch the
//! applied [`MetadataImage`], read [`QuorumStatus`], send broker heartbeats to the leader.
//! openraft's types stay inside this crate.
//!
//! Dependency rule: this crate depends on `ironlog-metadata` (the pure state machine) and on
//! nothing else of the broker; the server depends on it, never the other way round.
//!
//! # Roles
//! - **Quorum of one** (`voters` empty): the node initializes a membership of itself and
//!   leads; no listener is needed.
//! - **Voter** (listed in `controller.quorum.voters`): a fresh store initializes the quorum
//!   with the whole static voter set; every voter may, with the same set. A majority must be
//!   up to elect a leader and commit.
//! - **Learner** (not listed): asks the voters to add it (`add_learner`) until it is a
//!   member; it then receives the log (or a snapshot) but does not vote.
//!
//! Every node can [`Quorum::propose`]: off the leader the command is forwarded over the
//! controller connection, and the call returns once the command is applied *locally*, so a
//! caller reads its own write from [`Quorum::image`].
//!
//! # On disk (`<data_dir>/__cluster_metadata-0/`)
//! - `raft.log`: the log entries, appended in order, each one frame:
//!   `u32 length (BE) | u32 CRC-32C of the payload (BE) | payload`, the payload being the
//!   openraft `Entry` as JSON (payload at most 64 MiB). Every append is fsync'd before
//!   openraft hears it is durable. `truncate` (a new leader overwrote our tail) and `purge`
//!   (a snapshot covers the head) rewrite the whole file: temp file, fsync, rename, fsync of
//!   the directory. At open the file is scanned; a torn or corrupt frame and everything after
//!   it are cut off with a warning (they were never acknowledged, or the leader sends them
//!   again). The whole log is also held in memory: it is small, because openraft purges what
//!   a snapshot covers.
//! - `purged.json`: the last purged log id (the log's start). Written before the rewrite, so
//!   a crash in between leaves entries the next open drops.
//! - `vote.json`, `committed.json`: the vote and the last committed log id, each replaced
//!   atomically as above. With the committed id a restarted node re-applies the committed
//!   entries at once instead of waiting for a leader.
//! - `snapshot.json`: `{ "meta": openraft SnapshotMeta, "image": MetadataImage }`, replaced
//!   atomically when openraft builds a snapshot (every `snapshot_every` applied entries) or
//!   installs one from the leader. At open the image is loaded from it and the log entries
//!   after it are re-applied.
//!
//! # Invariants
//! - the image is exactly the snapshot's image with the log's committed entries after it
//!   applied in order, by [`MetadataImage::apply`];
//! - an entry is acknowledged to openraft only after it is on disk;
//! - entries in `raft.log` have consecutive indexes after `purged.json`'s.
//!
//! # Network
//! The controller listener speaks length-prefixed JSON frames, described in `src/network/mod.rs`:
//! Raft RPCs (append entries, vote, install snapshot in chunks) and control requests
//! (forwarded proposals, learner joins, broker heartbeats), multiplexed over one
//! connection per peer that is re-established on the next call after it breaks.

mod error;
mod fs;
mod log_store;
mod network;
mod node;
mod quorum;
mod state_machine;
mod types;

#[cfg(test)]
mod storage_suite;

pub use error::QuorumError;
pub use ironlog_metadata::{BrokerId, CommandResult, MetadataCommand, MetadataImage};
pub use network::QuorumTls;
pub use quorum::{Quorum, QuorumConfig, QuorumStatus, ReplicaStatus};
