//! Log compaction (`cleanup.policy=compact`): keep the latest record of every key.
//!
//! Kafka's cleaner is the model, with Kafka's knobs (topic configs unless noted):
//!
//! * **What may be cleaned** ([`Log::cleanable_section`]): the inactive segments, up to
//!   the first whose newest record is younger than `min.compaction.lag.ms`. The active
//!   segment is never cleaned; a compacted log rolls it once its first record is
//!   `max.compaction.lag.ms` old.
//! * **When** ([`CleanableSection::due`]): the *dirty* segments (written since the last
//!   pass, per the `cleaner-offset-checkpoint` file) make up at least
//!   `min.cleanable.dirty.ratio` of the cleanable bytes; or a dirty record is older than
//!   `max.compaction.lag.ms`; or tombstones kept by the last pass reached their delete
//!   horizon (`delete.retention.ms` after the pass that first kept them, KIP-534).
//! * **A pass** ([`Cleaner::clean`]):
//!   1. under a read lock, take the section with cloned segment handles, and let go;
//!   2. build the offset map (key → latest offset) over the dirty segments, oldest first,
//!      until its budget (`--log-cleaner-dedupe-buffer-size`) is used; the segments
//!      mapped end the section this pass cleans;
//!   3. walk batch headers to find each producer's last batch in the section;
//!   4. group consecutive segments up to `segment.bytes` (so small cleaned segments merge)
//!      and write each group to `<base>.cleaned`, batch by batch through
//!      [`filter::filter_batch`] (compressed batches are decompressed under the
//!      `max.message.bytes`-derived cap, filtered and recompressed in their codec), then
//!      fsync it and scan its headers for the indexes;
//!   5. under the write lock, for milliseconds, swap the groups in
//!      ([`Log::swap_cleaned`]: crash-safe, see `log/cleaning.rs`), unless a segment
//!      changed meanwhile (retention, DeleteRecords, truncation), in which case the work
//!      is discarded;
//!   6. move the checkpoint to the end of the cleaned section.
//!
//! Appends go on during steps 2–4: they only touch the active segment. Fetches read the
//! old segments until the swap and the new ones after; offsets never change, so a consumer
//! moving across the swap sees one consistent log (superseded records may or may not still
//! be there, as in Kafka).
//!
//! All reading and writing goes through a throttle (`--log-cleaner-io-max-bytes-per-second`,
//! Kafka's `log.cleaner.io.max.bytes.per.second`). Memory is the offset map plus one batch
//! at a time.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::batch::{self, BatchHeader, HEADER_SIZE};
use crate::log::{
    write_cleaner_checkpoint, CleanableSection, CleanableSegment, CleanedSegment, Log, LogError,
};
use crate::records::{self, RecordDecoder};
use crate::segment::{scan, segment_file, SegmentStats};

mod filter;
mod offset_map;

use filter::{filter_batch, Rules};
use offset_map::OffsetMap;

/// Broker-wide cleaner settings (Kafka's `log.cleaner.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.dedupe.buffer.size`: the offset map's budget in bytes.
    pub dedupe_buffer_bytes: usize,
    /// `log.cleaner.io.max.bytes.per.second`: read + write rate cap; `None` = unlimited.
    pub io_max_bytes_per_second: Option<f64>,
}

/// Kafka's `log.cleaner.dedupe.buffer.size` default.
pub const DEFAULT_DEDUPE_BUFFER_BYTES: usize = 128 * 1024 * 1024;

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            dedupe_buffer_bytes: DEFAULT_DEDUPE_BUFFER_BYTES,
            io_max_bytes_per_second: None,
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CleanerStats {
    /// Dirty bytes when the pass started (the backlog it took on).
    pub dirty_bytes: u64,
    /// The section cleaned: `[first offset, end)`.
    pub end_offset: i64,
    pub segments_before: usize,
    pub segments_after: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_kept: u64,
    pub records_removed: u64,
    /// Distinct keys in the offset map.
    pub keys: usize,
    /// Batches kept whole because their records do not decode.
    pub undecodable_batches: u64,
    pub duration: Duration,
    /// How long the log's write lock was held to swap the cleaned segments in (appends
    /// wait only this long).
    pub swap_duration: Duration,
}

/// The result of [`Cleaner::clean`].
#[derive(Debug, Clone, PartialEq)]
pub enum PassOutcome {
    /// Not due yet; the backlog as measured.
    NotDue { dirty_bytes: u64, dirty_ratio: f64 },
    /// Cleaned and swapped in.
    Cleaned(CleanerStats),
    /// Segments changed during the pass (retention, DeleteRecords, truncation); the
    /// cleaned files were discarded.
    Stale,
}

