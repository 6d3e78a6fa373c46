//! Zero-copy view and validation of Kafka v2 record batches (magic 2).
//!
//! The log uses [`parse_batches`] on the append path and during recovery. Records
//! inside a batch are never decoded or re-encoded here (that is
//! [`records`](crate::records), which the produce path runs before the append): the
//! broker stores the client's bytes as they are and only patches a few header fields
//! in place (see the `set_*` helpers).
//!
//! # Header layout (61 bytes, big-endian)
//!
//! | offset | field                | type |
//! |-------:|----------------------|------|
//! | 0      | baseOffset           | i64  |
//! | 8      | batchLength          | i32 (bytes after this field) |
//! | 12     | partitionLeaderEpoch | i32  |
//! | 16     | magic                | i8 (2) |
//! | 17     | crc                  | u32, CRC-32C of bytes 21..end |
//! | 21     | attributes           | i16  |
//! | 23     | lastOffsetDelta      | i32  |
//! | 27     | baseTimestamp        | i64  |
//! | 35     | maxTimestamp         | i64  |
//! | 43     | producerId           | i64  |
//! | 51     | producerEpoch        | i16  |
//! | 53     | baseSequence         | i32  |
//! | 57     | recordsCount         | i32  |
//!
//! `baseOffset`, `batchLength` and `partitionLeaderEpoch` lie *before* the CRC
//! range, so the broker can rewrite the base offset and leader epoch without
//! touching the CRC. Changing attributes or timestamps (LogAppendTime) requires
//! recomputing it, which [`set_log_append_time`] does.

use thiserror::Error;

/// Size of the fixed v2 batch header.
pub const HEADER_SIZE: usize = 61;
/// Bytes before the `batchLength`-counted part: baseOffset + batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// Smallest legal `batchLength` (a header with no records).
pub const MIN_BATCH_LENGTH: i32 = (HEADER_SIZE - LOG_OVERHEAD) as i32;
/// The only message format this broker stores.
pub const CURRENT_MAGIC: i8 = 2;

const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const PARTITION_LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORDS_COUNT: usize = 57;

/// The codec bits of the attributes.
pub const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
/// Attribute bit 6 (KIP-534): set by the log cleaner on a batch holding tombstones, whose
/// baseTimestamp then holds the *delete horizon* (when the tombstones may go) and whose
/// records' timestamp deltas are relative to it. Producers never set it.
pub const DELETE_HORIZON_BIT: i16 = 0x40;

/// Why a buffer is not a sequence of valid v2 batches.
///
/// [`BatchError::Truncated`] means "the bytes stop early" (a torn write or a
/// short produce payload); every other variant means the bytes that are there
/// are wrong. Recovery reports the two differently; the server maps
/// [`BatchError::UnsupportedMagic`] to `UNSUPPORTED_FOR_MESSAGE_FORMAT` and the
/// rest to `CORRUPT_MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    /// The buffer ends before the batch does.
    #[error(
        "batch at byte {position} is truncated: needs {needed} bytes, only {available} remain"
    )]
    Truncated {
        position: usize,
        needed: usize,
        available: usize,
    },
    /// magic is not 2 (0/1 are the legacy message formats, which are not stored).
    #[error("batch at byte {position} has magic {magic}; only record batch format v2 (magic 2) is supported")]
    UnsupportedMagic { position: usize, magic: i8 },
    /// batchLength is smaller than a v2 header.
    #[error(
        "batch at byte {position} has invalid batchLength {length} (minimum {MIN_BATCH_LENGTH})"
    )]
    InvalidLength { position: usize, length: i32 },
    /// The stored CRC-32C does not match the bytes.
    #[error("batch at byte {position} fails its CRC check: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        position: usize,
        stored: u32,
        computed: u32,
    },
    /// recordsCount < 0.
    #[error("batch at byte {position} has negative recordsCount {count}")]
    InvalidRecordsCount { position: usize, count: i32 },
    /// lastOffsetDelta < 0.
    #[error("batch at byte {position} has negative lastOffsetDelta {delta}")]
    InvalidLastOffsetDelta { position: usize, delta: i32 },
    /// Compression codec outside 0..=4.
    #[error("batch at byte {position} uses unknown compression codec {codec}")]
    InvalidCompression { position: usize, codec: i16 },
}

