//! The log's side of replication: the leader epoch cache it owns (loading, keeping it in
//! step with the batches, persisting it) and appends of batches fetched from the leader.
//!
//! # Follower appends ([`Log::append_as_follower`])
//!
//! A follower stores the leader's batches byte for byte: offsets, timestamps, leader
//! epochs and CRCs are the leader's. It never assigns offsets, so gaps (left by
//! compaction on the leader) are kept. The input is what a fetch returned from the
//! follower's log end offset:
//!
//! * a trailing partial batch is ignored (a fetch response may end mid-batch);
//! * batches wholly below the log end offset are skipped (already stored);
//! * a batch starting below the log end offset but ending at or above it, offsets that
//!   do not increase from batch to batch, or a batch failing its header or CRC check make
//!   the whole append fail with nothing written;
//! * the epoch cache takes `(partitionLeaderEpoch, baseOffset)` of every batch whose
//!   epoch is above the latest one, before the batch is written;
//! * segments roll, indexes grow and `flush.messages` applies exactly as for the leader's
//!   appends. If the offsets jump further than a segment can span (`i32::MAX`), the new
//!   segment is based at the first offset after the jump.

use std::fs;
use std::io;

use tracing::{debug, warn};

use super::{io_err, write_atomically, AppendInfo, Log, LogError, Repair};
use crate::batch::{self, BatchHeader, HEADER_SIZE};
use crate::epoch::{LeaderEpochCache, LEADER_EPOCH_CHECKPOINT_FILE};
use crate::validator::{ValidBatch, ValidationError};

/// A batch of a follower append that will be written.
struct FetchedBatch {
    batch: ValidBatch,
    base_offset: i64,
    last_offset: i64,
    epoch: i32,
}

