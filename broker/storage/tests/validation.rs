//! The LogValidator through `Log::append`: every batch a producer can get wrong either gets
//! its Kafka error with nothing appended, or is corrected as Kafka corrects it; afterwards
//! the log holds exactly the acknowledged records.

mod common;

use common::read_all;
use ironlog_storage::batch::testing::{
    batch_with_fields, build_records_batch, HeaderFields, RecordSpec, CODECS,
};
use ironlog_storage::batch::{
    self, parse_batches, BatchError, BatchHeader, Compression, HEADER_SIZE,
};
use ironlog_storage::validator::MAX_REPORTED_VIOLATIONS;
use ironlog_storage::{
    CleanupPolicy, Log, LogConfig, LogError, MessageTimestampType, RecordError, RecordViolation,
    ValidationError, ViolationKind,
};

/// Broker time in these tests.
const NOW: i64 = 1_700_000_000_000;

fn open(config: LogConfig) -> (tempfile::TempDir, Log) {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), config, 0, NOW).unwrap();
    (tmp, log)
}

fn spec(i: usize, ts_delta: i64, key: Option<&str>) -> RecordSpec {
    RecordSpec {
        timestamp_delta: ts_delta,
        offset_delta: i as i32,
        key: key.map(|k| k.as_bytes().to_vec()),
        value: Some(format!("value-{i}").into_bytes()),
        headers: Vec::new(),
    }
}

/// `n` keyed records with timestamps NOW+0..n.
fn specs(n: usize) -> Vec<RecordSpec> {
    (0..n)
        .map(|i| spec(i, i as i64, Some(&format!("k{i}"))))
        .collect()
}

fn fields(records: &[RecordSpec], codec: Compression) -> HeaderFields {
    HeaderFields {
        base_offset: 0,
        base_timestamp: NOW,
        max_timestamp: NOW + records.iter().map(|r| r.timestamp_delta).max().unwrap_or(0),
        last_offset_delta: records.len() as i32 - 1,
        records_count: records.len() as i32,
        compression: codec,
    }
}