impl BatchError {
    /// True for [`BatchError::Truncated`]: the data stops early rather than being wrong.
    pub fn is_truncated(&self) -> bool {
        matches!(self, BatchError::Truncated { .. })
    }

    /// True when the batch uses a legacy message format (magic 0 or 1) or an unknown one.
    pub fn is_unsupported_magic(&self) -> bool {
        matches!(self, BatchError::UnsupportedMagic { .. })
    }
}

/// Compression codec from attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl std::fmt::Display for Compression {
    /// Kafka's `compression.type` name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        })
    }
}

/// Timestamp type from attribute bit 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// Where one validated batch sits in a buffer, plus the header fields the log needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// Byte position of the batch in the buffer that was parsed.
    pub position: usize,
    /// Total size in bytes (`12 + batchLength`).
    pub size: usize,
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
    pub records_count: i32,
}

impl BatchInfo {
    /// `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Byte range of this batch in the parsed buffer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.position..self.position + self.size
    }
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Read-only view over the 61-byte header of a v2 batch. Construct with
/// [`BatchHeader::new`], which only checks the slice length.
#[derive(Clone, Copy)]
pub struct BatchHeader<'a> {
    bytes: &'a [u8],
}

impl std::fmt::Debug for BatchHeader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchHeader")
            .field("base_offset", &self.base_offset())
            .field("batch_length", &self.batch_length())
            .field("magic", &self.magic())
            .field("attributes", &self.attributes())
            .field("last_offset_delta", &self.last_offset_delta())
            .field("records_count", &self.records_count())
            .finish_non_exhaustive()
    }
}

impl<'a> BatchHeader<'a> {
    /// Returns `None` if `bytes` is shorter than [`HEADER_SIZE`]. No other check is made.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        (bytes.len() >= HEADER_SIZE).then_some(BatchHeader { bytes })
    }
    pub fn base_offset(&self) -> i64 {
        be_i64(self.bytes, BASE_OFFSET)
    }
    pub fn batch_length(&self) -> i32 {
        be_i32(self.bytes, BATCH_LENGTH)
    }
    /// `12 + batchLength`, or `None` if batchLength is negative.
    pub fn total_size(&self) -> Option<usize> {
        usize::try_from(self.batch_length())
            .ok()
            .map(|l| l + LOG_OVERHEAD)
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.bytes, PARTITION_LEADER_EPOCH)
    }
    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC] as i8
    }
    pub fn crc(&self) -> u32 {
        be_u32(self.bytes, CRC)
    }
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, ATTRIBUTES)
    }
    /// Compression codec, or `None` for codec numbers > 4.
    pub fn compression(&self) -> Option<Compression> {
        match self.attributes() & COMPRESSION_MASK {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }
    /// The delete horizon the cleaner stored in baseTimestamp ([`DELETE_HORIZON_BIT`]).
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes() & DELETE_HORIZON_BIT != 0).then(|| self.base_timestamp())
    }

    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, LAST_OFFSET_DELTA)
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + i64::from(self.last_offset_delta())
    }
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.bytes, BASE_TIMESTAMP)
    }
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, MAX_TIMESTAMP)
    }
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, PRODUCER_ID)
    }
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, PRODUCER_EPOCH)
    }
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, BASE_SEQUENCE)
    }
    pub fn records_count(&self) -> i32 {
        be_i32(self.bytes, RECORDS_COUNT)
    }
}

/// Checks the header fields of the batch at `buf[position..]` without touching
/// the CRC: magic, batchLength, that the whole batch is present, counts and
/// codec. Returns the batch's total size.
///
/// Recovery's cheap tail check uses this on headers read from disk.
pub fn check_header(buf: &[u8], position: usize, available: usize) -> Result<usize, BatchError> {
    if buf.len() < LOG_OVERHEAD {
        return Err(BatchError::Truncated {
            position,
            needed: LOG_OVERHEAD,
            available,
        });
    }
    let length = be_i32(buf, BATCH_LENGTH);
    // Magic sits at byte 16 in every message format, so a legacy v0/v1 message
    // is recognised before its (differently shaped) length is judged.
    if buf.len() > MAGIC && buf[MAGIC] as i8 != CURRENT_MAGIC {
        return Err(BatchError::UnsupportedMagic {
            position,
            magic: buf[MAGIC] as i8,
        });
    }
    if length < MIN_BATCH_LENGTH {
        return Err(BatchError::InvalidLength { position, length });
    }
    // length >= 49 > 0, so the cast is lossless.
    let size = length as usize + LOG_OVERHEAD;
    if available < size || buf.len() < HEADER_SIZE {
        return Err(BatchError::Truncated {
            position,
            needed: size,
            available,
        });
    }
    let header = BatchHeader { bytes: buf };
    if header.compression().is_none() {
        return Err(BatchError::InvalidCompression {
            position,
            codec: header.attributes() & COMPRESSION_MASK,
        });
    }
    let count = header.records_count();
    if count < 0 {
        return Err(BatchError::InvalidRecordsCount { position, count });
    }
    let delta = header.last_offset_delta();
    if delta < 0 {
        return Err(BatchError::InvalidLastOffsetDelta { position, delta });
    }
    Ok(size)
}

