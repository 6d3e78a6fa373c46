//! Crash and corruption scenarios: reopen must keep every valid batch before
//! the damage, drop what follows, rebuild indexes and say what it did.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::{append, read_all, segment_files, small_config};
use ironlog_storage::batch::testing::simple_batch;
use ironlog_storage::{Log, LogConfig, Repair};

/// Writes `batches` batches of 3 records; returns the config and per-batch byte size.
fn build_log(dir: &Path, cfg: &LogConfig, batches: usize) -> u64 {
    let mut log = Log::open(dir, cfg.clone(), 0, 0).unwrap();
    for i in 0..batches {
        append(&mut log, 3, 1000 * i as i64);
    }
    log.close().unwrap();
    simple_batch(0, 0, 3).len() as u64
}

fn flip_byte(path: &Path, pos: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, pos).unwrap();
    f.write_all_at(&[b[0] ^ 0x5a], pos).unwrap();
}

#[test]
fn torn_tail_is_truncated_and_appends_continue() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = small_config(1 << 20);
    let size = build_log(tmp.path(), &cfg, 5);
    let seg = &segment_files(tmp.path(), "log")[0];
    // Cut the last batch in the middle.
    let f = OpenOptions::new().write(true).open(seg).unwrap();
    f.set_len(size * 4 + size / 2).unwrap();
    drop(f);

    let mut log = Log::open(tmp.path(), cfg.clone(), 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), 12);
    let report = log.recovery_report().clone();
    assert_eq!(report.truncated_bytes(), size / 2);
    assert!(
        matches!(
            &report.repairs[..],
            [Repair::TruncatedSegment { torn: true, valid_bytes, .. }] if *valid_bytes == size * 4
        ),
        "{report:?}"
    );
    let recs = read_all(&log, 0);
    assert_eq!(recs.len(), 12);
    assert_eq!(recs[11].value.as_deref(), Some(&b"v2"[..]));
    assert_eq!(append(&mut log, 2, 0).first_offset, 12);
    assert_eq!(read_all(&log, 0).len(), 14);
}

#[test]
fn crc_corrupt_tail_batch_and_everything_after_are_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = small_config(1 << 20);
    let size = build_log(tmp.path(), &cfg, 6);
    let seg = &segment_files(tmp.path(), "log")[0];
    // Flip a byte in the records of batch 3 (0-based): batches 3..5 go.
    flip_byte(seg, size * 3 + 70);

    let log = Log::open(tmp.path(), cfg, 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), 9);
    let report = log.recovery_report();
    match &report.repairs[..] {
        [Repair::TruncatedSegment {
            torn: false,
            valid_bytes,
            truncated_bytes,
            found,
            ..
        }] => {
            assert_eq!(*valid_bytes, size * 3);
            assert_eq!(*truncated_bytes, size * 3);
            assert!(found.contains("CRC"), "{found}");
        }
        other => panic!("unexpected repairs {other:?}"),
    }
    assert_eq!(fs::metadata(seg).unwrap().len(), size * 3);
    assert_eq!(read_all(&log, 0).len(), 9);
}

#[test]
fn corruption_in_an_earlier_segment_drops_later_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = small_config(400);
    let size = build_log(tmp.path(), &cfg, 12);
    let segs = segment_files(tmp.path(), "log");
    assert!(segs.len() >= 3);
    // Damage the second batch of the second segment; recovery point 0 = validate all.
    flip_byte(&segs[1], size + 65);
    let log = Log::open(tmp.path(), cfg, 0, 0).unwrap();
    assert_eq!(log.segment_count(), 2);
    let per_seg = 400 / size;
    assert_eq!(log.log_end_offset(), (per_seg as i64 + 1) * 3);
    let deleted = log
        .recovery_report()
        .repairs
        .iter()
        .filter(|r| matches!(r, Repair::DeletedSegment { .. }))
        .count();
    assert_eq!(deleted, segs.len() - 2);
    assert_eq!(segment_files(tmp.path(), "log").len(), 2);
}

