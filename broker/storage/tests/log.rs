//! Behaviour of a single `Log`: reads, rolls, retention, timestamps, limits.

mod common;

use common::{append, read_all, small_config};
use ironlog_storage::batch::testing::{decode_records, simple_batch};
use ironlog_storage::batch::{parse_batches, BatchError, BatchHeader, TimestampType};
use ironlog_storage::{
    Log, LogConfig, LogError, MessageTimestampType, RecordError, ValidationError,
};

fn open(dir: &std::path::Path, cfg: LogConfig) -> Log {
    Log::open(dir, cfg, 0, 0).expect("open")
}

#[test]
fn mid_batch_fetch_returns_containing_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), LogConfig::default());
    for i in 0..3 {
        let info = append(&mut log, 5, 1000 + i);
        assert_eq!(info.first_offset, i * 5);
        assert_eq!(info.last_offset, i * 5 + 4);
    }
    let r = log.read(7, 1 << 20, true).unwrap();
    assert_eq!(r.first_batch_offset, Some(5));
    let recs = decode_records(&r.data);
    assert_eq!(recs.first().unwrap().offset, 5);
    assert_eq!(recs.last().unwrap().offset, 14);
    assert_eq!(
        recs[2].value.as_deref(),
        Some(&b"v2"[..]),
        "values are the producer's bytes"
    );
    assert_eq!(r.log_end_offset, 15);
}

#[test]
fn max_bytes_smaller_than_first_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), LogConfig::default());
    let first = append(&mut log, 10, 0);
    append(&mut log, 10, 0);
    let r = log.read(0, 10, true).unwrap();
    assert_eq!(
        r.data.len() as u64,
        first.bytes,
        "exactly one whole batch (KIP-74)"
    );
    assert_eq!(parse_batches(&r.data).unwrap().len(), 1);
    let r = log.read(0, 10, false).unwrap();
    assert!(r.data.is_empty());
    assert_eq!(r.first_batch_offset, None);
    // Enough for one batch but not two.
    let r = log.read(0, first.bytes + 5, false).unwrap();
    assert_eq!(parse_batches(&r.data).unwrap().len(), 1);
}

#[test]
fn offset_out_of_range() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), small_config(1 << 20));
    append(&mut log, 5, 0);
    append(&mut log, 5, 0);
    assert!(log.read(10, 100, true).unwrap().data.is_empty());
    assert!(matches!(
        log.read(11, 100, true),
        Err(LogError::OffsetOutOfRange {
            offset: 11,
            log_end_offset: 10,
            ..
        })
    ));
    assert!(matches!(
        log.read(-1, 100, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records_before(7).unwrap(), 7);
    let err = log.read(6, 100, true).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::OffsetOutOfRange {
                log_start_offset: 7,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("out of range"));
    // Reading at the new start returns the batch containing it.
    assert_eq!(log.read(7, 100, true).unwrap().first_batch_offset, Some(5));
    assert!(matches!(
        log.delete_records_before(11),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn read_up_to_stops_at_max_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), LogConfig::default());
    for _ in 0..3 {
        append(&mut log, 2, 0);
    }
    let r = log.read_up_to(0, 1 << 20, true, Some(4)).unwrap();
    let recs = decode_records(&r.data);
    assert_eq!(
        recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
}

#[test]
fn rolls_by_segment_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), small_config(400));
    let size = simple_batch(0, 0, 3).len() as u64;
    let per_segment = 400 / size;
    for _ in 0..(per_segment * 3) {
        append(&mut log, 3, 0);
    }
    assert_eq!(log.segment_count(), 3);
    let bases = log.segment_base_offsets();
    assert_eq!(
        bases,
        vec![0, 3 * per_segment as i64, 6 * per_segment as i64]
    );
    assert_eq!(read_all(&log, 0).len() as i64, log.log_end_offset());
    // A roll makes the previous segments durable.
    assert_eq!(log.recovery_point(), bases[2]);
}

#[test]
fn rolls_by_segment_ms() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = open(tmp.path(), cfg);
    let mut b = simple_batch(0, 10_000, 1);
    log.append(&mut b, 10_000).unwrap();
    let mut b = simple_batch(0, 10_500, 1);
    log.append(&mut b, 10_500).unwrap();
    assert_eq!(log.segment_count(), 1);
    let mut b = simple_batch(0, 11_001, 1);
    log.append(&mut b, 11_001).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn old_record_timestamps_do_not_roll_a_segment_per_batch() {
    // Kafka's time rule compares record timestamps, not the wall clock: replaying data
    // stamped long ago must not create one segment per append.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = open(tmp.path(), cfg);
    let now = 1_800_000_000_000;
    for ts in [1_000, 1_200, 1_900] {
        let mut b = simple_batch(0, ts, 1);
        log.append(&mut b, now).unwrap();
    }
    assert_eq!(log.segment_base_offsets(), vec![0]);
    let mut b = simple_batch(0, 2_001, 1);
    log.append(&mut b, now).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 3]);
}