/// Why a pass failed. The log is unchanged unless the error came from the swap's second
/// half (then the log is offline until a restart finishes it; see [`Log::swap_cleaned`]).
#[derive(Debug, Error)]
pub enum CleanerError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("{op} failed on {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is corrupt at byte {position}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    /// The stop check said stop (the broker is shutting down); nothing was swapped.
    #[error("cleaning interrupted")]
    Interrupted,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CleanerError + 'a {
    move |source| CleanerError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Caps the cleaner's I/O at a byte rate by sleeping (it runs on its own thread).
#[derive(Debug)]
struct Throttle {
    bytes_per_second: Option<f64>,
    since: Instant,
    bytes: u64,
}

impl Throttle {
    fn new(bytes_per_second: Option<f64>) -> Self {
        Throttle {
            bytes_per_second,
            since: Instant::now(),
            bytes: 0,
        }
    }

    fn restart(&mut self) {
        self.since = Instant::now();
        self.bytes = 0;
    }

    fn account(&mut self, n: u64) {
        let Some(rate) = self.bytes_per_second.filter(|r| *r > 0.0) else {
            return;
        };
        self.bytes += n;
        let due = Duration::from_secs_f64(self.bytes as f64 / rate);
        let elapsed = self.since.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
}

/// Reads a segment's batches in order through a window of at least 1 MiB, so a pass costs
/// a few large reads, not two per batch. Holds one window, never the whole segment.
struct BatchReader<'a> {
    seg: &'a CleanableSegment,
    path: PathBuf,
    window: Vec<u8>,
    window_start: u64,
    pos: u64,
}

const READ_WINDOW: usize = 1 << 20;

impl<'a> BatchReader<'a> {
    fn new(seg: &'a CleanableSegment, dir: &Path) -> Self {
        BatchReader {
            seg,
            path: segment_file(dir, seg.base_offset, "log"),
            window: Vec::new(),
            window_start: 0,
            pos: 0,
        }
    }

    /// Makes the window cover `[pos, pos + len)`; returns false if the segment ends first.
    fn fill(&mut self, len: usize, throttle: &mut Throttle) -> Result<bool, CleanerError> {
        let end = self.pos + len as u64;
        if end > self.seg.size {
            return Ok(false);
        }
        let window_end = self.window_start + self.window.len() as u64;
        if self.pos >= self.window_start && end <= window_end {
            return Ok(true);
        }
        let n = (self.seg.size - self.pos).min(len.max(READ_WINDOW) as u64) as usize;
        self.window.resize(n, 0);
        self.seg
            .file
            .read_exact_at(&mut self.window, self.pos)
            .map_err(io_err("reading segment", &self.path))?;
        self.window_start = self.pos;
        throttle.account(n as u64);
        Ok(true)
    }

    fn corrupt(&self, reason: String) -> CleanerError {
        CleanerError::Corrupt {
            path: self.path.clone(),
            position: self.pos,
            reason,
        }
    }

    /// The next batch and its byte position, or `None` at the end of the segment.
    fn next_batch(
        &mut self,
        throttle: &mut Throttle,
    ) -> Result<Option<(usize, &[u8])>, CleanerError> {
        if self.pos >= self.seg.size {
            return Ok(None);
        }
        if !self.fill(HEADER_SIZE, throttle)? {
            return Err(self.corrupt("segment ends inside a batch header".into()));
        }
        let at = (self.pos - self.window_start) as usize;
        let available = (self.seg.size - self.pos) as usize;
        let size = batch::check_header(&self.window[at..], self.pos as usize, available)
            .map_err(|e| self.corrupt(e.to_string()))?;
        if !self.fill(size, throttle)? {
            return Err(self.corrupt("segment ends inside a batch".into()));
        }
        let position = self.pos;
        self.pos += size as u64;
        let at = (position - self.window_start) as usize;
        Ok(Some((position as usize, &self.window[at..at + size])))
    }
}

/// The log cleaner: one per broker, run on a blocking thread (see the module docs).
pub struct Cleaner {
    config: CleanerConfig,
    throttle: Throttle,
    /// Checked between batches: true ends the pass with [`CleanerError::Interrupted`].
    stop: Box<dyn Fn() -> bool + Send + Sync>,
    /// Tests: fail the pass after writing this many cleaned groups, as a crash would.
    #[cfg(test)]
    crash_after_groups: Option<usize>,
}

impl Cleaner {
    pub fn new(config: CleanerConfig) -> Self {
        let throttle = Throttle::new(config.io_max_bytes_per_second);
        Cleaner {
            config,
            throttle,
            stop: Box::new(|| false),
            #[cfg(test)]
            crash_after_groups: None,
        }
    }

    /// Makes passes end early (nothing swapped) once `stop` returns true, e.g. at shutdown.
    pub fn with_stop(mut self, stop: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.stop = Box::new(stop);
        self
    }

    fn check_stop(&self) -> Result<(), CleanerError> {
        if (self.stop)() {
            return Err(CleanerError::Interrupted);
        }
        Ok(())
    }

    /// Cleans `log` if it is due (see [`CleanableSection::due`]).
    ///
    /// # Errors
    /// [`CleanerError`]: reading, writing or swapping failed (see its docs for what is left).
    pub fn clean(&mut self, log: &RwLock<Log>, now_ms: i64) -> Result<PassOutcome, CleanerError> {
        let section = read_lock(log).cleanable_section(now_ms)?;
        if section.due(now_ms).is_none() {
            return Ok(PassOutcome::NotDue {
                dirty_bytes: section.dirty_bytes(),
                dirty_ratio: section.dirty_ratio(),
            });
        }
        self.clean_section(log, section, now_ms)
    }

    /// Cleans `log` now, due or not.
    ///
    /// # Errors
    /// As [`Cleaner::clean`].
    pub fn clean_now(
        &mut self,
        log: &RwLock<Log>,
        now_ms: i64,
    ) -> Result<PassOutcome, CleanerError> {
        let section = read_lock(log).cleanable_section(now_ms)?;
        self.clean_section(log, section, now_ms)
    }

    /// Cleans `section` (from [`Log::cleanable_section`] of `log`), due or not; callers
    /// that look at the section first (the broker's backlog gauge) use this.
    ///
    /// # Errors
    /// As [`Cleaner::clean`].
    pub fn clean_section(
        &mut self,
        log: &RwLock<Log>,
        section: CleanableSection,
        now_ms: i64,
    ) -> Result<PassOutcome, CleanerError> {
        if section.segments.is_empty() {
            return Ok(PassOutcome::NotDue {
                dirty_bytes: 0,
                dirty_ratio: 0.0,
            });
        }
        let started = Instant::now();
        self.throttle.restart();
        let mut stats = CleanerStats {
            dirty_bytes: section.dirty_bytes(),
            ..CleanerStats::default()
        };
        let limit = records::max_uncompressed_bytes(section.config.max_message_bytes);
        let mut decoder = RecordDecoder::new(limit);

        // 2. The offset map over the dirty segments, as far as its budget goes.
        let mut map = OffsetMap::new(self.config.dedupe_buffer_bytes);
        let mut end = section.segments.len();
        if let Some(first_dirty) = section
            .segments
            .iter()
            .position(|s| s.base_offset >= section.dirty_start)
        {
            for (i, seg) in section.segments.iter().enumerate().skip(first_dirty) {
                self.map_segment(seg, &section.dir, &mut decoder, &mut map, &mut stats)?;
                end = i + 1;
                if map.is_full() {
                    tracing::info!(dir = %section.dir.display(), keys = map.len(), bytes = map.bytes(),
                        "cleaner offset map is full; the rest of the dirty section waits for the next pass");
                    break;
                }
            }
        }
        let cleaned_segments = &section.segments[..end];
        stats.keys = map.len();
        stats.end_offset = cleaned_segments
            .last()
            .map_or(section.dirty_start, |s| s.next_offset);
        stats.segments_before = cleaned_segments.len();

        // 3. Each producer's last batch in the section.
        let last_batches = self.last_batch_of_producers(cleaned_segments, &section.dir)?;

        // 4. Write the cleaned groups.
        let rules = Rules {
            map: &map,
            now_ms,
            delete_retention_ms: section.config.delete_retention_ms,
        };
        let mut horizon: Option<i64> = None;
        let mut cleaned = Vec::new();
        let mut changed = false;
        for group in groups(cleaned_segments, section.config.segment_bytes) {
            let result = self.write_group(
                group,
                &section,
                &rules,
                &last_batches,
                &mut decoder,
                &mut stats,
                &mut horizon,
            );
            match result {
                Ok((c, group_changed)) => {
                    changed |= group_changed || group.len() > 1;
                    cleaned.push(c);
                }
                Err(e) => {
                    discard(&section.dir);
                    return Err(e);
                }
            }
            #[cfg(test)]
            if self.crash_after_groups == Some(cleaned.len()) {
                return Err(io_err("cleaning", &section.dir)(io::Error::other(
                    "injected crash",
                )));
            }
        }
        stats.segments_after = cleaned.len();

        // 5. Swap in (nothing to swap if every batch was copied as it was).
        if changed {
            let swap_started = Instant::now();
            let swapped = write_lock(log).swap_cleaned(section.generation, cleaned);
            stats.swap_duration = swap_started.elapsed();
            match swapped {
                Ok(()) => {}
                Err(LogError::CleaningStale { .. }) => {
                    discard(&section.dir);
                    return Ok(PassOutcome::Stale);
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            discard(&section.dir);
        }
        // 6. The checkpoint.
        write_cleaner_checkpoint(&section.dir, stats.end_offset, horizon)?;
        stats.duration = started.elapsed();
        Ok(PassOutcome::Cleaned(stats))
    }

    fn map_segment(
        &mut self,
        seg: &CleanableSegment,
        dir: &Path,
        decoder: &mut RecordDecoder,
        map: &mut OffsetMap,
        stats: &mut CleanerStats,
    ) -> Result<(), CleanerError> {
        let mut reader = BatchReader::new(seg, dir);
        while let Some((position, batch)) = reader.next_batch(&mut self.throttle)? {
            self.check_stop()?;
            stats.bytes_read += batch.len() as u64;
            let Some(h) = BatchHeader::new(batch) else {
                continue;
            };
            if h.is_control() || h.is_transactional() {
                continue;
            }
            match decoder.records(batch, position) {
                Ok(records) => {
                    for record in records {
                        let Ok(record) = record else { break };
                        if let Some(key) = record.key {
                            map.put(key, record.offset);
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), base_offset = h.base_offset(), %error,
                    "cleaner skips a batch whose records do not decode; it is kept whole")
                }
            }
        }
        Ok(())
    }

    /// Producer id → base offset of its last batch in `segments` (headers only).
    fn last_batch_of_producers(
        &mut self,
        segments: &[CleanableSegment],
        dir: &Path,
    ) -> Result<std::collections::HashMap<i64, i64>, CleanerError> {
        let mut last = std::collections::HashMap::new();
        for seg in segments {
            let path = segment_file(dir, seg.base_offset, "log");
            let mut pos = 0u64;
            let mut header = [0u8; HEADER_SIZE];
            while pos + HEADER_SIZE as u64 <= seg.size {
                seg.file
                    .read_exact_at(&mut header, pos)
                    .map_err(io_err("reading batch header", &path))?;
                let size = batch::check_header(&header, pos as usize, (seg.size - pos) as usize)
                    .map_err(|e| CleanerError::Corrupt {
                        path: path.clone(),
                        position: pos,
                        reason: e.to_string(),
                    })?;
                if let Some(h) = BatchHeader::new(&header) {
                    if h.producer_id() >= 0 {
                        last.insert(h.producer_id(), h.base_offset());
                    }
                }
                pos += size as u64;
            }
        }
        Ok(last)
    }

    /// Writes one group's cleaned segment; returns it and whether any batch changed.
    #[allow(clippy::too_many_arguments)]
    fn write_group(
        &mut self,
        group: &[CleanableSegment],
        section: &CleanableSection,
        rules: &Rules<'_>,
        last_batches: &std::collections::HashMap<i64, i64>,
        decoder: &mut RecordDecoder,
        stats: &mut CleanerStats,
        horizon: &mut Option<i64>,
    ) -> Result<(CleanedSegment, bool), CleanerError> {
        let base = group[0].base_offset;
        let path = segment_file(&section.dir, base, "cleaned");
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err("creating cleaned segment", &path))?;
        let mut writer = BufWriter::with_capacity(READ_WINDOW, &file);
        let mut out = Vec::new();
        let mut written = 0u64;
        let mut changed = false;
        for seg in group {
            let mut reader = BatchReader::new(seg, &section.dir);
            while let Some((position, batch)) = reader.next_batch(&mut self.throttle)? {
                self.check_stop()?;
                stats.bytes_read += batch.len() as u64;
                let last_of_producer = BatchHeader::new(batch)
                    .is_some_and(|h| last_batches.get(&h.producer_id()) == Some(&h.base_offset()));
                out.clear();
                let f = filter_batch(batch, position, decoder, rules, last_of_producer, &mut out);
                stats.records_kept += f.records_kept;
                stats.records_removed += f.records_removed;
                if f.undecodable {
                    stats.undecodable_batches += 1;
                    tracing::warn!(file = %reader.path.display(), position,
                        "compaction keeps a batch whose records do not decode as it is");
                }
                changed |= !f.copied;
                if let Some(h) = f.tombstone_horizon {
                    *horizon = Some(horizon.map_or(h, |x: i64| x.min(h)));
                }
                writer
                    .write_all(&out)
                    .map_err(io_err("writing cleaned segment", &path))?;
                written += out.len() as u64;
                self.throttle.account(out.len() as u64);
            }
        }
        writer
            .flush()
            .map_err(io_err("writing cleaned segment", &path))?;
        drop(writer);
        file.sync_all()
            .map_err(io_err("syncing cleaned segment", &path))?;
        stats.bytes_written += written;
        let scan = scan(
            &file,
            base,
            0,
            SegmentStats::empty(base),
            written,
            false,
            section.config.index_interval_bytes,
        )
        .map_err(io_err("scanning cleaned segment", &path))?;
        if let Some(stop) = &scan.stop {
            return Err(CleanerError::Corrupt {
                path,
                position: stop.position,
                reason: format!("the cleaner wrote a bad batch: {}", stop.reason),
            });
        }
        let cleaned = CleanedSegment {
            base_offset: base,
            replaces: group.iter().map(|s| s.base_offset).collect(),
            size: written,
            scan,
        };
        Ok((cleaned, changed))
    }
}

/// Consecutive segments whose sizes add up to at most `segment_bytes` (at least one per
/// group) and whose offsets fit one segment's 32-bit relative offsets, as Kafka groups them.
fn groups(segments: &[CleanableSegment], segment_bytes: u64) -> Vec<&[CleanableSegment]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let mut end = start + 1;
        let mut size = segments[start].size;
        while let Some(next) = segments.get(end) {
            let span = next.next_offset - 1 - segments[start].base_offset;
            if size + next.size > segment_bytes || span > i64::from(i32::MAX) {
                break;
            }
            size += next.size;
            end += 1;
        }
        out.push(&segments[start..end]);
        start = end;
    }
    out
}

