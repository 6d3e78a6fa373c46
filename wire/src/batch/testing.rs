//! Builders and decoders of v2 record batches for tests: valid batches with any codec,
//! and the pieces (record encoder, compressor, header assembler) to build broken ones
//! with a correct CRC, so that only the field a test breaks is wrong.

use std::io::{self, Read};

use super::*;
pub use crate::encode::{compress, compress_reader, put_bytes, put_varint};
use crate::records::{RecordDecoder, DEFAULT_MAX_UNCOMPRESSED_BYTES};

/// A record's key and value as given to [`build_batch`] (`None` = null).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// One record as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Everything one v2 record carries, for [`encode_record`] and [`build_records_batch`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSpec {
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// The header fields of a batch built by [`assemble_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderFields {
    pub base_offset: i64,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub last_offset_delta: i32,
    pub records_count: i32,
    pub compression: Compression,
}

/// Appends one encoded record (length prefix included).
pub fn encode_record(out: &mut Vec<u8>, r: &RecordSpec) {
    let mut body = vec![0u8]; // attributes
    put_varint(&mut body, r.timestamp_delta);
    put_varint(&mut body, i64::from(r.offset_delta));
    put_bytes(&mut body, r.key.as_deref());
    put_bytes(&mut body, r.value.as_deref());
    put_varint(&mut body, r.headers.len() as i64);
    for (k, v) in &r.headers {
        put_bytes(&mut body, Some(k));
        put_bytes(&mut body, v.as_deref());
    }
    put_varint(out, body.len() as i64);
    out.extend_from_slice(&body);
}

/// `n` zero bytes compressed with `codec`: a zip bomb, built cheaply. gzip and zstd repeat
/// one compressed MiB as concatenated members/frames (both decoders read those, as Kafka's
/// do), snappy repeats one compressed 32 KiB block; lz4 (one frame) is compressed whole.
pub fn compressed_zeros(codec: Compression, n: usize) -> Vec<u8> {
    let repeat = |unit: usize, encode: &dyn Fn(usize) -> Vec<u8>, header: &[u8]| {
        let mut out = header.to_vec();
        let whole = encode(unit);
        for _ in 0..n / unit {
            out.extend_from_slice(&whole);
        }
        if !n.is_multiple_of(unit) {
            out.extend_from_slice(&encode(n % unit));
        }
        out
    };
    match codec {
        Compression::None => vec![0; n],
        Compression::Gzip | Compression::Zstd => {
            repeat(1 << 20, &|len| compress(codec, &vec![0; len]), &[])
        }
        Compression::Snappy => {
            // compress() emits the 16-byte stream header, then (u32 length, block) pairs.
            let header = &compress(codec, &[])[..16];
            repeat(
                32 * 1024,
                &|len| compress(codec, &vec![0; len])[16..].to_vec(),
                header,
            )
        }
        Compression::Lz4 => compress_reader(codec, io::repeat(0).take(n as u64))
            .expect("compressing zeros does not fail"),
    }
}

/// A CreateTime batch with the given header fields around `records_section` (already
/// compressed if `fields.compression` says so), with a correct CRC. No producer id.
pub fn assemble_batch(fields: &HeaderFields, records_section: &[u8]) -> Vec<u8> {
    let codec: i16 = match fields.compression {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    };
    let mut b = Vec::with_capacity(HEADER_SIZE + records_section.len());
    b.extend_from_slice(&fields.base_offset.to_be_bytes());
    b.extend_from_slice(
        &((HEADER_SIZE - LOG_OVERHEAD + records_section.len()) as i32).to_be_bytes(),
    );
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    b.push(CURRENT_MAGIC as u8);
    b.extend_from_slice(&0u32.to_be_bytes()); // crc placeholder
    b.extend_from_slice(&codec.to_be_bytes()); // attributes
    b.extend_from_slice(&fields.last_offset_delta.to_be_bytes());
    b.extend_from_slice(&fields.base_timestamp.to_be_bytes());
    b.extend_from_slice(&fields.max_timestamp.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&fields.records_count.to_be_bytes());
    b.extend_from_slice(records_section);
    update_crc(&mut b);
    b
}

