//! One segment: a `.log` file of concatenated v2 batches plus its two indexes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::batch::{self, BatchError, BatchHeader, HEADER_SIZE};
use crate::index::{OffsetIndex, TimeIndex};
use crate::validator::ValidBatch;

/// `<dir>/<base offset, 20 digits>.<ext>`, as Kafka names segment files.
pub fn segment_file(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// `len` bytes of `file` at `pos`, read into a buffer's spare capacity (see
/// [`LogSegment::read`]).
pub(crate) fn read_exact_at(file: &File, pos: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        let at = pos + data.len() as u64;
        // Capacity may exceed `len`: take what `pread` brought beyond it off afterwards.
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut data), at) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the file ends at byte {at}, before the {len} bytes at {pos} were read \
                         (truncated while being read?)"
                    ),
                ))
            }
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    data.truncate(len);
    Ok(data)
}

/// Running statistics of a segment, updated batch by batch, and the sparse
/// index rule shared by the append path and index rebuilds: an entry is added
/// for a batch when more than `index.interval.bytes` were written since the
/// last entry (so the first batch of a segment is never indexed; position 0
/// is implied).
#[derive(Debug, Clone)]
pub struct SegmentStats {
    pub next_offset: i64,
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    pub first_batch_timestamp: Option<i64>,
    pub bytes_since_last_index_entry: u64,
    pub batches: u64,
}

/// Index entries due after observing a batch: an offset entry, and a time entry unless no
/// batch of the segment has had a timestamp yet.
pub struct IndexPoint {
    pub offset: (i64, u64),
    pub time: Option<(i64, i64)>,
}

impl SegmentStats {
    pub fn empty(base_offset: i64) -> Self {
        SegmentStats {
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            first_batch_timestamp: None,
            bytes_since_last_index_entry: 0,
            batches: 0,
        }
    }

    pub fn observe(
        &mut self,
        header: &BatchHeader<'_>,
        position: u64,
        size: u64,
        index_interval: u64,
    ) -> Option<IndexPoint> {
        let max_ts = header.max_timestamp();
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(max_ts);
        }
        if max_ts > self.max_timestamp {
            self.max_timestamp = max_ts;
            self.offset_of_max_timestamp = header.last_offset();
        }
        self.next_offset = header.last_offset() + 1;
        self.batches += 1;
        let point = (self.bytes_since_last_index_entry > index_interval).then(|| {
            self.bytes_since_last_index_entry = 0;
            IndexPoint {
                offset: (header.base_offset(), position),
                time: (self.max_timestamp >= 0)
                    .then_some((self.max_timestamp, self.offset_of_max_timestamp)),
            }
        });
        self.bytes_since_last_index_entry += size;
        point
    }
}

/// What a scan of a `.log` file found.
pub struct ScanOutcome {
    pub stats: SegmentStats,
    /// Bytes from the scan start to the end of the last good batch.
    pub valid_end: u64,
    pub offset_entries: Vec<(i64, u64)>,
    pub time_entries: Vec<(i64, i64)>,
    /// Why the scan stopped before the end of the file, if it did.
    pub stop: Option<ScanStop>,
}

/// A problem that ended a scan.
pub struct ScanStop {
    pub position: u64,
    pub truncated: bool,
    pub reason: String,
}

fn stop_from(err: BatchError, position: u64) -> ScanStop {
    ScanStop {
        position,
        truncated: err.is_truncated(),
        reason: err.to_string(),
    }
}

/// Scans batches of `file` from `start` to `size`. Every batch gets the header
/// checks and offset monotonicity checks; with `validate_crc` the whole batch
/// is read and its CRC checked too (recovery), otherwise only headers are read
/// (cheap tail checks and index rebuilds of trusted segments).
pub fn scan(
    file: &File,
    base_offset: i64,
    start: u64,
    mut stats: SegmentStats,
    size: u64,
    validate_crc: bool,
    index_interval: u64,
) -> io::Result<ScanOutcome> {
    let mut pos = start;
    let mut offset_entries = Vec::new();
    let mut time_entries = Vec::new();
    let mut stop = None;
    let mut buf = vec![0u8; HEADER_SIZE];
    while pos < size {
        let remaining = size - pos;
        let hlen = remaining.min(HEADER_SIZE as u64) as usize;
        buf.resize(hlen, 0);
        file.read_exact_at(&mut buf[..hlen], pos)?;
        let avail = usize::try_from(remaining).unwrap_or(usize::MAX);
        let batch_size = match batch::check_header(&buf[..hlen], 0, avail) {
            Ok(s) => s,
            Err(e) => {
                stop = Some(stop_from(e, pos));
                break;
            }
        };
        if validate_crc {
            buf.resize(batch_size, 0);
            file.read_exact_at(&mut buf, pos)?;
            if let Err(e) = batch::validate_batch(&buf, 0) {
                stop = Some(stop_from(e, pos));
                break;
            }
        }
        // check_header succeeded, so at least HEADER_SIZE bytes are in `buf`.
        let Some(header) = BatchHeader::new(&buf) else {
            break;
        };
        let base = header.base_offset();
        let expected = stats.next_offset.max(base_offset);
        if base < expected || header.last_offset() - base_offset > i64::from(u32::MAX) {
            stop = Some(ScanStop {
                position: pos,
                truncated: false,
                reason: format!(
                    "batch at byte {pos} has base offset {base}, expected >= {expected} \
                     (offsets must increase and stay within the segment)"
                ),
            });
            break;
        }
        if let Some(p) = stats.observe(&header, pos, batch_size as u64, index_interval) {
            offset_entries.push(p.offset);
            // Same rule as TimeIndex::maybe_append: only when the max timestamp grew.
            if let Some(time) = p
                .time
                .filter(|&(ts, _)| time_entries.last().is_none_or(|&(t, _)| ts > t))
            {
                time_entries.push(time);
            }
        }
        pos += batch_size as u64;
    }
    Ok(ScanOutcome {
        stats,
        valid_end: pos,
        offset_entries,
        time_entries,
        stop,
    })
}

