//! The group coordinator (Kafka's classic consumer-group protocol).
//!
//! # Layout
//! - [`metadata`]: the pure core. [`GroupMetadata`] is one group's state machine (Empty,
//!   PreparingRebalance, CompletingRebalance, Stable, Dead) with its members
//!   ([`MemberMetadata`]) and committed offsets. Events carry `now`; results are replies
//!   and [`Effect`]s. No clock, no I/O, no randomness: table-tested in `metadata/tests.rs`.
//! - [`offsets`]: the pure codec of `__consumer_offsets` records (Kafka's own key/value
//!   schemas; the format is written down there).
//! - [`coordinator`]: the shell. [`GroupCoordinator`] owns the group map, parks JoinGroup
//!   and SyncGroup requests on oneshot channels until the core completes them, appends to
//!   `__consumer_offsets` and replays it at start-up, and runs the timers from `tick`.
//!
//! # Invariants
//! - A committed offset is visible to OffsetFetch only after its record is in the log, so
//!   a restart never loses an acknowledged commit (subject to the log's flush policy).
//! - Records for one group go to one partition, in the order the state changed; replaying
//!   the partition rebuilds the same offsets and group metadata.
//! - Every parked request is completed exactly once: by the core's effect, by a retried
//!   request that supersedes it, or by the handler giving up at shutdown.
//!
//! Not implemented: KIP-848 (ConsumerGroupHeartbeat), transactional offset commits
//! (TxnOffsetCommit), share groups.

pub mod coordinator;
pub mod metadata;
pub mod offsets;

pub use coordinator::{GroupCoordinator, Pending};
pub use metadata::{Effect, GroupConfig, GroupError, GroupMetadata, GroupState, MemberMetadata};
