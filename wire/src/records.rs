//! Safe decoding of the records inside v2 record batches.
//!
//! [`batch`] checks a batch's header and CRC without looking inside; this
//! module walks its records. The bytes come from the network, so nothing they say is
//! trusted: a header can claim 2^31 records, a record 2^31 headers, a key 2 GiB, and a
//! compressed batch of a few kilobytes can inflate to gigabytes. Hence:
//!
//! * every count and length is checked against the bytes actually left before it is used,
//!   and no allocation is ever sized by one: records and headers are yielded one at a time
//!   as slices borrowed from the batch (or from the one decompression buffer);
//! * a compressed batch (gzip, snappy, lz4, zstd) is decompressed through a bounded reader
//!   into one reusable buffer: past the limit the batch is refused, never expanded
//!   (see *Decompression limit* below).
//!
//! [`RecordDecoder::records`] iterates one batch; [`RecordDecoder::check_batches`] walks
//! every record of every batch of a produce payload once.
//!
//! # Record layout (the records section: everything after the 61-byte batch header)
//!
//! | field            | encoding |
//! |------------------|----------|
//! | length           | varint: bytes of the rest of the record |
//! | attributes       | i8 (unused) |
//! | timestampDelta   | varlong, added to the batch's baseTimestamp |
//! | offsetDelta      | varint, added to the batch's baseOffset |
//! | keyLength, key   | varint (-1 = null), bytes |
//! | valueLength, value | varint (-1 = null), bytes |
//! | headerCount      | varint |
//! | headers          | headerCount × (keyLength varint ≥ 0, key, valueLength varint (-1 = null), value) |
//!
//! Varints are zigzag base-128, at most 5 bytes (varlongs 10), as Kafka's `ByteUtils`
//! reads them. For a compressed batch the whole records section is one compressed stream.
//!
//! # Rules (each violation is a [`RecordError`] naming the batch, record and rule)
//!
//! * `recordsCount` ≤ record bytes / [`MIN_RECORD_SIZE`]; the records present are exactly
//!   `recordsCount` (none missing, no bytes after the last);
//! * a record's length is ≥ 0, fits the bytes left, and its fields use exactly that many
//!   bytes; every field fits the record;
//! * key and value lengths are ≥ -1 (Kafka reads any negative length as null; only -1 is
//!   ever written, so anything else is refused), header key lengths ≥ 0 (as Kafka);
//! * `headerCount` ≥ 0 and ≤ bytes left in the record / [`MIN_HEADER_SIZE`].
//!
//! Offsets, timestamps and keys are *not* checked against the batch header or a topic's
//! rules here: that is the broker's `LogValidator` (`ironlog_storage::validator`), built on
//! top of this walker.
//!
//! # Decompression limit
//!
//! A decoder refuses a batch whose records section decompresses to more than its
//! `max_uncompressed_bytes` ([`RecordDecoder::new`]); reading stops one byte past it, so a
//! bomb costs at most that much memory (and the CPU to inflate it), once per decoder: the
//! buffer is reused from batch to batch. Kafka has no such limit (it streams records out
//! of the decompressor) but bounds what a producer may *send* by `max.message.bytes` per
//! batch. The broker's limit is [`max_uncompressed_bytes`]`(max.message.bytes)`: that, but
//! at least [`DEFAULT_MAX_UNCOMPRESSED_BYTES`] (64 MiB, 64× the default max.message.bytes,
//! so a full default-sized batch may compress 64:1; producers build far smaller batches,
//! batch.size being 16 KiB in Java and 1 MB in librdkafka by default). The server answers
//! [`RecordError::DecompressionLimit`] with MESSAGE_TOO_LARGE.

use std::fmt;
use std::io::{self, Read};

use thiserror::Error;

use crate::batch::{self, BatchError, BatchHeader, Compression, TimestampType, HEADER_SIZE};

/// The floor of the broker's decompression limit (see the module docs).
pub const DEFAULT_MAX_UNCOMPRESSED_BYTES: usize = 64 * 1024 * 1024;
/// Smallest encoded record: length, attributes, timestampDelta, offsetDelta, keyLength,
/// valueLength and headerCount, one byte each.
pub const MIN_RECORD_SIZE: usize = 7;
/// Smallest encoded header: an empty key's length and a null value's length.
pub const MIN_HEADER_SIZE: usize = 2;
/// Limits are capped here: Kafka sizes are i32, so no records section is larger.
const MAX_LIMIT: usize = i32::MAX as usize;

