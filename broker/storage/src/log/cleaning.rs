//! The log's side of compaction: what may be cleaned, the cleaner's checkpoint, and the
//! crash-safe swap of cleaned segments (the pass itself is in [`crate::cleaner`], which
//! works on cloned file handles without holding the log's lock).
//!
//! # Files
//!
//! ```text
//! cleaner-offset-checkpoint   "<dirty start offset> <earliest tombstone horizon or -1>\n"
//! <base>.cleaned              a cleaned segment being written (no index files)
//! cleaner-swap                the swap manifest: one line per cleaned segment,
//!                             "<new base> <old base> <old base>...", written atomically
//! ```
//!
//! # Swap protocol ([`Log::swap_cleaned`], under the write lock)
//!
//! 1. Every `<base>.cleaned` is complete and fsynced before the swap starts.
//! 2. The manifest is written (temp file, fsync, rename, directory fsync): **the commit
//!    point**. Before it, a crash leaves the old segments and stray `.cleaned` files,
//!    which open removes. After it, open finishes the swap.
//! 3. Per cleaned segment: delete the old segments it replaces other than its own base,
//!    delete the index files of its base, rename `<base>.cleaned` over `<base>.log`.
//!    Each step is idempotent, and the rename comes last, so "`.cleaned` still exists"
//!    means "this group is not finished" ([`complete_interrupted_swap`] redoes it).
//! 4. Directory fsync, then the manifest is removed.
//!
//! A crash at any point therefore recovers to the old segments or the new ones, never a
//! mix: an old segment is deleted only after the manifest that names its replacement is
//! durable. The indexes of swapped segments are rebuilt from their headers on open (their
//! files are deleted in step 3), as for any segment with a missing index.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

use tracing::{info, warn};

use super::{io_err, sync_dir, write_atomically, Log, LogError, Repair};
use crate::config::LogConfig;
use crate::index::{OffsetIndex, TimeIndex};
use crate::segment::{segment_file, LogSegment, ScanOutcome};

/// The cleaner's progress: where the dirty section starts, and when retained tombstones
/// may next go.
pub const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";
/// The swap manifest (see the module docs).
pub const SWAP_MANIFEST_FILE: &str = "cleaner-swap";

/// An inactive segment the cleaner may read: a cloned handle, so reading needs no lock
/// (inactive segments never change in place; one that is deleted stays readable through
/// the handle, and the swap notices through the log's generation).
#[derive(Debug)]
pub struct CleanableSegment {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size: u64,
    pub max_timestamp: i64,
    pub first_batch_timestamp: Option<i64>,
    pub file: File,
}

/// What a pass may clean, taken under a read lock ([`Log::cleanable_section`]).
#[derive(Debug)]
pub struct CleanableSection {
    pub dir: std::path::PathBuf,
    pub config: LogConfig,
    /// Inactive segments, oldest first, up to the first one `min.compaction.lag.ms`
    /// protects. The active segment is never among them.
    pub segments: Vec<CleanableSegment>,
    /// Segments from this offset on are dirty (not cleaned since they were written).
    pub dirty_start: i64,
    /// The earliest delete horizon of tombstones the last pass kept.
    pub tombstone_horizon: Option<i64>,
    /// Changes whenever a segment is deleted or replaced; the swap checks it.
    pub generation: u64,
}

impl CleanableSection {
    /// Bytes of segments not cleaned yet: the cleaner's backlog.
    pub fn dirty_bytes(&self) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.base_offset >= self.dirty_start)
            .map(|s| s.size)
            .sum()
    }

    /// Bytes of the whole cleanable section.
    pub fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// Dirty bytes over cleanable bytes (0 for an empty section).
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.total_bytes();
        if total == 0 {
            return 0.0;
        }
        self.dirty_bytes() as f64 / total as f64
    }

    /// Why the log should be cleaned now, if it should: the dirty ratio reached
    /// `min.cleanable.dirty.ratio`, a dirty record is older than `max.compaction.lag.ms`,
    /// or kept tombstones reached their delete horizon.
    pub fn due(&self, now_ms: i64) -> Option<&'static str> {
        if self.dirty_bytes() > 0 && self.dirty_ratio() >= self.config.min_cleanable_dirty_ratio {
            return Some("dirty ratio");
        }
        let first_dirty = self
            .segments
            .iter()
            .find(|s| s.base_offset >= self.dirty_start);
        if first_dirty
            .and_then(|s| s.first_batch_timestamp)
            .is_some_and(|t| t >= 0 && now_ms.saturating_sub(t) > self.config.max_compaction_lag_ms)
        {
            return Some("max.compaction.lag.ms");
        }
        if self.tombstone_horizon.is_some_and(|h| now_ms >= h) {
            return Some("tombstones past their delete horizon");
        }
        None
    }
}

/// A cleaned segment ready to swap in: `<base_offset>.cleaned`, replacing the segments at
/// `replaces` (its own base first), with the header scan that gives its indexes.
pub struct CleanedSegment {
    pub base_offset: i64,
    pub replaces: Vec<i64>,
    pub size: u64,
    pub scan: ScanOutcome,
}

