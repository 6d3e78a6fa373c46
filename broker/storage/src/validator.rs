//! `LogValidator`: what the broker checks and fixes in a producer's batches before they
//! are appended, after Kafka's `LogValidator` (magic v2 only; older formats are refused
//! earlier, by [`batch::check_header`]).
//!
//! Nothing in a batch header is trusted: the header is checked against the records, and
//! the one field a client may get wrong without its data being wrong, maxTimestamp, is
//! recomputed from them. Per batch, in this order:
//!
//! 1. **Header and CRC** ([`batch::validate_batch`]): magic 2, lengths, codec, CRC-32C.
//!    A batch above `max.message.bytes` is refused.
//! 2. **Batch rules** (INVALID_RECORD, as Kafka's `validateBatch` for client appends):
//!    recordsCount ≥ 1 and equal to lastOffsetDelta + 1; no control batches (only the
//!    broker writes those); an idempotent batch (producerId ≥ 0) has a baseSequence ≥ 0.
//!    A batch flagged LogAppendTime is refused with INVALID_TIMESTAMP: only the broker
//!    stamps that.
//! 3. **Every record** is walked once with the bounded [`RecordDecoder`] (compressed
//!    batches are decompressed under its limit, never re-encoded). Structural damage stops
//!    the walk (INVALID_RECORD, CORRUPT_MESSAGE or MESSAGE_TOO_LARGE, see
//!    [`RecordError`]). Then the rules, each broken record collected as a
//!    [`RecordViolation`] naming its index in the batch (Produce v8+ `record_errors`):
//!    * record *i* has offsetDelta *i* (so offsets run 0, 1, 2… and the last one is
//!      lastOffsetDelta) — INVALID_RECORD;
//!    * in a compacted topic (`cleanup.policy` contains `compact`) every record has a key
//!      — INVALID_RECORD;
//!    * for CreateTime topics, a timestamp other than -1 (none) lies within
//!      [now − `message.timestamp.before.max.ms`, now + `message.timestamp.after.max.ms`]
//!      — INVALID_TIMESTAMP.
//!
//!    Violations are reported after the whole batch is walked, at most
//!    [`MAX_REPORTED_VIOLATIONS`] of them with the total count (Kafka lists every one; a
//!    1 MB batch of tiny records could otherwise turn into a response twenty times its
//!    size). The error is INVALID_TIMESTAMP if any violation is a timestamp, else
//!    INVALID_RECORD, as Kafka decides.
//! 4. **maxTimestamp**: for CreateTime topics it is recomputed as the largest record
//!    timestamp (-1 if every record has none), together with the offset delta of the first
//!    record carrying it. If the header says otherwise it is rewritten and the CRC
//!    recomputed; a correct header is left byte for byte as it came, so a well-formed
//!    batch costs one CRC pass and one record walk. For LogAppendTime topics the batch is
//!    stamped with the broker's clock ([`batch::set_log_append_time`]).
//!
//! The whole request is validated before anything is written: one bad batch refuses the
//! request, and the log never sees it. Offsets and the leader epoch are assigned by
//! [`crate::Log::append_validated`], in place, outside the CRC.
//!
//! What is *not* checked, as in Kafka: record attributes, header keys' UTF-8, the batch's
//! baseOffset and baseTimestamp (any base works: offsets are reassigned and timestamps are
//! relative to it).

use thiserror::Error;

use crate::batch::{self, BatchHeader, TimestampType};
use crate::config::{CleanupPolicy, LogConfig, MessageTimestampType};
use crate::records::{max_uncompressed_bytes, RecordDecoder, RecordError};

/// At most this many record violations are listed in one error (the total is always given).
pub const MAX_REPORTED_VIOLATIONS: usize = 100;

/// Which rule a record breaks; decides the error code of the whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// Kafka's INVALID_RECORD.
    Record,
    /// Kafka's INVALID_TIMESTAMP.
    Timestamp,
}

/// One record that breaks a rule: its index in its batch (0-based) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordViolation {
    pub index: i32,
    pub kind: ViolationKind,
    pub message: String,
}

/// Why a producer's batches are refused. Nothing of them is appended.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    /// A bad header or CRC, or records that can't be decoded (see [`RecordError`]).
    #[error(transparent)]
    Records(#[from] RecordError),
    /// No batch at all.
    #[error("the append holds no record batch")]
    Empty,
    /// A batch above `max.message.bytes`.
    #[error("batch at byte {position} is {size} bytes, above max.message.bytes ({max})")]
    TooLarge {
        position: usize,
        size: usize,
        max: u64,
    },
    /// A batch whose header breaks a batch rule (INVALID_RECORD).
    #[error("batch at byte {position}: {reason}")]
    InvalidBatch { position: usize, reason: String },
    /// A batch flagged LogAppendTime by the producer (INVALID_TIMESTAMP).
    #[error("batch at byte {position} has timestamp type LogAppendTime; only the broker may set it (producers send CreateTime)")]
    LogAppendTimeFromProducer { position: usize },
    /// Records of one batch that break record rules.
    #[error("batch at byte {position}: {total} record(s) rejected, first: record {}: {}",
            .violations[0].index, .violations[0].message)]
    InvalidRecords {
        position: usize,
        /// How many records broke a rule.
        total: usize,
        /// The first [`MAX_REPORTED_VIOLATIONS`] of them, in record order (never empty).
        violations: Vec<RecordViolation>,
    },
}

