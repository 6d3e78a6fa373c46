//! Sparse offset and time indexes of one segment.
//!
//! Both are kept fully in memory (a 10 MiB index is ~1.3 M entries; typical
//! ones are a few KiB) and mirrored to an append-only file, so lookups need no
//! I/O and no `unsafe` memory map. Files hold exactly `entries * ENTRY_SIZE`
//! bytes (no preallocation, unlike Kafka), which makes a torn last entry easy
//! to detect on open.
//!
//! The two differ only in their entry type: `IndexFile` holds the file and
//! the entries, `IndexEntry` says how one entry is laid out and checked.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// `.index` entry: relative offset (u32 BE) + file position (u32 BE).
pub const OFFSET_ENTRY_SIZE: u64 = 8;
/// `.timeindex` entry: timestamp (i64 BE) + relative offset (u32 BE).
pub const TIME_ENTRY_SIZE: u64 = 12;

fn open_rw(path: &Path, truncate: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
}

/// One fixed-size entry of an index file. `Display` describes it in the
/// messages about corrupt files.
trait IndexEntry: Copy + fmt::Display {
    /// Bytes per entry on disk.
    const SIZE: u64;
    /// What a loaded entry is checked against besides its predecessor.
    type Bound: Copy;

    /// Appends the `SIZE` bytes of the entry to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads an entry from exactly `SIZE` bytes.
    fn decode(bytes: &[u8]) -> Self;
    /// The offset the entry names, relative to the segment's base offset.
    fn relative_offset(&self) -> u32;
    /// Whether a file may hold `self` right after `prev`.
    fn follows(&self, prev: &Self) -> bool;
    /// Why entry `n` does not belong in a file bounded by `bound`, if it doesn't.
    fn implausible(&self, _n: usize, _bound: Self::Bound) -> Option<String> {
        None
    }
}

/// The file and in-memory entries of one index, whatever its entry type.
#[derive(Debug)]
struct IndexFile<E> {
    path: PathBuf,
    file: File,
    base_offset: i64,
    /// In file order; on load, each [`IndexEntry::follows`] the one before.
    entries: Vec<E>,
}

impl<E: IndexEntry> IndexFile<E> {
    /// Opens (creating if missing) and loads the file. Returns the index and,
    /// if the file's contents are not a plausible index, a description of what
    /// is wrong; the entries before the first bad one stay loaded.
    fn open(path: &Path, base_offset: i64, bound: E::Bound) -> io::Result<(Self, Option<String>)> {
        let existed = path.exists();
        let file = open_rw(path, false)?;
        let bytes = std::fs::read(path)?;
        let mut idx = IndexFile {
            path: path.to_path_buf(),
            file,
            base_offset,
            entries: Vec::new(),
        };
        let issue = if existed {
            idx.load(&bytes, bound)
        } else {
            Some("file is missing".into())
        };
        Ok((idx, issue))
    }

    fn load(&mut self, bytes: &[u8], bound: E::Bound) -> Option<String> {
        if !(bytes.len() as u64).is_multiple_of(E::SIZE) {
            return Some(format!(
                "size {} is not a multiple of {}",
                bytes.len(),
                E::SIZE
            ));
        }
        for (n, chunk) in bytes.chunks_exact(E::SIZE as usize).enumerate() {
            let e = E::decode(chunk);
            if self.entries.last().is_some_and(|prev| !e.follows(prev)) {
                return Some(format!("entries not monotonic at entry {n} ({e})"));
            }
            if let Some(why) = e.implausible(n, bound) {
                return Some(why);
            }
            self.entries.push(e);
        }
        None
    }

    fn size_bytes(&self) -> u64 {
        self.entries.len() as u64 * E::SIZE
    }

    fn absolute(&self, relative_offset: u32) -> i64 {
        self.base_offset + i64::from(relative_offset)
    }

    fn relative(&self, offset: i64) -> io::Result<u32> {
        u32::try_from(offset - self.base_offset)
            .map_err(|_| io::Error::other(format!("relative offset of {offset} overflows")))
    }

    /// Writes `e` after the last entry; the caller decides whether it may.
    fn push(&mut self, e: E) -> io::Result<()> {
        let mut buf = Vec::with_capacity(E::SIZE as usize);
        e.encode(&mut buf);
        self.file.write_all_at(&buf, self.size_bytes())?;
        self.entries.push(e);
        Ok(())
    }

    fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let rel = offset - self.base_offset;
        let keep = self
            .entries
            .partition_point(|e| i64::from(e.relative_offset()) < rel);
        self.entries.truncate(keep);
        self.file.set_len(self.size_bytes())
    }

    /// Replaces the contents with `entries`.
    fn rewrite(&mut self, entries: Vec<E>) -> io::Result<()> {
        self.entries.clear();
        self.file.set_len(0)?;
        let mut buf = Vec::with_capacity(entries.len() * E::SIZE as usize);
        for e in &entries {
            e.encode(&mut buf);
        }
        self.entries = entries;
        self.file.write_all_at(&buf, 0)
    }

    /// `offset` relative to the base offset, or `u32::MAX` if it does not fit.
    /// For rewrites, whose entries come from a scan of a segment that obeys the
    /// roll rules.
    fn relative_or_max(&self, offset: i64) -> u32 {
        u32::try_from(offset - self.base_offset).unwrap_or(u32::MAX)
    }
}

/// `.index` entry.
#[derive(Debug, Clone, Copy)]
struct OffsetEntry {
    rel: u32,
    pos: u32,
}

impl fmt::Display for OffsetEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "relative offset {}, position {}", self.rel, self.pos)
    }
}

impl IndexEntry for OffsetEntry {
    const SIZE: u64 = OFFSET_ENTRY_SIZE;
    /// The size of the `.log` file, which every position must be below.
    type Bound = u64;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.rel.to_be_bytes());
        out.extend_from_slice(&self.pos.to_be_bytes());
    }

    fn decode(c: &[u8]) -> Self {
        OffsetEntry {
            rel: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            pos: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
        }
    }

    fn relative_offset(&self) -> u32 {
        self.rel
    }

    fn follows(&self, prev: &Self) -> bool {
        self.rel > prev.rel && self.pos > prev.pos
    }

    fn implausible(&self, n: usize, log_size: u64) -> Option<String> {
        let pos = self.pos;
        (u64::from(pos) >= log_size).then(|| {
            format!("entry {n} points to position {pos}, past the end of the {log_size}-byte log")
        })
    }
}

/// `.timeindex` entry.
#[derive(Debug, Clone, Copy)]
struct TimeEntry {
    ts: i64,
    rel: u32,
}

impl fmt::Display for TimeEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timestamp {}, relative offset {}", self.ts, self.rel)
    }
}

impl IndexEntry for TimeEntry {
    const SIZE: u64 = TIME_ENTRY_SIZE;
    /// Offsets are checked against the segment later, by
    /// [`TimeIndex::check_offsets`].
    type Bound = ();

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ts.to_be_bytes());
        out.extend_from_slice(&self.rel.to_be_bytes());
    }

    fn decode(c: &[u8]) -> Self {
        let mut t = [0u8; 8];
        t.copy_from_slice(&c[..8]);
        TimeEntry {
            ts: i64::from_be_bytes(t),
            rel: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
        }
    }

    fn relative_offset(&self) -> u32 {
        self.rel
    }

    /// Timestamps strictly increase; several may name the same offset.
    fn follows(&self, prev: &Self) -> bool {
        self.ts > prev.ts && self.rel >= prev.rel
    }
}

/// Maps the base offset of an indexed batch to its byte position in the `.log` file.
#[derive(Debug)]
pub struct OffsetIndex(IndexFile<OffsetEntry>);