#[test]
fn rejects_oversized_and_invalid_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        max_message_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = open(tmp.path(), cfg);
    let mut big = simple_batch(0, 0, 20);
    assert!(big.len() > 200);
    let err = log.append(&mut big, 0).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Rejected {
                source: ValidationError::TooLarge { max: 200, .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("max.message.bytes"));
    let mut bad = simple_batch(0, 0, 1);
    bad[16] = 1;
    let err = log.append(&mut bad, 0).unwrap_err();
    assert!(
        matches!(
            &err,
            LogError::Rejected {
                source: ValidationError::Records(RecordError::Batch(
                    BatchError::UnsupportedMagic { .. }
                )),
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        log.append(&mut [], 0),
        Err(LogError::Rejected {
            source: ValidationError::Empty,
            ..
        })
    ));
    assert_eq!(log.log_end_offset(), 0, "nothing written by failed appends");
}

#[test]
fn log_append_time_rewrites_max_timestamp_and_keeps_crc_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        message_timestamp_type: MessageTimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(tmp.path(), cfg);
    let mut b = simple_batch(0, 5, 3);
    let info = log.append(&mut b, 777_000).unwrap();
    assert_eq!(info.log_append_time, 777_000);
    assert_eq!(info.max_timestamp, 777_000);
    let r = log.read(0, 1 << 20, true).unwrap();
    parse_batches(&r.data).expect("CRC still valid after LogAppendTime");
    let h = BatchHeader::new(&r.data).unwrap();
    assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(h.max_timestamp(), 777_000);
    assert_eq!(h.base_timestamp(), 5, "records keep their own timestamps");
    assert_eq!(
        log.offset_for_timestamp(700_000).unwrap(),
        Some((0, 777_000))
    );
}

#[test]
fn create_time_append_info() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), LogConfig::default());
    append(&mut log, 2, 50);
    let mut buf = simple_batch(0, 500, 3);
    buf.extend(simple_batch(0, 100, 2));
    let info = log.append(&mut buf, 1).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (2, 6));
    assert_eq!(info.log_append_time, -1);
    assert_eq!(info.max_timestamp, 502);
    assert_eq!(info.offset_of_max_timestamp, 4);
    assert_eq!(info.record_count, 5);
    assert_eq!(info.bytes, buf.len() as u64);
    // The caller's buffer holds the stored bytes, with assigned offsets.
    assert_eq!(parse_batches(&buf).unwrap()[1].base_offset, 5);
}

#[test]
fn offset_for_timestamp_and_max_timestamp() {
    let tmp = tempfile::tempdir().unwrap();
    // Small segments and index interval: lookups go through both indexes.
    let mut log = open(tmp.path(), small_config(600));
    // Batch i: 2 records with timestamps 1000*i, 1000*i+1; one out-of-order batch.
    for i in 1..=20 {
        append(&mut log, 2, 1000 * i);
    }
    append(&mut log, 2, 500); // offsets 40,41: old timestamps
    assert!(log.segment_count() > 2);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1001)));
    assert_eq!(log.offset_for_timestamp(1001).unwrap(), Some((0, 1001)));
    assert_eq!(log.offset_for_timestamp(1002).unwrap(), Some((2, 2001)));
    assert_eq!(
        log.offset_for_timestamp(15_500).unwrap(),
        Some((30, 16_001))
    );
    assert_eq!(
        log.offset_for_timestamp(20_001).unwrap(),
        Some((38, 20_001))
    );
    assert_eq!(log.offset_for_timestamp(20_002).unwrap(), None);
    assert_eq!(log.max_timestamp_offset(), Some((39, 20_001)));
    // Survives a reopen (stats rebuilt from indexes and header walks).
    let cfg = log.config().clone();
    log.close().unwrap();
    let log = Log::open_clean(tmp.path(), cfg, 0).unwrap();
    assert_eq!(
        log.offset_for_timestamp(15_500).unwrap(),
        Some((30, 16_001))
    );
    assert_eq!(log.max_timestamp_offset(), Some((39, 20_001)));
    // Below the log start offset the answer is clamped to it.
    let mut log = log;
    log.delete_records_before(31).unwrap();
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((31, 16_001)));
}

