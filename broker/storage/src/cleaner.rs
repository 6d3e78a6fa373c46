//! Log compaction (`cleanup.policy=compact`): keep the latest record per key.
//!
//! One pass of [`clean_log`]:
//! 1. Build the offset map: for every record of the *inactive* segments (the active one is
//!    never touched), key → offset of its latest record.
//! 2. Rewrite each inactive segment keeping a record only if it is the latest for its key;
//!    a tombstone (null value) that is latest is kept until its batch's max timestamp is
//!    older than `delete.retention.ms`, then removed too. Offsets never change: a kept
//!    record keeps its offset delta, a batch keeps its base offset and lastOffsetDelta
//!    (so producer state survives), and only recordsCount, batchLength and the CRC are
//!    rewritten. A batch left without records is dropped; a segment left empty is deleted.
//! 3. Swap each rewritten segment in with [`Log::replace_segment`] (crash-safe rename).
//!
//! Records are read with [`Records`], which trusts no count or
//! length in the bytes. A batch whose records do not decode is kept whole (and logged).
//!
//! Limits (documented, conservative): compressed batches, control batches and
//! transactional batches are kept whole, and their keys are not entered in the map, so
//! stale values that they would supersede are kept, never wrongly dropped. Records with a
//! null key are kept. The pass runs under the log's write lock (no concurrent append).

use std::collections::HashMap;

use crate::batch::{self, BatchHeader, Compression, HEADER_SIZE, LOG_OVERHEAD};
use crate::log::{Log, LogError};
use crate::records::{RecordError, Records};

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanerStats {
    pub segments_rewritten: usize,
    pub segments_deleted: usize,
    pub records_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// One record inside an uncompressed batch: its absolute offset, key, whether its value
/// is null, and its encoded bytes (length prefix included), to copy as they are.
struct RecordView<'a> {
    offset: i64,
    key: Option<&'a [u8]>,
    tombstone: bool,
    encoded: &'a [u8],
}

/// The records of one uncompressed batch. Decoding goes through [`Records`], which checks
/// every count and length against the bytes, so a stored batch claiming 2^31 records costs
/// nothing; the vector grows with the records actually present.
fn records(batch: &[u8], position: usize) -> Result<Vec<RecordView<'_>>, RecordError> {
    Records::uncompressed(batch, position)?
        .map(|r| {
            r.map(|r| RecordView {
                offset: r.offset,
                key: r.key,
                tombstone: r.value.is_none(),
                encoded: r.encoded,
            })
        })
        .collect()
}

/// Whether the cleaner looks inside this batch (see the module docs for why not always).
fn is_cleanable(h: &BatchHeader<'_>) -> bool {
    h.compression() == Some(Compression::None) && !h.is_control() && !h.is_transactional()
}