#[test]
fn missing_or_corrupt_indexes_are_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = small_config(1000);
    build_log(tmp.path(), &cfg, 40);
    let (before, ts_before, max_before) = {
        let log = Log::open_clean(tmp.path(), cfg.clone(), 0).unwrap();
        (
            read_all(&log, 0),
            log.offset_for_timestamp(7_500).unwrap(),
            log.max_timestamp_offset(),
        )
    };
    assert_eq!(ts_before, Some((24, 8_002)));
    let indexes = segment_files(tmp.path(), "index");
    let timeindexes = segment_files(tmp.path(), "timeindex");
    assert!(indexes.len() >= 3);
    assert!(
        fs::metadata(&indexes[0]).unwrap().len() > 0,
        "test needs non-empty indexes"
    );
    fs::remove_file(&indexes[0]).unwrap();
    // Torn entry: wrong size.
    let f = OpenOptions::new()
        .write(true)
        .open(&timeindexes[0])
        .unwrap();
    f.set_len(fs::metadata(&timeindexes[0]).unwrap().len() - 3)
        .unwrap();
    // Position pointing past the end of the log.
    let f = OpenOptions::new().write(true).open(&indexes[1]).unwrap();
    f.write_all_at(&[0, 0, 0, 1, 0x7f, 0, 0, 0], 0).unwrap();
    // Timestamps going backwards.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&timeindexes[1])
        .unwrap();
    f.write_all_at(&i64::MAX.to_be_bytes(), 0).unwrap();
    drop(f);

    // Clean open with nothing CRC-checked: the index checks alone must catch it.
    let log = Log::open_clean(tmp.path(), cfg.clone(), 0).unwrap();
    let rebuilt: Vec<_> = log
        .recovery_report()
        .repairs
        .iter()
        .filter_map(|r| match r {
            Repair::RebuiltIndex { file, found } => Some((file.clone(), found.clone())),
            _ => None,
        })
        .collect();
    let files: Vec<_> = rebuilt.iter().map(|(f, _)| f.clone()).collect();
    for p in [&indexes[0], &timeindexes[0], &indexes[1], &timeindexes[1]] {
        assert!(
            files.contains(p),
            "{} not rebuilt: {rebuilt:?}",
            p.display()
        );
    }
    assert!(rebuilt.iter().any(|(_, f)| f.contains("missing")));
    assert!(rebuilt.iter().any(|(_, f)| f.contains("past the end")));
    assert_eq!(read_all(&log, 0), before);
    assert_eq!(log.offset_for_timestamp(7_500).unwrap(), ts_before);
    assert_eq!(log.max_timestamp_offset(), max_before);
    // The rebuilt files are valid: the next open repairs nothing.
    drop(log);
    let log = Log::open_clean(tmp.path(), cfg, 0).unwrap();
    assert!(
        log.recovery_report().repairs.is_empty(),
        "{:?}",
        log.recovery_report()
    );
    assert!(fs::metadata(&indexes[0]).unwrap().len() > 0);
}

/// Damage in a non-final segment below the recovery point, unclean shutdown.
/// Documented behaviour: such a segment is trusted (it was fsynced), so CRC
/// damage inside it is not noticed unless the caller passes recovery point 0;
/// structural damage found by the header walk triggers full recovery of that
/// segment, which truncates it and drops every later segment.
#[test]
fn damage_below_the_recovery_point() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = small_config(400);
    cfg.index_interval_bytes = 1 << 20; // no index entries: header walks start at 0
    let size = build_log(tmp.path(), &cfg, 12);
    let segs = segment_files(tmp.path(), "log");
    let leo = 36;

    // 1. CRC damage in segment 0 with the recovery point at the end: trusted, kept as is.
    flip_byte(&segs[0], size + 70);
    let log = Log::open(tmp.path(), cfg.clone(), leo, 0).unwrap();
    assert_eq!(log.log_end_offset(), leo);
    assert!(log.recovery_report().repairs.is_empty());
    assert_eq!(
        log.recovery_report().segments_validated,
        1,
        "only the active segment"
    );
    drop(log);

    // 2. Same damage with recovery point 0: found, segment 0 truncated, the rest dropped.
    let log = Log::open(tmp.path(), cfg.clone(), 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(log.segment_count(), 1);
    drop(log);

    // 3. Structural damage (bad magic) below the recovery point is caught by the header walk.
    let tmp = tempfile::tempdir().unwrap();
    build_log(tmp.path(), &cfg, 12);
    let segs = segment_files(tmp.path(), "log");
    let f = OpenOptions::new().write(true).open(&segs[0]).unwrap();
    f.write_all_at(&[1], size + 16).unwrap();
    drop(f);
    let log = Log::open(tmp.path(), cfg, leo, 0).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    let r = log.recovery_report();
    assert!(
        r.repairs.iter().any(|x| matches!(x,
        Repair::TruncatedSegment { found, .. } if found.contains("magic 1"))),
        "{r:?}"
    );
    assert_eq!(
        r.repairs
            .iter()
            .filter(|x| matches!(x, Repair::DeletedSegment { .. }))
            .count(),
        segs.len() - 1
    );
}

#[test]
fn clean_open_skips_crc_checks_but_finds_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = small_config(1 << 20);
    let size = build_log(tmp.path(), &cfg, 4);
    let log = Log::open_clean(tmp.path(), cfg.clone(), 0).unwrap();
    assert_eq!(log.recovery_report().segments_validated, 0);
    assert_eq!(log.log_end_offset(), 12);
    drop(log);
    let seg = &segment_files(tmp.path(), "log")[0];
    OpenOptions::new()
        .write(true)
        .open(seg)
        .unwrap()
        .set_len(size * 3 + 10)
        .unwrap();
    let log = Log::open_clean(tmp.path(), cfg, 0).unwrap();
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(log.recovery_report().truncated_bytes(), 10);
}

#[test]
fn leftover_files_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = small_config(1 << 20);
    build_log(tmp.path(), &cfg, 2);
    fs::write(tmp.path().join("log-start-offset.tmp"), b"9").unwrap();
    fs::write(tmp.path().join("00000000000000000099.index"), b"").unwrap();
    let log = Log::open(tmp.path(), cfg, 0, 0).unwrap();
    let removed = log
        .recovery_report()
        .repairs
        .iter()
        .filter(|r| matches!(r, Repair::RemovedStrayFile { .. }))
        .count();
    assert_eq!(removed, 2);
    assert_eq!(log.log_end_offset(), 6);
}