impl Log {
    /// The latest leader epoch that wrote to (or was assigned at the end of) this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// OffsetsForLeaderEpoch: `(epoch, end offset)` for `epoch`, as
    /// [`LeaderEpochCache::end_offset_for`] answers with this log's end offset; `(-1, -1)`
    /// when unknown.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// The epoch cache's entries as `(epoch, start offset)`, oldest first.
    pub fn leader_epochs(&self) -> Vec<(i32, i64)> {
        self.epochs
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    /// Records that leader `epoch` starts at `start_offset` (a broker becoming leader
    /// passes its log end offset) and persists the cache if it changed. An epoch that is
    /// not above the latest one is ignored, as in [`LeaderEpochCache::assign`].
    ///
    /// # Errors
    /// [`LogError::OffsetOutOfRange`] if `start_offset` is negative or above the log end
    /// offset; [`LogError::Io`] if the checkpoint cannot be written (the cache keeps the
    /// entry in memory).
    pub fn assign_leader_epoch(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        if start_offset < 0 || start_offset > self.log_end_offset() {
            return Err(self.out_of_range(start_offset));
        }
        self.assign_epoch(epoch, start_offset)
    }

    pub(super) fn assign_epoch(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        let before = self.epochs.entries().last().copied();
        if !self.epochs.assign(epoch, start_offset) {
            return Ok(());
        }
        if before.is_some_and(|b| b.start_offset >= start_offset) {
            warn!(dir = %self.dir.display(), epoch, start_offset, replaced = ?before,
                  "new leader epoch replaced epochs that started at or after its start offset");
        }
        debug!(dir = %self.dir.display(), epoch, start_offset, "leader epoch assigned");
        self.persist_leader_epochs()
    }

    /// Writes `leader-epoch-checkpoint` (temp file, fsync, rename, directory fsync).
    pub(super) fn persist_leader_epochs(&self) -> Result<(), LogError> {
        let path = self.dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
        write_atomically(&path, self.epochs.to_checkpoint().as_bytes())
            .map_err(io_err("writing leader epoch checkpoint", &path))
    }

    /// After the log start offset moved: drop the epochs wholly below it.
    pub(super) fn epochs_follow_log_start(&mut self) -> Result<(), LogError> {
        if self.epochs.truncate_from_start(self.log_start_offset) {
            self.persist_leader_epochs()?;
        }
        Ok(())
    }

    /// Open: reads `leader-epoch-checkpoint`, or rebuilds it from the batch headers if it
    /// is corrupt, or missing while the log holds batches (a data directory from before
    /// the file existed). Then trims it to the recovered log.
    pub(super) fn load_leader_epochs(&mut self) -> Result<(), LogError> {
        let path = self.dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
        let rebuild_because = match fs::read_to_string(&path) {
            Ok(text) => match LeaderEpochCache::from_checkpoint(&text) {
                Ok(cache) => {
                    self.epochs = cache;
                    None
                }
                Err(e) => {
                    warn!(file = %path.display(), error = %e,
                          "leader epoch checkpoint is corrupt; rebuilding it from the batch headers");
                    self.report.repairs.push(Repair::RebuiltLeaderEpochCache {
                        file: path.clone(),
                        found: e.to_string(),
                    });
                    Some("corrupt")
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let has_batches = self.segments.values().any(|s| !s.is_empty());
                has_batches.then_some("missing")
            }
            Err(e) => return Err(io_err("reading leader epoch checkpoint", &path)(e)),
        };
        let mut changed = false;
        if let Some(why) = rebuild_because {
            self.epochs = self.epochs_from_batches()?;
            debug!(file = %path.display(), why, entries = self.epochs.entries().len(),
                   "leader epoch cache rebuilt from the batch headers");
            // Written even if empty, so the next open reads it instead of walking the log.
            changed = true;
        }
        // Recovery may have cut the log below what the file remembers.
        let (start, end) = (self.log_start_offset, self.log_end_offset());
        let trimmed = self.epochs.truncate_from_end(end) | self.epochs.truncate_from_start(start);
        if trimmed && !changed {
            warn!(file = %path.display(), log_start_offset = start, log_end_offset = end,
                  "leader epoch cache trimmed to the recovered log");
        }
        if changed || trimmed {
            self.persist_leader_epochs()?;
        }
        Ok(())
    }

    /// Walks every batch header and assigns each batch's leader epoch at its base offset.
    fn epochs_from_batches(&self) -> Result<LeaderEpochCache, LogError> {
        let mut cache = LeaderEpochCache::new();
        for seg in self.segments.values() {
            let mut pos = 0;
            while let Some(h) = seg
                .header_at(pos)
                .map_err(io_err("reading batch header", &seg.log_path))?
            {
                let size = batch::check_header(&h, 0, (seg.size - pos) as usize)
                    .map_err(|e| Self::corrupt(seg, pos, e.to_string()))?;
                let header =
                    BatchHeader::new(&h).ok_or_else(|| Self::corrupt(seg, pos, "short header"))?;
                let epoch = header.partition_leader_epoch();
                if epoch >= 0 {
                    cache.assign(epoch, header.base_offset());
                }
                pos += size as u64;
            }
        }
        Ok(cache)
    }

    /// Appends record batches fetched from the partition leader, as they are (offsets,
    /// timestamps, leader epochs); see the module docs for the rules. Returns what was
    /// written: `first_offset` is the first written batch's base offset and `last_offset`
    /// the last one's last offset, `record_count` and `bytes` their totals,
    /// `max_timestamp` the largest header maxTimestamp with `offset_of_max_timestamp` the
    /// last offset of the batch holding it (batch-granular), `log_append_time` -1. If
    /// nothing was written (empty input, only known or partial batches) the result is
    /// `first_offset` = log end offset, `last_offset` = log end offset - 1 and zero counts;
    /// in every case `last_offset + 1` is the new log end offset.
    ///
    /// Each run of batches that fits in one segment is written all or nothing as in
    /// [`Log::append_validated`]; if a later run fails, the earlier ones stay (the next
    /// fetch starts at the new log end offset).
    ///
    /// # Errors
    /// Nothing is written for [`LogError::InvalidRecords`] (a batch fails its header or CRC
    /// check), [`LogError::Rejected`] with [`ValidationError::InvalidBatch`] (a batch
    /// overlaps the log end offset, or offsets don't increase) or
    /// [`LogError::RecordTooLarge`] (a batch above `segment.bytes`).
    /// [`LogError::Io`] / [`LogError::Offline`] as for leader appends.
    pub fn append_as_follower(
        &mut self,
        batches: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.check_online()?;
        let log_end = self.log_end_offset();
        let (start, fetched) = self.check_fetched(batches, log_end)?;
        let mut info = AppendInfo {
            first_offset: log_end,
            last_offset: log_end - 1,
            log_append_time: -1,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            record_count: 0,
            bytes: 0,
        };
        let Some(first) = fetched.first() else {
            return Ok(info);
        };
        info.first_offset = first.base_offset;

        // Split into runs that each fit in one segment (bytes and offset span).
        let segment_limit = self.config.segment_bytes.min(u64::from(u32::MAX));
        let mut runs: Vec<&[FetchedBatch]> = Vec::new();
        let mut run_start = 0;
        let mut run_bytes = 0u64;
        for (i, b) in fetched.iter().enumerate() {
            let size = b.batch.size as u64;
            let span = b.last_offset - fetched[run_start].base_offset;
            if i > run_start && (run_bytes + size > segment_limit || span > i64::from(i32::MAX)) {
                runs.push(&fetched[run_start..i]);
                run_start = i;
                run_bytes = 0;
            }
            run_bytes += size;
        }
        runs.push(&fetched[run_start..]);

        for run in runs {
            let (first, last) = (&run[0], &run[run.len() - 1]);
            let from = start + first.batch.position;
            let data = &batches[from..start + last.batch.position + last.batch.size];
            let positions: Vec<ValidBatch> = run
                .iter()
                .map(|b| ValidBatch {
                    position: b.batch.position - first.batch.position,
                    ..b.batch
                })
                .collect();
            let mut max_timestamp = -1;
            let mut offset_of_max_timestamp = -1;
            let mut records = 0u64;
            for b in run {
                if b.batch.max_timestamp > max_timestamp {
                    max_timestamp = b.batch.max_timestamp;
                    offset_of_max_timestamp = b.last_offset;
                }
                records += u64::try_from(b.batch.records).unwrap_or(0);
            }

            let mut new_epoch = false;
            for b in run {
                if b.epoch >= 0 && self.latest_epoch().is_none_or(|l| b.epoch > l) {
                    new_epoch |= self.epochs.assign(b.epoch, b.base_offset);
                }
            }
            if new_epoch {
                self.persist_leader_epochs()?;
            }
            let written = self.write_run(
                data,
                &positions,
                first.base_offset,
                last.last_offset,
                max_timestamp,
                records,
                now_ms,
            );
            if let Err(e) = written {
                // Forget the epochs of batches that never made it to the log.
                if self.epochs.truncate_from_end(self.log_end_offset()) {
                    if let Err(persist) = self.persist_leader_epochs() {
                        warn!(dir = %self.dir.display(), error = %persist,
                              "could not rewrite the leader epoch checkpoint after a failed append; the next open trims it");
                    }
                }
                return Err(e);
            }
            if max_timestamp > info.max_timestamp {
                info.max_timestamp = max_timestamp;
                info.offset_of_max_timestamp = offset_of_max_timestamp;
            }
            info.last_offset = last.last_offset;
            info.record_count += records;
            info.bytes += data.len() as u64;
        }
        Ok(info)
    }

    /// Checks the fetched bytes and returns where the batches to write start in them and
    /// those batches (positions relative to that start).
    fn check_fetched(
        &self,
        buf: &[u8],
        log_end: i64,
    ) -> Result<(usize, Vec<FetchedBatch>), LogError> {
        let refuse = |position: usize, reason: String| LogError::Rejected {
            dir: self.dir.clone(),
            source: ValidationError::InvalidBatch { position, reason },
        };
        let segment_limit = self.config.segment_bytes.min(u64::from(u32::MAX));
        let mut start = None;
        let mut out: Vec<FetchedBatch> = Vec::new();
        let mut prev_last: Option<i64> = None;
        let mut pos = 0;
        while pos < buf.len() {
            let rest = &buf[pos..];
            let size =
                match batch::check_header(&rest[..rest.len().min(HEADER_SIZE)], pos, rest.len()) {
                    Ok(size) => size,
                    // The fetch response ended inside this batch: what follows is partial.
                    Err(e) if e.is_truncated() => break,
                    Err(source) => {
                        return Err(LogError::InvalidRecords {
                            dir: self.dir.clone(),
                            source,
                        })
                    }
                };
            let info = batch::validate_batch(&rest[..size], pos).map_err(|source| {
                LogError::InvalidRecords {
                    dir: self.dir.clone(),
                    source,
                }
            })?;
            let base = info.base_offset;
            let Some(last) = base.checked_add(i64::from(info.last_offset_delta)) else {
                return Err(refuse(pos, format!("base offset {base} overflows")));
            };
            if base < 0 {
                return Err(refuse(pos, format!("negative base offset {base}")));
            }
            if let Some(p) = prev_last.filter(|&p| base <= p) {
                return Err(refuse(
                    pos,
                    format!(
                        "base offset {base} does not follow the previous batch's last offset {p}"
                    ),
                ));
            }
            prev_last = Some(last);
            if last < log_end {
                // Already stored.
                pos += size;
                continue;
            }
            if base < log_end {
                return Err(refuse(
                    pos,
                    format!(
                        "offsets {base}..={last} overlap the log end offset {log_end}; \
                         the follower must truncate to {base} or fetch from {log_end}"
                    ),
                ));
            }
            if size as u64 > segment_limit {
                return Err(LogError::RecordTooLarge {
                    dir: self.dir.clone(),
                    size: size as u64,
                    max: segment_limit,
                    limit: "segment.bytes",
                });
            }
            let start = *start.get_or_insert(pos);
            let header = BatchHeader::new(rest)
                .ok_or_else(|| refuse(pos, "batch shorter than its header".to_string()))?;
            out.push(FetchedBatch {
                batch: ValidBatch {
                    position: pos - start,
                    size,
                    last_offset_delta: info.last_offset_delta,
                    records: info.records_count,
                    max_timestamp: info.max_timestamp,
                    offset_delta_of_max_timestamp: info.last_offset_delta,
                },
                base_offset: base,
                last_offset: last,
                epoch: header.partition_leader_epoch(),
            });
            pos += size;
        }
        Ok((start.unwrap_or(0), out))
    }
}
