//! Length checking of Kafka messages before they are decoded.
//!
//! # Why
//! The `kafka_protocol` decoders trust the wire: an array whose count prefix says
//! 0x7fffffff elements makes them call `Vec::with_capacity` for that many elements before
//! reading the first one, and a compact string or byte array is zero-filled to its claimed
//! length before the bytes are copied. One 13-byte Metadata request is then enough to make
//! the process abort on a failed allocation of 150 GB.
//!
//! So nothing from the network reaches those decoders unchecked. [`check`] walks a message
//! with the message's [layout](tables), reading exactly what the decoder will read, and
//! verifies every count and length prefix against the bytes actually left: a string or byte
//! array must fit in what remains, an array's count times the smallest encoding of one
//! element must fit too, tagged fields must fit and be exactly as long as they say. Only a
//! message that passes is handed to the decoder, whose allocations are then bounded by the
//! size of the frame. The walk allocates nothing.
//!
//! # Invariants
//! - The walk reads the same bytes in the same order as the `kafka_protocol` decoder for the
//!   same message and version (fields, version gates, compact or not, varint rules, known
//!   tagged fields). The tables are generated from that decoder by
//!   `scripts/gen-wire-schema.py`, and the round-trip tests prove the agreement for every
//!   message and version listed.
//! - A message the walk accepts may still be refused by the decoder (a null where none is
//!   allowed, bad UTF-8): the walk is about the safety of allocations, not full validity.
//! - Every API the broker serves has a request layout for every served version; the tests
//!   check it, so serving a new API means adding its layout first.

pub mod gen;
#[rustfmt::skip]
pub mod tables;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Decodable;

/// The wire layout of one structure (a message, or a structure nested in one).
#[derive(Debug)]
pub struct Struct {
    pub name: &'static str,
    /// The versions the decoder accepts, inclusive.
    pub versions: (i16, i16),
    /// The first flexible version (compact encodings, tagged fields); `i16::MAX` if none.
    pub flexible: i16,
    /// The fields in wire order; a field may appear more than once with disjoint version
    /// ranges when its encoding changes (compact in flexible versions).
    pub fields: &'static [Field],
    /// Tagged fields the decoder knows; any other tag is skipped by its size.
    pub tagged: &'static [Tagged],
}

/// A field present in `versions` (inclusive), encoded as `kind`.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub versions: (i16, i16),
    pub kind: Kind,
}

/// A known tagged field.
#[derive(Debug)]
pub struct Tagged {
    pub tag: u32,
    pub name: &'static str,
    pub versions: (i16, i16),
    pub kind: Kind,
}

/// How a field is encoded.
#[derive(Debug)]
pub enum Kind {
    Int8,
    Int16,
    Int32,
    Int64,
    Uint16,
    Uint32,
    Float64,
    Bool,
    Uuid,
    UnsignedVarInt,
    VarInt,
    VarLong,
    /// `i16` length, -1 for null.
    String,
    /// Unsigned varint length + 1, 0 for null.
    CompactString,
    /// `i32` length, -1 for null (record batches travel as these).
    Bytes,
    /// Unsigned varint length + 1, 0 for null.
    CompactBytes,
    /// `i32` count, -1 for null.
    Array(&'static Kind),
    /// Unsigned varint count + 1, 0 for null.
    CompactArray(&'static Kind),
    Struct(&'static Struct),
    /// `i8` presence marker (1 = present), then the structure.
    OptionStruct(&'static Struct),
}

fn within((min, max): (i16, i16), version: i16) -> bool {
    min <= version && version <= max
}

/// Why a message was refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} v{version}: {reason} (field {path}, byte {offset})")]
pub struct WireError {
    pub message: &'static str,
    pub version: i16,
    /// Where in the message, e.g. `topics[3].partitions`.
    pub path: String,
    /// Byte offset of the offending prefix from the start of the checked bytes.
    pub offset: usize,
    pub reason: Reason,
}

/// The rule a message broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("version is outside {min}..={max}")]
    UnsupportedVersion { min: i16, max: i16 },
    #[error("needs {needed} more bytes, {remaining} left")]
    Truncated { needed: u64, remaining: usize },
    #[error("length {length} is negative")]
    NegativeLength { length: i64 },
    #[error("{count} elements of at least {min_each} bytes each can't fit in the {remaining} bytes left")]
    CountTooLarge {
        count: u64,
        min_each: usize,
        remaining: usize,
    },
    #[error("tagged field {tag} is not valid in this version")]
    TagNotInVersion { tag: u32 },
    #[error("tagged field {tag} says {size} bytes but its value takes {actual}")]
    TaggedSizeMismatch { tag: u32, size: u64, actual: usize },
    #[error("no layout is known for this message")]
    NoLayout,
}

/// Checks that `bytes` starts with a `layout` message of `version` whose every length and
/// count fits in the bytes present. Returns how many bytes the message takes (bytes after
/// it are the caller's business: Kafka ignores trailing bytes after a request body).
///
/// # Errors
/// [`WireError`] naming the field and the broken rule.
pub fn check(layout: &'static Struct, version: i16, bytes: &[u8]) -> Result<usize, WireError> {
    let fail = |path: String, offset, reason| WireError {
        message: layout.name,
        version,
        path,
        offset,
        reason,
    };
    if !within(layout.versions, version) {
        return Err(fail(
            String::new(),
            0,
            Reason::UnsupportedVersion {
                min: layout.versions.0,
                max: layout.versions.1,
            },
        ));
    }
    let mut walk = Walk {
        bytes,
        pos: 0,
        version,
    };
    match walk.structure(layout) {
        Ok(()) => Ok(walk.pos),
        Err(e) => Err(fail(e.path(), e.offset, e.reason)),
    }
}

/// The request body layout of `api`, if known.
pub fn request_layout(api: ApiKey) -> Option<&'static Struct> {
    tables::APIS
        .iter()
        .find(|(key, _, _)| *key == api)
        .map(|(_, req, _)| *req)
}

/// The response body layout of `api`, if known.
pub fn response_layout(api: ApiKey) -> Option<&'static Struct> {
    tables::APIS
        .iter()
        .find(|(key, _, _)| *key == api)
        .map(|(_, _, resp)| *resp)
}

/// Why [`decode`] refused: the lengths didn't check out, or the decoder itself failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckedDecodeError {
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("malformed {message} v{version}: {reason}")]
    Decode {
        message: &'static str,
        version: i16,
        reason: String,
    },
}

