//! Writing records and record sections: the zigzag varints of the v2 record format and
//! the four codecs, compressing as Kafka's Java client does. The broker writes records only
//! when the log cleaner rewrites a batch that lost some of its records (the produce path
//! stores producers' bytes as they are); tests build batches with the same functions.

use std::io::{self, Read};

use crate::batch::Compression;
use crate::records::Record;

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

impl Record<'_> {
    /// Appends this record, length prefix included, with `timestamp_delta` in place of its
    /// own (the cleaner moves a batch's baseTimestamp when it sets the delete horizon);
    /// every other field is written as it was read, the headers byte for byte.
    pub fn encode_with_timestamp_delta(&self, timestamp_delta: i64, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(self.encoded.len() + 8);
        body.push(self.attributes as u8);
        put_varint(&mut body, timestamp_delta);
        put_varint(&mut body, i64::from(self.offset_delta));
        put_bytes(&mut body, self.key);
        put_bytes(&mut body, self.value);
        put_varint(&mut body, self.header_count() as i64);
        body.extend_from_slice(self.raw_headers());
        put_varint(out, body.len() as i64);
        out.extend_from_slice(&body);
    }
}

/// Compresses a records section as Kafka's Java client does: gzip, snappy in snappy-java's
/// stream format (32 KiB blocks), the lz4 frame format (64 KiB independent blocks), zstd
/// level 3. `Compression::None` copies.
pub fn compress(codec: Compression, raw: &[u8]) -> Vec<u8> {
    compress_reader(codec, raw).expect("compressing into memory does not fail")
}

/// [`compress`] from a reader, so a large input (a test's zip bomb) need not be in memory.
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
            let mut out = XERIAL_STREAM_HEADER.to_vec();
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

/// snappy-java's stream header: magic, then version 1 and minimum compatible version 1.
const XERIAL_STREAM_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

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
