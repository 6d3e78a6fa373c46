//! Builders and decoders of v2 record batches for tests: valid batches with any codec,
//! and the pieces (record encoder, compressor, header assembler) to build broken ones
//! with a correct CRC, so that only the field a test breaks is wrong.

use std::io::{self, Read};

use super::*;
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

/// Appends `v` as a zigzag varint (varlong; for values in i32 range it is also the varint).
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
}

/// Appends a length-prefixed byte string (`None` = length -1).
pub fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
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

/// Compresses a records section as Kafka's Java client does: gzip, snappy in snappy-java's
/// stream format (32 KiB blocks), the lz4 frame format, zstd.
pub fn compress(codec: Compression, raw: &[u8]) -> Vec<u8> {
    compress_reader(codec, raw).expect("compressing into memory does not fail")
}

/// [`compress`] from a reader, so a test can compress a large input (a zip bomb) without
/// holding it in memory.
///
/// # Errors
/// Only from `reader`.
pub fn compress_reader(codec: Compression, mut reader: impl Read) -> io::Result<Vec<u8>> {
    match codec {
        Compression::None => {
            let mut out = Vec::new();
            reader.read_to_end(&mut out)?;
            Ok(out)
        }
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            io::copy(&mut reader, &mut e)?;
            e.finish()
        }
        Compression::Snappy => {
            let mut out = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
            let mut block = vec![0u8; 32 * 1024];
            let mut encoder = snap::raw::Encoder::new();
            loop {
                let n = read_full(&mut reader, &mut block)?;
                if n == 0 {
                    return Ok(out);
                }
                let compressed = encoder
                    .compress_vec(&block[..n])
                    .map_err(io::Error::other)?;
                out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
                out.extend_from_slice(&compressed);
            }
        }
        Compression::Lz4 => {
            let mut e = lz4::EncoderBuilder::new()
                .level(4)
                .block_mode(lz4::BlockMode::Independent)
                .build(Vec::new())?;
            io::copy(&mut reader, &mut e)?;
            let (out, result) = e.finish();
            result.map(|()| out)
        }
        Compression::Zstd => {
            let mut out = Vec::new();
            zstd::stream::copy_encode(reader, &mut out, 3)?;
            Ok(out)
        }
    }
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

/// Fills `buf` as far as `reader` goes; returns the bytes read (less only at the end).
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
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

/// Overwrites recordsCount and recomputes the CRC, so only the count is wrong.
pub fn set_records_count(batch: &mut [u8], count: i32) {
    batch[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&count.to_be_bytes());
    update_crc(batch);
}

/// Builds a valid uncompressed CreateTime v2 batch. Record `i` gets offset
/// delta `i` and timestamp `base_timestamp + i`.
pub fn build_batch(base_offset: i64, base_timestamp: i64, records: &[KeyValue<'_>]) -> Vec<u8> {
    let specs: Vec<RecordSpec> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| RecordSpec {
            timestamp_delta: i as i64,
            offset_delta: i as i32,
            key: k.map(<[u8]>::to_vec),
            value: v.map(<[u8]>::to_vec),
            headers: Vec::new(),
        })
        .collect();
    build_records_batch(base_offset, base_timestamp, Compression::None, &specs)
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
