//! `Log`: one partition directory of segments.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use thiserror::Error;
use tracing::{debug, warn};

use crate::batch::{self, BatchError, BatchHeader};
use crate::config::{CleanupPolicy, LogConfig};
use crate::epoch::LeaderEpochCache;
use crate::index::{OffsetIndex, TimeIndex};
use crate::segment::{scan, segment_file, AppendError, LogSegment, SegmentStats};
use crate::validator::{LogValidator, ValidBatch, ValidatedRecords, ValidationError};
use crate::write_behind::WriteBehind;

/// Name of the per-partition file holding the log start offset.
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset";

mod cleaning;
mod replication;
pub use cleaning::{
    write_cleaner_checkpoint, CleanableSection, CleanableSegment, CleanedSegment,
    CLEANER_CHECKPOINT_FILE, SWAP_MANIFEST_FILE,
};

/// Errors of one partition log. Every variant names the partition directory.
#[derive(Debug, Error)]
pub enum LogError {
    #[error("{op} failed on {}: {source}", path.display())]
    Io {
        op: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid record batch appended to {}: {source}", dir.display())]
    InvalidRecords {
        dir: PathBuf,
        #[source]
        source: BatchError,
    },
    /// The batches broke a validation rule; nothing was appended.
    #[error("records refused by {}: {source}", dir.display())]
    Rejected {
        dir: PathBuf,
        #[source]
        source: ValidationError,
    },
    /// An earlier append failed and could not be undone; the log takes no more appends
    /// until the broker restarts and recovery repairs the segment's tail.
    #[error("{} is offline after a failed write that could not be undone ({reason}); restart the broker to recover it", dir.display())]
    Offline { dir: PathBuf, reason: String },
    #[error("batch of {size} bytes appended to {} exceeds {limit} ({max} bytes)", dir.display())]
    RecordTooLarge {
        dir: PathBuf,
        size: u64,
        max: u64,
        limit: &'static str,
    },
    #[error("offset {offset} is out of range for {} (log start offset {log_start_offset}, log end offset {log_end_offset})", dir.display())]
    OffsetOutOfRange {
        dir: PathBuf,
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// A cleaning pass read segments that were deleted or replaced before it finished;
    /// its work is discarded and the next pass starts over.
    #[error("cleaned segments of {} are stale: segments changed during the pass", dir.display())]
    CleaningStale { dir: PathBuf },
    #[error("{} is corrupt at byte {position}: {reason}; restart the broker to run recovery", path.display())]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
}

fn io_err(op: impl Into<String>, path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    let op = op.into();
    move |source| LogError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One repair made while opening a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// A segment's tail was invalid and cut at the last valid batch boundary.
    TruncatedSegment {
        file: PathBuf,
        valid_bytes: u64,
        truncated_bytes: u64,
        /// True if the tail was a torn (incomplete) batch, false if corrupt.
        torn: bool,
        found: String,
    },
    /// A segment after a truncation point (or overlapping the previous one) was removed.
    DeletedSegment { file: PathBuf, reason: String },
    /// An index or time index was missing or corrupt and was rebuilt from the log.
    RebuiltIndex { file: PathBuf, found: String },
    /// A leftover file (temporary, orphaned index) was removed.
    RemovedStrayFile { file: PathBuf },
    /// A crash interrupted the cleaner's swap after its commit point; it was finished.
    FinishedCleanerSwap {
        base_offset: i64,
        replaced: Vec<i64>,
    },
    /// `leader-epoch-checkpoint` was unreadable and was rebuilt from the batch headers.
    RebuiltLeaderEpochCache { file: PathBuf, found: String },
}

/// What `Log::open` checked and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments whose every batch was CRC-checked.
    pub segments_validated: usize,
    /// Batches CRC-checked.
    pub batches_validated: u64,
    pub repairs: Vec<Repair>,
}

impl RecoveryReport {
    pub fn truncated_bytes(&self) -> u64 {
        self.repairs
            .iter()
            .map(|r| match r {
                Repair::TruncatedSegment {
                    truncated_bytes, ..
                } => *truncated_bytes,
                _ => 0,
            })
            .sum()
    }
}

/// Result of a successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// The broker time stamped into the batches, or -1 for CreateTime logs.
    pub log_append_time: i64,
    pub max_timestamp: i64,
    /// Offset of the first record carrying `max_timestamp` (-1 if no record has a
    /// timestamp).
    pub offset_of_max_timestamp: i64,
    pub record_count: u64,
    pub bytes: u64,
}

/// Result of a read: whole batches as stored, plus the log's bounds at read time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Zero or more whole batches from one segment.
    pub data: Bytes,
    /// Base offset of the first returned batch (may be below the requested offset).
    pub first_batch_offset: Option<i64>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// A partition log: segments keyed by base offset, the last one active.
///
/// Invariants: at least one segment exists; segment base offsets and batch
/// offsets strictly increase; `log_start_offset <= log_end_offset`;
/// `recovery_point <= log_end_offset`; every segment except the active one has
/// been fsynced.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, LogSegment>,
    log_start_offset: i64,
    recovery_point: i64,
    unflushed_messages: u64,
    last_flush_ms: i64,
    report: RecoveryReport,
    /// Set when a failed append could not be undone: why the log takes no more appends.
    offline: Option<String>,
    /// Bumped whenever a segment is deleted or replaced (see `cleaning`).
    generation: u64,
    /// Which appended bytes to write back and drop from the page cache.
    write_behind: WriteBehind,
    /// Leader epochs of the stored batches, persisted in `leader-epoch-checkpoint`.
    epochs: LeaderEpochCache,
    /// Tests: the cleaner's swap fails after this many more steps, as a crash would.
    #[cfg(test)]
    pub(crate) swap_crash_after: Option<usize>,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `contents` to `path` atomically: temp file, fsync, rename, fsync dir.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let f = File::create(&tmp)?;
        f.write_all_at(contents, 0)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

