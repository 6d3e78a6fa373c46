//! Sparse offset and time indexes of one segment.
//!
//! Both are kept fully in memory (a 10 MiB index is ~1.3 M entries; typical
//! ones are a few KiB) and mirrored to an append-only file, so lookups need no
//! I/O and no `unsafe` memory map. Files hold exactly `entries * ENTRY_SIZE`
//! bytes (no preallocation, unlike Kafka), which makes a torn last entry easy
//! to detect on open.

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

/// Maps the base offset of an indexed batch to its byte position in the `.log` file.
#[derive(Debug)]
pub struct OffsetIndex {
    path: PathBuf,
    file: File,
    base_offset: i64,
    /// (relative offset, position), strictly increasing in both.
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    /// Opens (creating if missing) and loads the file. Returns the index and,
    /// if the file's contents are not a plausible index for a segment of
    /// `log_size` bytes, a description of what is wrong (the caller rebuilds).
    pub fn open(
        path: &Path,
        base_offset: i64,
        log_size: u64,
    ) -> io::Result<(Self, Option<String>)> {
        let existed = path.exists();
        let file = open_rw(path, false)?;
        let bytes = std::fs::read(path)?;
        let mut idx = OffsetIndex {
            path: path.to_path_buf(),
            file,
            base_offset,
            entries: Vec::new(),
        };
        if !existed {
            return Ok((idx, Some("file is missing".into())));
        }
        if !(bytes.len() as u64).is_multiple_of(OFFSET_ENTRY_SIZE) {
            return Ok((
                idx,
                Some(format!(
                    "size {} is not a multiple of {OFFSET_ENTRY_SIZE}",
                    bytes.len()
                )),
            ));
        }
        for c in bytes.chunks_exact(OFFSET_ENTRY_SIZE as usize) {
            let n = idx.entries.len();
            let rel = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            let pos = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
            if let Some(&(lr, lp)) = idx.entries.last() {
                if rel <= lr || pos <= lp {
                    return Ok((
                        idx,
                        Some(format!(
                            "entries not monotonic at entry {} (relative offset {rel}, position {pos})",
                            n
                        )),
                    ));
                }
            }
            if u64::from(pos) >= log_size {
                return Ok((
                    idx,
                    Some(format!(
                        "entry {} points to position {pos}, past the end of the {log_size}-byte log",
                        n
                    )),
                ));
            }
            idx.entries.push((rel, pos));
        }
        Ok((idx, None))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    pub fn size_bytes(&self) -> u64 {
        self.entries.len() as u64 * OFFSET_ENTRY_SIZE
    }

    /// Position of the last indexed batch whose base offset is <= `offset`, or 0.
    pub fn lookup(&self, offset: i64) -> u64 {
        let rel = offset - self.base_offset;
        if rel < 0 {
            return 0;
        }
        let i = self.entries.partition_point(|&(r, _)| i64::from(r) <= rel);
        if i == 0 {
            0
        } else {
            u64::from(self.entries[i - 1].1)
        }
    }

    /// Largest (offset, position) entry, if any.
    pub fn last_entry(&self) -> Option<(i64, u64)> {
        self.entries
            .last()
            .map(|&(r, p)| (self.base_offset + i64::from(r), u64::from(p)))
    }

    /// Highest offset mentioned, if any.
    pub fn last_offset(&self) -> Option<i64> {
        self.last_entry().map(|(o, _)| o)
    }

    /// Appends an entry; offsets and positions must increase and fit in u32
    /// (the segment roll rules guarantee both).
    pub fn append(&mut self, offset: i64, position: u64) -> io::Result<()> {
        let rel = u32::try_from(offset - self.base_offset)
            .map_err(|_| io::Error::other(format!("relative offset of {offset} overflows")))?;
        let pos = u32::try_from(position)
            .map_err(|_| io::Error::other(format!("position {position} overflows")))?;
        if let Some(&(lr, lp)) = self.entries.last() {
            if rel <= lr || pos <= lp {
                return Ok(());
            }
        }
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&rel.to_be_bytes());
        e[4..].copy_from_slice(&pos.to_be_bytes());
        self.file.write_all_at(&e, self.size_bytes())?;
        self.entries.push((rel, pos));
        Ok(())
    }