impl ValidationError {
    /// True if Kafka would answer INVALID_TIMESTAMP (otherwise the variant decides).
    pub fn is_invalid_timestamp(&self) -> bool {
        match self {
            ValidationError::LogAppendTimeFromProducer { .. } => true,
            ValidationError::InvalidRecords { violations, .. } => violations
                .iter()
                .any(|v| v.kind == ViolationKind::Timestamp),
            _ => false,
        }
    }
}

/// One batch that passed, with what the validator learned of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidBatch {
    /// Byte position of the batch in the validated buffer.
    pub position: usize,
    /// Total size in bytes.
    pub size: usize,
    pub last_offset_delta: i32,
    pub records: i32,
    /// maxTimestamp as the batch now stores it (recomputed, or the append time).
    pub max_timestamp: i64,
    /// Offset delta of the first record with `max_timestamp` (the last record for
    /// LogAppendTime, where every record has it); -1 if no record has a timestamp.
    pub offset_delta_of_max_timestamp: i32,
}

impl ValidBatch {
    pub fn range(&self) -> std::ops::Range<usize> {
        self.position..self.position + self.size
    }
}

/// Batches that passed validation, still in the caller's buffer, which the validator has
/// already patched. The only way to get one is [`LogValidator::validate`]; the log appends
/// it with [`crate::Log::append_validated`].
#[derive(Debug)]
pub struct ValidatedRecords<'a> {
    pub(crate) buf: &'a mut [u8],
    pub(crate) batches: Vec<ValidBatch>,
    /// The broker time stamped into LogAppendTime batches, or -1.
    pub(crate) log_append_time: i64,
}

impl ValidatedRecords<'_> {
    pub fn batches(&self) -> &[ValidBatch] {
        &self.batches
    }

    pub fn bytes(&self) -> &[u8] {
        self.buf
    }
}

impl<'a> ValidatedRecords<'a> {
    /// Takes `buf` as it is, checking only headers and CRCs: for tests that need bytes in a
    /// log that validation refuses (as logs written by older brokers may hold).
    #[cfg(test)]
    pub(crate) fn unchecked(buf: &'a mut [u8]) -> Self {
        let batches = batch::parse_batches(buf)
            .expect("unchecked: headers and CRCs must be valid")
            .into_iter()
            .map(|info| ValidBatch {
                position: info.position,
                size: info.size,
                last_offset_delta: info.last_offset_delta,
                records: info.records_count,
                max_timestamp: info.max_timestamp,
                offset_delta_of_max_timestamp: info.last_offset_delta,
            })
            .collect();
        ValidatedRecords {
            buf,
            batches,
            log_append_time: -1,
        }
    }
}

/// The validation rules of one log, taken from its config (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogValidator {
    timestamp_type: MessageTimestampType,
    timestamp_before_max_ms: i64,
    timestamp_after_max_ms: i64,
    compacted: bool,
    max_message_bytes: u64,
    max_uncompressed_bytes: usize,
}

impl LogValidator {
    pub fn new(config: &LogConfig) -> Self {
        LogValidator {
            timestamp_type: config.message_timestamp_type,
            timestamp_before_max_ms: config.message_timestamp_before_max_ms,
            timestamp_after_max_ms: config.message_timestamp_after_max_ms,
            compacted: config.cleanup_policy != CleanupPolicy::Delete,
            max_message_bytes: config.max_message_bytes,
            max_uncompressed_bytes: max_uncompressed_bytes(config.max_message_bytes),
        }
    }

    /// A decoder with this log's decompression limit.
    pub fn decoder(&self) -> RecordDecoder {
        RecordDecoder::new(self.max_uncompressed_bytes)
    }