/// Removes the `.cleaned` files of a pass that will not be swapped in (only the one cleaner
/// writes them, so every such file in the log's directory is this pass's).
fn discard(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "cleaned") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

fn read_lock(log: &RwLock<Log>) -> std::sync::RwLockReadGuard<'_, Log> {
    log.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_lock(log: &RwLock<Log>) -> std::sync::RwLockWriteGuard<'_, Log> {
    log.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::testing::{build_batch, build_records_batch, decode_records, numbered};
    use crate::batch::Compression;
    use crate::config::{CleanupPolicy, LogConfig};

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn config() -> LogConfig {
        LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            min_cleanable_dirty_ratio: 0.0,
            ..LogConfig::default()
        }
    }

    fn open(dir: &Path) -> RwLock<Log> {
        open_with(dir, config())
    }

    fn open_with(dir: &Path, config: LogConfig) -> RwLock<Log> {
        RwLock::new(Log::open(dir, config, 0, 0).unwrap())
    }

    fn append(log: &RwLock<Log>, ts: i64, records: &[(&str, Option<&str>)]) {
        append_codec(log, ts, Compression::None, records);
    }

    fn append_codec(
        log: &RwLock<Log>,
        ts: i64,
        codec: Compression,
        records: &[(&str, Option<&str>)],
    ) {
        let specs = numbered(records.iter().enumerate().map(|(i, (k, v))| {
            let header = (b"h".to_vec(), Some(format!("{k}{i}").into_bytes()));
            (
                Some(k.as_bytes().to_vec()),
                v.map(|v| v.as_bytes().to_vec()),
                vec![header],
            )
        }));
        let mut b = build_records_batch(0, ts, codec, &specs);
        log.write().unwrap().append(&mut b, ts).unwrap();
    }

    fn roll(log: &RwLock<Log>) {
        log.write().unwrap().roll(0).unwrap();
    }

    fn clean(log: &RwLock<Log>, now: i64) -> CleanerStats {
        match Cleaner::new(CleanerConfig::default())
            .clean_now(log, now)
            .unwrap()
        {
            PassOutcome::Cleaned(stats) => stats,
            other => panic!("expected a pass, got {other:?}"),
        }
    }

    type Contents = Vec<(i64, String, Option<String>)>;

    /// (offset, key, value) of every record from the log start.
    fn contents(log: &Log) -> Contents {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let r = log.read(offset, u64::MAX, true).unwrap();
            if r.data.is_empty() {
                break;
            }
            let mut next = offset;
            for info in batch::parse_batches(&r.data).unwrap() {
                next = next.max(info.last_offset() + 1);
            }
            for rec in decode_records(&r.data) {
                if rec.offset >= offset {
                    out.push((
                        rec.offset,
                        String::from_utf8(rec.key.unwrap()).unwrap(),
                        rec.value.map(|v| String::from_utf8(v).unwrap()),
                    ));
                }
            }
            offset = next;
        }
        out
    }

    fn rec(offset: i64, k: &str, v: Option<&str>) -> (i64, String, Option<String>) {
        (offset, k.to_string(), v.map(str::to_string))
    }

    /// Three segments (two inactive, cleanable) of `codec` batches with superseded keys.
    fn three_segments(log: &RwLock<Log>, codec: Compression) {
        // Segment 1: offsets 0..4; segment 2: 4..7; active: 7..9.
        append_codec(
            log,
            1000,
            codec,
            &[
                ("a", Some("a1")),
                ("b", Some("b1")),
                ("a", Some("a2")),
                ("c", Some("c1")),
            ],
        );
        roll(log);
        append_codec(
            log,
            1000,
            codec,
            &[("b", Some("b2")), ("a", Some("a3")), ("d", Some("d1"))],
        );
        roll(log);
        append_codec(log, 1000, codec, &[("a", Some("a4")), ("b", Some("b3"))]);
    }

    fn three_segments_cleaned() -> Contents {
        vec![
            rec(3, "c", Some("c1")),
            rec(4, "b", Some("b2")),
            rec(5, "a", Some("a3")),
            rec(6, "d", Some("d1")),
            // The active segment is untouched, even though a3 is superseded by a4.
            rec(7, "a", Some("a4")),
            rec(8, "b", Some("b3")),
        ]
    }

    #[test]
    fn keeps_the_latest_value_per_key_in_every_codec_and_after_reopen() {
        for codec in CODECS {
            let dir = tempfile::tempdir().unwrap();
            let log = open(dir.path());
            three_segments(&log, codec);
            let stats = clean(&log, 2000);
            // a1, b1, a2. The map covers inactive segments only (as Kafka's cleaner), so
            // b2 stays until the segment holding b3 is no longer active.
            assert_eq!(stats.records_removed, 3, "{codec:?}: {stats:?}");
            assert_eq!(
                (stats.segments_before, stats.segments_after),
                (2, 1),
                "{codec:?}: merged"
            );
            let want = three_segments_cleaned();
            let log = log.into_inner().unwrap();
            assert_eq!(contents(&log), want, "{codec:?}");
            assert_eq!(log.log_end_offset(), 9, "{codec:?}: offsets never change");
            // Rewritten batches keep their codec, and their headers and CRCs are valid.
            let data = log.read(0, u64::MAX, true).unwrap().data;
            for info in batch::parse_batches(&data).unwrap() {
                let h = BatchHeader::new(&data[info.range()]).unwrap();
                assert_eq!(h.compression(), Some(codec));
                batch::validate_batch(&data[info.range()], 0).unwrap();
            }
            assert_eq!(
                log.segment_count(),
                2,
                "{codec:?}: one cleaned segment + active"
            );
            drop(log);
            let log = Log::open(dir.path(), config(), 0, 0).unwrap();
            assert!(
                log.recovery_report().repairs.is_empty(),
                "{:?}",
                log.recovery_report()
            );
            assert_eq!(contents(&log), want, "{codec:?}");
            // A second pass changes nothing.
            let log = RwLock::new(log);
            assert_eq!(clean(&log, 2000).records_removed, 0);
            assert_eq!(contents(&log.read().unwrap()), want);
        }
    }

    #[test]
    fn rewritten_records_keep_offsets_timestamps_headers_and_producer_fields() {
        use crate::records::RecordDecoder;
        for codec in CODECS {
            let dir = tempfile::tempdir().unwrap();
            let log = open(dir.path());
            append_codec(
                &log,
                5000,
                codec,
                &[("a", Some("1")), ("b", Some("2")), ("a", Some("3"))],
            );
            roll(&log);
            append(&log, 6000, &[("z", Some("z"))]);
            clean(&log, 7000);
            let log = log.into_inner().unwrap();
            let data = log.read(0, u64::MAX, true).unwrap().data;
            let infos = batch::parse_batches(&data).unwrap();
            let b = &data[infos[0].range()];
            let h = BatchHeader::new(b).unwrap();
            assert_eq!(
                (h.base_offset(), h.last_offset_delta(), h.records_count()),
                (0, 2, 2)
            );
            assert_eq!(
                h.max_timestamp(),
                5002,
                "{codec:?}: recomputed from the kept records"
            );
            let mut decoder = RecordDecoder::new(1 << 20);
            let kept: Vec<_> = decoder
                .records(b, 0)
                .unwrap()
                .map(|r| {
                    let r = r.unwrap();
                    let header = r.headers().next().unwrap();
                    (
                        r.offset,
                        r.timestamp,
                        r.key.unwrap().to_vec(),
                        header.value.unwrap().to_vec(),
                    )
                })
                .collect();
            assert_eq!(
                kept,
                vec![
                    (1, 5001, b"b".to_vec(), b"b1".to_vec()),
                    (2, 5002, b"a".to_vec(), b"a2".to_vec())
                ],
                "{codec:?}"
            );
        }
    }

    #[test]
    fn tombstones_go_a_delete_retention_after_the_pass_that_first_kept_them() {
        for codec in [Compression::None, Compression::Lz4] {
            let dir = tempfile::tempdir().unwrap();
            let log = open_with(
                dir.path(),
                LogConfig {
                    delete_retention_ms: 10_000,
                    ..config()
                },
            );
            // The tombstone's own timestamp is ancient: it must not count.
            append_codec(&log, 1000, codec, &[("a", Some("a1")), ("b", Some("b1"))]);
            roll(&log);
            append_codec(&log, 1, codec, &[("a", None)]);
            roll(&log);
            append(&log, 6000, &[("z", Some("z1"))]);
            let now = 1_000_000;
            clean(&log, now);
            let kept = vec![
                rec(1, "b", Some("b1")),
                rec(2, "a", None),
                rec(3, "z", Some("z1")),
            ];
            assert_eq!(
                contents(&log.read().unwrap()),
                kept,
                "{codec:?}: the tombstone stays"
            );
            // The batch now carries its delete horizon, and the log knows when to look again.
            let section = log.read().unwrap().cleanable_section(now).unwrap();
            assert_eq!(section.tombstone_horizon, Some(now + 10_000));
            assert_eq!(section.due(now + 9_999), None);
            assert!(section.due(now + 10_000).is_some());
            // Timestamps survive the move of baseTimestamp to the horizon.
            let data = log.read().unwrap().read(2, u64::MAX, true).unwrap().data;
            let records = decode_records(&data);
            let tomb = records.iter().find(|r| r.offset == 2).unwrap();
            assert_eq!(tomb.timestamp, 1, "{codec:?}");
            assert_eq!(
                Cleaner::new(CleanerConfig::default())
                    .clean(&log, now + 9_999)
                    .unwrap(),
                PassOutcome::NotDue {
                    dirty_bytes: 0,
                    dirty_ratio: 0.0
                }
            );
            let stats = clean(&log, now + 10_000);
            assert_eq!(stats.records_removed, 1, "{codec:?}");
            assert_eq!(
                contents(&log.read().unwrap()),
                vec![rec(1, "b", Some("b1")), rec(3, "z", Some("z1"))]
            );
        }
    }

    #[test]
    fn a_producers_last_batch_stays_as_an_empty_header() {
        use crate::batch::testing::set_producer;
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        for (seq, (k, v)) in [("a", "1"), ("a", "2")].into_iter().enumerate() {
            let mut b = build_batch(0, 1000, &[(Some(k.as_bytes()), Some(v.as_bytes()))]);
            set_producer(&mut b, 7, 0, seq as i32);
            log.write().unwrap().append(&mut b, 1000).unwrap();
            roll(&log);
        }
        append(&log, 1000, &[("a", Some("3"))]);
        roll(&log);
        append(&log, 1000, &[("z", Some("z"))]);
        clean(&log, 2000);
        let log = log.into_inner().unwrap();
        assert_eq!(
            contents(&log),
            vec![rec(2, "a", Some("3")), rec(3, "z", Some("z"))]
        );
        let data = log.read(0, u64::MAX, true).unwrap().data;
        let headers: Vec<_> = batch::parse_batches(&data)
            .unwrap()
            .into_iter()
            .map(|i| {
                let h = BatchHeader::new(&data[i.range()]).unwrap();
                (
                    h.base_offset(),
                    h.producer_id(),
                    h.base_sequence(),
                    h.records_count(),
                )
            })
            .collect();
        // The first batch of producer 7 went; its last one stays, without records.
        assert_eq!(headers, vec![(1, 7, 1, 0), (2, -1, -1, 1)]);
    }

    #[test]
    fn batches_whose_records_lie_about_their_count_are_kept_whole() {
        use crate::batch::testing::set_records_count;
        for lie in [i32::MAX, 1] {
            let dir = tempfile::tempdir().unwrap();
            let log = open(dir.path());
            // Offsets 0-1: "a" then "b", but the header claims `lie` records (validation
            // refuses this; logs written by older brokers may hold such bytes).
            let mut b = build_batch(
                0,
                1000,
                &[(Some(b"a"), Some(b"a1")), (Some(b"b"), Some(b"b1"))],
            );
            set_records_count(&mut b, lie);
            let unchecked = crate::validator::ValidatedRecords::unchecked(&mut b);
            log.write()
                .unwrap()
                .append_validated(unchecked, None, 1000)
                .unwrap();
            roll(&log);
            append(
                &log,
                1000,
                &[("a", Some("a2")), ("c", Some("c1")), ("c", Some("c2"))],
            );
            roll(&log);
            append(&log, 1000, &[("z", Some("z1"))]);
            let first = segment_bytes(&log.read().unwrap(), 0);
            let stats = clean(&log, 2000);
            assert_eq!(
                &segment_bytes(&log.read().unwrap(), 0)[..first.len()],
                &first[..],
                "claimed {lie}: kept whole"
            );
            assert_eq!(
                stats.records_removed, 1,
                "claimed {lie}: only c1 goes ({stats:?})"
            );
            assert_eq!(stats.undecodable_batches, 1);
            assert_eq!(log.read().unwrap().log_end_offset(), 6);
        }
    }

    /// Segment bytes from `offset`, as stored.
    fn segment_bytes(log: &Log, offset: i64) -> Vec<u8> {
        log.read(offset, u64::MAX, true).unwrap().data.to_vec()
    }

    #[test]
    fn segments_emptied_by_compaction_stay_empty_and_reads_skip_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_with(
            dir.path(),
            LogConfig {
                segment_bytes: 100,
                ..config()
            },
        );
        for round in 0..3 {
            append(
                &log,
                1000,
                &[("a", Some(&format!("{round}"))), ("b", Some("x"))],
            );
            roll(&log);
        }
        append(&log, 1000, &[("a", Some("last")), ("b", Some("last"))]);
        roll(&log);
        append(&log, 1000, &[("z", Some("z"))]);
        let stats = clean(&log, 2000);
        assert_eq!(
            (stats.segments_before, stats.segments_after),
            (4, 4),
            "too big to merge"
        );
        let log = log.into_inner().unwrap();
        assert_eq!(
            log.segment_base_offsets(),
            vec![0, 2, 4, 6, 8],
            "offset 0 still starts the log"
        );
        let want = vec![
            rec(6, "a", Some("last")),
            rec(7, "b", Some("last")),
            rec(8, "z", Some("z")),
        ];
        for from in 0..=6 {
            let data = log.read(from, u64::MAX, true).unwrap().data;
            assert_eq!(decode_records(&data)[0].offset, 6, "a read from {from}");
        }
        assert_eq!(contents(&log), want);
        drop(log);
        let log = Log::open(
            dir.path(),
            LogConfig {
                segment_bytes: 100,
                ..config()
            },
            0,
            0,
        )
        .unwrap();
        assert_eq!(contents(&log), want);
        assert_eq!(log.log_start_offset(), 0);
    }

    #[test]
    fn a_single_segment_log_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        append(&log, 1000, &[("a", Some("1")), ("a", Some("2"))]);
        let outcome = Cleaner::new(CleanerConfig::default())
            .clean(&log, 2000)
            .unwrap();
        assert_eq!(
            outcome,
            PassOutcome::NotDue {
                dirty_bytes: 0,
                dirty_ratio: 0.0
            }
        );
        assert_eq!(contents(&log.read().unwrap()).len(), 2);
    }

    #[test]
    fn the_dirty_ratio_and_the_compaction_lags_decide_when_and_what() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_with(
            dir.path(),
            LogConfig {
                min_cleanable_dirty_ratio: 0.5,
                min_compaction_lag_ms: 1000,
                ..config()
            },
        );
        append(&log, 1000, &[("a", Some("1"))]);
        roll(&log);
        append(&log, 5000, &[("a", Some("2"))]);
        roll(&log);
        append(&log, 5000, &[("z", Some("z"))]);
        // At 5500 the second segment is younger than min.compaction.lag.ms.
        let s = log.read().unwrap().cleanable_section(5500).unwrap();
        assert_eq!(s.segments.len(), 1);
        assert_eq!(s.dirty_ratio(), 1.0);
        let mut cleaner = Cleaner::new(CleanerConfig::default());
        assert!(matches!(
            cleaner.clean(&log, 5500).unwrap(),
            PassOutcome::Cleaned(_)
        ));
        assert_eq!(
            contents(&log.read().unwrap()).len(),
            3,
            "a1 is the latest a it saw"
        );
        // Everything cleanable is clean now: not due.
        assert!(matches!(
            cleaner.clean(&log, 5500).unwrap(),
            PassOutcome::NotDue { dirty_bytes: 0, .. }
        ));
        // Later, the second segment is cleanable and dirty: half the bytes, due.
        let s = log.read().unwrap().cleanable_section(7000).unwrap();
        assert_eq!(s.segments.len(), 2);
        assert!((s.dirty_ratio() - 0.5).abs() < 0.01, "{}", s.dirty_ratio());
        assert_eq!(s.due(7000), Some("dirty ratio"));
        // Below a higher ratio it is not due, unless its dirty record (timestamp 5000) is
        // older than max.compaction.lag.ms.
        let with = |ratio: f64, max_lag: i64| CleanableSection {
            config: LogConfig {
                min_cleanable_dirty_ratio: ratio,
                max_compaction_lag_ms: max_lag,
                ..config()
            },
            ..log.read().unwrap().cleanable_section(7000).unwrap()
        };
        assert_eq!(with(0.9, i64::MAX).due(7000), None);
        assert_eq!(with(0.9, 2000).due(7000), None, "2 s old, not over 2 s");
        assert_eq!(with(0.9, 1999).due(7000), Some("max.compaction.lag.ms"));
        assert!(matches!(
            cleaner.clean(&log, 7000).unwrap(),
            PassOutcome::Cleaned(_)
        ));
        assert_eq!(
            contents(&log.read().unwrap()),
            vec![rec(1, "a", Some("2")), rec(2, "z", Some("z"))]
        );
    }

    #[test]
    fn max_compaction_lag_rolls_the_active_segment() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_with(
            dir.path(),
            LogConfig {
                max_compaction_lag_ms: 1000,
                ..config()
            },
        );
        append(&log, 1000, &[("a", Some("1"))]);
        append(&log, 1500, &[("a", Some("2"))]);
        assert_eq!(log.read().unwrap().segment_count(), 1);
        append(&log, 2001, &[("a", Some("3"))]);
        assert_eq!(
            log.read().unwrap().segment_count(),
            2,
            "rolled: the first record is over 1 s old"
        );
    }

    /// A log with two cleanable groups (segment.bytes lets two old segments merge) and the
    /// contents before and after cleaning.
    fn crash_fixture(dir: &Path) -> (RwLock<Log>, Contents, Contents) {
        let cfg = LogConfig {
            segment_bytes: 400,
            ..config()
        };
        let log = RwLock::new(Log::open(dir, cfg, 0, 0).unwrap());
        for round in 0..4 {
            let v = format!("v{round}");
            append_codec(
                &log,
                1000,
                Compression::Lz4,
                &[("a", Some(&v)), ("b", Some(&v))],
            );
            roll(&log);
        }
        append(&log, 1000, &[("z", Some("z"))]);
        let before = contents(&log.read().unwrap());
        let want = vec![
            rec(6, "a", Some("v3")),
            rec(7, "b", Some("v3")),
            rec(8, "z", Some("z")),
        ];
        (log, before, want)
    }

    fn reopen(dir: &Path) -> Log {
        Log::open(
            dir,
            LogConfig {
                segment_bytes: 400,
                ..config()
            },
            0,
            0,
        )
        .unwrap()
    }

    fn cleaned_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cleaned") || n.starts_with("cleaner-swap"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_crash_while_writing_cleaned_segments_leaves_the_old_ones() {
        for groups in [1, 2] {
            let dir = tempfile::tempdir().unwrap();
            let (log, before, want) = crash_fixture(dir.path());
            let mut cleaner = Cleaner::new(CleanerConfig::default());
            cleaner.crash_after_groups = Some(groups);
            assert!(cleaner.clean_now(&log, 2000).is_err());
            assert!(
                !cleaned_files(dir.path()).is_empty(),
                "the crash left cleaned files behind"
            );
            drop(log);
            let log = RwLock::new(reopen(dir.path()));
            assert_eq!(
                contents(&log.read().unwrap()),
                before,
                "after {groups} group(s)"
            );
            assert_eq!(cleaned_files(dir.path()), Vec::<String>::new());
            clean(&log, 2000);
            assert_eq!(contents(&log.read().unwrap()), want);
        }
    }

    #[test]
    fn a_crash_at_any_step_of_the_swap_recovers_old_or_new_never_a_mix() {
        let mut outcomes = Vec::new();
        for step in 0.. {
            let dir = tempfile::tempdir().unwrap();
            let (log, before, want) = crash_fixture(dir.path());
            log.write().unwrap().swap_crash_after = Some(step);
            let result = Cleaner::new(CleanerConfig::default()).clean_now(&log, 2000);
            let finished = result.is_ok();
            drop(log);
            let log = reopen(dir.path());
            let got = contents(&log);
            assert!(got == before || got == want, "step {step}: a mix: {got:?}");
            assert_eq!(
                cleaned_files(dir.path()),
                Vec::<String>::new(),
                "step {step}"
            );
            outcomes.push(if got == want { "new" } else { "old" });
            // And the log goes on: appends, a full recovery, another pass.
            let log = RwLock::new(log);
            append(&log, 1000, &[("a", Some("after"))]);
            clean(&log, 2000);
            drop(log);
            let log = Log::open(
                dir.path(),
                LogConfig {
                    segment_bytes: 400,
                    ..config()
                },
                0,
                0,
            )
            .unwrap();
            assert_eq!(
                contents(&log).last(),
                Some(&rec(9, "a", Some("after"))),
                "step {step}"
            );
            assert_eq!(contents(&log)[..2], want[..2], "step {step}");
            if finished {
                break;
            }
        }
        // Before the manifest: old; after it: new (recovery finishes the swap).
        assert_eq!(outcomes.first(), Some(&"old"));
        assert!(outcomes[1..].iter().all(|o| *o == "new"), "{outcomes:?}");
        assert!(outcomes.len() >= 4, "{outcomes:?}");
    }

    #[test]
    fn a_pass_whose_segments_changed_meanwhile_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        three_segments(&log, Compression::Zstd);
        let section = log.read().unwrap().cleanable_section(2000).unwrap();
        // DeleteRecords removes the first segment between the read and the swap.
        log.write().unwrap().delete_records_before(4).unwrap();
        let outcome = Cleaner::new(CleanerConfig::default())
            .clean_section(&log, section, 2000)
            .unwrap();
        assert_eq!(outcome, PassOutcome::Stale);
        assert_eq!(cleaned_files(dir.path()), Vec::<String>::new());
        assert_eq!(contents(&log.read().unwrap())[0], rec(4, "b", Some("b2")));
        clean(&log, 2000);
        assert_eq!(
            contents(&log.read().unwrap()),
            three_segments_cleaned()[1..].to_vec()
        );
    }

    #[test]
    fn appends_and_reads_go_on_while_a_throttled_pass_runs() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(open(dir.path()));
        let value = "x".repeat(200);
        for i in 0..200 {
            append(&log, 1000, &[(&format!("k{}", i % 20), Some(&value))]);
            if i % 50 == 49 {
                roll(&log);
            }
        }
        let before_end = log.read().unwrap().log_end_offset();
        let bytes = log.read().unwrap().size_bytes();
        // About 4 passes' worth of reading and writing per second: the pass takes ~1/2 s.
        let rate = (bytes * 4) as f64;
        let cleaner_log = log.clone();
        let pass = std::thread::spawn(move || {
            Cleaner::new(CleanerConfig {
                io_max_bytes_per_second: Some(rate),
                ..CleanerConfig::default()
            })
            .clean_now(&cleaner_log, 2000)
            .unwrap()
        });
        let mut appended = 0;
        while !pass.is_finished() {
            append(&log, 1000, &[("live", Some(&appended.to_string()))]);
            appended += 1;
            let got = contents(&log.read().unwrap());
            assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase");
        }
        assert!(matches!(pass.join().unwrap(), PassOutcome::Cleaned(_)));
        assert!(
            appended > 10,
            "appends were not held up by the pass ({appended})"
        );
        let got = contents(&log.read().unwrap());
        let live: Vec<_> = got.iter().filter(|r| r.1 == "live").collect();
        assert_eq!(
            live.len(),
            appended,
            "every append during the pass is there"
        );
        assert_eq!(
            log.read().unwrap().log_end_offset(),
            before_end + appended as i64
        );
        assert_eq!(
            got.iter().filter(|r| r.1.starts_with('k')).count(),
            20,
            "one per key"
        );
    }
}
