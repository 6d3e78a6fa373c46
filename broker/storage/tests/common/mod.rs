//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use ironlog_storage::batch::testing::{decode_records, simple_batch, TestRecord};
use ironlog_storage::{AppendInfo, Log, LogConfig};

/// A config with tiny segments and index intervals so tests exercise rolls and indexes.
pub fn small_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 100,
        retention_ms: None,
        ..LogConfig::default()
    }
}

/// Appends one batch of `n` records with base timestamp `ts`.
pub fn append(log: &mut Log, n: usize, ts: i64) -> AppendInfo {
    let mut b = simple_batch(0, ts, n);
    log.append(&mut b, ts).expect("append")
}

/// Reads everything from `from` to the log end, batch by batch, and decodes it.
pub fn read_all(log: &Log, from: i64) -> Vec<TestRecord> {
    let mut out = Vec::new();
    let mut next = from;
    while next < log.log_end_offset() {
        let r = log.read(next, 1 << 20, true).expect("read");
        assert!(!r.data.is_empty(), "empty read at {next} below log end");
        let recs = decode_records(&r.data);
        next = recs.last().expect("records").offset + 1;
        out.extend(recs.into_iter().filter(|r| r.offset >= from));
    }
    out
}

pub fn segment_files(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}
