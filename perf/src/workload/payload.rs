//! Record values: a 24-byte header that lets the consumer check every record and time it,
//! then a body cut from a pool of random bytes or generated text.
//!
//! Header (big-endian): run id (u32), producer (u32), sequence (u64, per producer, from
//! 0), send time (u64, microseconds since the Unix epoch). Producer and consumers run on
//! the same machine, so send time against receive time is the end-to-end latency.
//!
//! Bodies are windows at random offsets of a large pool (64 MiB of random bytes, or
//! 16 MiB of text), so records differ and a compressor finds in a batch only what the
//! payload itself offers: random windows of a 64 MiB pool rarely overlap within one
//! batch, text repeats as log lines do.

use ironlog_wire::batch::Compression as Codec;

pub const HEADER_LEN: usize = 24;
const RANDOM_POOL: usize = 64 << 20;
const TEXT_POOL: usize = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub run: u32,
    pub producer: u32,
    pub seq: u64,
    pub sent_us: u64,
}

impl Header {
    pub fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.run.to_be_bytes());
        out[4..8].copy_from_slice(&self.producer.to_be_bytes());
        out[8..16].copy_from_slice(&self.seq.to_be_bytes());
        out[16..24].copy_from_slice(&self.sent_us.to_be_bytes());
    }

    /// The header of a value, or `None` if it is too short to have one.
    pub fn read(value: &[u8]) -> Option<Header> {
        let field = |r: std::ops::Range<usize>| value.get(r);
        Some(Header {
            run: u32::from_be_bytes(field(0..4)?.try_into().ok()?),
            producer: u32::from_be_bytes(field(4..8)?.try_into().ok()?),
            seq: u64::from_be_bytes(field(8..16)?.try_into().ok()?),
            sent_us: u64::from_be_bytes(field(16..24)?.try_into().ok()?),
        })
    }
}

/// A small, fast, seedable generator (SplitMix64); statistical quality is ample for
/// payloads and key choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