impl Log {
    /// The section a cleaning pass may work on, with cloned segment handles.
    ///
    /// # Errors
    /// [`LogError::Io`] if a handle cannot be cloned or the checkpoint read.
    pub fn cleanable_section(&self, now_ms: i64) -> Result<CleanableSection, LogError> {
        let min_lag = self.config.min_compaction_lag_ms;
        let mut segments = Vec::new();
        for seg in self.segments.values().rev().skip(1).rev() {
            if min_lag > 0 && seg.stats.max_timestamp > now_ms.saturating_sub(min_lag) {
                break;
            }
            segments.push(CleanableSegment {
                base_offset: seg.base_offset,
                next_offset: seg.next_offset(),
                size: seg.size,
                max_timestamp: seg.stats.max_timestamp,
                first_batch_timestamp: seg.stats.first_batch_timestamp,
                file: seg
                    .file
                    .try_clone()
                    .map_err(io_err("cloning segment handle", &seg.log_path))?,
            });
        }
        let (checkpoint, tombstone_horizon) = self.cleaner_checkpoint()?;
        let first = self.first_base();
        // A checkpoint past the log end (the log was truncated) or below the first segment
        // (DeleteRecords, retention) starts the dirty section at the first segment.
        let dirty_start = if checkpoint > self.log_end_offset() || checkpoint < first {
            first
        } else {
            checkpoint
        };
        Ok(CleanableSection {
            dir: self.dir.clone(),
            config: self.config.clone(),
            segments,
            dirty_start,
            tombstone_horizon,
            generation: self.generation,
        })
    }

    fn cleaner_checkpoint(&self) -> Result<(i64, Option<i64>), LogError> {
        let path = self.dir.join(CLEANER_CHECKPOINT_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((-1, None)),
            Err(e) => return Err(io_err("reading cleaner checkpoint", &path)(e)),
        };
        let mut fields = text.split_whitespace().map(str::parse::<i64>);
        match (fields.next(), fields.next()) {
            (Some(Ok(offset)), Some(Ok(horizon))) => {
                Ok((offset, (horizon >= 0).then_some(horizon)))
            }
            _ => {
                warn!(file = %path.display(), contents = %text.trim(),
                      "ignoring unparsable cleaner checkpoint; the whole log counts as dirty");
                Ok((-1, None))
            }
        }
    }

    /// Swaps cleaned segments in (see the module docs for the protocol). Refused with
    /// [`LogError::CleaningStale`] if a segment was deleted or replaced since `generation`
    /// was read (retention, DeleteRecords, truncation): the caller discards its work.
    ///
    /// # Errors
    /// [`LogError::CleaningStale`]; [`LogError::Io`]: before the commit point the old
    /// segments are untouched; after it the log goes offline until a restart finishes the
    /// swap.
    pub fn swap_cleaned(
        &mut self,
        generation: u64,
        cleaned: Vec<CleanedSegment>,
    ) -> Result<(), LogError> {
        if generation != self.generation {
            return Err(LogError::CleaningStale {
                dir: self.dir.clone(),
            });
        }
        let active = self.active().base_offset;
        let known = cleaned
            .iter()
            .flat_map(|c| &c.replaces)
            .all(|b| *b != active && self.segments.contains_key(b));
        if !known {
            return Err(LogError::CleaningStale {
                dir: self.dir.clone(),
            });
        }
        let manifest: String = cleaned
            .iter()
            .map(|c| {
                let old: Vec<String> = c.replaces.iter().map(i64::to_string).collect();
                format!("{} {}\n", c.base_offset, old.join(" "))
            })
            .collect();
        let manifest_path = self.dir.join(SWAP_MANIFEST_FILE);
        self.swap_step()?;
        write_atomically(&manifest_path, manifest.as_bytes())
            .map_err(io_err("writing swap manifest", &manifest_path))?;
        // Committed: from here on a failure leaves the log for recovery to finish.
        let result = (|| {
            for c in &cleaned {
                self.swap_step()?;
                swap_files(&self.dir, c.base_offset, &c.replaces)?;
            }
            sync_dir(&self.dir).map_err(io_err("syncing log directory", &self.dir))?;
            self.swap_step()?;
            fs::remove_file(&manifest_path)
                .map_err(io_err("removing swap manifest", &manifest_path))?;
            sync_dir(&self.dir).map_err(io_err("syncing log directory", &self.dir))?;
            for c in cleaned {
                for old in &c.replaces {
                    self.segments.remove(old);
                }
                let seg = self.open_cleaned(c)?;
                self.segments.insert(seg.base_offset, seg);
            }
            Ok(())
        })();
        self.generation += 1;
        if let Err(e) = &result {
            let reason =
                format!("swapping in cleaned segments failed ({e}); a restart finishes the swap");
            tracing::error!(dir = %self.dir.display(), %reason, "log taken offline");
            self.offline = Some(reason);
        }
        result
    }

