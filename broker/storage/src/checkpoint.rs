//! Kafka's offset checkpoint files: `recovery-point-offset-checkpoint` (the log manager)
//! and `replication-offset-checkpoint` (the broker's high watermarks).
//!
//! Format: the version `0`, the entry count, then one `topic partition offset` line per
//! partition. Written atomically (temp file, fsync, rename, directory fsync); a write whose
//! contents equal the last one written through the same [`OffsetCheckpoint`] is skipped, as
//! each one costs an fsync and the callers write periodically.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::log::write_atomically;
use crate::manager::{io_err, LogManagerError, TopicPartition};

/// One offset checkpoint file.
#[derive(Debug)]
pub struct OffsetCheckpoint {
    path: PathBuf,
    /// The contents last written, to skip rewriting them unchanged.
    last: Mutex<Option<String>>,
}

impl OffsetCheckpoint {
    pub fn new(path: PathBuf) -> Self {
        OffsetCheckpoint {
            path,
            last: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entries; a missing file has none.
    ///
    /// # Errors
    /// [`LogManagerError::BadCheckpoint`] if the file does not parse, I/O errors reading it.
    pub fn read(&self) -> Result<BTreeMap<TopicPartition, i64>, LogManagerError> {
        let path = &self.path;
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(io_err("reading checkpoint", path)(e)),
        };
        let bad = |line: usize, reason: &str| LogManagerError::BadCheckpoint {
            path: path.clone(),
            line,
            reason: reason.to_string(),
        };
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some("0") {
            return Err(bad(1, "expected version 0"));
        }
        let count: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| bad(2, "expected entry count"))?;
        let mut out = BTreeMap::new();
        for (i, line) in lines.enumerate() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [topic, partition, offset] = parts[..] else {
                return Err(bad(i + 3, "expected `topic partition offset`"));
            };
            let partition = partition.parse().map_err(|_| bad(i + 3, "bad partition"))?;
            let offset = offset.parse().map_err(|_| bad(i + 3, "bad offset"))?;
            out.insert(TopicPartition::new(topic, partition), offset);
        }
        if out.len() != count {
            return Err(bad(2, "entry count does not match the number of lines"));
        }
        Ok(out)
    }

    /// Writes `entries` (skipped if the file already says exactly that).
    ///
    /// # Errors
    /// I/O errors writing the file.
    pub fn write(
        &self,
        entries: impl IntoIterator<Item = (TopicPartition, i64)>,
    ) -> Result<(), LogManagerError> {
        let entries: Vec<_> = entries.into_iter().collect();
        let mut text = format!("0\n{}\n", entries.len());
        for (tp, offset) in &entries {
            text.push_str(&format!("{} {} {}\n", tp.topic, tp.partition, offset));
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        write_atomically(&self.path, text.as_bytes())
            .map_err(io_err("writing checkpoint", &self.path))?;
        *last = Some(text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unchanged_writes_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = OffsetCheckpoint::new(dir.path().join("replication-offset-checkpoint"));
        assert!(file.read().unwrap().is_empty(), "missing file: no entries");
        let entries = [
            (TopicPartition::new("a", 0), 5),
            (TopicPartition::new("b.c", 3), 0),
        ];
        file.write(entries.clone()).unwrap();
        assert_eq!(file.read().unwrap(), BTreeMap::from(entries.clone()));
        // The same contents again: not rewritten (the file's removal stays visible).
        fs::remove_file(file.path()).unwrap();
        file.write(entries.clone()).unwrap();
        assert!(!file.path().exists());
        file.write([(TopicPartition::new("a", 0), 6)]).unwrap();
        assert_eq!(
            file.read().unwrap(),
            BTreeMap::from([(TopicPartition::new("a", 0), 6)])
        );
    }

    #[test]
    fn malformed_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = OffsetCheckpoint::new(dir.path().join("c"));
        for text in [
            "1\n0\n",
            "0\nx\n",
            "0\n1\na 0\n",
            "0\n2\na 0 1\n",
            "0\n1\na x 1\n",
        ] {
            fs::write(file.path(), text).unwrap();
            assert!(
                matches!(file.read(), Err(LogManagerError::BadCheckpoint { .. })),
                "{text:?}"
            );
        }
    }
}