/// Compacts the inactive segments of `log`. `now_ms` and `delete_retention_ms` decide
/// when tombstones go.
///
/// # Errors
/// [`LogError`] from reading or swapping segments; segments swapped before the error stay
/// cleaned (each swap is atomic).
pub fn clean_log(
    log: &mut Log,
    now_ms: i64,
    delete_retention_ms: i64,
) -> Result<CleanerStats, LogError> {
    let mut stats = CleanerStats::default();
    let bases = log.segment_base_offsets();
    if bases.len() < 2 {
        return Ok(stats);
    }
    let inactive = &bases[..bases.len() - 1];
    // Whole inactive segments, oldest first (a read returns data from one segment only).
    let mut segments: Vec<(i64, bytes::Bytes)> = Vec::with_capacity(inactive.len());
    for &base in inactive {
        let from = base.max(log.log_start_offset());
        if from >= log.log_end_offset() {
            continue;
        }
        let data = log.read(from, u64::MAX, true)?.data;
        segments.push((base, data));
    }

    // 1. key → latest offset.
    let mut latest: HashMap<&[u8], i64> = HashMap::new();
    for (_, data) in &segments {
        for info in batch::parse_batches(data).unwrap_or_default() {
            let b = &data[info.range()];
            let Some(h) = BatchHeader::new(b) else {
                continue;
            };
            if !is_cleanable(&h) {
                continue;
            }
            match records(b, info.position) {
                Ok(recs) => {
                    for r in recs {
                        if let Some(k) = r.key {
                            latest.insert(k, r.offset);
                        }
                    }
                }
                // Only bytes stored before the produce path walked records can get here.
                Err(error) => tracing::warn!(
                    dir = %log.dir().display(),
                    base_offset = info.base_offset,
                    %error,
                    "compaction keeps a batch whose records do not decode as it is"
                ),
            }
        }
    }

    // 2. Rewrite.
    let mut rewritten = Vec::new();
    for (base, data) in &segments {
        let mut out = Vec::with_capacity(data.len());
        let mut removed = 0u64;
        for info in batch::parse_batches(data).unwrap_or_default() {
            let b = &data[info.range()];
            let Some(h) = BatchHeader::new(b) else {
                continue;
            };
            let recs = if is_cleanable(&h) {
                records(b, info.position).ok()
            } else {
                None
            };
            let Some(recs) = recs else {
                out.extend_from_slice(b);
                continue;
            };
            let tombstones_expired = now_ms.saturating_sub(h.max_timestamp()) > delete_retention_ms;
            let keep: Vec<&RecordView<'_>> = recs
                .iter()
                .filter(|r| match r.key {
                    None => true,
                    Some(k) => {
                        latest.get(k) == Some(&r.offset) && !(r.tombstone && tombstones_expired)
                    }
                })
                .collect();
            removed += (recs.len() - keep.len()) as u64;
            if keep.len() == recs.len() {
                out.extend_from_slice(b);
            } else if !keep.is_empty() {
                let start = out.len();
                out.extend_from_slice(&b[..HEADER_SIZE]);
                for r in &keep {
                    out.extend_from_slice(r.encoded);
                }
                let new = &mut out[start..];
                let length = (new.len() - LOG_OVERHEAD) as i32;
                new[8..12].copy_from_slice(&length.to_be_bytes());
                new[57..61].copy_from_slice(&(keep.len() as i32).to_be_bytes());
                batch::update_crc(new);
            }
        }
        if removed > 0 {
            stats.records_removed += removed;
            stats.bytes_before += data.len() as u64;
            stats.bytes_after += out.len() as u64;
            rewritten.push((*base, out));
        }
    }

    // 3. Swap in.
    for (base, data) in rewritten {
        if data.is_empty() {
            stats.segments_deleted += 1;
        } else {
            stats.segments_rewritten += 1;
        }
        log.replace_segment(base, &data)?;
    }
    if stats.records_removed > 0 {
        tracing::debug!(dir = %log.dir().display(), ?stats, "compacted log");
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::testing::{build_batch, decode_records, KeyValue};
    use crate::config::{CleanupPolicy, LogConfig};

    const DAY: i64 = 86_400_000;

    fn config() -> LogConfig {
        LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            ..LogConfig::default()
        }
    }

    fn append(log: &mut Log, ts: i64, records: &[(&str, Option<&str>)]) {
        let kv: Vec<KeyValue<'_>> = records
            .iter()
            .map(|(k, v)| (Some(k.as_bytes()), v.map(str::as_bytes)))
            .collect();
        let mut b = build_batch(0, ts, &kv);
        log.append(&mut b, ts).unwrap();
    }

    /// (offset, key, value) of every record from the log start.
    fn contents(log: &Log) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let r = log.read(offset, u64::MAX, true).unwrap();
            if r.data.is_empty() {
                break;
            }
            for rec in decode_records(&r.data) {
                if rec.offset >= offset {
                    out.push((
                        rec.offset,
                        String::from_utf8(rec.key.unwrap()).unwrap(),
                        rec.value.map(|v| String::from_utf8(v).unwrap()),
                    ));
                }
                offset = offset.max(rec.offset + 1);
            }
        }
        out
    }

    #[test]
    fn keeps_the_latest_value_per_key_across_segments_and_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config(), 0, 0).unwrap();
        // Segment 1: offsets 0..4; segment 2: 4..7; active: 7..9.
        append(
            &mut log,
            1000,
            &[
                ("a", Some("a1")),
                ("b", Some("b1")),
                ("a", Some("a2")),
                ("c", Some("c1")),
            ],
        );
        log.roll(0).unwrap();
        append(
            &mut log,
            1000,
            &[("b", Some("b2")), ("a", Some("a3")), ("d", Some("d1"))],
        );
        log.roll(0).unwrap();
        append(&mut log, 1000, &[("a", Some("a4")), ("b", Some("b3"))]);
        let stats = clean_log(&mut log, 2000, DAY).unwrap();
        // a1, b1, a2. The map covers inactive segments only (as Kafka's cleaner), so b2
        // stays until the segment holding b3 is no longer active.
        assert_eq!(stats.records_removed, 3, "{stats:?}");
        let want = vec![
            (3, "c".to_string(), Some("c1".to_string())),
            (4, "b".into(), Some("b2".into())),
            (5, "a".into(), Some("a3".into())),
            (6, "d".into(), Some("d1".into())),
            // The active segment is untouched, even though a3 is superseded by a4.
            (7, "a".into(), Some("a4".into())),
            (8, "b".into(), Some("b3".into())),
        ];
        assert_eq!(contents(&log), want);
        assert_eq!(log.log_end_offset(), 9, "offsets never change");
        // Idempotent.
        assert_eq!(clean_log(&mut log, 2000, DAY).unwrap().records_removed, 0);
        drop(log);
        let log = Log::open(dir.path(), config(), 0, 0).unwrap();
        assert!(
            log.recovery_report().repairs.is_empty(),
            "{:?}",
            log.recovery_report()
        );
        assert_eq!(contents(&log), want);
    }

    #[test]
    fn tombstones_go_after_delete_retention_and_emptied_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config(), 0, 0).unwrap();
        append(&mut log, 1000, &[("a", Some("a1")), ("b", Some("b1"))]);
        log.roll(0).unwrap();
        append(&mut log, 5000, &[("a", None)]);
        log.roll(0).unwrap();
        append(&mut log, 6000, &[("z", Some("z1"))]);
        clean_log(&mut log, 6000, 10_000).unwrap();
        assert_eq!(
            contents(&log),
            vec![
                (1, "b".to_string(), Some("b1".to_string())),
                (2, "a".into(), None),
                (3, "z".into(), Some("z1".into())),
            ],
            "a tombstone younger than delete.retention.ms stays"
        );
        let stats = clean_log(&mut log, 5000 + 10_001, 10_000).unwrap();
        assert_eq!(stats.segments_deleted, 1);
        assert_eq!(
            contents(&log),
            vec![
                (1, "b".to_string(), Some("b1".to_string())),
                (3, "z".into(), Some("z1".into()))
            ]
        );
        assert_eq!(log.segment_count(), 2);
    }

    /// Segment bytes from `offset`, as stored.
    fn segment_bytes(log: &Log, offset: i64) -> Vec<u8> {
        log.read(offset, u64::MAX, true).unwrap().data.to_vec()
    }

    #[test]
    fn batches_whose_records_lie_about_their_count_are_kept_whole() {
        use crate::batch::testing::set_records_count;
        for lie in [i32::MAX, 1] {
            let dir = tempfile::tempdir().unwrap();
            let mut log = Log::open(dir.path(), config(), 0, 0).unwrap();
            // Offsets 0-1: "a" then "b", but the header claims `lie` records (validation
            // refuses this; logs written by older brokers may hold such bytes).
            let mut b = build_batch(
                0,
                1000,
                &[(Some(b"a"), Some(b"a1")), (Some(b"b"), Some(b"b1"))],
            );
            set_records_count(&mut b, lie);
            let unchecked = crate::validator::ValidatedRecords::unchecked(&mut b);
            log.append_validated(unchecked, None, 1000).unwrap();
            log.roll(0).unwrap();
            append(
                &mut log,
                1000,
                &[("a", Some("a2")), ("c", Some("c1")), ("c", Some("c2"))],
            );
            log.roll(0).unwrap();
            append(&mut log, 1000, &[("z", Some("z1"))]);
            let first = segment_bytes(&log, 0);
            // The old decoder sized a vector by the claimed count (2^31 records: abort) or
            // rewrote the batch from the records it had parsed (claimed 1: "b1" lost).
            let stats = clean_log(&mut log, 2000, DAY).unwrap();
            assert_eq!(segment_bytes(&log, 0), first, "claimed {lie}: kept whole");
            assert_eq!(
                stats.records_removed, 1,
                "claimed {lie}: only c1 goes ({stats:?})"
            );
            assert_eq!(log.log_end_offset(), 6);
        }
    }

    #[test]
    fn a_single_segment_log_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config(), 0, 0).unwrap();
        append(&mut log, 1000, &[("a", Some("1")), ("a", Some("2"))]);
        assert_eq!(
            clean_log(&mut log, 2000, DAY).unwrap(),
            CleanerStats::default()
        );
        assert_eq!(contents(&log).len(), 2);
    }
}