fn rejected(result: Result<ironlog_storage::AppendInfo, LogError>) -> ValidationError {
    match result {
        Err(LogError::Rejected { source, .. }) => source,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// The record violations of an [`ValidationError::InvalidRecords`]: (total, listed).
fn violations(err: &ValidationError) -> (usize, &[RecordViolation]) {
    match err {
        ValidationError::InvalidRecords {
            total, violations, ..
        } => (*total, violations),
        other => panic!("expected record violations, got {other:?}"),
    }
}

/// Appends a good batch of `n` records so that failures have something to leave intact.
fn append_good(log: &mut Log, n: usize) -> i64 {
    let mut b = build_records_batch(0, NOW, Compression::None, &specs(n));
    log.append(&mut b, NOW).unwrap().last_offset
}

/// The log is exactly the `n` records of `append_good(n)`, and the next append lands at `n`.
fn assert_only_good(log: &mut Log, n: usize) {
    let records = read_all(log, 0);
    assert_eq!(records.len(), n, "records in the log: {records:?}");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
    }
    assert_eq!(log.log_end_offset(), n as i64);
}

#[test]
fn max_timestamp_minus_one_is_recomputed_and_indexed_past_the_index_interval() {
    // Sarama 1.22 leaves maxTimestamp at -1; every batch is one small record, and the
    // index interval is passed again and again.
    let (_tmp, mut log) = open(LogConfig {
        index_interval_bytes: 200,
        ..LogConfig::default()
    });
    for i in 0..200i64 {
        let records = [spec(0, 0, Some("k"))];
        let mut f = fields(&records, Compression::Snappy);
        f.base_timestamp = NOW + i * 10;
        f.max_timestamp = -1;
        let mut b = batch_with_fields(&f, &records);
        let info = log.append(&mut b, NOW).unwrap();
        assert_eq!((info.first_offset, info.max_timestamp), (i, NOW + i * 10));
        assert_eq!(info.offset_of_max_timestamp, i);
    }
    let data = log.read(0, u64::MAX, true).unwrap().data;
    let batches = parse_batches(&data).expect("CRCs valid after the rewrite");
    assert_eq!(batches.len(), 200);
    for (i, b) in batches.iter().enumerate() {
        assert_eq!(b.max_timestamp, NOW + i as i64 * 10, "batch {i}");
    }
    // The time index names real offsets: a lookup lands on the right batch.
    for i in [0i64, 57, 120, 199] {
        let (offset, ts) = log.offset_for_timestamp(NOW + i * 10 - 5).unwrap().unwrap();
        assert_eq!((offset, ts), (i, NOW + i * 10));
    }
    assert_eq!(log.max_timestamp_offset(), Some((199, NOW + 1990)));
}

#[test]
fn a_wrong_max_timestamp_is_corrected_with_a_new_crc_for_every_codec() {
    for codec in CODECS {
        for claimed in [-1, 0, NOW, NOW + 1_000_000, i64::MAX] {
            let (_tmp, mut log) = open(LogConfig::default());
            // Timestamps out of order: the max is record 1's.
            let records = [
                spec(0, 5, Some("a")),
                spec(1, 30, Some("b")),
                spec(2, 7, Some("c")),
            ];
            let mut f = fields(&records, codec);
            f.max_timestamp = claimed;
            let sent = batch_with_fields(&f, &records);
            let mut b = sent.clone();
            let info = log.append(&mut b, NOW).unwrap();
            assert_eq!(info.max_timestamp, NOW + 30, "{codec} claimed {claimed}");
            assert_eq!(
                info.offset_of_max_timestamp, 1,
                "{codec}: record 1 holds it"
            );
            let stored = log.read(0, u64::MAX, true).unwrap().data;
            let h = BatchHeader::new(&stored).unwrap();
            assert_eq!(h.max_timestamp(), NOW + 30, "{codec} claimed {claimed}");
            parse_batches(&stored).expect("valid CRC");
            // Compressed records were not re-encoded: the section is byte for byte the same.
            assert_eq!(stored[HEADER_SIZE..], sent[HEADER_SIZE..], "{codec}");
        }
    }
}

#[test]
fn a_well_formed_batch_is_stored_as_sent_apart_from_its_base_offset() {
    for codec in CODECS {
        let (_tmp, mut log) = open(LogConfig::default());
        append_good(&mut log, 2);
        let sent = build_records_batch(0, NOW, codec, &specs(4));
        let mut b = sent.clone();
        log.append(&mut b, NOW).unwrap();
        let stored = log.read(2, u64::MAX, true).unwrap().data;
        assert_eq!(parse_batches(&stored).unwrap().len(), 1);
        assert_eq!(BatchHeader::new(&stored).unwrap().base_offset(), 2);
        // Same CRC and bytes from the partition leader epoch on.
        assert_eq!(stored[12..], sent[12..], "{codec}: no header rewritten");
    }
}

#[test]
fn a_count_that_disagrees_with_last_offset_delta_is_an_invalid_record() {
    let (_tmp, mut log) = open(LogConfig::default());
    append_good(&mut log, 3);
    let records = specs(3);
    for (count, delta) in [(3, 5), (3, 1), (0, -1), (4, 3)] {
        let mut f = fields(&records, Compression::None);
        f.records_count = count;
        f.last_offset_delta = delta;
        let mut b = batch_with_fields(&f, &records);
        let err = rejected(log.append(&mut b, NOW));
        let ok = match (count, delta) {
            // A negative lastOffsetDelta is a malformed header.
            (0, -1) => matches!(
                err,
                ValidationError::Records(RecordError::Batch(
                    BatchError::InvalidLastOffsetDelta { .. }
                ))
            ),
            // Count and delta agree, but only 3 records are there.
            (4, 3) => matches!(
                err,
                ValidationError::Records(RecordError::MissingRecords { found: 3, .. })
            ),
            _ => {
                matches!(&err, ValidationError::InvalidBatch { reason, .. } if reason.contains("lastOffsetDelta"))
            }
        };
        assert!(ok, "count {count}, delta {delta}: {err:?}");
    }
    assert_only_good(&mut log, 3);
}

#[test]
fn gapped_offset_deltas_name_each_offending_record() {
    let (_tmp, mut log) = open(LogConfig::default());
    append_good(&mut log, 2);
    let mut records = specs(4);
    records[2].offset_delta = 3;
    records[3].offset_delta = 4;
    let mut f = fields(&records, Compression::None);
    f.last_offset_delta = 3;
    let mut b = batch_with_fields(&f, &records);
    let err = rejected(log.append(&mut b, NOW));
    let (total, violations) = violations(&err);
    assert_eq!(total, 2);
    let indexes: Vec<i32> = violations.iter().map(|v| v.index).collect();
    assert_eq!(indexes, [2, 3]);
    assert!(violations.iter().all(|v| v.kind == ViolationKind::Record));
    assert!(violations[0].message.contains("offset delta 3"), "{err}");
    assert!(!err.is_invalid_timestamp());
    assert_only_good(&mut log, 2);
}

#[test]
fn timestamps_outside_the_before_and_after_windows_are_invalid_timestamps() {
    let (_tmp, mut log) = open(LogConfig {
        message_timestamp_before_max_ms: 60_000,
        ..LogConfig::default()
    });
    append_good(&mut log, 1);
    // Record 1 is two minutes old (before.max.ms is one minute), record 3 two hours ahead
    // (after.max.ms defaults to one hour); records 0 and 2 are fine.
    let records = [
        spec(0, 0, Some("a")),
        spec(1, -120_000, Some("b")),
        spec(2, 59_000, Some("c")),
        spec(3, 2 * 3_600_000, Some("d")),
    ];
    let mut b = batch_with_fields(&fields(&records, Compression::Lz4), &records);
    let err = rejected(log.append(&mut b, NOW));
    assert!(err.is_invalid_timestamp(), "{err:?}");
    let (_, violations) = violations(&err);
    let indexes: Vec<(i32, ViolationKind)> = violations.iter().map(|v| (v.index, v.kind)).collect();
    assert_eq!(
        indexes,
        [(1, ViolationKind::Timestamp), (3, ViolationKind::Timestamp)]
    );
    assert!(
        violations[0].message.contains(&(NOW - 60_000).to_string()),
        "{}",
        violations[0].message
    );
    assert_only_good(&mut log, 1);

    // No timestamp (-1) is not checked; the batch's maxTimestamp is then -1 as well.
    let mut records = [spec(0, 0, Some("k1"))];
    let mut f = fields(&records, Compression::None);
    f.base_timestamp = -1;
    records[0].timestamp_delta = 0;
    let mut b = batch_with_fields(&f, &records);
    let info = log.append(&mut b, NOW).unwrap();
    assert_eq!((info.max_timestamp, info.offset_of_max_timestamp), (-1, -1));
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn log_append_time_topics_take_any_timestamp_and_stamp_the_broker_time() {
    let (_tmp, mut log) = open(LogConfig {
        message_timestamp_type: MessageTimestampType::LogAppendTime,
        message_timestamp_before_max_ms: 0,
        message_timestamp_after_max_ms: 0,
        ..LogConfig::default()
    });
    let records = [
        spec(0, -5_000_000, Some("a")),
        spec(1, 9_000_000, Some("b")),
    ];
    let mut b = batch_with_fields(&fields(&records, Compression::Gzip), &records);
    let info = log.append(&mut b, NOW).unwrap();
    assert_eq!(
        (
            info.log_append_time,
            info.max_timestamp,
            info.offset_of_max_timestamp
        ),
        (NOW, NOW, 1)
    );
}

#[test]
fn a_producer_may_not_set_log_append_time() {
    let (_tmp, mut log) = open(LogConfig::default());
    let mut b = build_records_batch(0, NOW, Compression::None, &specs(2));
    batch::set_log_append_time(&mut b, NOW);
    let err = rejected(log.append(&mut b, NOW));
    assert!(
        matches!(err, ValidationError::LogAppendTimeFromProducer { .. }),
        "{err:?}"
    );
    assert!(err.is_invalid_timestamp());
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn compacted_topics_refuse_records_without_keys() {
    for policy in [CleanupPolicy::Compact, CleanupPolicy::CompactDelete] {
        let (_tmp, mut log) = open(LogConfig {
            cleanup_policy: policy,
            ..LogConfig::default()
        });
        append_good(&mut log, 2);
        let records = [
            spec(0, 0, Some("a")),
            spec(1, 0, None),
            spec(2, 0, Some("c")),
        ];
        let mut b = batch_with_fields(&fields(&records, Compression::Zstd), &records);
        let err = rejected(log.append(&mut b, NOW));
        let (_, violations) = violations(&err);
        assert_eq!(violations.len(), 1);
        assert_eq!(
            (violations[0].index, violations[0].kind),
            (1, ViolationKind::Record)
        );
        assert!(violations[0].message.contains("key"));
        assert_only_good(&mut log, 2);
    }
    // A delete-only topic takes them.
    let (_tmp, mut log) = open(LogConfig::default());
    let records = [spec(0, 0, None)];
    let mut b = batch_with_fields(&fields(&records, Compression::None), &records);
    log.append(&mut b, NOW).unwrap();
}

#[test]
fn control_batches_and_unsequenced_idempotent_batches_are_refused() {
    let (_tmp, mut log) = open(LogConfig::default());
    let good = build_records_batch(0, NOW, Compression::None, &specs(1));
    let mut control = good.clone();
    control[22] |= 0x20; // attributes, low byte: control bit
    batch::update_crc(&mut control);
    let mut unsequenced = good.clone();
    unsequenced[43..51].copy_from_slice(&7i64.to_be_bytes()); // producer id 7
    unsequenced[53..57].copy_from_slice(&(-1i32).to_be_bytes()); // base sequence -1
    batch::update_crc(&mut unsequenced);
    for (name, mut b, needle) in [
        ("control", control, "control"),
        ("unsequenced", unsequenced, "sequence"),
    ] {
        let err = rejected(log.append(&mut b, NOW));
        let ValidationError::InvalidBatch { reason, .. } = &err else {
            panic!("{name}: {err:?}");
        };
        assert!(reason.contains(needle), "{name}: {reason}");
    }
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn one_bad_batch_refuses_the_whole_append() {
    let (_tmp, mut log) = open(LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..LogConfig::default()
    });
    append_good(&mut log, 1);
    let mut buf = build_records_batch(0, NOW, Compression::None, &specs(3));
    let keyless = [spec(0, 0, None)];
    buf.extend(batch_with_fields(
        &fields(&keyless, Compression::None),
        &keyless,
    ));
    let size_before = log.size_bytes();
    rejected(log.append(&mut buf, NOW));
    assert_eq!(
        log.size_bytes(),
        size_before,
        "not even the good first batch"
    );
    assert_only_good(&mut log, 1);
}

#[test]
fn violations_are_counted_in_full_but_listed_up_to_the_cap() {
    let (_tmp, mut log) = open(LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..LogConfig::default()
    });
    let n = MAX_REPORTED_VIOLATIONS + 50;
    let records: Vec<RecordSpec> = (0..n).map(|i| spec(i, 0, None)).collect();
    let mut b = batch_with_fields(&fields(&records, Compression::None), &records);
    let err = rejected(log.append(&mut b, NOW));
    let (total, violations) = violations(&err);
    assert_eq!((total, violations.len()), (n, MAX_REPORTED_VIOLATIONS));
    assert_eq!(
        violations.last().unwrap().index,
        MAX_REPORTED_VIOLATIONS as i32 - 1
    );
}