/// Why [`LogSegment::append`] failed.
#[derive(Debug)]
pub enum AppendError {
    /// The append failed and was undone: the segment is as before it.
    RolledBack(io::Error),
    /// The append failed and so did the undo: the segment's tail is unknown.
    Torn { error: io::Error, undo: io::Error },
}

/// Failures a test can inject into the next append of a segment, after its write.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Faults {
    pub index_append: bool,
    pub sync: bool,
}

#[cfg(test)]
impl Faults {
    fn before_index_append(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.index_append) {
            return Err(io::Error::other("injected: offset index is full"));
        }
        Ok(())
    }

    fn before_sync(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.sync) {
            return Err(io::Error::other("injected: fsync failed"));
        }
        Ok(())
    }
}

/// A `.log` file with its `.index` and `.timeindex`.
#[derive(Debug)]
pub struct LogSegment {
    pub base_offset: i64,
    pub log_path: PathBuf,
    pub file: File,
    pub size: u64,
    pub stats: SegmentStats,
    pub offset_index: OffsetIndex,
    pub time_index: TimeIndex,
    #[cfg(test)]
    pub faults: Faults,
}

impl LogSegment {
    /// Creates empty segment files at `base_offset` (truncating any leftovers).
    pub fn create(dir: &Path, base_offset: i64) -> io::Result<LogSegment> {
        let log_path = segment_file(dir, base_offset, "log");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)?;
        for ext in ["index", "timeindex"] {
            let p = segment_file(dir, base_offset, ext);
            if p.exists() {
                std::fs::remove_file(&p)?;
            }
            File::create(&p)?;
        }
        let (offset_index, _) =
            OffsetIndex::open(&segment_file(dir, base_offset, "index"), base_offset, 0)?;
        let (time_index, _) =
            TimeIndex::open(&segment_file(dir, base_offset, "timeindex"), base_offset)?;
        Ok(LogSegment {
            base_offset,
            log_path,
            file,
            size: 0,
            stats: SegmentStats::empty(base_offset),
            offset_index,
            time_index,
            #[cfg(test)]
            faults: Faults::default(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub fn next_offset(&self) -> i64 {
        self.stats.next_offset
    }

    /// Reads `len` bytes at `pos` into a new buffer that is never zeroed first: a fetch of
    /// a megabyte would otherwise write it twice (profiled: the memset cost as much as the
    /// read). Positional (`pread`), so concurrent readers under the log's read lock don't
    /// share a file cursor.
    ///
    /// # Errors
    /// [`io::ErrorKind::UnexpectedEof`] if the file ends before `pos + len` (truncated
    /// under the reader); the bytes read so far are not returned.
    pub fn read(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        read_exact_at(&self.file, pos, len)
    }

    /// Reads the header of the batch at `pos`, or `None` at/after the end.
    pub fn header_at(&self, pos: u64) -> io::Result<Option<[u8; HEADER_SIZE]>> {
        if pos + HEADER_SIZE as u64 > self.size {
            return Ok(None);
        }
        let mut h = [0u8; HEADER_SIZE];
        self.file.read_exact_at(&mut h, pos)?;
        Ok(Some(h))
    }

    /// Appends validated batches (`batches` are positions in `data`, whose offsets are
    /// already assigned) with one write, updates both indexes and the stats, and with
    /// `sync` fsyncs the segment and its indexes.
    ///
    /// All or nothing: if anything fails after the write began, the file is cut back to its
    /// old size and the indexes and stats restored, so the failed append leaves no trace.
    ///
    /// # Errors
    /// [`AppendError::RolledBack`] with the I/O error after a clean undo;
    /// [`AppendError::Torn`] if the undo failed too (the segment then needs recovery).
    pub fn append(
        &mut self,
        data: &[u8],
        batches: &[ValidBatch],
        index_interval: u64,
        sync: bool,
    ) -> Result<(), AppendError> {
        let (start, stats) = (self.size, self.stats.clone());
        let Err(error) = self.write_batches(data, batches, index_interval, sync) else {
            return Ok(());
        };
        let first_offset = data
            .get(..HEADER_SIZE)
            .and_then(BatchHeader::new)
            .map_or(self.base_offset, |h| h.base_offset());
        let undo = (|| {
            self.file.set_len(start)?;
            self.offset_index.truncate_to(first_offset)?;
            self.time_index.truncate_to(first_offset)
        })();
        self.size = start;
        self.stats = stats;
        match undo {
            Ok(()) => Err(AppendError::RolledBack(error)),
            Err(undo) => Err(AppendError::Torn { error, undo }),
        }
    }

    fn write_batches(
        &mut self,
        data: &[u8],
        batches: &[ValidBatch],
        index_interval: u64,
        sync: bool,
    ) -> io::Result<()> {
        let start = self.size;
        self.file.write_all_at(data, start)?;
        self.size += data.len() as u64;
        for b in batches {
            // The validator checked every batch, so each range holds a header.
            let Some(header) = BatchHeader::new(&data[b.range()]) else {
                continue;
            };
            if let Some(p) = self.stats.observe(
                &header,
                start + b.position as u64,
                b.size as u64,
                index_interval,
            ) {
                #[cfg(test)]
                self.faults.before_index_append()?;
                self.offset_index.append(p.offset.0, p.offset.1)?;
                if let Some((ts, offset)) = p.time {
                    self.time_index.maybe_append(ts, offset)?;
                }
            }
        }
        if sync {
            #[cfg(test)]
            self.faults.before_sync()?;
            self.sync()?;
        }
        Ok(())
    }

    /// Rewrites both indexes from a scan outcome and adopts its stats.
    pub fn adopt_scan(&mut self, outcome: &ScanOutcome) -> io::Result<()> {
        self.offset_index.rewrite(&outcome.offset_entries)?;
        self.time_index.rewrite(&outcome.time_entries)?;
        self.stats = outcome.stats.clone();
        Ok(())
    }

    /// Rescans the whole file (headers only) and rebuilds both indexes.
    pub fn rebuild_indexes(&mut self, index_interval: u64) -> io::Result<ScanOutcome> {
        let outcome = scan(
            &self.file,
            self.base_offset,
            0,
            SegmentStats::empty(self.base_offset),
            self.size,
            false,
            index_interval,
        )?;
        self.adopt_scan(&outcome)?;
        Ok(outcome)
    }

    /// Cuts the file at `position` and rebuilds indexes and stats.
    pub fn truncate_at(&mut self, position: u64, index_interval: u64) -> io::Result<()> {
        self.file.set_len(position)?;
        self.size = position;
        self.rebuild_indexes(index_interval)?;
        Ok(())
    }

    /// Called when the segment stops being the active one: records its final
    /// max timestamp in the time index (as Kafka does) and fsyncs everything.
    pub fn on_become_inactive(&mut self) -> io::Result<()> {
        self.time_index
            .maybe_append(self.stats.max_timestamp, self.stats.offset_of_max_timestamp)?;
        self.sync()
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()?;
        self.offset_index.sync()?;
        self.time_index.sync()
    }

    /// Removes the segment's three files.
    pub fn delete_files(dir: &Path, base_offset: i64) -> io::Result<()> {
        for ext in ["log", "index", "timeindex"] {
            match std::fs::remove_file(segment_file(dir, base_offset, ext)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn read_exact_at_returns_exactly_the_range() {
        let contents: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let f = file_with(&contents);
        assert_eq!(read_exact_at(&f, 0, 0).unwrap(), b"");
        assert_eq!(read_exact_at(&f, 7, 1).unwrap(), &contents[7..8]);
        assert_eq!(
            read_exact_at(&f, 1000, 90_000).unwrap(),
            &contents[1000..91_000]
        );
        // Up to the last byte of the file.
        assert_eq!(
            read_exact_at(&f, 99_000, 1000).unwrap(),
            &contents[99_000..]
        );
    }

    #[test]
    fn a_file_shorter_than_the_range_is_an_error_not_garbage() {
        let f = file_with(&[1; 100]);
        let err = read_exact_at(&f, 50, 51).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("ends at byte 100"), "{err}");
        // Truncated under the reader, as a concurrent cut-back would.
        f.set_len(10).unwrap();
        let err = read_exact_at(&f, 0, 100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("ends at byte 10"), "{err}");
    }
}