/// Validates one batch at the start of `buf` (header checks + CRC) and returns
/// its info. `position` is only used for error messages and `BatchInfo::position`.
pub fn validate_batch(buf: &[u8], position: usize) -> Result<BatchInfo, BatchError> {
    let size = check_header(buf, position, buf.len())?;
    let header = BatchHeader { bytes: buf };
    let stored = header.crc();
    let computed = crc32c::crc32c(&buf[ATTRIBUTES..size]);
    if stored != computed {
        return Err(BatchError::CrcMismatch {
            position,
            stored,
            computed,
        });
    }
    Ok(BatchInfo {
        position,
        size,
        base_offset: header.base_offset(),
        last_offset_delta: header.last_offset_delta(),
        max_timestamp: header.max_timestamp(),
        records_count: header.records_count(),
    })
}

/// Splits `buf` into v2 batches, validating each (magic, lengths, CRC, counts).
///
/// The whole buffer must be consumed: trailing bytes that do not form a whole
/// batch give [`BatchError::Truncated`]. An empty buffer yields an empty vector.
///
/// # Errors
/// The first [`BatchError`] found, with the byte position of the offending batch.
pub fn parse_batches(buf: &[u8]) -> Result<Vec<BatchInfo>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let info = validate_batch(&buf[pos..], pos)?;
        pos += info.size;
        out.push(info);
    }
    Ok(out)
}

/// Overwrites baseOffset. Outside the CRC range: the CRC stays valid.
///
/// # Panics
/// If `batch` is shorter than [`HEADER_SIZE`].
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Overwrites partitionLeaderEpoch. Outside the CRC range: the CRC stays valid.
///
/// # Panics
/// If `batch` is shorter than [`HEADER_SIZE`].
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Applies LogAppendTime as Kafka's `LogValidator` does: sets the
/// timestamp-type attribute bit and maxTimestamp to `append_time_ms`, leaves
/// baseTimestamp and the records' timestamp deltas alone (consumers use
/// maxTimestamp for every record of a LogAppendTime batch), and recomputes the
/// CRC over the whole batch. Records are not re-encoded.
///
/// # Panics
/// If `batch` is shorter than its header or than its own batchLength says;
/// call it only on batches that passed [`parse_batches`].
pub fn set_log_append_time(batch: &mut [u8], append_time_ms: i64) {
    let attrs = be_i16(batch, ATTRIBUTES) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&append_time_ms.to_be_bytes());
    update_crc(batch);
}

/// Overwrites maxTimestamp (CreateTime batches, whose header disagrees with its records,
/// as Kafka's `LogValidator` corrects it) and recomputes the CRC.
///
/// # Panics
/// As [`set_log_append_time`].
pub fn set_max_timestamp(batch: &mut [u8], max_timestamp: i64) {
    batch[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    update_crc(batch);
}

/// The header fields the log cleaner sets when it rewrites a batch with fewer records.
/// Everything else (baseOffset, lastOffsetDelta, partitionLeaderEpoch, producer id, epoch
/// and base sequence) is kept, as Kafka's cleaner keeps it: the batch's offsets and the
/// producer's last sequence survive compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewrittenFields {
    pub attributes: i16,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub records_count: i32,
}