impl Log {
    /// Opens (or creates) the log in `dir` after an unclean shutdown or when
    /// the shutdown state is unknown. Every batch of every segment that may
    /// hold offsets >= `recovery_point` is CRC-checked, and the active segment
    /// always is; see the crate docs for the full recovery procedure.
    ///
    /// # Errors
    /// [`LogError::Io`] if the directory or a file cannot be read, written or
    /// truncated. Corrupt data is repaired, not reported as an error.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        recovery_point: i64,
        now_ms: i64,
    ) -> Result<Log, LogError> {
        Self::open_inner(dir, config, recovery_point, true, now_ms)
    }

    /// Opens the log after a clean shutdown: no batch is CRC-checked, only the
    /// cheap checks run (index sanity and a header walk of each segment's tail
    /// after its last index entry). If those find a problem the segment gets
    /// full recovery anyway.
    ///
    /// # Errors
    /// As [`Log::open`].
    pub fn open_clean(dir: &Path, config: LogConfig, now_ms: i64) -> Result<Log, LogError> {
        Self::open_inner(dir, config, i64::MAX, false, now_ms)
    }

    fn open_inner(
        dir: &Path,
        config: LogConfig,
        validate_from: i64,
        validate_active: bool,
        now_ms: i64,
    ) -> Result<Log, LogError> {
        fs::create_dir_all(dir).map_err(io_err("creating log directory", dir))?;
        let mut report = RecoveryReport::default();
        cleaning::complete_interrupted_swap(dir, &mut report.repairs)?;
        let mut bases = Vec::new();
        let mut index_files = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err("listing log directory", dir))? {
            let entry = entry.map_err(io_err("listing log directory", dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name.as_str(), ""));
            match ext {
                "log" => match stem.parse::<i64>() {
                    Ok(b) if stem.len() == 20 && b >= 0 => bases.push(b),
                    _ => {
                        warn!(file = %path.display(), "ignoring file with a non-offset name in log directory")
                    }
                },
                "index" | "timeindex" => index_files.push((stem.to_string(), path)),
                "tmp" | "deleted" | "cleaned" | "swap" => {
                    warn!(file = %path.display(), "removing leftover file from an interrupted operation");
                    fs::remove_file(&path).map_err(io_err("removing leftover file", &path))?;
                    report
                        .repairs
                        .push(Repair::RemovedStrayFile { file: path.clone() });
                }
                _ => {}
            }
        }
        bases.sort_unstable();
        for (stem, path) in index_files {
            if !stem
                .parse::<i64>()
                .is_ok_and(|b| bases.binary_search(&b).is_ok())
            {
                warn!(file = %path.display(), "removing index file that has no matching .log segment");
                fs::remove_file(&path).map_err(io_err("removing orphaned index", &path))?;
                report.repairs.push(Repair::RemovedStrayFile { file: path });
            }
        }

        let interval = config.index_interval_bytes;
        let mut segments = BTreeMap::new();
        let mut cut = false; // a truncation happened: later segments are dropped
        let mut prev_next: i64 = 0;
        for (i, &base) in bases.iter().enumerate() {
            let log_path = segment_file(dir, base, "log");
            if cut || base < prev_next {
                let reason = if cut {
                    "follows a segment whose tail was truncated during recovery".to_string()
                } else {
                    format!("base offset {base} overlaps the previous segment, which ends at {prev_next}")
                };
                warn!(file = %log_path.display(), %reason, "deleting segment during recovery");
                LogSegment::delete_files(dir, base)
                    .map_err(io_err("deleting segment during recovery", &log_path))?;
                report.repairs.push(Repair::DeletedSegment {
                    file: log_path,
                    reason,
                });
                cut = true;
                continue;
            }
            let next_base = bases.get(i + 1).copied();
            let validate = match next_base {
                None => validate_active || validate_from != i64::MAX,
                Some(nb) => nb > validate_from,
            };
            let (segment, truncated) =
                Self::load_segment(dir, base, validate, interval, &mut report)?;
            cut |= truncated;
            prev_next = segment.next_offset();
            segments.insert(base, segment);
        }

        let stored_start = read_log_start_offset(dir)?;
        if segments.is_empty() {
            let base = stored_start.unwrap_or(0).max(0);
            let seg = LogSegment::create(dir, base).map_err(io_err(
                "creating first segment",
                &segment_file(dir, base, "log"),
            ))?;
            // The new segment's name must survive a crash like its contents.
            sync_dir(dir).map_err(io_err("syncing log directory", dir))?;
            segments.insert(base, seg);
        }
        // Non-empty by construction just above.
        let first_base = segments.keys().next().copied().unwrap_or(0);
        let log_end = segments
            .values()
            .next_back()
            .map_or(0, LogSegment::next_offset);
        let log_start_offset = stored_start
            .unwrap_or(first_base)
            .max(first_base)
            .min(log_end);

        let mut log = Log {
            dir: dir.to_path_buf(),
            write_behind: WriteBehind::new(config.write_behind_bytes),
            config,
            segments,
            log_start_offset,
            recovery_point: 0,
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            report,
            offline: None,
            generation: 0,
            epochs: LeaderEpochCache::new(),
            #[cfg(test)]
            swap_crash_after: None,
        };
        if stored_start.is_some_and(|s| s > log.log_start_offset) {
            // Recovery cut the log below the stored start offset: store the
            // lower value, or later appends would silently move the start up.
            warn!(dir = %dir.display(), stored = ?stored_start, log_start_offset = log.log_start_offset,
                  "log start offset lowered to the recovered log end offset");
            log.persist_log_start_offset()?;
        }
        log.load_leader_epochs()?;
        // Everything that survived is now either trusted or validated: flush
        // what recovery touched so the recovery point can move to the end.
        log.flush()?;
        if !log.report.repairs.is_empty() {
            warn!(dir = %dir.display(), repairs = log.report.repairs.len(),
                  log_end_offset = log.log_end_offset(), "log recovered with repairs");
        }
        debug!(dir = %dir.display(), segments = log.segments.len(),
               log_start_offset = log.log_start_offset, log_end_offset = log.log_end_offset(),
               validated = log.report.segments_validated, "log loaded");
        Ok(log)
    }

    /// Loads one segment; returns it and whether its tail had to be truncated.
    fn load_segment(
        dir: &Path,
        base: i64,
        validate: bool,
        interval: u64,
        report: &mut RecoveryReport,
    ) -> Result<(LogSegment, bool), LogError> {
        let log_path = segment_file(dir, base, "log");
        let index_path = segment_file(dir, base, "index");
        let time_path = segment_file(dir, base, "timeindex");
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(io_err("opening segment", &log_path))?;
        let size = file
            .metadata()
            .map_err(io_err("reading segment size", &log_path))?
            .len();
        let (offset_index, mut offset_issue) = OffsetIndex::open(&index_path, base, size)
            .map_err(io_err("loading index", &index_path))?;
        let (time_index, mut time_issue) =
            TimeIndex::open(&time_path, base).map_err(io_err("loading time index", &time_path))?;
        let mut seg = LogSegment {
            base_offset: base,
            log_path: log_path.clone(),
            file,
            size,
            stats: SegmentStats::empty(base),
            offset_index,
            time_index,
            #[cfg(test)]
            faults: Default::default(),
        };

        let mut needs_recovery = validate;
        if !validate {
            if offset_issue.is_none() && time_issue.is_none() {
                // Trusted segment with sane indexes: walk headers after the last index entry.
                let (start_off, start_pos) = seg.offset_index.last_entry().unwrap_or((base, 0));
                let mut stats = SegmentStats::empty(base);
                stats.next_offset = start_off;
                let outcome = scan(&seg.file, base, start_pos, stats, size, false, u64::MAX)
                    .map_err(io_err("scanning segment tail", &log_path))?;
                if let Some(stop) = &outcome.stop {
                    warn!(file = %log_path.display(), position = stop.position, found = %stop.reason,
                          "segment below the recovery point failed the cheap header check; running full recovery on it");
                    needs_recovery = true;
                } else {
                    let next = outcome.stats.next_offset;
                    offset_issue = seg
                        .offset_index
                        .last_offset()
                        .filter(|&o| o >= next)
                        .map(|o| format!("last entry names offset {o}, past the segment's next offset {next}"));
                    time_issue = seg.time_index.check_offsets(next);
                    if offset_issue.is_none() && time_issue.is_none() {
                        let mut stats = outcome.stats;
                        if let Some((ts, off)) = seg.time_index.last_entry() {
                            if ts >= stats.max_timestamp {
                                stats.max_timestamp = ts;
                                stats.offset_of_max_timestamp = off;
                            }
                        }
                        if let Some(h) = seg
                            .header_at(0)
                            .map_err(io_err("reading first batch header", &log_path))?
                        {
                            stats.first_batch_timestamp =
                                BatchHeader::new(&h).map(|h| h.max_timestamp());
                        }
                        stats.bytes_since_last_index_entry = size - start_pos;
                        seg.stats = stats;
                    }
                }
            }
            if !needs_recovery && (offset_issue.is_some() || time_issue.is_some()) {
                let outcome = seg
                    .rebuild_indexes(interval)
                    .map_err(io_err("rebuilding indexes", &log_path))?;
                if outcome.stop.is_some() {
                    needs_recovery = true;
                } else {
                    record_index_repairs(
                        report,
                        &index_path,
                        &time_path,
                        &offset_issue,
                        &time_issue,
                    );
                }
            }
        }
        if !needs_recovery {
            return Ok((seg, false));
        }

        // Full recovery: CRC-check every batch, rebuild both indexes.
        let outcome = scan(
            &seg.file,
            base,
            0,
            SegmentStats::empty(base),
            size,
            true,
            interval,
        )
        .map_err(io_err("recovering segment", &log_path))?;
        report.segments_validated += 1;
        report.batches_validated += outcome.stats.batches;
        let mut truncated = false;
        if let Some(stop) = &outcome.stop {
            let cut_bytes = size - outcome.valid_end;
            warn!(file = %log_path.display(), position = stop.position, found = %stop.reason,
                  truncated_bytes = cut_bytes, kept_bytes = outcome.valid_end,
                  "truncating segment at the last valid batch; later segments will be deleted");
            seg.file
                .set_len(outcome.valid_end)
                .map_err(io_err("truncating segment", &log_path))?;
            seg.size = outcome.valid_end;
            report.repairs.push(Repair::TruncatedSegment {
                file: log_path.clone(),
                valid_bytes: outcome.valid_end,
                truncated_bytes: cut_bytes,
                torn: stop.truncated,
                found: stop.reason.clone(),
            });
            truncated = true;
        }
        seg.adopt_scan(&outcome)
            .map_err(io_err("rewriting indexes", &log_path))?;
        record_index_repairs(report, &index_path, &time_path, &offset_issue, &time_issue);
        Ok((seg, truncated))
    }

    /// What the last open checked and repaired.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the config; takes effect for the next append, roll and retention run.
    pub fn set_config(&mut self, config: LogConfig) {
        if config.write_behind_bytes != self.config.write_behind_bytes {
            self.write_behind = WriteBehind::new(config.write_behind_bytes);
        }
        self.config = config;
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// Offset below which all data is known to be fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Total bytes of all `.log` files.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of all segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    fn active(&self) -> &LogSegment {
        // Invariant: a log always has at least one segment.
        self.segments
            .values()
            .next_back()
            .expect("log has at least one segment")
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        self.segments
            .values_mut()
            .next_back()
            .expect("log has at least one segment")
    }

    /// Validates and appends one or more v2 batches as the partition leader, without
    /// stamping a leader epoch. See [`Log::append_with_epoch`].
    ///
    /// # Errors
    /// As [`Log::append_with_epoch`].
    pub fn append(&mut self, batches: &mut [u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        self.append_with_epoch(batches, None, now_ms)
    }

    /// Validates `batches` with this log's [`LogValidator`] (which may patch their headers)
    /// and appends them with [`Log::append_validated`]. The caller's buffer ends up holding
    /// exactly the bytes stored.
    ///
    /// # Errors
    /// [`LogError::Rejected`] if validation fails (nothing written), otherwise as
    /// [`Log::append_validated`].
    pub fn append_with_epoch(
        &mut self,
        batches: &mut [u8],
        leader_epoch: Option<i32>,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let validator = LogValidator::new(&self.config);
        let records = validator
            .validate(batches, &mut validator.decoder(), now_ms)
            .map_err(|source| LogError::Rejected {
                dir: self.dir.clone(),
                source,
            })?;
        self.append_validated(records, leader_epoch, now_ms)
    }

    /// Appends batches that passed [`LogValidator::validate`]: assigns offsets from the
    /// log end offset by rewriting base offsets in place (outside the CRC), stamps
    /// `leader_epoch` if given (and records it in the leader epoch cache at the first
    /// offset if it is a new epoch, persisting the cache before the write), rolls the active segment if needed, and writes everything
    /// with one write call (then fsyncs if `flush.messages` is reached).
    ///
    /// All or nothing: every check that can refuse the append (sizes, roll) runs before the
    /// first byte is written, and a failure after that (an index or fsync error) cuts the
    /// segment back, so a refused append leaves no trace in the log, its indexes or the log
    /// end offset. If even that undo fails, the log goes offline (see [`LogError::Offline`]).
    ///
    /// # Errors
    /// [`LogError::RecordTooLarge`] if the append exceeds `segment.bytes`;
    /// [`LogError::Io`] if a write failed (and was undone); [`LogError::Offline`].
    pub fn append_validated(
        &mut self,
        records: ValidatedRecords<'_>,
        leader_epoch: Option<i32>,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.check_online()?;
        let ValidatedRecords {
            buf,
            batches,
            log_append_time,
        } = records;
        let total = buf.len() as u64;
        let segment_limit = self.config.segment_bytes.min(u64::from(u32::MAX));
        if total > segment_limit {
            return Err(LogError::RecordTooLarge {
                dir: self.dir.clone(),
                size: total,
                max: segment_limit,
                limit: "segment.bytes",
            });
        }

        let first_offset = self.log_end_offset();
        let mut next = first_offset;
        let mut max_timestamp = -1;
        let mut offset_of_max_timestamp = -1;
        let mut record_count = 0u64;
        for b in &batches {
            let bytes = &mut buf[b.range()];
            batch::set_base_offset(bytes, next);
            if let Some(epoch) = leader_epoch {
                batch::set_partition_leader_epoch(bytes, epoch);
            }
            if b.max_timestamp > max_timestamp {
                max_timestamp = b.max_timestamp;
                offset_of_max_timestamp = next + i64::from(b.offset_delta_of_max_timestamp);
            }
            record_count += b.records as u64;
            next += i64::from(b.last_offset_delta) + 1;
        }
        let last_offset = next - 1;

        if let Some(epoch) = leader_epoch {
            // Before the write, as Kafka does: an entry at the log end offset with no data
            // behind it yet is what becoming leader records anyway.
            self.assign_epoch(epoch, first_offset)?;
        }
        self.write_run(
            buf,
            &batches,
            first_offset,
            last_offset,
            max_timestamp,
            record_count,
            now_ms,
        )?;
        Ok(AppendInfo {
            first_offset,
            last_offset,
            log_append_time,
            max_timestamp,
            offset_of_max_timestamp,
            record_count,
            bytes: total,
        })
    }

    /// Writes whole batches whose offsets are final (`data`, described by `batches`) to the
    /// active segment, rolling first if they don't fit, and applies `flush.messages`.
    /// All or nothing, as [`Log::append_validated`] describes; `data` must fit in an empty
    /// segment (the callers check `segment.bytes` and the relative-offset span).
    #[allow(clippy::too_many_arguments)]
    fn write_run(
        &mut self,
        data: &[u8],
        batches: &[ValidBatch],
        first_offset: i64,
        last_offset: i64,
        max_timestamp: i64,
        record_count: u64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let total = data.len() as u64;
        let end = self.log_end_offset();
        // Offsets kept from a leader can jump (compaction): if the run cannot sit in a
        // segment based at the log end offset, its segment starts at its first offset.
        let base = if last_offset - end > i64::from(i32::MAX) {
            first_offset
        } else {
            end
        };
        if (self.active().is_empty() && self.active().base_offset != base)
            || self.should_roll(total, last_offset, max_timestamp)
        {
            self.roll_to(base, now_ms)?;
        }
        let interval = self.config.index_interval_bytes;
        let sync = self
            .config
            .flush_messages
            .is_some_and(|n| self.unflushed_messages + record_count >= n);
        let seg = self.active_mut();
        let path = seg.log_path.clone();
        match seg.append(data, batches, interval, sync) {
            Ok(()) => {}
            Err(AppendError::RolledBack(source)) => {
                warn!(file = %path.display(), error = %source, "append failed and was undone");
                return Err(io_err("appending to segment", &path)(source));
            }
            Err(AppendError::Torn { error, undo }) => {
                let reason = format!("append failed ({error}), then undoing it failed ({undo})");
                tracing::error!(file = %path.display(), %reason, "log taken offline");
                self.offline = Some(reason);
                return Err(io_err("appending to segment", &path)(error));
            }
        }
        if sync {
            self.recovery_point = self.log_end_offset();
            self.unflushed_messages = 0;
        } else {
            self.unflushed_messages += record_count;
        }
        self.write_behind();
        Ok(())
    }

    /// Hands the kernel the byte ranges [`WriteBehind`] says are due. Advice only: a failure
    /// costs memory, not data, so it is logged and the append stands.
    fn write_behind(&mut self) {
        let (base, size) = (self.active().base_offset, self.active().size);
        for step in self.write_behind.after_append(base, size) {
            // The segment before the active one may have been deleted since (retention).
            let Some(seg) = self.segments.get(&step.segment) else {
                continue;
            };
            let Some(len) = std::num::NonZeroU64::new(step.range.end - step.range.start) else {
                continue; // (`None` would mean "to the end of the file")
            };
            // On Linux DONTNEED starts writeback of dirty pages and drops clean ones: the
            // same call does both kinds of step.
            if let Err(error) = rustix::fs::fadvise(
                &seg.file,
                step.range.start,
                Some(len),
                rustix::fs::Advice::DontNeed,
            ) {
                debug!(file = %seg.log_path.display(), ?step, %error, "write-behind advice failed");
            }
        }
    }

    /// [`LogError::Offline`] once a failed write could not be undone.
    pub(crate) fn check_online(&self) -> Result<(), LogError> {
        match &self.offline {
            Some(reason) => Err(LogError::Offline {
                dir: self.dir.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Kafka's roll rule. The time rule compares the incoming batches' timestamp with the
    /// segment's first batch timestamp (not the wall clock), so a producer replaying old
    /// data doesn't get a segment per batch.
    fn should_roll(
        &self,
        append_bytes: u64,
        last_offset: i64,
        incoming_max_timestamp: i64,
    ) -> bool {
        let seg = self.active();
        if seg.is_empty() {
            return false;
        }
        let cfg = &self.config;
        let segment_limit = cfg.segment_bytes.min(u64::from(u32::MAX));
        // A compacted log also rolls once its active segment's records are
        // max.compaction.lag.ms old: the cleaner never touches the active segment.
        let roll_ms = match cfg.cleanup_policy {
            CleanupPolicy::Delete => cfg.segment_ms,
            _ => cfg.segment_ms.min(cfg.max_compaction_lag_ms),
        };
        seg.size + append_bytes > segment_limit
            || seg
                .stats
                .first_batch_timestamp
                .is_some_and(|t| t >= 0 && incoming_max_timestamp.saturating_sub(t) > roll_ms)
            || seg.offset_index.size_bytes() + crate::index::OFFSET_ENTRY_SIZE
                > cfg.segment_index_bytes
            || seg.time_index.size_bytes() + crate::index::TIME_ENTRY_SIZE > cfg.segment_index_bytes
            || last_offset - seg.base_offset > i64::from(i32::MAX)
    }

    /// Starts a new active segment at the log end offset (no-op if the active
    /// segment is empty). The old segment is fsynced, so the recovery point
    /// advances to the new base offset.
    ///
    /// # Errors
    /// [`LogError::Io`] if syncing the old or creating the new segment fails.
    pub fn roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        if self.active().is_empty() {
            return Ok(());
        }
        self.roll_to(self.log_end_offset(), now_ms)
    }

    /// Starts a new active segment at `new_base` (>= the log end offset). An empty active
    /// segment is replaced rather than kept (only follower appends across an offset gap
    /// ask for a base other than the log end offset of an empty segment).
    fn roll_to(&mut self, new_base: i64, _now_ms: i64) -> Result<(), LogError> {
        debug_assert!(new_base >= self.log_end_offset());
        let old = self.active_mut();
        let (old_base, old_path) = (old.base_offset, old.log_path.clone());
        if old.is_empty() {
            self.delete_segment(old_base, "replaced by a segment at a later base offset")?;
        } else {
            old.on_become_inactive()
                .map_err(io_err("syncing segment before roll", &old_path))?;
        }
        let new_path = segment_file(&self.dir, new_base, "log");
        let seg = LogSegment::create(&self.dir, new_base)
            .map_err(io_err("creating segment", &new_path))?;
        sync_dir(&self.dir).map_err(io_err("syncing log directory", &self.dir))?;
        self.segments.insert(new_base, seg);
        self.recovery_point = self.recovery_point.max(new_base);
        debug!(dir = %self.dir.display(), base_offset = new_base, "rolled new segment");
        Ok(())
    }

    fn out_of_range(&self, offset: i64) -> LogError {
        LogError::OffsetOutOfRange {
            dir: self.dir.clone(),
            offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset(),
        }
    }

    fn corrupt(seg: &LogSegment, position: u64, reason: impl Into<String>) -> LogError {
        LogError::Corrupt {
            path: seg.log_path.clone(),
            position,
            reason: reason.into(),
        }
    }

    /// Reads a header at `pos` of `seg` and returns (base offset, last offset, max ts, size).
    fn batch_at(seg: &LogSegment, pos: u64) -> Result<Option<(i64, i64, i64, u64)>, LogError> {
        let Some(h) = seg
            .header_at(pos)
            .map_err(io_err("reading batch header", &seg.log_path))?
        else {
            if pos < seg.size {
                return Err(Self::corrupt(
                    seg,
                    pos,
                    "segment ends inside a batch header",
                ));
            }
            return Ok(None);
        };
        let size = batch::check_header(&h, pos as usize, (seg.size - pos) as usize)
            .map_err(|e| Self::corrupt(seg, pos, e.to_string()))?;
        let header = BatchHeader::new(&h).ok_or_else(|| Self::corrupt(seg, pos, "short header"))?;
        Ok(Some((
            header.base_offset(),
            header.last_offset(),
            header.max_timestamp(),
            size as u64,
        )))
    }

    /// Reads whole batches starting with the batch that contains
    /// `start_offset` (Kafka returns the containing batch; the client skips
    /// records below the offset it asked for). Returns at most `max_bytes`,
    /// except that with `min_one_batch` (KIP-74) the first batch is returned
    /// whole even if larger. Data comes from one segment only.
    ///
    /// # Errors
    /// [`LogError::OffsetOutOfRange`] if `start_offset` is below the log start
    /// offset or above the log end offset (equal to it gives empty data);
    /// [`LogError::Io`] / [`LogError::Corrupt`] on read failures.
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: u64,
        min_one_batch: bool,
    ) -> Result<ReadResult, LogError> {
        self.read_up_to(start_offset, max_bytes, min_one_batch, None)
    }

    /// Like [`Log::read`] but stops before any batch whose base offset is >=
    /// `max_offset` (the server passes the high watermark for consumer fetches).
    ///
    /// # Errors
    /// As [`Log::read`].
    pub fn read_up_to(
        &self,
        start_offset: i64,
        max_bytes: u64,
        min_one_batch: bool,
        max_offset: Option<i64>,
    ) -> Result<ReadResult, LogError> {
        let log_end = self.log_end_offset();
        if start_offset < self.log_start_offset || start_offset > log_end {
            return Err(self.out_of_range(start_offset));
        }
        let mut result = ReadResult {
            data: Bytes::new(),
            first_batch_offset: None,
            log_start_offset: self.log_start_offset,
            log_end_offset: log_end,
        };
        let floor = self
            .segments
            .range(..=start_offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        let Some(seg) = self
            .segments
            .range(floor..)
            .map(|(_, s)| s)
            // Compaction can leave empty inactive segments: they hold no offset.
            .find(|s| !s.is_empty() && s.next_offset() > start_offset)
        else {
            return Ok(result);
        };
        let mut pos = seg.offset_index.lookup(start_offset);
        // Find the batch containing start_offset.
        let start_pos = loop {
            match Self::batch_at(seg, pos)? {
                None => return Ok(result),
                Some((base, last, _, size)) => {
                    if last >= start_offset {
                        if result.first_batch_offset.is_none() {
                            result.first_batch_offset = Some(base);
                        }
                        break pos;
                    }
                    pos += size;
                }
            }
        };
        let mut end = start_pos;
        while let Some((base, _, _, size)) = Self::batch_at(seg, end)? {
            if max_offset.is_some_and(|m| base >= m) {
                break;
            }
            let taken = end - start_pos;
            if taken + size > max_bytes && !(taken == 0 && min_one_batch) {
                break;
            }
            end += size;
        }
        if end == start_pos {
            result.first_batch_offset = None;
            return Ok(result);
        }
        let data = seg
            .read(start_pos, (end - start_pos) as usize)
            .map_err(io_err("reading batches", &seg.log_path))?;
        result.data = Bytes::from(data);
        Ok(result)
    }

    /// ListOffsets by timestamp: the first batch whose maxTimestamp >= `ts`,
    /// as (offset, that batch's maxTimestamp). The offset is the batch's base
    /// offset (raised to the log start offset if below it): records are not
    /// decoded, so this is batch-granular, and a consumer starting there sees
    /// every record with timestamp >= `ts`. `None` if no batch qualifies.
    ///
    /// # Errors
    /// [`LogError::Io`] / [`LogError::Corrupt`] on read failures.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        for seg in self.segments.values() {
            if seg.stats.max_timestamp < ts || seg.next_offset() <= self.log_start_offset {
                continue;
            }
            let mut pos = seg
                .time_index
                .lookup_below(ts)
                .map_or(0, |o| seg.offset_index.lookup(o));
            while let Some((base, last, max_ts, size)) = Self::batch_at(seg, pos)? {
                if max_ts >= ts && last >= self.log_start_offset {
                    return Ok(Some((base.max(self.log_start_offset), max_ts)));
                }
                pos += size;
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP (-3): (offset, timestamp) of the batch with
    /// the largest maxTimestamp (the earliest such batch on ties). Batch
    /// granularity: the offset is that batch's last offset, as Kafka reports
    /// for batches it does not decompress. `None` for an empty log.
    pub fn max_timestamp_offset(&self) -> Option<(i64, i64)> {
        let mut best: Option<(i64, i64)> = None;
        for seg in self.segments.values() {
            if seg.stats.max_timestamp >= 0 && best.is_none_or(|(_, t)| seg.stats.max_timestamp > t)
            {
                best = Some((seg.stats.offset_of_max_timestamp, seg.stats.max_timestamp));
            }
        }
        best
    }

    /// DeleteRecords: moves the log start offset up to `offset` and deletes
    /// segments entirely below it (never the active one). The new start offset
    /// is persisted in `log-start-offset` before any segment is deleted.
    /// Returns the new log start offset (unchanged if `offset` is below it).
    ///
    /// # Errors
    /// [`LogError::OffsetOutOfRange`] if `offset` > log end offset;
    /// [`LogError::Io`] if persisting or deleting fails.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        if offset > self.log_end_offset() || offset < 0 {
            return Err(self.out_of_range(offset));
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        self.log_start_offset = offset;
        self.persist_log_start_offset()?;
        self.epochs_follow_log_start()?;
        self.delete_segments_below_start()?;
        Ok(self.log_start_offset)
    }

    fn persist_log_start_offset(&self) -> Result<(), LogError> {
        let path = self.dir.join(LOG_START_OFFSET_FILE);
        write_atomically(&path, format!("{}\n", self.log_start_offset).as_bytes())
            .map_err(io_err("writing log start offset", &path))
    }

    fn delete_segments_below_start(&mut self) -> Result<usize, LogError> {
        let doomed: Vec<i64> = self
            .segments
            .iter()
            .rev()
            .skip(1) // never the active segment
            .filter(|(_, s)| s.next_offset() <= self.log_start_offset)
            .map(|(b, _)| *b)
            .collect();
        for b in &doomed {
            self.delete_segment(*b, "below the log start offset")?;
        }
        Ok(doomed.len())
    }

    fn delete_segment(&mut self, base: i64, why: &str) -> Result<(), LogError> {
        self.segments.remove(&base);
        self.generation += 1;
        let path = segment_file(&self.dir, base, "log");
        LogSegment::delete_files(&self.dir, base).map_err(io_err("deleting segment", &path))?;
        debug!(file = %path.display(), reason = why, "deleted segment");
        Ok(())
    }

    /// Retention: deletes the oldest segments whose largest timestamp is older
    /// than `retention.ms`, then the oldest segments while the log is larger
    /// than `retention.bytes` by at least their size. The active segment is
    /// never deleted. Advances the log start offset; returns segments deleted.
    ///
    /// # Errors
    /// [`LogError::Io`] if a segment cannot be deleted or the start offset persisted.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        // Like Kafka, a compact-only log is never trimmed by time or size: its old segments
        // hold the latest value of keys that were not written since.
        if self.config.cleanup_policy == CleanupPolicy::Compact {
            return Ok(0);
        }
        let mut doomed = Vec::new();
        let inactive: Vec<(i64, u64, i64)> = self
            .segments
            .iter()
            .rev()
            .skip(1)
            .rev()
            .map(|(b, s)| (*b, s.size, s.stats.max_timestamp))
            .collect();
        let mut i = 0;
        if let Some(ms) = self.config.retention_ms {
            while i < inactive.len() && now_ms.saturating_sub(inactive[i].2) > ms {
                doomed.push(inactive[i].0);
                i += 1;
            }
        }
        if let Some(limit) = self.config.retention_bytes {
            let kept: u64 = self.size_bytes() - inactive[..i].iter().map(|s| s.1).sum::<u64>();
            let mut excess = kept.saturating_sub(limit);
            while i < inactive.len() && excess >= inactive[i].1 {
                excess -= inactive[i].1;
                doomed.push(inactive[i].0);
                i += 1;
            }
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        // Move the start offset first so a crash mid-way never exposes a gap.
        let new_start = self
            .segments
            .range(doomed[doomed.len() - 1] + 1..)
            .next()
            .map_or(self.log_end_offset(), |(b, _)| *b);
        if new_start > self.log_start_offset {
            self.log_start_offset = new_start;
            self.persist_log_start_offset()?;
            self.epochs_follow_log_start()?;
        }
        for b in &doomed {
            self.delete_segment(*b, "retention")?;
        }
        debug!(dir = %self.dir.display(), deleted = doomed.len(), log_start_offset = self.log_start_offset,
               "retention deleted segments");
        Ok(doomed.len())
    }

    /// Fsyncs the active segment and its indexes (older segments were synced
    /// when rolled) and moves the recovery point to the log end offset.
    ///
    /// # Errors
    /// [`LogError::Io`] if fsync fails; the recovery point then stays put.
    pub fn flush(&mut self) -> Result<(), LogError> {
        let seg = self.active();
        seg.sync().map_err(io_err("fsync", &seg.log_path))?;
        self.recovery_point = self.log_end_offset();
        self.unflushed_messages = 0;
        Ok(())
    }

    /// Flushes if `flush.ms` is set and has elapsed since the last time-based flush.
    ///
    /// # Errors
    /// As [`Log::flush`].
    pub fn maybe_flush(&mut self, now_ms: i64) -> Result<bool, LogError> {
        let Some(ms) = self.config.flush_ms else {
            return Ok(false);
        };
        if now_ms.saturating_sub(self.last_flush_ms) < ms as i64 {
            return Ok(false);
        }
        self.last_flush_ms = now_ms;
        if self.recovery_point == self.log_end_offset() {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    /// Deletes every segment and starts the log over, empty, at `offset` (Kafka's
    /// truncateFullyAndStartAt): for a follower whose log ends below the leader's log
    /// start, and for truncation below the first batch. The epoch cache is cleared: no
    /// record is left for an epoch to own.
    ///
    /// # Errors
    /// [`LogError::Io`] on file errors.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), LogError> {
        let start = offset.max(0);
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for b in bases {
            self.delete_segment(b, "truncation")?;
        }
        let path = segment_file(&self.dir, start, "log");
        let seg =
            LogSegment::create(&self.dir, start).map_err(io_err("creating segment", &path))?;
        sync_dir(&self.dir).map_err(io_err("syncing log directory", &self.dir))?;
        self.segments.insert(start, seg);
        if start != self.log_start_offset {
            self.log_start_offset = start;
            self.persist_log_start_offset()?;
        }
        self.recovery_point = start;
        if self.epochs.clear() {
            self.persist_leader_epochs()?;
        }
        Ok(())
    }

    /// Drops every batch containing an offset >= `offset` (for replication's
    /// log truncation). Truncation is batch-granular: a batch straddling
    /// `offset` is removed whole, so the new log end offset may be below
    /// `offset` (it is the straddling batch's base offset). If `offset` is
    /// below the log start offset the log is emptied and restarts at `offset`.
    /// Leader epochs starting at or after the new log end offset are forgotten (all of
    /// them when the log is emptied). Returns the new log end offset.
    ///
    /// # Errors
    /// [`LogError::Io`] on file errors.
    pub fn truncate_to(&mut self, offset: i64) -> Result<i64, LogError> {
        if offset >= self.log_end_offset() {
            return Ok(self.log_end_offset());
        }
        let interval = self.config.index_interval_bytes;
        if offset < self.log_start_offset || offset <= self.first_base() {
            // Nothing below `offset` survives: restart the log at `offset`.
            self.truncate_fully_and_start_at(offset)?;
        } else {
            let later: Vec<i64> = self.segments.range(offset..).map(|(b, _)| *b).collect();
            for b in later {
                self.delete_segment(b, "truncation")?;
            }
            let seg = self.active_mut();
            let mut pos = seg.offset_index.lookup(offset);
            while let Some((_, last, _, size)) = Self::batch_at(seg, pos)? {
                if last >= offset {
                    break;
                }
                pos += size;
            }
            let path = seg.log_path.clone();
            seg.truncate_at(pos, interval)
                .map_err(io_err("truncating segment", &path))?;
        }
        self.recovery_point = self.recovery_point.min(self.log_end_offset());
        if self.epochs.truncate_from_end(self.log_end_offset()) {
            self.persist_leader_epochs()?;
        }
        if self.log_start_offset > self.log_end_offset() {
            self.log_start_offset = self.log_end_offset();
            self.persist_log_start_offset()?;
            self.epochs_follow_log_start()?;
        }
        Ok(self.log_end_offset())
    }

    fn first_base(&self) -> i64 {
        self.segments.keys().next().copied().unwrap_or(0)
    }

    /// Flushes and closes the log.
    ///
    /// # Errors
    /// As [`Log::flush`].
    pub fn close(mut self) -> Result<(), LogError> {
        self.flush()
    }
}

fn read_log_start_offset(dir: &Path) -> Result<Option<i64>, LogError> {
    let path = dir.join(LOG_START_OFFSET_FILE);
    match fs::read_to_string(&path) {
        Ok(s) => match s.trim().parse::<i64>() {
            Ok(v) => Ok(Some(v)),
            Err(_) => {
                warn!(file = %path.display(), contents = %s.trim(),
                      "ignoring unparsable log start offset file; using the first segment's base offset");
                Ok(None)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("reading log start offset", &path)(e)),
    }
}

fn record_index_repairs(
    report: &mut RecoveryReport,
    index_path: &Path,
    time_path: &Path,
    offset_issue: &Option<String>,
    time_issue: &Option<String>,
) {
    for (path, issue) in [(index_path, offset_issue), (time_path, time_issue)] {
        if let Some(found) = issue {
            warn!(file = %path.display(), %found, "index rebuilt from the log");
            report.repairs.push(Repair::RebuiltIndex {
                file: path.to_path_buf(),
                found: found.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    //! All-or-nothing appends: failures injected after the write (see `segment::Faults`).

    use super::*;
    use crate::batch::testing::{decode_records, simple_batch};

    fn config() -> LogConfig {
        LogConfig {
            // An index entry for every batch after the first.
            index_interval_bytes: 0,
            flush_messages: Some(1),
            ..LogConfig::default()
        }
    }

    /// Everything an append could leave a trace in.
    #[derive(Debug, PartialEq)]
    struct Trace {
        log_end_offset: i64,
        recovery_point: i64,
        segment_bytes: u64,
        file_bytes: u64,
        offset_entries: usize,
        time_entries: usize,
        stats: String,
        records: Vec<(i64, Option<Vec<u8>>)>,
    }

    fn trace(log: &Log) -> Trace {
        let seg = log.active();
        let data = log.read(0, u64::MAX, true).unwrap().data;
        Trace {
            log_end_offset: log.log_end_offset(),
            recovery_point: log.recovery_point(),
            segment_bytes: seg.size,
            file_bytes: seg.file.metadata().unwrap().len(),
            offset_entries: seg.offset_index.entries(),
            time_entries: seg.time_index.entries(),
            stats: format!("{:?}", seg.stats),
            records: decode_records(&data)
                .into_iter()
                .map(|r| (r.offset, r.value))
                .collect(),
        }
    }

    #[test]
    fn a_failure_after_the_write_leaves_no_trace() {
        for fault in ["index append", "fsync"] {
            let tmp = tempfile::tempdir().unwrap();
            let mut log = Log::open(tmp.path(), config(), 0, 0).unwrap();
            for i in 0..3 {
                log.append(&mut simple_batch(0, 1000 + i, 2), 1000).unwrap();
            }
            let before = trace(&log);
            assert_eq!(before.offset_entries, 2, "batches 2 and 3 are indexed");
            let faults = &mut log.active_mut().faults;
            match fault {
                "index append" => faults.index_append = true,
                _ => faults.sync = true,
            }
            let err = log.append(&mut simple_batch(0, 2000, 5), 1000).unwrap_err();
            assert!(
                matches!(&err, LogError::Io { source, .. } if source.to_string().contains("injected")),
                "{fault}: {err}"
            );
            assert_eq!(
                trace(&log),
                before,
                "{fault}: the failed append left a trace"
            );

            // The next append takes the offsets the failed one would have had.
            let info = log.append(&mut simple_batch(0, 3000, 1), 1000).unwrap();
            assert_eq!(info.first_offset, 6, "{fault}");
            assert_eq!(trace(&log).offset_entries, 3, "{fault}");

            // And recovery, which checks every batch and rebuilds the indexes, agrees.
            let after = trace(&log);
            drop(log);
            let log = Log::open(tmp.path(), config(), 0, 0).unwrap();
            assert!(log.recovery_report().repairs.is_empty(), "{fault}");
            let reopened = trace(&log);
            assert_eq!(reopened.records, after.records, "{fault}");
            assert_eq!(reopened.offset_entries, after.offset_entries, "{fault}");
            assert_eq!(reopened.time_entries, after.time_entries, "{fault}");
            let values: Vec<i64> = reopened.records.iter().map(|r| r.0).collect();
            assert_eq!(values, [0, 1, 2, 3, 4, 5, 6], "{fault}");
        }
    }
}