/// Checks `bytes` against `layout`, then decodes it as `T`, advancing `bytes` past the
/// message. Use this for every message whose bytes come from outside the process.
///
/// # Errors
/// [`CheckedDecodeError::Wire`] before anything is allocated, or the decoder's error.
pub fn decode<T: Decodable>(
    layout: &'static Struct,
    bytes: &mut Bytes,
    version: i16,
) -> Result<T, CheckedDecodeError> {
    check(layout, version, bytes)?;
    T::decode(bytes, version).map_err(|e| CheckedDecodeError::Decode {
        message: layout.name,
        version,
        reason: format!("{e:#}"),
    })
}

/// Where a walk failed; the path is built on the way back up, only on error.
struct Failure {
    offset: usize,
    reason: Reason,
    path: Vec<Step>,
}

enum Step {
    Field(&'static str),
    Index(u64),
}

impl Failure {
    fn at(offset: usize, reason: Reason) -> Self {
        Failure {
            offset,
            reason,
            path: Vec::new(),
        }
    }

    fn path(&self) -> String {
        let mut out = String::new();
        for step in self.path.iter().rev() {
            match step {
                Step::Field(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if out.is_empty() {
            out.push_str("<message>");
        }
        out
    }
}

struct Walk<'a> {
    bytes: &'a [u8],
    pos: usize,
    version: i16,
}

impl Walk<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: u64) -> Result<&[u8], Failure> {
        if n > self.remaining() as u64 {
            return Err(Failure::at(
                self.pos,
                Reason::Truncated {
                    needed: n,
                    remaining: self.remaining(),
                },
            ));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn int(&mut self, n: usize) -> Result<i64, Failure> {
        let b = self.take(n as u64)?;
        Ok(b.iter().fold(0i64, |acc, &x| (acc << 8) | x as i64) << (64 - 8 * n) >> (64 - 8 * n))
    }

    /// Reads an unsigned varint exactly as the `kafka_protocol` decoder does: at most five
    /// bytes, stopping at the first without the continuation bit, high bits dropped.
    fn uvarint(&mut self) -> Result<u32, Failure> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.take(1)?[0] as u32;
            value |= (b & 0x7f) << (i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    /// Like [`Walk::uvarint`] for the ten-byte long form.
    fn uvarlong(&mut self) -> Result<(), Failure> {
        for _ in 0..10 {
            if self.take(1)?[0] < 0x80 {
                break;
            }
        }
        Ok(())
    }

    /// Skips a length-prefixed run of `len` bytes; `len` of `None` is null.
    fn skip(&mut self, len: Option<u64>) -> Result<(), Failure> {
        if let Some(len) = len {
            self.take(len)?;
        }
        Ok(())
    }

    fn signed_len(&mut self, width: usize) -> Result<Option<u64>, Failure> {
        let at = self.pos;
        match self.int(width)? {
            -1 => Ok(None),
            n if n < -1 => Err(Failure::at(at, Reason::NegativeLength { length: n })),
            n => Ok(Some(n as u64)),
        }
    }

    fn compact_len(&mut self) -> Result<Option<u64>, Failure> {
        Ok(match self.uvarint()? {
            0 => None,
            n => Some(n as u64 - 1),
        })
    }

    fn structure(&mut self, s: &'static Struct) -> Result<(), Failure> {
        let version = self.version;
        for field in s.fields.iter().filter(|f| within(f.versions, version)) {
            self.kind(&field.kind).map_err(|mut e| {
                e.path.push(Step::Field(field.name));
                e
            })?;
        }
        if version >= s.flexible {
            self.tagged_fields(s)?;
        }
        Ok(())
    }

    fn tagged_fields(&mut self, s: &'static Struct) -> Result<(), Failure> {
        let at = self.pos;
        let count = self.uvarint()? as u64;
        // Each tagged field takes at least two bytes (tag and size).
        self.fits(at, count, 2)?;
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size_at = self.pos;
            let size = self.uvarint()? as u64;
            if size > self.remaining() as u64 {
                return Err(Failure::at(
                    size_at,
                    Reason::Truncated {
                        needed: size,
                        remaining: self.remaining(),
                    },
                ));
            }
            match s.tagged.iter().find(|t| t.tag == tag) {
                Some(known) if within(known.versions, self.version) => {
                    let start = self.pos;
                    self.kind(&known.kind).map_err(|mut e| {
                        e.path.push(Step::Field(known.name));
                        e
                    })?;
                    // The decoder reads a known tag's value without looking at its size, so
                    // a size that lies would put it out of step with this walk.
                    let actual = self.pos - start;
                    if actual as u64 != size {
                        return Err(Failure::at(
                            size_at,
                            Reason::TaggedSizeMismatch { tag, size, actual },
                        ));
                    }
                }
                Some(_) => return Err(Failure::at(size_at, Reason::TagNotInVersion { tag })),
                None => self.skip(Some(size))?,
            }
        }
        Ok(())
    }

    /// Refuses `count` elements of at least `min_each` bytes that can't fit in what is left.
    fn fits(&self, at: usize, count: u64, min_each: usize) -> Result<(), Failure> {
        let remaining = self.remaining();
        if count.saturating_mul(min_each.max(1) as u64) > remaining as u64 {
            return Err(Failure::at(
                at,
                Reason::CountTooLarge {
                    count,
                    min_each,
                    remaining,
                },
            ));
        }
        Ok(())
    }

    fn array(
        &mut self,
        element: &'static Kind,
        count: Option<u64>,
        at: usize,
    ) -> Result<(), Failure> {
        let Some(count) = count else { return Ok(()) };
        self.fits(at, count, min_size(element, self.version))?;
        for i in 0..count {
            self.kind(element).map_err(|mut e| {
                e.path.push(Step::Index(i));
                e
            })?;
        }
        Ok(())
    }

    fn kind(&mut self, kind: &'static Kind) -> Result<(), Failure> {
        let at = self.pos;
        match kind {
            Kind::Int8 | Kind::Bool => self.take(1).map(drop),
            Kind::Int16 | Kind::Uint16 => self.take(2).map(drop),
            Kind::Int32 | Kind::Uint32 => self.take(4).map(drop),
            Kind::Int64 | Kind::Float64 => self.take(8).map(drop),
            Kind::Uuid => self.take(16).map(drop),
            Kind::UnsignedVarInt | Kind::VarInt => self.uvarint().map(drop),
            Kind::VarLong => self.uvarlong(),
            Kind::String => {
                let len = self.signed_len(2)?;
                self.skip(len)
            }
            Kind::Bytes => {
                let len = self.signed_len(4)?;
                self.skip(len)
            }
            Kind::CompactString | Kind::CompactBytes => {
                let len = self.compact_len()?;
                self.skip(len)
            }
            Kind::Array(element) => {
                let count = self.signed_len(4)?;
                self.array(element, count, at)
            }
            Kind::CompactArray(element) => {
                let count = self.compact_len()?;
                self.array(element, count, at)
            }
            Kind::Struct(s) => self.structure(s),
            Kind::OptionStruct(s) => {
                if self.int(1)? == 1 {
                    self.structure(s)
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// The fewest bytes one value of `kind` takes in `version`.
pub fn min_size(kind: &Kind, version: i16) -> usize {
    match kind {
        Kind::Int8 | Kind::Bool | Kind::OptionStruct(_) => 1,
        Kind::UnsignedVarInt | Kind::VarInt | Kind::VarLong => 1,
        Kind::CompactString | Kind::CompactBytes | Kind::CompactArray(_) => 1,
        Kind::Int16 | Kind::Uint16 | Kind::String => 2,
        Kind::Int32 | Kind::Uint32 | Kind::Bytes | Kind::Array(_) => 4,
        Kind::Int64 | Kind::Float64 => 8,
        Kind::Uuid => 16,
        Kind::Struct(s) => {
            let fields: usize = s
                .fields
                .iter()
                .filter(|f| within(f.versions, version))
                .map(|f| min_size(&f.kind, version))
                .sum();
            fields + usize::from(version >= s.flexible)
        }
    }
}