/// The decompression limit the broker uses for a topic: the larger of its
/// `max.message.bytes` and [`DEFAULT_MAX_UNCOMPRESSED_BYTES`] (at most `i32::MAX`).
pub fn max_uncompressed_bytes(max_message_bytes: u64) -> usize {
    usize::try_from(max_message_bytes)
        .unwrap_or(MAX_LIMIT)
        .clamp(DEFAULT_MAX_UNCOMPRESSED_BYTES, MAX_LIMIT)
}

/// A record field, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Length,
    Attributes,
    TimestampDelta,
    OffsetDelta,
    KeyLength,
    ValueLength,
    HeaderCount,
    HeaderKeyLength,
    HeaderValueLength,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Length => "record length",
            Field::Attributes => "attributes",
            Field::TimestampDelta => "timestamp delta",
            Field::OffsetDelta => "offset delta",
            Field::KeyLength => "key length",
            Field::ValueLength => "value length",
            Field::HeaderCount => "header count",
            Field::HeaderKeyLength => "header key length",
            Field::HeaderValueLength => "header value length",
        })
    }
}

/// Which rule one record breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RecordRule {
    /// The bytes (of the record, or of the records section for its length) end inside a field.
    #[error("the bytes end inside its {field}")]
    Truncated { field: Field },
    /// A varint longer than 5 bytes (varlong: 10), which Kafka refuses too.
    #[error("its {field} varint is longer than {max} bytes")]
    VarintTooLong { field: Field, max: usize },
    /// A negative length or count (key and value lengths may only be -1, null).
    #[error(
        "its {field} {value} is negative (only key and value lengths may be, and only -1 for null)"
    )]
    Negative { field: Field, value: i32 },
    /// A length larger than the bytes left.
    #[error("its {field} {length} runs past the {available} bytes left")]
    PastEnd {
        field: Field,
        length: usize,
        available: usize,
    },
    /// More headers than the bytes left in the record could hold.
    #[error("its header count {count} exceeds what the {available} bytes left can hold ({MIN_HEADER_SIZE} bytes per header at least)")]
    TooManyHeaders { count: i32, available: usize },
    /// The fields end before the record's length says it does.
    #[error("its length is {length} bytes but its fields use {used}")]
    LengthMismatch { length: usize, used: usize },
}

/// Why the records of a batch cannot be decoded. Every variant names the batch by its
/// byte position in the buffer given to the decoder.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// The batch header is invalid (or, from [`RecordDecoder::check_batches`], its CRC).
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// recordsCount exceeds what the records section could hold at [`MIN_RECORD_SIZE`].
    #[error("batch at byte {position} claims {count} records but its {available} bytes of records can hold at most {max}")]
    TooManyRecords {
        position: usize,
        count: i32,
        available: usize,
        max: usize,
    },
    /// The records section decompresses to more than the decoder's limit.
    #[error("batch at byte {position}: its {codec} records decompress to more than {limit} bytes, the broker's limit")]
    DecompressionLimit {
        position: usize,
        codec: Compression,
        limit: usize,
    },
    /// The records section is not a valid stream of its codec.
    #[error("batch at byte {position}: its {codec} records do not decompress: {reason}")]
    Decompression {
        position: usize,
        codec: Compression,
        reason: String,
    },
    /// Record `index` (0-based) breaks `rule`.
    #[error("batch at byte {position}, record {index}: {rule}")]
    InvalidRecord {
        position: usize,
        index: i32,
        rule: RecordRule,
    },
    /// The records section ends after `found` of the `count` records the header claims.
    #[error("batch at byte {position} claims {count} records but holds only {found}")]
    MissingRecords {
        position: usize,
        count: i32,
        found: i32,
    },
    /// [`Records::uncompressed`] was given a compressed batch.
    #[error("batch at byte {position} is {codec}-compressed; its records need a RecordDecoder")]
    Compressed { position: usize, codec: Compression },
    /// Bytes are left after the `count` records the header claims.
    #[error("batch at byte {position} has {extra} bytes after its {count} records")]
    TrailingBytes {
        position: usize,
        count: i32,
        extra: usize,
    },
}

/// One record, borrowed from its batch (or from the decoder's decompression buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// `baseOffset + offsetDelta` (wrapping, as Kafka's long arithmetic).
    pub offset: i64,
    /// `baseTimestamp + timestampDelta`; for a LogAppendTime batch, its maxTimestamp.
    pub timestamp: i64,
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub attributes: i8,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The whole encoded record, length prefix included (to copy it as it is).
    pub encoded: &'a [u8],
    headers: &'a [u8],
    header_count: i32,
}

