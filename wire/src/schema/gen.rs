//! Random valid messages from a layout, and structure-aware mutations of them, for the
//! fuzzers: the decoder tests in this crate and the broker fuzzer that sends them to a
//! running broker (`broker/server/tests/fuzz.rs`).
//!
//! [`generate`] writes a valid encoding of a layout at a version (arrays of zero to three
//! elements, short ASCII strings, random numbers, optional structures present or not,
//! known tagged fields when asked) and remembers where every length or count prefix is, so
//! [`mutate`] can push exactly those to their extremes as well as truncating and flipping
//! bytes anywhere.

use super::{within, Kind, Struct};

/// A small deterministic generator (xorshift64*), so a failing case is reproduced from
/// its seed alone.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// How a length or count prefix is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixWidth {
    I16,
    I32,
    /// An unsigned varint of this many bytes.
    Varint(usize),
}

/// Where a length or count prefix sits in an encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub offset: usize,
    pub width: PrefixWidth,
}

/// A generated message and the positions of its prefixes.
#[derive(Debug, Clone, Default)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub prefixes: Vec<Prefix>,
}

/// Options for [`generate`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Write known tagged fields (each with probability one half) and one unknown tag.
    pub tagged: bool,
    /// Most elements per array.
    pub max_elements: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tagged: false,
            max_elements: 3,
        }
    }
}

/// A valid random encoding of `layout` at `version`.
pub fn generate(layout: &'static Struct, version: i16, rng: &mut Rng, options: Options) -> Encoded {
    let mut out = Encoded::default();
    Gen {
        rng,
        version,
        options,
    }
    .structure(layout, &mut out);
    out
}

struct Gen<'r> {
    rng: &'r mut Rng,
    version: i16,
    options: Options,
}

fn put_uvarint(out: &mut Vec<u8>, mut value: u32) -> usize {
    let start = out.len();
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out.len() - start
}

impl Gen<'_> {
    fn structure(&mut self, s: &'static Struct, out: &mut Encoded) {
        let version = self.version;
        for field in s.fields.iter().filter(|f| within(f.versions, version)) {
            self.kind(&field.kind, out);
        }
        if self.version < s.flexible {
            return;
        }
        let mut fields: Vec<(u32, Encoded)> = Vec::new();
        if self.options.tagged {
            let mut known: Vec<_> = s
                .tagged
                .iter()
                .filter(|t| within(t.versions, self.version))
                .collect();
            known.sort_by_key(|t| t.tag);
            for t in known {
                if self.rng.chance(2) {
                    let mut value = Encoded::default();
                    self.kind(&t.kind, &mut value);
                    fields.push((t.tag, value));
                }
            }
            let unknown = (0..self.rng.below(4))
                .map(|_| self.rng.below(256) as u8)
                .collect();
            fields.push((
                1000 + self.rng.below(100) as u32,
                Encoded {
                    bytes: unknown,
                    prefixes: Vec::new(),
                },
            ));
        }
        let at = out.bytes.len();
        let width = put_uvarint(&mut out.bytes, fields.len() as u32);
        out.prefixes.push(Prefix {
            offset: at,
            width: PrefixWidth::Varint(width),
        });
        for (tag, value) in fields {
            put_uvarint(&mut out.bytes, tag);
            let at = out.bytes.len();
            let width = put_uvarint(&mut out.bytes, value.bytes.len() as u32);
            out.prefixes.push(Prefix {
                offset: at,
                width: PrefixWidth::Varint(width),
            });
            let base = out.bytes.len();
            out.bytes.extend_from_slice(&value.bytes);
            out.prefixes.extend(value.prefixes.iter().map(|p| Prefix {
                offset: p.offset + base,
                width: p.width,
            }));
        }
    }

    fn random(&mut self, n: usize, out: &mut Encoded) {
        for _ in 0..n {
            out.bytes.push(self.rng.below(256) as u8);
        }
    }

    fn ascii(&mut self, n: usize, out: &mut Encoded) {
        for _ in 0..n {
            out.bytes.push(b'a' + self.rng.below(26) as u8);
        }
    }

    fn len_i16(&mut self, len: usize, out: &mut Encoded) {
        out.prefixes.push(Prefix {
            offset: out.bytes.len(),
            width: PrefixWidth::I16,
        });
        out.bytes.extend_from_slice(&(len as i16).to_be_bytes());
    }

    fn len_i32(&mut self, len: usize, out: &mut Encoded) {
        out.prefixes.push(Prefix {
            offset: out.bytes.len(),
            width: PrefixWidth::I32,
        });
        out.bytes.extend_from_slice(&(len as i32).to_be_bytes());
    }

    fn len_compact(&mut self, len: usize, out: &mut Encoded) {
        let at = out.bytes.len();
        let width = put_uvarint(&mut out.bytes, len as u32 + 1);
        out.prefixes.push(Prefix {
            offset: at,
            width: PrefixWidth::Varint(width),
        });
    }

    fn kind(&mut self, kind: &'static Kind, out: &mut Encoded) {
        match kind {
            Kind::Int8 => self.random(1, out),
            Kind::Bool => out.bytes.push(self.rng.below(2) as u8),
            Kind::Int16 | Kind::Uint16 => self.random(2, out),
            Kind::Int32 | Kind::Uint32 => self.random(4, out),
            Kind::Int64 => self.random(8, out),
            // A finite double: random sign and mantissa, small exponent.
            Kind::Float64 => {
                let v = (self.rng.below(1 << 20) as f64) / 7.0;
                out.bytes.extend_from_slice(&v.to_be_bytes());
            }
            Kind::Uuid => self.random(16, out),
            // Small values encode the same in all three (zigzag only changes the number).
            Kind::UnsignedVarInt | Kind::VarInt | Kind::VarLong => {
                let v = self.rng.below(1 << 20) as u32;
                put_uvarint(&mut out.bytes, v);
            }
            Kind::String => {
                let n = self.rng.below(9) as usize;
                self.len_i16(n, out);
                self.ascii(n, out);
            }
            Kind::CompactString => {
                let n = self.rng.below(9) as usize;
                self.len_compact(n, out);
                self.ascii(n, out);
            }
            Kind::Bytes => {
                let n = self.rng.below(17) as usize;
                self.len_i32(n, out);
                self.random(n, out);
            }
            Kind::CompactBytes => {
                let n = self.rng.below(17) as usize;
                self.len_compact(n, out);
                self.random(n, out);
            }
            Kind::Array(element) => {
                let n = self.rng.below(self.options.max_elements + 1) as usize;
                self.len_i32(n, out);
                for _ in 0..n {
                    self.kind(element, out);
                }
            }
            Kind::CompactArray(element) => {
                let n = self.rng.below(self.options.max_elements + 1) as usize;
                self.len_compact(n, out);
                for _ in 0..n {
                    self.kind(element, out);
                }
            }
            Kind::Struct(s) => self.structure(s, out),
            Kind::OptionStruct(s) => {
                if self.rng.chance(2) {
                    out.bytes.push(0xff);
                } else {
                    out.bytes.push(1);
                    self.structure(s, out);
                }
            }
        }
    }
}