    /// Drops entries for offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let rel = offset - self.base_offset;
        let keep = self.entries.partition_point(|&(r, _)| i64::from(r) < rel);
        self.entries.truncate(keep);
        self.file.set_len(self.size_bytes())
    }

    /// Replaces the contents with `entries` (absolute offset, position).
    pub fn rewrite(&mut self, entries: &[(i64, u64)]) -> io::Result<()> {
        self.entries.clear();
        self.file.set_len(0)?;
        let mut buf = Vec::with_capacity(entries.len() * OFFSET_ENTRY_SIZE as usize);
        for &(o, p) in entries {
            // Entries come from a scan of a segment that obeys the roll rules.
            let rel = u32::try_from(o - self.base_offset).unwrap_or(u32::MAX);
            let pos = u32::try_from(p).unwrap_or(u32::MAX);
            buf.extend_from_slice(&rel.to_be_bytes());
            buf.extend_from_slice(&pos.to_be_bytes());
            self.entries.push((rel, pos));
        }
        self.file.write_all_at(&buf, 0)
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Maps a timestamp to the offset of the batch that first reached it.
/// Entries are appended only when the segment's max timestamp grows.
#[derive(Debug)]
pub struct TimeIndex {
    path: PathBuf,
    file: File,
    base_offset: i64,
    /// (timestamp, relative offset), increasing in both.
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    /// Like [`OffsetIndex::open`]; `next_offset` bounds the offsets entries may name.
    pub fn open(path: &Path, base_offset: i64) -> io::Result<(Self, Option<String>)> {
        let existed = path.exists();
        let file = open_rw(path, false)?;
        let bytes = std::fs::read(path)?;
        let mut idx = TimeIndex {
            path: path.to_path_buf(),
            file,
            base_offset,
            entries: Vec::new(),
        };
        if !existed {
            return Ok((idx, Some("file is missing".into())));
        }
        if !(bytes.len() as u64).is_multiple_of(TIME_ENTRY_SIZE) {
            return Ok((
                idx,
                Some(format!(
                    "size {} is not a multiple of {TIME_ENTRY_SIZE}",
                    bytes.len()
                )),
            ));
        }
        for c in bytes.chunks_exact(TIME_ENTRY_SIZE as usize) {
            let n = idx.entries.len();
            let mut t = [0u8; 8];
            t.copy_from_slice(&c[..8]);
            let ts = i64::from_be_bytes(t);
            let rel = u32::from_be_bytes([c[8], c[9], c[10], c[11]]);
            if let Some(&(lt, lr)) = idx.entries.last() {
                if ts <= lt || rel < lr {
                    return Ok((
                        idx,
                        Some(format!(
                            "entries not monotonic at entry {} (timestamp {ts}, relative offset {rel})",
                            n
                        )),
                    ));
                }
            }
            idx.entries.push((ts, rel));
        }
        Ok((idx, None))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    pub fn size_bytes(&self) -> u64 {
        self.entries.len() as u64 * TIME_ENTRY_SIZE
    }

    /// The last (timestamp, offset) entry, if any.
    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.entries
            .last()
            .map(|&(t, r)| (t, self.base_offset + i64::from(r)))
    }

    /// The last entry whose timestamp is strictly below `ts`: every batch up to
    /// and including that offset has maxTimestamp < `ts`.
    pub fn lookup_below(&self, ts: i64) -> Option<i64> {
        let i = self.entries.partition_point(|&(t, _)| t < ts);
        (i > 0).then(|| self.base_offset + i64::from(self.entries[i - 1].1))
    }

    /// Appends if `ts` is larger than the last entry's timestamp.
    pub fn maybe_append(&mut self, ts: i64, offset: i64) -> io::Result<()> {
        if self.entries.last().is_some_and(|&(t, _)| ts <= t) {
            return Ok(());
        }
        let rel = u32::try_from(offset - self.base_offset)
            .map_err(|_| io::Error::other(format!("relative offset of {offset} overflows")))?;
        let mut e = [0u8; 12];
        e[..8].copy_from_slice(&ts.to_be_bytes());
        e[8..].copy_from_slice(&rel.to_be_bytes());
        self.file.write_all_at(&e, self.size_bytes())?;
        self.entries.push((ts, rel));
        Ok(())
    }

    /// Checks every entry names an offset below `next_offset`.
    pub fn check_offsets(&self, next_offset: i64) -> Option<String> {
        self.entries.iter().enumerate().find_map(|(i, &(_, r))| {
            let o = self.base_offset + i64::from(r);
            (o >= next_offset).then(|| {
                format!("entry {i} names offset {o}, past the segment's next offset {next_offset}")
            })
        })
    }

    /// Drops entries naming offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let rel = offset - self.base_offset;
        let keep = self.entries.partition_point(|&(_, r)| i64::from(r) < rel);
        self.entries.truncate(keep);
        self.file.set_len(self.size_bytes())
    }

    /// Replaces the contents with `entries` (timestamp, absolute offset).
    pub fn rewrite(&mut self, entries: &[(i64, i64)]) -> io::Result<()> {
        self.entries.clear();
        self.file.set_len(0)?;
        let mut buf = Vec::with_capacity(entries.len() * TIME_ENTRY_SIZE as usize);
        for &(t, o) in entries {
            let rel = u32::try_from(o - self.base_offset).unwrap_or(u32::MAX);
            buf.extend_from_slice(&t.to_be_bytes());
            buf.extend_from_slice(&rel.to_be_bytes());
            self.entries.push((t, rel));
        }
        self.file.write_all_at(&buf, 0)
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}