/// A batch of `records` (compressed as `fields.compression` says) whose header fields are
/// exactly `fields`, right or wrong, with a correct CRC.
pub fn batch_with_fields(fields: &HeaderFields, records: &[RecordSpec]) -> Vec<u8> {
    let mut raw = Vec::new();
    for r in records {
        encode_record(&mut raw, r);
    }
    assemble_batch(fields, &compress(fields.compression, &raw))
}

/// A valid batch of `records`, compressed with `codec`. lastOffsetDelta and maxTimestamp
/// come from the largest deltas.
pub fn build_records_batch(
    base_offset: i64,
    base_timestamp: i64,
    codec: Compression,
    records: &[RecordSpec],
) -> Vec<u8> {
    let fields = HeaderFields {
        base_offset,
        base_timestamp,
        max_timestamp: base_timestamp
            + records.iter().map(|r| r.timestamp_delta).max().unwrap_or(0),
        last_offset_delta: records.iter().map(|r| r.offset_delta).max().unwrap_or(0),
        records_count: records.len() as i32,
        compression: codec,
    };
    batch_with_fields(&fields, records)
}

/// Sets producer id, epoch and base sequence (an idempotent producer's batch) and
/// recomputes the CRC.
pub fn set_producer(batch: &mut [u8], producer_id: i64, epoch: i16, base_sequence: i32) {
    batch[PRODUCER_ID..PRODUCER_ID + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH..PRODUCER_EPOCH + 2].copy_from_slice(&epoch.to_be_bytes());
    batch[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&base_sequence.to_be_bytes());
    update_crc(batch);
}

/// Overwrites recordsCount and recomputes the CRC, so only the count is wrong.
pub fn set_records_count(batch: &mut [u8], count: i32) {
    batch[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&count.to_be_bytes());
    update_crc(batch);
}

/// Builds a valid uncompressed CreateTime v2 batch. Record `i` gets offset
/// delta `i` and timestamp `base_timestamp + i`.
pub fn build_batch(base_offset: i64, base_timestamp: i64, records: &[KeyValue<'_>]) -> Vec<u8> {
    let specs = numbered(
        records
            .iter()
            .map(|(k, v)| (k.map(<[u8]>::to_vec), v.map(<[u8]>::to_vec), Vec::new())),
    );
    build_records_batch(base_offset, base_timestamp, Compression::None, &specs)
}

/// A record's key, value and headers, for [`numbered`].
pub type KeyValueHeaders = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(Vec<u8>, Option<Vec<u8>>)>,
);

/// Record specs where record `i` gets offset delta `i` and timestamp delta `i`.
pub fn numbered(records: impl IntoIterator<Item = KeyValueHeaders>) -> Vec<RecordSpec> {
    records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value, headers))| RecordSpec {
            timestamp_delta: i as i64,
            offset_delta: i as i32,
            key,
            value,
            headers,
        })
        .collect()
}

/// Convenience: `n` records with keys `k<i>` and values `v<base_offset+i>`.
pub fn simple_batch(base_offset: i64, base_timestamp: i64, n: usize) -> Vec<u8> {
    let owned: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
        .map(|i| {
            (
                format!("k{i}").into_bytes(),
                format!("v{}", base_offset + i as i64).into_bytes(),
            )
        })
        .collect();
    let recs: Vec<KeyValue<'_>> = owned
        .iter()
        .map(|(k, v)| (Some(k.as_slice()), Some(v.as_slice())))
        .collect();
    build_batch(base_offset, base_timestamp, &recs)
}

/// Decodes every record of the batches in `buf` (any codec). For LogAppendTime batches
/// each record's timestamp is the batch maxTimestamp.
///
/// # Panics
/// On invalid input (it is a test helper).
pub fn decode_records(buf: &[u8]) -> Vec<TestRecord> {
    let mut out = Vec::new();
    let mut decoder = RecordDecoder::new(DEFAULT_MAX_UNCOMPRESSED_BYTES);
    for info in parse_batches(buf).expect("decode_records: invalid batches") {
        let records = decoder
            .records(&buf[info.range()], info.position)
            .expect("decode_records: undecodable batch");
        for r in records {
            let r = r.expect("decode_records: invalid record");
            out.push(TestRecord {
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
            });
        }
    }
    out
}

/// Every codec a v2 batch may use, for tests that run each case in all of them.
pub const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];