/// Appends to `out` a batch made of `original`'s header with `fields` and `section` as its
/// (already compressed, if the attributes say so) records section, with a fresh CRC.
///
/// # Panics
/// If `original` is shorter than [`HEADER_SIZE`] or the batch would exceed 2 GiB.
pub fn write_rewritten(
    original: &[u8],
    fields: &RewrittenFields,
    section: &[u8],
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.extend_from_slice(&original[..HEADER_SIZE]);
    out.extend_from_slice(section);
    let b = &mut out[start..];
    let length = i32::try_from(b.len() - LOG_OVERHEAD).expect("a batch is below 2 GiB");
    b[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
    b[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&fields.attributes.to_be_bytes());
    b[BASE_TIMESTAMP..BASE_TIMESTAMP + 8].copy_from_slice(&fields.base_timestamp.to_be_bytes());
    b[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&fields.max_timestamp.to_be_bytes());
    b[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&fields.records_count.to_be_bytes());
    update_crc(b);
}

/// Recomputes and stores the CRC of a batch whose bytes after the CRC were changed.
///
/// # Panics
/// If `batch` is shorter than its batchLength says.
pub fn update_crc(batch: &mut [u8]) {
    let size = be_i32(batch, BATCH_LENGTH) as usize + LOG_OVERHEAD;
    let crc = crc32c::crc32c(&batch[ATTRIBUTES..size]);
    batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Builders and decoders of v2 batches (compressed or not, valid or patched), for tests
/// (this crate's and the server's). Enabled by the `test-util` feature.
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn parses_concatenated_batches() {
        let mut buf = simple_batch(0, 1000, 3);
        buf.extend(simple_batch(3, 2000, 2));
        let infos = parse_batches(&buf).unwrap();
        assert_eq!(infos.len(), 2);
        assert_eq!(infos[0].last_offset(), 2);
        assert_eq!(infos[1].position, infos[0].size);
        assert_eq!(infos[1].max_timestamp, 2001);
        let recs = decode_records(&buf);
        assert_eq!(recs.len(), 5);
        assert_eq!(recs[4].offset, 4);
        assert_eq!(recs[4].value.as_deref(), Some(&b"v4"[..]));
        assert_eq!(recs[1].timestamp, 1001);
    }

    #[test]
    fn rejects_magic_1() {
        let mut buf = simple_batch(0, 0, 1);
        buf[16] = 1;
        let err = parse_batches(&buf).unwrap_err();
        assert!(err.is_unsupported_magic(), "{err}");
        assert!(err.to_string().contains("magic 1"));
    }

    #[test]
    fn rejects_bad_crc() {
        let mut buf = simple_batch(0, 0, 2);
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        assert!(matches!(
            parse_batches(&buf),
            Err(BatchError::CrcMismatch { position: 0, .. })
        ));
    }

    #[test]
    fn rejects_truncated_input() {
        let mut buf = simple_batch(0, 0, 2);
        let first = buf.len();
        buf.extend(simple_batch(2, 0, 2));
        for cut in [5, first + 5, first + 30, buf.len() - 1] {
            let err = parse_batches(&buf[..cut]).unwrap_err();
            assert!(err.is_truncated(), "cut {cut}: {err}");
        }
    }

    #[test]
    fn rejects_bad_length_and_counts() {
        let mut buf = simple_batch(0, 0, 1);
        buf[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(
            parse_batches(&buf),
            Err(BatchError::InvalidLength { length: 10, .. })
        ));
        let mut buf = simple_batch(0, 0, 1);
        buf[57..61].copy_from_slice(&(-1i32).to_be_bytes());
        update_crc(&mut buf);
        assert!(matches!(
            parse_batches(&buf),
            Err(BatchError::InvalidRecordsCount { .. })
        ));
    }

    #[test]
    fn base_offset_and_epoch_do_not_change_crc() {
        let mut buf = simple_batch(0, 0, 2);
        let crc = BatchHeader::new(&buf).unwrap().crc();
        set_base_offset(&mut buf, 1234);
        set_partition_leader_epoch(&mut buf, 7);
        let h = BatchHeader::new(&buf).unwrap();
        assert_eq!(
            (h.base_offset(), h.partition_leader_epoch(), h.crc()),
            (1234, 7, crc)
        );
        parse_batches(&buf).unwrap();
    }

    #[test]
    fn log_append_time_rewrites_max_timestamp_and_crc() {
        let mut buf = simple_batch(0, 100, 3);
        set_log_append_time(&mut buf, 99_999);
        let info = parse_batches(&buf).unwrap()[0];
        assert_eq!(info.max_timestamp, 99_999);
        let h = BatchHeader::new(&buf).unwrap();
        assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(h.base_timestamp(), 100);
        assert!(decode_records(&buf).iter().all(|r| r.timestamp == 99_999));
    }
}