    /// Validates every batch of `buf` (a producer's records for one partition) at broker
    /// time `now_ms`, patching maxTimestamp (and the CRC) where the header is wrong and
    /// stamping LogAppendTime where the topic uses it. On error `buf` may hold patched
    /// headers of the batches before the bad one; it must not be appended (and can't be:
    /// only the returned value can).
    ///
    /// # Errors
    /// The first [`ValidationError`], naming the batch by its byte position in `buf`.
    pub fn validate<'a>(
        &self,
        buf: &'a mut [u8],
        decoder: &mut RecordDecoder,
        now_ms: i64,
    ) -> Result<ValidatedRecords<'a>, ValidationError> {
        let mut batches = Vec::new();
        let mut position = 0;
        while position < buf.len() {
            let info =
                batch::validate_batch(&buf[position..], position).map_err(RecordError::from)?;
            let bytes = &mut buf[position..position + info.size];
            batches.push(self.validate_batch(bytes, position, decoder, now_ms)?);
            position += info.size;
        }
        if batches.is_empty() {
            return Err(ValidationError::Empty);
        }
        let log_append_time = match self.timestamp_type {
            MessageTimestampType::LogAppendTime => now_ms,
            MessageTimestampType::CreateTime => -1,
        };
        Ok(ValidatedRecords {
            buf,
            batches,
            log_append_time,
        })
    }

    /// Rules 1 (size) to 4 for one batch whose header and CRC are valid.
    fn validate_batch(
        &self,
        bytes: &mut [u8],
        position: usize,
        decoder: &mut RecordDecoder,
        now_ms: i64,
    ) -> Result<ValidBatch, ValidationError> {
        if bytes.len() as u64 > self.max_message_bytes {
            return Err(ValidationError::TooLarge {
                position,
                size: bytes.len(),
                max: self.max_message_bytes,
            });
        }
        let header = BatchHeader::new(bytes).ok_or(ValidationError::Empty)?;
        check_batch_rules(&header, position)?;
        let last_offset_delta = header.last_offset_delta();
        let header_max_timestamp = header.max_timestamp();

        let mut max_timestamp = -1;
        let mut offset_delta_of_max_timestamp = -1;
        let mut total = 0;
        let mut violations = Vec::new();
        let mut violation = |index: i32, kind, message: String| {
            total += 1;
            if violations.len() < MAX_REPORTED_VIOLATIONS {
                violations.push(RecordViolation {
                    index,
                    kind,
                    message,
                });
            }
        };
        // CreateTime timestamps must lie in [oldest, newest] (computed once per batch).
        let check_timestamps = self.timestamp_type == MessageTimestampType::CreateTime;
        let oldest = now_ms.saturating_sub(self.timestamp_before_max_ms);
        let newest = now_ms.saturating_add(self.timestamp_after_max_ms);
        let mut index = 0;
        for record in decoder.records(bytes, position)? {
            let record = record?;
            if record.offset_delta != index {
                violation(
                    index,
                    ViolationKind::Record,
                    format!(
                        "offset delta {} where {index} was expected (offset deltas must run 0, 1, 2, ...)",
                        record.offset_delta
                    ),
                );
            }
            if self.compacted && record.key.is_none() {
                violation(
                    index,
                    ViolationKind::Record,
                    "no key, and a compacted topic needs one on every record".into(),
                );
            }
            let ts = record.timestamp;
            if check_timestamps && (ts < oldest || ts > newest) && ts != -1 {
                violation(
                    index,
                    ViolationKind::Timestamp,
                    self.timestamp_out_of_range(ts, now_ms, oldest, newest),
                );
            }
            if record.timestamp > max_timestamp {
                max_timestamp = record.timestamp;
                offset_delta_of_max_timestamp = index;
            }
            index += 1;
        }
        if !violations.is_empty() {
            return Err(ValidationError::InvalidRecords {
                position,
                total,
                violations,
            });
        }

        match self.timestamp_type {
            MessageTimestampType::LogAppendTime => {
                batch::set_log_append_time(bytes, now_ms);
                max_timestamp = now_ms;
                offset_delta_of_max_timestamp = last_offset_delta;
            }
            MessageTimestampType::CreateTime => {
                if header_max_timestamp != max_timestamp {
                    batch::set_max_timestamp(bytes, max_timestamp);
                }
            }
        }
        Ok(ValidBatch {
            position,
            size: bytes.len(),
            last_offset_delta,
            records: index,
            max_timestamp,
            offset_delta_of_max_timestamp,
        })
    }

    /// Why `timestamp` is outside [`oldest`, `newest`], the window around `now_ms`.
    fn timestamp_out_of_range(
        &self,
        timestamp: i64,
        now_ms: i64,
        oldest: i64,
        newest: i64,
    ) -> String {
        format!(
            "timestamp {timestamp} is out of range: it must be within [{oldest}, {newest}] \
             (broker time {now_ms} minus message.timestamp.before.max.ms {}, plus message.timestamp.after.max.ms {})",
            self.timestamp_before_max_ms, self.timestamp_after_max_ms,
        )
    }
}

/// Rule 2: header fields that must agree, and what only the broker may write.
fn check_batch_rules(header: &BatchHeader<'_>, position: usize) -> Result<(), ValidationError> {
    let invalid = |reason: String| Err(ValidationError::InvalidBatch { position, reason });
    let count = header.records_count();
    let last_offset_delta = header.last_offset_delta();
    if count < 1 {
        return invalid(format!(
            "recordsCount is {count}; a produced batch holds at least one record"
        ));
    }
    if i64::from(count) != i64::from(last_offset_delta) + 1 {
        return invalid(format!(
            "recordsCount {count} disagrees with lastOffsetDelta {last_offset_delta} \
             (a batch of n records has offset deltas 0..n-1)"
        ));
    }
    if header.is_control() {
        return invalid("control batches are written by the broker, not by producers".into());
    }
    if header.producer_id() >= 0 && header.base_sequence() < 0 {
        return invalid(format!(
            "idempotent batch of producer {} has base sequence {}",
            header.producer_id(),
            header.base_sequence()
        ));
    }
    if header.timestamp_type() == TimestampType::LogAppendTime {
        return Err(ValidationError::LogAppendTimeFromProducer { position });
    }
    Ok(())
}