    /// The in-memory segment of a swapped-in file, its indexes written from the scan.
    fn open_cleaned(&self, c: CleanedSegment) -> Result<LogSegment, LogError> {
        let base = c.base_offset;
        let log_path = segment_file(&self.dir, base, "log");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(io_err("opening cleaned segment", &log_path))?;
        let index_path = segment_file(&self.dir, base, "index");
        let time_path = segment_file(&self.dir, base, "timeindex");
        let (offset_index, _) = OffsetIndex::open(&index_path, base, c.size)
            .map_err(io_err("creating index", &index_path))?;
        let (time_index, _) =
            TimeIndex::open(&time_path, base).map_err(io_err("creating time index", &time_path))?;
        let mut seg = LogSegment {
            base_offset: base,
            log_path: log_path.clone(),
            file,
            size: c.size,
            stats: c.scan.stats.clone(),
            offset_index,
            time_index,
            #[cfg(test)]
            faults: Default::default(),
        };
        seg.adopt_scan(&c.scan)
            .and_then(|()| seg.on_become_inactive())
            .map_err(io_err("writing indexes of cleaned segment", &log_path))?;
        Ok(seg)
    }

    /// Tests stop the swap after a number of steps, as a crash would.
    fn swap_step(&mut self) -> Result<(), LogError> {
        #[cfg(test)]
        if let Some(left) = self.swap_crash_after.as_mut() {
            if *left == 0 {
                return Err(io_err("swap step", &self.dir)(io::Error::other(
                    "injected crash",
                )));
            }
            *left -= 1;
        }
        Ok(())
    }
}

/// Step 3 of the protocol for one cleaned segment; idempotent.
fn swap_files(dir: &Path, base: i64, replaces: &[i64]) -> Result<(), LogError> {
    for &old in replaces.iter().filter(|&&b| b != base) {
        LogSegment::delete_files(dir, old).map_err(io_err(
            "deleting replaced segment",
            &segment_file(dir, old, "log"),
        ))?;
    }
    for ext in ["index", "timeindex"] {
        let path = segment_file(dir, base, ext);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("deleting replaced index", &path)(e))
            }
            _ => {}
        }
    }
    let cleaned = segment_file(dir, base, "cleaned");
    let log = segment_file(dir, base, "log");
    fs::rename(&cleaned, &log).map_err(io_err("swapping in cleaned segment", &log))
}

/// Finishes a swap a crash interrupted after its commit point (step 1 of [`Log::open`]);
/// without a manifest there is nothing to do (stray `.cleaned` files are removed later).
pub(super) fn complete_interrupted_swap(
    dir: &Path,
    repairs: &mut Vec<Repair>,
) -> Result<(), LogError> {
    let manifest_path = dir.join(SWAP_MANIFEST_FILE);
    let text = match fs::read_to_string(&manifest_path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("reading swap manifest", &manifest_path)(e)),
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bases: Result<Vec<i64>, _> = line.split_whitespace().map(str::parse).collect();
        let Some((&base, _)) = bases.as_deref().ok().and_then(<[i64]>::split_first) else {
            // Written atomically, so never seen in practice; a manifest we cannot read must
            // not make us delete anything.
            warn!(file = %manifest_path.display(), %line, "ignoring unreadable swap manifest line");
            continue;
        };
        let replaces = bases.unwrap_or_default();
        if segment_file(dir, base, "cleaned").exists() {
            swap_files(dir, base, &replaces)?;
            info!(dir = %dir.display(), base_offset = base, ?replaces,
                  "finished swapping in a cleaned segment after a crash");
        }
        // Finished or not before the crash, its indexes may predate the swap: rebuild.
        for ext in ["index", "timeindex"] {
            let _ = fs::remove_file(segment_file(dir, base, ext));
        }
        repairs.push(Repair::FinishedCleanerSwap {
            base_offset: base,
            replaced: replaces,
        });
    }
    sync_dir(dir).map_err(io_err("syncing log directory", dir))?;
    fs::remove_file(&manifest_path).map_err(io_err("removing swap manifest", &manifest_path))?;
    sync_dir(dir).map_err(io_err("syncing log directory", dir))
}

/// Records in `dir` that everything below `dirty_start` is clean, and when the tombstones
/// the pass kept may go. Written after the swap, without the log's lock (only the cleaner
/// writes it); a crash in between makes the next pass clean the same section again.
///
/// # Errors
/// [`LogError::Io`] if the checkpoint cannot be written.
pub fn write_cleaner_checkpoint(
    dir: &Path,
    dirty_start: i64,
    tombstone_horizon: Option<i64>,
) -> Result<(), LogError> {
    let path = dir.join(CLEANER_CHECKPOINT_FILE);
    let text = format!("{dirty_start} {}\n", tombstone_horizon.unwrap_or(-1));
    write_atomically(&path, text.as_bytes()).map_err(io_err("writing cleaner checkpoint", &path))
}