#[test]
fn retention_by_time_never_deletes_active_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = small_config(300);
    cfg.retention_ms = Some(10_000);
    let mut log = open(tmp.path(), cfg);
    for i in 0..12 {
        append(&mut log, 3, 1000 + i);
    }
    let segments = log.segment_count();
    assert!(segments >= 3);
    assert_eq!(
        log.apply_retention(5_000).unwrap(),
        0,
        "nothing old enough yet"
    );
    let deleted = log.apply_retention(1_000_000).unwrap();
    assert_eq!(deleted, segments - 1);
    assert_eq!(log.segment_count(), 1);
    let active_base = log.segment_base_offsets()[0];
    assert_eq!(log.log_start_offset(), active_base);
    assert_eq!(log.log_end_offset(), 36);
    assert_eq!(read_all(&log, active_base).len() as i64, 36 - active_base);
    assert_eq!(log.apply_retention(2_000_000).unwrap(), 0);
    // The new start offset survives a restart.
    let cfg = log.config().clone();
    log.close().unwrap();
    let log = Log::open(tmp.path(), cfg, 0, 0).unwrap();
    assert_eq!(log.log_start_offset(), active_base);
}

#[test]
fn compact_only_logs_are_not_trimmed_by_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = small_config(300);
    cfg.retention_ms = Some(10_000);
    cfg.retention_bytes = Some(1);
    cfg.cleanup_policy = ironlog_storage::CleanupPolicy::Compact;
    let mut log = open(tmp.path(), cfg.clone());
    for i in 0..12 {
        append(&mut log, 3, 1000 + i);
    }
    assert!(log.segment_count() >= 3);
    assert_eq!(log.apply_retention(1_000_000).unwrap(), 0);
    assert_eq!(log.log_start_offset(), 0);
    // compact,delete does apply retention.
    cfg.cleanup_policy = ironlog_storage::CleanupPolicy::CompactDelete;
    log.set_config(cfg);
    assert!(log.apply_retention(1_000_000).unwrap() > 0);
}

#[test]
fn retention_by_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = small_config(300);
    let batch = simple_batch(0, 0, 3).len() as u64;
    let mut log = open(tmp.path(), cfg.clone());
    for _ in 0..12 {
        append(&mut log, 3, 0);
    }
    let before = log.segment_count();
    cfg.retention_bytes = Some(batch * 5);
    log.set_config(cfg.clone());
    let deleted = log.apply_retention(0).unwrap();
    assert!(deleted >= 1 && deleted < before);
    assert!(
        log.size_bytes() <= batch * 5 + 300,
        "within one segment of the limit"
    );
    assert!(log.size_bytes() > batch * 5 - 300);
    assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
    cfg.retention_bytes = Some(0);
    log.set_config(cfg);
    log.apply_retention(0).unwrap();
    assert_eq!(
        log.segment_count(),
        1,
        "active segment is kept even over the limit"
    );
    assert!(log.size_bytes() > 0);
}

#[test]
fn delete_records_persists_and_removes_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = small_config(300);
    let mut log = open(tmp.path(), cfg.clone());
    for _ in 0..10 {
        append(&mut log, 3, 0);
    }
    let segs = log.segment_count();
    let bases = log.segment_base_offsets();
    log.delete_records_before(bases[2] + 1).unwrap();
    assert_eq!(log.segment_count(), segs - 2);
    assert_eq!(log.log_start_offset(), bases[2] + 1);
    log.close().unwrap();
    let log = Log::open(tmp.path(), cfg, 0, 0).unwrap();
    assert_eq!(log.log_start_offset(), bases[2] + 1);
    let recs = read_all(&log, bases[2] + 1);
    assert_eq!(recs.first().unwrap().offset, bases[2] + 1);
    assert_eq!(recs.len() as i64, 30 - bases[2] - 1);
}

#[test]
fn truncate_to_is_batch_granular_and_appends_continue() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), small_config(300));
    for _ in 0..10 {
        append(&mut log, 3, 0);
    }
    assert_eq!(
        log.truncate_to(13).unwrap(),
        12,
        "batch 12..14 removed whole"
    );
    assert_eq!(log.log_end_offset(), 12);
    let info = append(&mut log, 2, 0);
    assert_eq!(info.first_offset, 12);
    let recs = read_all(&log, 0);
    assert_eq!(recs.len(), 14);
    assert!(recs.iter().enumerate().all(|(i, r)| r.offset == i as i64));
    assert_eq!(log.truncate_to(0).unwrap(), 0);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(append(&mut log, 1, 0).first_offset, 0);
}

#[test]
fn write_behind_drops_cached_pages_without_losing_records() {
    // A one-page window over 16 KiB segments: every append past the first pages hands
    // ranges of the active and the rolled segments to the kernel. The data must read back
    // whole and in order (from disk or cache), across rolls and a reopen.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        write_behind_bytes: 4096,
        ..small_config(16 << 10)
    };
    let mut log = open(tmp.path(), cfg.clone());
    for i in 0..1000 {
        append(&mut log, 5, i);
    }
    assert!(log.segment_count() > 3, "{} segments", log.segment_count());
    let records = read_all(&log, 0);
    assert_eq!(records.len(), 5000);
    assert!(records
        .iter()
        .enumerate()
        .all(|(i, r)| r.offset == i as i64));
    drop(log);
    let log = open(tmp.path(), cfg);
    assert_eq!(read_all(&log, 0).len(), 5000);
}