impl<'a> Record<'a> {
    pub fn header_count(&self) -> usize {
        self.header_count as usize
    }

    /// The encoded headers (after headerCount), as stored.
    pub fn raw_headers(&self) -> &'a [u8] {
        self.headers
    }

    /// The record's headers, in order.
    pub fn headers(&self) -> Headers<'a> {
        Headers {
            cursor: Cursor::new(self.headers),
            remaining: self.header_count,
        }
    }
}

/// One record header. Kafka header keys are strings; they are not checked for UTF-8 here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// Iterator over a record's headers; they were validated when the record was decoded.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    cursor: Cursor<'a>,
    remaining: i32,
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // The record's decoding already walked these exact bytes, so this can't fail; if it
        // somehow did, ending the iteration is the safe answer.
        self.cursor.header().ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining as usize;
        (n, Some(n))
    }
}

/// Reads record fields from a slice; every read is checked against the slice's end.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn byte(&mut self, field: Field) -> Result<u8, RecordRule> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(RecordRule::Truncated { field })?;
        self.pos += 1;
        Ok(b)
    }

    /// Unsigned base-128 of at most `max_bytes` bytes. Bits beyond the field's width (32
    /// for a varint, 64 for a varlong) are dropped, as Kafka's `ByteUtils` drops them.
    fn raw_varint(&mut self, field: Field, max_bytes: usize) -> Result<u64, RecordRule> {
        let mut z: u64 = 0;
        for i in 0..max_bytes {
            let b = self.byte(field)?;
            z |= u64::from(b & 0x7f).wrapping_shl(7 * i as u32);
            if b & 0x80 == 0 {
                return Ok(z);
            }
        }
        Err(RecordRule::VarintTooLong {
            field,
            max: max_bytes,
        })
    }

    fn varint(&mut self, field: Field) -> Result<i32, RecordRule> {
        let z = self.raw_varint(field, 5)? as u32;
        Ok(((z >> 1) as i32) ^ -((z & 1) as i32))
    }

    fn varlong(&mut self, field: Field) -> Result<i64, RecordRule> {
        let z = self.raw_varint(field, 10)?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// `length` bytes, checked against what is left.
    fn take(&mut self, field: Field, length: usize) -> Result<&'a [u8], RecordRule> {
        let available = self.remaining();
        if length > available {
            return Err(RecordRule::PastEnd {
                field,
                length,
                available,
            });
        }
        let s = &self.buf[self.pos..self.pos + length];
        self.pos += length;
        Ok(s)
    }

    /// A varint length and that many bytes; -1 is null if `nullable`, any other negative
    /// length is refused.
    fn bytes(&mut self, field: Field, nullable: bool) -> Result<Option<&'a [u8]>, RecordRule> {
        let length = self.varint(field)?;
        match usize::try_from(length) {
            Ok(length) => self.take(field, length).map(Some),
            Err(_) if nullable && length == -1 => Ok(None),
            Err(_) => Err(RecordRule::Negative {
                field,
                value: length,
            }),
        }
    }

    fn header(&mut self) -> Result<Header<'a>, RecordRule> {
        let key = self
            .bytes(Field::HeaderKeyLength, false)?
            .unwrap_or_default();
        let value = self.bytes(Field::HeaderValueLength, true)?;
        Ok(Header { key, value })
    }
}

/// Decodes the record at the start of `buf` (a records section from some record on) and
/// returns it with the number of bytes it takes.
fn decode_record(buf: &[u8]) -> Result<(RawRecord<'_>, usize), RecordRule> {
    let mut c = Cursor::new(buf);
    let length = c.varint(Field::Length)?;
    let length = usize::try_from(length).map_err(|_| RecordRule::Negative {
        field: Field::Length,
        value: length,
    })?;
    let body = c.take(Field::Length, length)?;
    let size = c.pos;
    let mut c = Cursor::new(body);
    let attributes = c.byte(Field::Attributes)? as i8;
    let timestamp_delta = c.varlong(Field::TimestampDelta)?;
    let offset_delta = c.varint(Field::OffsetDelta)?;
    let key = c.bytes(Field::KeyLength, true)?;
    let value = c.bytes(Field::ValueLength, true)?;
    let header_count = c.varint(Field::HeaderCount)?;
    if header_count < 0 {
        return Err(RecordRule::Negative {
            field: Field::HeaderCount,
            value: header_count,
        });
    }
    let available = c.remaining();
    if header_count as usize > available / MIN_HEADER_SIZE {
        return Err(RecordRule::TooManyHeaders {
            count: header_count,
            available,
        });
    }
    let headers_start = c.pos;
    for _ in 0..header_count {
        c.header()?;
    }
    if c.remaining() != 0 {
        return Err(RecordRule::LengthMismatch {
            length,
            used: c.pos,
        });
    }
    let raw = RawRecord {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        encoded: &buf[..size],
        headers: &body[headers_start..],
        header_count,
    };
    Ok((raw, size))
}

