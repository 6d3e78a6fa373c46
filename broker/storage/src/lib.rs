//! ironlog-storage: the on-disk partition log of the Ironlog broker.
//!
//! **Dependency rule:** this crate is synchronous std I/O only. It must not
//! depend on tokio, on networking, or on consensus (openraft); the server wraps
//! it. Its dependencies are `crc32c`, `thiserror`, `tracing`, `bytes` and `ironlog-wire`
//! (the batch format and the bounded record decoder, sans-IO).
//!
//! It stores Kafka record batches (magic v2) byte for byte as the producer
//! sent them, in segment files, the way Apache Kafka's log does, using Kafka's
//! names: [`Log`] (one partition), `LogSegment`, `OffsetIndex`, `TimeIndex`,
//! [`LogManager`] (one data directory), `log_start_offset`, `log_end_offset`,
//! recovery point.
//!
//! # Directory layout
//!
//! ```text
//! <data_dir>/
//!   .lock                              flock held by the owning LogManager
//!   .clean-shutdown                    present only between a clean shutdown and the next open
//!   recovery-point-offset-checkpoint   "0\n<count>\n<topic> <partition> <offset>\n..."
//!   <topic>-<partition>/               partition parsed from the LAST '-'
//!     00000000000000000000.log         segment: concatenated v2 record batches
//!     00000000000000000000.index       sparse offset index
//!     00000000000000000000.timeindex   sparse time index
//!     00000000000000012345.log ...     next segment, named by its base offset
//!     log-start-offset                 "<offset>\n", written by DeleteRecords/retention
//!     leader-epoch-checkpoint          "0\n<count>\n<epoch> <start offset>\n...", see below
//!     cleaner-offset-checkpoint        compacted logs: "<dirty start> <tombstone horizon>\n"
//!     00000000000000000000.cleaned     a cleaned segment being written (compaction)
//!     cleaner-swap                     present only while cleaned segments are swapped in
//! ```
//!
//! File names are the segment's base offset zero-padded to 20 digits.
//! Checkpoint-style files are written via `*.tmp` + fsync + rename + directory
//! fsync; a leftover `*.tmp` is removed on open.
//!
//! # On-disk format
//!
//! * **`.log`**: v2 record batches back to back, exactly their wire bytes
//!   (61-byte header, see [`batch`]), with broker-assigned base offsets (and,
//!   for LogAppendTime topics, the broker's timestamp and a recomputed CRC).
//! * **`.index`**: 8-byte entries, big-endian: 4-byte offset relative to the
//!   segment base + 4-byte byte position in the `.log`. An entry is written for
//!   a batch when more than `index.interval.bytes` (default 4096) were appended
//!   since the previous entry; it names that batch's *base* offset. The first
//!   batch (position 0) is implied. Entries strictly increase in both fields.
//! * **`.timeindex`**: 12-byte entries, big-endian: 8-byte timestamp + 4-byte
//!   relative offset. Written alongside offset index entries (and once more
//!   when a segment is rolled), only when the segment's max timestamp grew (never
//!   for -1, "no timestamp"); it maps that max timestamp to the last offset of the
//!   batch that first reached it.
//! * Index files are exactly `entries × entry size` bytes (no preallocation);
//!   they are kept in memory and appended to, so they need no memory map.
//! * **`leader-epoch-checkpoint`**: Kafka's text format. Line 1 is the version `0`,
//!   line 2 the number of entries, then one `<epoch> <start offset>` line per leader epoch,
//!   oldest first, strictly increasing in both fields: the offset of the first record each
//!   leader epoch wrote (or, for the latest, where it became leader). It is rewritten
//!   atomically whenever the [`LeaderEpochCache`] changes: when an append brings a new
//!   epoch ([`Log::append_validated`] with an epoch, [`Log::append_as_follower`]), when
//!   the broker becomes leader ([`Log::assign_leader_epoch`]), when the log is truncated
//!   (entries at or past the new end go) and when the log start offset moves (entries
//!   wholly below it go; the one it falls in starts at it). No file means no epoch.
//!
//! # Invariants
//!
//! * Offsets strictly increase across batches and segments; a segment's
//!   batches all have offsets in `[base, base + i32::MAX]` and the file is at
//!   most 4 GiB (so relative offsets and positions fit the index entries).
//! * Every stored batch has magic 2, a sane length and a valid CRC-32C.
//! * `log_start_offset <= log_end_offset`; `recovery_point <= log_end_offset`.
//! * Every segment except the active (last) one has been fsynced; rolling a
//!   segment fsyncs it and moves the recovery point to the new base offset.
//! * The active segment is never deleted by retention or DeleteRecords, nor cleaned.
//! * Compaction keeps offsets: a cleaned segment holds a subset of the records of the
//!   segments it replaced, at the same offsets; it may be empty (reads skip it).
//!
//! # Recovery procedure ([`Log::open`])
//!
//! 1. If a `cleaner-swap` manifest exists, a crash interrupted the cleaner after its
//!    commit point: finish the swap it describes (see `log/cleaning.rs`). Then remove
//!    leftover `*.tmp`/`*.deleted`/`*.cleaned`/`*.swap` files (a pass that never reached
//!    its commit point leaves the old segments whole) and index files without a `.log`.
//! 2. For each segment, oldest first, load both indexes and sanity-check them
//!    (size a multiple of the entry size, monotonic entries, positions inside
//!    the `.log`, offsets below the segment's next offset).
//! 3. A segment that may hold offsets at or above the recovery point (its
//!    successor's base offset is above it), and always the active segment, is
//!    *recovered*: every batch is read and checked (header, CRC, increasing
//!    offsets) and both indexes are rebuilt. At the first bad batch the file is
//!    truncated at the last valid batch boundary and **every later segment is
//!    deleted**, since offsets after a hole cannot be trusted.
//! 4. A segment below the recovery point is trusted (it was fsynced), so its
//!    batches are not CRC-checked; only its headers after the last index entry
//!    are walked to find its end and max timestamp. A broken index is rebuilt
//!    from a header walk. If a header walk finds structural damage (bad magic,
//!    length, a torn batch, non-increasing offsets) the segment is recovered as
//!    in step 3, with the same truncation rule. CRC damage inside a trusted
//!    segment is *not* detected at open (as in Kafka): it is served as stored
//!    and consumers' CRC checks reject it; opening with recovery point 0 finds it.
//! 5. After a clean shutdown ([`LogManager`] found `.clean-shutdown`) no
//!    segment is CRC-checked, but the cheap checks of step 4 still run on all
//!    segments, including the active one.
//! 6. The log start offset is `max(log-start-offset file, first base offset)`,
//!    capped at the log end offset; everything is fsynced and the recovery
//!    point becomes the log end offset.
//! 7. `leader-epoch-checkpoint` is read. If it is corrupt, or missing while the log holds
//!    batches (a data directory from before the file existed), it is rebuilt from the
//!    batch headers (each batch's partitionLeaderEpoch at its base offset, epochs >= 0).
//!    Entries past the recovered log end or below the log start offset are trimmed, and
//!    the file is rewritten if anything changed.
//!
//! Every repair is logged with `tracing::warn!` (file, what was found, what
//! was done) and recorded in the [`RecoveryReport`] from [`Log::recovery_report`].
//!
//! # Records
//!
//! Batches are checked and stored whole ([`batch`]); the records inside are
//! decoded only by [`records`], the one record decoder (both live in `ironlog-wire`,
//! which the client shares), which
//! trusts no count or length from the bytes and decompresses under a limit
//! (see its docs). The cleaner and ListOffsets read records through it.
//!
//! # Appends
//!
//! A producer's batches go through the [`validator`] (Kafka's `LogValidator` rules: CRC,
//! every record walked, offsets, timestamps, keys of compacted topics; maxTimestamp
//! recomputed and patched only when wrong), which yields [`ValidatedRecords`], the only
//! thing [`Log::append_validated`] takes ([`Log::append`] does both). An append is all or
//! nothing: size and roll checks come before the write, and a failure after it (an index
//! or fsync error) truncates the segment back and restores both indexes and the in-memory
//! state; if that undo fails too, the log refuses further appends until a restart runs
//! recovery ([`LogError::Offline`]).
//!
//! # Replication
//!
//! A follower stores the leader's batches with [`Log::append_as_follower`], byte for byte:
//! it never assigns offsets (compaction gaps are kept) nor touches timestamps, leader epochs
//! or CRCs, so a follower's log holds exactly the leader's batches (its segment boundaries
//! may differ). Its invariants:
//!
//! * only whole batches are stored; a trailing partial batch of the input is ignored;
//! * batches wholly below the log end offset are skipped; a batch straddling it, offsets
//!   that don't increase, or a batch failing its header or CRC check refuse the whole
//!   append, before anything is written (records are not decompressed: the leader
//!   validated them);
//! * segments roll, indexes grow and `flush.messages` applies as for the leader's appends;
//! * the epoch cache takes each batch's partitionLeaderEpoch at its base offset when it is
//!   above the latest epoch, so [`Log::end_offset_for_epoch`] (OffsetsForLeaderEpoch)
//!   answers from the follower's log as it would from the leader's.
//!
//! A follower whose log diverged (it wrote in an epoch the leader never saw) asks the
//! leader for the end of its latest epoch and calls [`Log::truncate_to`] with the answer
//! before fetching; offsets alone cannot tell a diverged batch from a replicated one.

pub mod checkpoint;
pub mod cleaner;
pub mod config;
pub mod epoch;
pub mod index;
pub mod log;
pub mod manager;
pub mod segment;
pub mod validator;
pub mod write_behind;

/// The batch header and record decoder live in `ironlog-wire` (the client reads fetched
/// records with them too); re-exported so the log's paths read as before.
pub use ironlog_wire::{batch, records};

pub use crate::batch::{parse_batches, BatchError, BatchInfo};
pub use crate::checkpoint::OffsetCheckpoint;
pub use crate::config::{CleanupPolicy, ConfigError, LogConfig, MessageTimestampType};
pub use crate::epoch::{EpochEntry, LeaderEpochCache, LEADER_EPOCH_CHECKPOINT_FILE};
pub use crate::log::{
    write_atomically, AppendInfo, Log, LogError, ReadResult, RecoveryReport, Repair,
};
pub use crate::manager::{
    LogHandle, LogManager, LogManagerError, TopicPartition, METADATA_LOG_DIR,
};
pub use crate::records::{Record, RecordDecoder, RecordError, Records};
pub use crate::validator::{
    LogValidator, RecordViolation, ValidBatch, ValidatedRecords, ValidationError, ViolationKind,
};