pub fn random_pool(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

const WORDS: &[&str] = &[
    "the",
    "order",
    "payment",
    "user",
    "request",
    "completed",
    "failed",
    "retry",
    "cache",
    "session",
    "timeout",
    "connection",
    "accepted",
    "shipped",
    "inventory",
    "warehouse",
    "customer",
    "invoice",
    "refund",
    "checkout",
    "cart",
    "item",
    "price",
    "currency",
    "EUR",
    "USD",
    "token",
    "expired",
    "validated",
    "queued",
    "processed",
    "batch",
    "worker",
    "shard",
    "region",
    "eu-west-1",
    "us-east-2",
    "latency",
    "upstream",
    "downstream",
    "service",
    "handler",
    "received",
    "sent",
    "status",
    "pending",
    "confirmed",
    "cancelled",
    "address",
    "updated",
    "created",
    "deleted",
    "account",
    "login",
    "logout",
    "password",
    "reset",
    "notification",
    "email",
    "sms",
    "push",
    "delivered",
    "bounced",
    "opened",
    "clicked",
];
const LEVELS: &[&str] = &["INFO", "INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];
const SERVICES: &[&str] = &[
    "orders", "payments", "users", "shipping", "search", "gateway",
];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const STATUS: &[u16] = &[200, 200, 200, 200, 201, 204, 400, 404, 500, 503];

/// Log lines such as applications write: ISO timestamp, level, service, request id,
/// user, HTTP method and path, status, latency and a few words. Words are drawn with a
/// skew towards the first ones, as natural text is.
pub fn text_pool(len: usize, seed: u64) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(len + 512);
    let mut ms = 1_764_650_000_000u64 + rng.below(10_000_000);
    while out.len() < len {
        ms += rng.below(40);
        let (secs, milli) = (ms / 1000, ms % 1000);
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let pick = |rng: &mut Rng, xs: &[&'static str]| xs[rng.below(xs.len() as u64) as usize];
        let _ = write!(
            out,
            "2026-12-02T{h:02}:{m:02}:{s:02}.{milli:03}Z {:<5} {}-svc [req={:08x}] user={} {} \
             /api/v1/{}/{} {} {}ms",
            pick(&mut rng, LEVELS),
            pick(&mut rng, SERVICES),
            rng.next_u64() as u32,
            rng.below(100_000),
            pick(&mut rng, METHODS),
            pick(&mut rng, SERVICES),
            rng.below(1_000_000),
            STATUS[rng.below(STATUS.len() as u64) as usize],
            1 + rng.below(250),
        );
        out.push_str(" \"");
        for i in 0..3 + rng.below(9) {
            if i > 0 {
                out.push(' ');
            }
            // u^2 skews towards the first words.
            let u = rng.below(1 << 16);
            let idx = ((u * u) * WORDS.len() as u64) >> 32;
            out.push_str(WORDS[idx as usize]);
        }
        out.push_str("\"\n");
    }
    let mut bytes = out.into_bytes();
    bytes.truncate(len);
    bytes
}

/// The bodies records are cut from.
pub struct Pool {
    bytes: Vec<u8>,
    body_len: usize,
}

impl Pool {
    pub fn new(kind: crate::workload::spec::PayloadKind, record_size: usize, seed: u64) -> Pool {
        use crate::workload::spec::PayloadKind;
        let body_len = record_size.saturating_sub(HEADER_LEN);
        let bytes = match kind {
            PayloadKind::Random => random_pool(RANDOM_POOL.max(body_len * 2), seed),
            PayloadKind::Text => text_pool(TEXT_POOL.max(body_len * 2), seed),
        };
        Pool { bytes, body_len }
    }

    /// A body at a random offset.
    pub fn body(&self, rng: &mut Rng) -> &[u8] {
        let span = (self.bytes.len() - self.body_len) as u64;
        let start = rng.below(span + 1) as usize;
        &self.bytes[start..start + self.body_len]
    }

    /// How much `codec` shrinks these values: about 1 MiB of whole values (header and
    /// body, one after another, as in a producer's batch) against what it compresses to.
    /// Above 1.0 means smaller on the wire and on disk.
    pub fn compression_ratio(&self, codec: Codec, record_size: usize, seed: u64) -> f64 {
        let mut rng = Rng::new(seed);
        let count = (1 << 20) / record_size.max(1) + 1;
        let mut raw = Vec::with_capacity(count * record_size);
        let mut header = [0u8; HEADER_LEN];
        for seq in 0..count as u64 {
            Header {
                run: 1,
                producer: 0,
                seq,
                sent_us: 1_764_650_000_000_000 + seq * 20,
            }
            .write(&mut header);
            raw.extend_from_slice(&header[..record_size.min(HEADER_LEN)]);
            raw.extend_from_slice(self.body(&mut rng));
        }
        let compressed = ironlog_wire::encode::compress(codec, &raw);
        raw.len() as f64 / compressed.len().max(1) as f64
    }
}

pub fn codec_of(c: crate::Compression) -> Codec {
    match c {
        crate::Compression::None => Codec::None,
        crate::Compression::Gzip => Codec::Gzip,
        crate::Compression::Snappy => Codec::Snappy,
        crate::Compression::Lz4 => Codec::Lz4,
        crate::Compression::Zstd => Codec::Zstd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::spec::PayloadKind;

    #[test]
    fn header_round_trips_and_short_values_have_none() {
        let h = Header {
            run: 0xdead_beef,
            producer: 29,
            seq: 1 << 40,
            sent_us: 1_764_650_000_123_456,
        };
        let mut value = vec![7u8; 100];
        h.write(&mut value);
        assert_eq!(Header::read(&value), Some(h));
        assert_eq!(&value[24..], &[7u8; 76][..]);
        assert_eq!(Header::read(&value[..23]), None);
    }

    #[test]
    fn rng_below_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(5);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[rng.below(10) as usize] += 1;
        }
        // Each of ten values about 1,000 times.
        assert!(seen.iter().all(|&n| (850..1150).contains(&n)), "{seen:?}");
    }

    #[test]
    fn random_bodies_do_not_compress_and_text_does() {
        let random = Pool::new(PayloadKind::Random, 1024, 1);
        let lz4 = random.compression_ratio(Codec::Lz4, 1024, 2);
        let zstd = random.compression_ratio(Codec::Zstd, 1024, 2);
        // Only the 24-byte headers (2% of a 1 KiB value) hold anything to squeeze.
        assert!(lz4 < 1.03 && zstd < 1.03, "random: lz4 {lz4}, zstd {zstd}");
        let text = Pool::new(PayloadKind::Text, 1024, 3);
        let lz4 = text.compression_ratio(Codec::Lz4, 1024, 4);
        let zstd = text.compression_ratio(Codec::Zstd, 1024, 4);
        // Log lines compress, but not to nothing: between 1.5x and 8x.
        assert!((1.5..8.0).contains(&lz4), "text lz4 {lz4}");
        assert!(zstd > lz4 && zstd < 12.0, "text zstd {zstd} vs lz4 {lz4}");
    }

    #[test]
    fn text_is_log_lines() {
        let text = text_pool(4096, 9);
        assert_eq!(text.len(), 4096);
        let s = String::from_utf8(text).unwrap_or_else(|e| panic!("{e}"));
        let first = s.lines().next().unwrap_or_default();
        assert!(first.starts_with("2026-12-02T"), "{first}");
        assert!(first.contains("-svc [req="), "{first}");
        assert!(s.lines().count() > 10);
    }

    #[test]
    fn bodies_have_the_body_length() {
        let pool = Pool::new(PayloadKind::Random, 100, 1);
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            assert_eq!(pool.body(&mut rng).len(), 76);
        }
    }
}