impl OffsetIndex {
    /// Opens (creating if missing) and loads the file. Returns the index and,
    /// if the file's contents are not a plausible index for a segment of
    /// `log_size` bytes, a description of what is wrong (the caller rebuilds).
    pub fn open(
        path: &Path,
        base_offset: i64,
        log_size: u64,
    ) -> io::Result<(Self, Option<String>)> {
        let (file, issue) = IndexFile::open(path, base_offset, log_size)?;
        Ok((OffsetIndex(file), issue))
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    pub fn entries(&self) -> usize {
        self.0.entries.len()
    }

    pub fn size_bytes(&self) -> u64 {
        self.0.size_bytes()
    }

    /// Position of the last indexed batch whose base offset is <= `offset`, or 0.
    pub fn lookup(&self, offset: i64) -> u64 {
        let rel = offset - self.0.base_offset;
        if rel < 0 {
            return 0;
        }
        let i = self.0.entries.partition_point(|e| i64::from(e.rel) <= rel);
        if i == 0 {
            0
        } else {
            u64::from(self.0.entries[i - 1].pos)
        }
    }

    /// Largest (offset, position) entry, if any.
    pub fn last_entry(&self) -> Option<(i64, u64)> {
        self.0
            .entries
            .last()
            .map(|e| (self.0.absolute(e.rel), u64::from(e.pos)))
    }

    /// Highest offset mentioned, if any.
    pub fn last_offset(&self) -> Option<i64> {
        self.last_entry().map(|(o, _)| o)
    }

    /// Appends an entry; offsets and positions must increase and fit in u32
    /// (the segment roll rules guarantee both).
    pub fn append(&mut self, offset: i64, position: u64) -> io::Result<()> {
        let rel = self.0.relative(offset)?;
        let pos = u32::try_from(position)
            .map_err(|_| io::Error::other(format!("position {position} overflows")))?;
        let e = OffsetEntry { rel, pos };
        if self.0.entries.last().is_some_and(|prev| !e.follows(prev)) {
            return Ok(());
        }
        self.0.push(e)
    }

    /// Drops entries for offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        self.0.truncate_to(offset)
    }

    /// Replaces the contents with `entries` (absolute offset, position).
    pub fn rewrite(&mut self, entries: &[(i64, u64)]) -> io::Result<()> {
        let entries = entries
            .iter()
            .map(|&(o, p)| OffsetEntry {
                rel: self.0.relative_or_max(o),
                pos: u32::try_from(p).unwrap_or(u32::MAX),
            })
            .collect();
        self.0.rewrite(entries)
    }

    pub fn sync(&self) -> io::Result<()> {
        self.0.file.sync_data()
    }
}

/// Maps a timestamp to the offset of the batch that first reached it.
/// Entries are appended only when the segment's max timestamp grows.
#[derive(Debug)]
pub struct TimeIndex(IndexFile<TimeEntry>);

impl TimeIndex {
    /// Like [`OffsetIndex::open`], except that the offsets entries name are
    /// not checked here: see [`TimeIndex::check_offsets`].
    pub fn open(path: &Path, base_offset: i64) -> io::Result<(Self, Option<String>)> {
        let (file, issue) = IndexFile::open(path, base_offset, ())?;
        Ok((TimeIndex(file), issue))
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    pub fn entries(&self) -> usize {
        self.0.entries.len()
    }

    pub fn size_bytes(&self) -> u64 {
        self.0.size_bytes()
    }

    /// The last (timestamp, offset) entry, if any.
    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.0
            .entries
            .last()
            .map(|e| (e.ts, self.0.absolute(e.rel)))
    }

    /// The last entry whose timestamp is strictly below `ts`: every batch up to
    /// and including that offset has maxTimestamp < `ts`.
    pub fn lookup_below(&self, ts: i64) -> Option<i64> {
        let i = self.0.entries.partition_point(|e| e.ts < ts);
        (i > 0).then(|| self.0.absolute(self.0.entries[i - 1].rel))
    }

    /// Appends if `ts` is larger than the last entry's timestamp. A negative `ts` (-1, "no
    /// timestamp": every record of the batch lacks one) is never indexed, as in Kafka.
    pub fn maybe_append(&mut self, ts: i64, offset: i64) -> io::Result<()> {
        if ts < 0 || self.0.entries.last().is_some_and(|e| ts <= e.ts) {
            return Ok(());
        }
        let rel = self.0.relative(offset)?;
        self.0.push(TimeEntry { ts, rel })
    }

    /// Checks every entry names an offset below `next_offset`.
    pub fn check_offsets(&self, next_offset: i64) -> Option<String> {
        self.0.entries.iter().enumerate().find_map(|(i, e)| {
            let o = self.0.absolute(e.rel);
            (o >= next_offset).then(|| {
                format!("entry {i} names offset {o}, past the segment's next offset {next_offset}")
            })
        })
    }

    /// Drops entries naming offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        self.0.truncate_to(offset)
    }

    /// Replaces the contents with `entries` (timestamp, absolute offset).
    pub fn rewrite(&mut self, entries: &[(i64, i64)]) -> io::Result<()> {
        let entries = entries
            .iter()
            .map(|&(ts, o)| TimeEntry {
                ts,
                rel: self.0.relative_or_max(o),
            })
            .collect();
        self.0.rewrite(entries)
    }

    pub fn sync(&self) -> io::Result<()> {
        self.0.file.sync_data()
    }
}
