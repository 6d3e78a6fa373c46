//! One batch through the cleaner: which of its records stay, and the bytes that carry them.
//!
//! A pure function of the batch, the offset map and the clock ([`filter_batch`]), so the
//! rules can be tested without a log. Kafka's cleaner (`MemoryRecords.filterTo`) is the
//! model:
//!
//! * a record stays unless a later record of its key is in the offset map, or it is a
//!   tombstone (key, null value) whose batch's delete horizon has passed;
//! * a batch whose records all stay, and that needs no delete horizon, is copied byte
//!   for byte;
//! * a batch that lost records is rewritten with the ones that stay, **in its codec**:
//!   each record keeps its offset delta, timestamp, key, value and headers; the header
//!   keeps baseOffset, lastOffsetDelta (so the producer's last sequence survives),
//!   partitionLeaderEpoch, producer id, epoch and base sequence; recordsCount,
//!   maxTimestamp (recomputed for CreateTime), batchLength and the CRC are new;
//! * the first time a batch holding a tombstone is written, it gets a delete horizon
//!   (KIP-534): attribute bit 6 set, baseTimestamp = now + `delete.retention.ms`, the
//!   records' timestamp deltas re-encoded against it. Its tombstones go in the first pass
//!   after the horizon, so `delete.retention.ms` counts from when the cleaner first saw
//!   them, never from a producer's (possibly old) timestamp;
//! * a batch that lost every record is dropped, unless it is its producer's last batch in
//!   the section: then its header stays with no records (as Kafka keeps it), so the
//!   producer's sequence and epoch are still in the log;
//! * control and transactional batches, and batches whose records do not decode, are
//!   kept whole.
//!
//! Memory: the records of one batch (decompressed under the decoder's cap) and its
//! rewritten section, nothing more.

use ironlog_wire::batch::{self, BatchHeader, Compression, RewrittenFields, TimestampType};
use ironlog_wire::encode::compress;
use ironlog_wire::records::{Record, RecordDecoder};

use super::offset_map::OffsetMap;

/// What decides a record's fate besides the record itself.
pub(crate) struct Rules<'a> {
    pub map: &'a OffsetMap,
    pub now_ms: i64,
    pub delete_retention_ms: i64,
}

/// What [`filter_batch`] did with one batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Filtered {
    pub records_kept: u64,
    pub records_removed: u64,
    /// Written as it was.
    pub copied: bool,
    /// The delete horizon of the tombstones the written batch holds.
    pub tombstone_horizon: Option<i64>,
    /// Its records did not decode: kept whole (and worth a warning).
    pub undecodable: bool,
}

/// Appends to `out` what compaction keeps of `batch` (one whole stored batch, at byte
/// `position` of its segment; see the module docs for the rules). `last_of_producer`
/// says whether no later batch of the same producer is in the cleaned section.
pub(crate) fn filter_batch(
    batch: &[u8],
    position: usize,
    decoder: &mut RecordDecoder,
    rules: &Rules<'_>,
    last_of_producer: bool,
    out: &mut Vec<u8>,
) -> Filtered {
    let copy = |out: &mut Vec<u8>, undecodable: bool| {
        out.extend_from_slice(batch);
        Filtered {
            copied: true,
            undecodable,
            ..Filtered::default()
        }
    };
    let Some(header) = BatchHeader::new(batch) else {
        return copy(out, true);
    };
    if header.is_control() || header.is_transactional() {
        return copy(out, false);
    }
    let Some(codec) = header.compression() else {
        return copy(out, true);
    };
    let horizon = header.delete_horizon_ms();
    let tombstones_expired = horizon.is_some_and(|h| rules.now_ms >= h);
    let Ok(records) = decoder.records(batch, position) else {
        return copy(out, true);
    };
    let mut kept: Vec<Record<'_>> = Vec::new();
    let mut removed = 0u64;
    for record in records {
        let Ok(record) = record else {
            return copy(out, true);
        };
        let stays = match record.key {
            None => true,
            Some(key) => {
                let superseded = rules.map.latest(key).is_some_and(|o| o > record.offset);
                let expired = record.value.is_none() && tombstones_expired;
                !superseded && !expired
            }
        };
        if stays {
            kept.push(record);
        } else {
            removed += 1;
        }
    }
    let holds_tombstone = kept.iter().any(|r| r.key.is_some() && r.value.is_none());
    let new_horizon = horizon.or_else(|| {
        holds_tombstone.then(|| rules.now_ms.saturating_add(rules.delete_retention_ms))
    });
    let mut result = Filtered {
        records_kept: kept.len() as u64,
        records_removed: removed,
        tombstone_horizon: new_horizon.filter(|_| holds_tombstone),
        ..Filtered::default()
    };
    if removed == 0 && new_horizon == horizon {
        out.extend_from_slice(batch);
        result.copied = true;
        return result;
    }
    if kept.is_empty() {
        if last_of_producer && header.producer_id() >= 0 {
            let fields = RewrittenFields {
                attributes: header.attributes() & !batch::COMPRESSION_MASK,
                base_timestamp: header.base_timestamp(),
                max_timestamp: header.max_timestamp(),
                records_count: 0,
            };
            batch::write_rewritten(batch, &fields, &[], out);
        }
        return result;
    }

    let old_base = header.base_timestamp();
    let mut attributes = header.attributes();
    let base_timestamp = match (horizon, new_horizon) {
        (None, Some(h)) => {
            attributes |= batch::DELETE_HORIZON_BIT;
            h
        }
        _ => old_base,
    };
    // A record's own timestamp is baseTimestamp + delta whatever the batch's timestamp
    // type (a LogAppendTime batch reports maxTimestamp for all of them instead).
    let stored_timestamp = |r: &Record<'_>| old_base.wrapping_add(r.timestamp_delta);
    let mut section = Vec::new();
    for r in &kept {
        if base_timestamp == old_base {
            section.extend_from_slice(r.encoded);
        } else {
            r.encode_with_timestamp_delta(
                stored_timestamp(r).wrapping_sub(base_timestamp),
                &mut section,
            );
        }
    }
    let max_timestamp = match header.timestamp_type() {
        TimestampType::LogAppendTime => header.max_timestamp(),
        TimestampType::CreateTime => kept.iter().map(stored_timestamp).max().unwrap_or(-1),
    };
    let fields = RewrittenFields {
        attributes,
        base_timestamp,
        max_timestamp,
        records_count: kept.len() as i32,
    };
    if codec == Compression::None {
        batch::write_rewritten(batch, &fields, &section, out);
    } else {
        batch::write_rewritten(batch, &fields, &compress(codec, &section), out);
    }
    result
}