/// A record before the batch header's base offset and timestamp are applied.
struct RawRecord<'a> {
    attributes: i8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    encoded: &'a [u8],
    headers: &'a [u8],
    header_count: i32,
}

/// Iterator over the records of one batch, from [`RecordDecoder::records`]. Yields each
/// record or the first error, then ends. A batch is valid only if the iteration ends
/// without an error: missing records and trailing bytes are reported after the last record.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    header: BatchHeader<'a>,
    /// The (decompressed) records section.
    section: &'a [u8],
    pos: usize,
    index: i32,
    count: i32,
    position: usize,
    log_append_time: Option<i64>,
    /// baseOffset and baseTimestamp, read from the header once rather than per record.
    base_offset: i64,
    base_timestamp: i64,
    done: bool,
}

/// Checks the header of the batch at the start of `batch`; returns it, its codec and its
/// stored records section.
fn checked_header(
    batch: &[u8],
    position: usize,
) -> Result<(BatchHeader<'_>, Compression, &[u8]), BatchError> {
    let size = batch::check_header(batch, position, batch.len())?;
    let header = BatchHeader::new(batch).ok_or(BatchError::Truncated {
        position,
        needed: HEADER_SIZE,
        available: batch.len(),
    })?;
    let codec = header.compression().ok_or(BatchError::InvalidCompression {
        position,
        codec: header.attributes() & 0x07,
    })?;
    Ok((header, codec, &batch[HEADER_SIZE..size]))
}

impl<'a> Records<'a> {
    /// The records of an *uncompressed* batch, borrowing only `batch` (so that they can
    /// outlive any decoder, as the cleaner's key map needs). Otherwise as
    /// [`RecordDecoder::records`].
    ///
    /// # Errors
    /// As [`RecordDecoder::records`], and [`RecordError::Compressed`] for a compressed batch.
    pub fn uncompressed(batch: &'a [u8], position: usize) -> Result<Self, RecordError> {
        let (header, codec, section) = checked_header(batch, position)?;
        if codec != Compression::None {
            return Err(RecordError::Compressed { position, codec });
        }
        Records::new(header, section, position)
    }

    /// Starts iterating `section`, the (decompressed) records of the batch with `header`,
    /// after checking recordsCount against its size.
    fn new(
        header: BatchHeader<'a>,
        section: &'a [u8],
        position: usize,
    ) -> Result<Self, RecordError> {
        let count = header.records_count();
        let max = section.len() / MIN_RECORD_SIZE;
        if usize::try_from(count).map_or(true, |c| c > max) {
            return Err(RecordError::TooManyRecords {
                position,
                count,
                available: section.len(),
                max,
            });
        }
        let log_append_time = (header.timestamp_type() == TimestampType::LogAppendTime)
            .then(|| header.max_timestamp());
        Ok(Records {
            header,
            section,
            pos: 0,
            index: 0,
            count,
            position,
            log_append_time,
            base_offset: header.base_offset(),
            base_timestamp: header.base_timestamp(),
            done: false,
        })
    }