/// One structure-aware mutation of `message`: a length or count prefix pushed to an
/// extreme (the most common), a truncation, flipped bytes, or inserted random bytes.
pub fn mutate(message: &Encoded, rng: &mut Rng) -> Vec<u8> {
    let mut bytes = message.bytes.clone();
    let choice = rng.below(10);
    if choice < 6 && !message.prefixes.is_empty() {
        let p = message.prefixes[rng.below(message.prefixes.len() as u64) as usize];
        match p.width {
            PrefixWidth::I16 => {
                let v = [i16::MAX, i16::MIN, -2, -1, 0x4000][rng.below(5) as usize];
                bytes[p.offset..p.offset + 2].copy_from_slice(&v.to_be_bytes());
            }
            PrefixWidth::I32 => {
                let remaining = (bytes.len() - p.offset) as i32;
                let v =
                    [i32::MAX, i32::MIN, -2, -1, 0x4000_0000, remaining + 1][rng.below(6) as usize];
                bytes[p.offset..p.offset + 4].copy_from_slice(&v.to_be_bytes());
            }
            PrefixWidth::Varint(width) => {
                let v = [u32::MAX, 0x7fff_ffff, 0x8000_0000, 0xffff_fff0][rng.below(4) as usize];
                let mut new = Vec::new();
                put_uvarint(&mut new, v);
                bytes.splice(p.offset..p.offset + width, new);
            }
        }
    } else if choice < 8 {
        let cut = rng.below(bytes.len() as u64 + 1) as usize;
        bytes.truncate(cut);
    } else if choice < 9 && !bytes.is_empty() {
        for _ in 0..=rng.below(4) {
            let i = rng.below(bytes.len() as u64) as usize;
            bytes[i] = rng.below(256) as u8;
        }
    } else {
        let i = rng.below(bytes.len() as u64 + 1) as usize;
        let n = 1 + rng.below(8) as usize;
        let insert: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
        bytes.splice(i..i, insert);
    }
    bytes
}