    /// The header of the batch being iterated.
    pub fn header(&self) -> BatchHeader<'a> {
        self.header
    }

    /// Size of the (decompressed) records section.
    pub fn section_len(&self) -> usize {
        self.section.len()
    }

    /// Walks the remaining records, returning how many there were.
    ///
    /// # Errors
    /// The first [`RecordError`] met.
    pub fn check(self) -> Result<i32, RecordError> {
        let mut n = 0;
        for record in self {
            record?;
            n += 1;
        }
        Ok(n)
    }

    fn fail(&mut self, error: RecordError) -> Option<Result<Record<'a>, RecordError>> {
        self.done = true;
        Some(Err(error))
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = &self.section[self.pos..];
        if self.index == self.count {
            self.done = true;
            return (!rest.is_empty()).then_some(Err(RecordError::TrailingBytes {
                position: self.position,
                count: self.count,
                extra: rest.len(),
            }));
        }
        if rest.is_empty() {
            return self.fail(RecordError::MissingRecords {
                position: self.position,
                count: self.count,
                found: self.index,
            });
        }
        let (raw, size) = match decode_record(rest) {
            Ok(decoded) => decoded,
            Err(rule) => {
                return self.fail(RecordError::InvalidRecord {
                    position: self.position,
                    index: self.index,
                    rule,
                })
            }
        };
        self.pos += size;
        self.index += 1;
        let timestamp = self
            .log_append_time
            .unwrap_or_else(|| self.base_timestamp.wrapping_add(raw.timestamp_delta));
        Some(Ok(Record {
            offset: self.base_offset.wrapping_add(i64::from(raw.offset_delta)),
            timestamp,
            offset_delta: raw.offset_delta,
            timestamp_delta: raw.timestamp_delta,
            attributes: raw.attributes,
            key: raw.key,
            value: raw.value,
            encoded: raw.encoded,
            headers: raw.headers,
            header_count: raw.header_count,
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Never a lower bound from the header's count: `collect` would allocate by it.
        // (At most the records left, plus one error.)
        let left = if self.done {
            0
        } else {
            (self.count - self.index) as usize + 1
        };
        (0, Some(left))
    }
}

/// Decodes the records of v2 batches, decompressing under a limit into one buffer that is
/// reused from batch to batch (so one decoder serves a whole produce request or log pass).
#[derive(Debug)]
pub struct RecordDecoder {
    max_uncompressed_bytes: usize,
    buffer: Vec<u8>,
}

impl RecordDecoder {
    /// A decoder that refuses records sections that decompress to more than
    /// `max_uncompressed_bytes` (capped at `i32::MAX`). The broker passes
    /// [`max_uncompressed_bytes`]`(max.message.bytes)`.
    pub fn new(max_uncompressed_bytes: usize) -> Self {
        RecordDecoder {
            max_uncompressed_bytes: max_uncompressed_bytes.min(MAX_LIMIT),
            buffer: Vec::new(),
        }
    }

    pub fn max_uncompressed_bytes(&self) -> usize {
        self.max_uncompressed_bytes
    }

    /// The records of the batch at the start of `batch` (bytes after it are ignored).
    /// `position` is the batch's byte position, for errors. The header is checked as
    /// [`batch::check_header`] does; the CRC is not (callers that need it use
    /// [`batch::validate_batch`] or [`RecordDecoder::check_batches`]). A compressed batch
    /// is decompressed here, before the first record is yielded.
    ///
    /// # Errors
    /// [`RecordError::Batch`] for a bad header, [`RecordError::Decompression`] and
    /// [`RecordError::DecompressionLimit`], [`RecordError::TooManyRecords`]; errors inside
    /// the records come from the iterator.
    pub fn records<'a>(
        &'a mut self,
        batch: &'a [u8],
        position: usize,
    ) -> Result<Records<'a>, RecordError> {
        let (header, codec, stored) = checked_header(batch, position)?;
        let section: &'a [u8] = if codec == Compression::None {
            stored
        } else {
            let limit = self.max_uncompressed_bytes;
            decompress(codec, stored, &mut self.buffer, limit).map_err(|e| match e {
                DecompressError::Limit => RecordError::DecompressionLimit {
                    position,
                    codec,
                    limit,
                },
                DecompressError::Codec(e) => RecordError::Decompression {
                    position,
                    codec,
                    reason: e.to_string(),
                },
            })?;
            &self.buffer
        };
        Records::new(header, section, position)
    }

    /// Walks every record of every batch in `buf` once: headers as
    /// [`batch::check_header`], then each record as [`RecordDecoder::records`], compressed
    /// batches decompressed under the limit. Returns the number of records. No rule beyond
    /// the encoding is checked (the broker's produce path uses `LogValidator`, which does
    /// this walk and Kafka's rules); it is the least a reader of untrusted batches must do.
    ///
    /// The CRC of a well-formed batch is not computed (callers that need it use
    /// [`batch::validate_batch`]); it is computed only when a batch's records are wrong, so
    /// that a batch damaged in transit is reported as [`BatchError::CrcMismatch`] (as
    /// Kafka, which checks the CRC before it reads records) rather than as malformed.
    ///
    /// # Errors
    /// The first [`RecordError`], naming the batch by its byte position in `buf`.
    pub fn check_batches(&mut self, buf: &[u8]) -> Result<u64, RecordError> {
        let mut position = 0;
        let mut total = 0u64;
        while position < buf.len() {
            let rest = &buf[position..];
            let size = batch::check_header(rest, position, rest.len())?;
            let batch = &rest[..size];
            match self.records(batch, position).and_then(Records::check) {
                Ok(n) => total += n as u64,
                Err(e) => {
                    batch::validate_batch(batch, position)?;
                    return Err(e);
                }
            }
            position += size;
        }
        Ok(total)
    }
}

enum DecompressError {
    /// The output would exceed the limit.
    Limit,
    /// The input is not a valid stream of the codec.
    Codec(io::Error),
}

impl From<io::Error> for DecompressError {
    fn from(e: io::Error) -> Self {
        DecompressError::Codec(e)
    }
}

/// Decompresses `input` into `out` (replacing its contents), refusing past `limit` bytes.
fn decompress(
    codec: Compression,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), DecompressError> {
    out.clear();
    match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(DecompressError::Limit);
            }
            out.extend_from_slice(input);
            Ok(())
        }
        // Java's GZIPInputStream reads concatenated members; so does this.
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(input), out, limit),
        Compression::Snappy => snappy(input, out, limit),
        Compression::Lz4 => read_bounded(lz4::Decoder::new(input)?, out, limit),
        // zstd allocates its window (up to 2^27 bytes by default) lazily, so memory it
        // touches stays proportional to the output, which `read_bounded` caps.
        Compression::Zstd => {
            read_bounded(zstd::stream::read::Decoder::with_buffer(input)?, out, limit)
        }
    }
}

/// Reads `reader` to its end into `out`, stopping with [`DecompressError::Limit`] as soon
/// as more than `limit` bytes come out. `out` never holds more than `limit + 1` bytes
/// (its capacity grows by doubling, clamped there), so a bomb costs at most that much.
fn read_bounded(
    mut reader: impl Read,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), DecompressError> {
    const FIRST_CHUNK: usize = 64 * 1024;
    let ceiling = limit + 1; // limit <= i32::MAX: no overflow
    let mut filled = 0;
    loop {
        if filled == out.len() {
            if filled == ceiling {
                out.clear();
                return Err(DecompressError::Limit);
            }
            let len = (filled * 2).max(FIRST_CHUNK).min(ceiling);
            out.reserve_exact(len - out.len());
            out.resize(len, 0);
        }
        match reader.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                out.clear();
                return Err(e.into());
            }
        }
    }
    out.truncate(filled);
    if filled > limit {
        out.clear();
        return Err(DecompressError::Limit);
    }
    Ok(())
}

/// Magic of snappy-java's stream format, which Kafka's Java client writes: 8 bytes of
/// magic, two 4-byte versions, then blocks of (u32 big-endian length, raw snappy block).
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// Snappy as Kafka reads it: the xerial stream format, or (like snappy-java when the magic
/// is missing) one raw snappy block. Each block states its decompressed length up front,
/// which is checked against what is left of the limit before anything is allocated.
fn snappy(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), DecompressError> {
    if !input.starts_with(XERIAL_MAGIC) {
        return snappy_block(input, out, limit);
    }
    let corrupt = |what: &str| {
        DecompressError::Codec(io::Error::new(io::ErrorKind::InvalidData, what.to_string()))
    };
    let mut pos = XERIAL_HEADER_LEN;
    if input.len() < pos {
        return Err(corrupt("snappy stream header is truncated"));
    }
    while pos < input.len() {
        let length = input
            .get(pos..pos + 4)
            .ok_or_else(|| corrupt("snappy block length is truncated"))?;
        let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize;
        pos += 4;
        let block = input
            .get(pos..)
            .and_then(|rest| rest.get(..length))
            .ok_or_else(|| corrupt("snappy block runs past the end of the batch"))?;
        pos += length;
        snappy_block(block, out, limit)?;
    }
    Ok(())
}

/// Appends one raw snappy block to `out`.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), DecompressError> {
    let codec =
        |e: snap::Error| DecompressError::Codec(io::Error::new(io::ErrorKind::InvalidData, e));
    let length = snap::raw::decompress_len(block).map_err(codec)?;
    let start = out.len();
    if length > limit - start {
        out.clear();
        return Err(DecompressError::Limit);
    }
    out.reserve_exact(length);
    out.resize(start + length, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(codec)?;
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests;
