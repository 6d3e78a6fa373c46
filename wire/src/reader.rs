//! Kafka's classic (non-flexible) encoding read field by field: big-endian integers,
//! `i16`-prefixed strings, `i32`-prefixed bytes and array counts. Every read is checked
//! against the bytes left, and an array count against what the bytes left could hold, so
//! nothing is allocated from a prefix the bytes don't pay for.
//!
//! For the few encodings decoded by hand rather than by the `kafka-protocol` codec: the
//! `__consumer_offsets` keys and values, and the old request versions the codec no longer
//! reads (`ironlog-protocol`'s `legacy` module).

use thiserror::Error;

/// Why a read failed, with the byte position where it did.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at byte {position}: {reason}")]
pub struct ReadError {
    pub position: usize,
    pub reason: String,
}

/// A cursor over `buf`.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn error(&self, reason: String) -> ReadError {
        ReadError {
            position: self.pos,
            reason,
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        if n > self.remaining() {
            return Err(self.error(format!("needs {n} bytes, only {} left", self.remaining())));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn i8(&mut self) -> Result<i8, ReadError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    pub fn i16(&mut self) -> Result<i16, ReadError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> Result<i32, ReadError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, ReadError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// A `NULLABLE_STRING`: `i16` length (-1, or any negative length, is null) and UTF-8.
    pub fn nullable_str(&mut self) -> Result<Option<&'a str>, ReadError> {
        let Ok(len) = usize::try_from(self.i16()?) else {
            return Ok(None);
        };
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|e| self.error(format!("string is not UTF-8: {e}")))
    }

    /// A `NULLABLE_BYTES`: `i32` length (negative is null) and the bytes.
    pub fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, ReadError> {
        let Ok(len) = usize::try_from(self.i32()?) else {
            return Ok(None);
        };
        self.take(len).map(Some)
    }

    /// An `ARRAY` count (`i32`, not null) whose elements take at least `min_element` bytes
    /// each: a count the bytes left can't hold is refused before any element is read.
    pub fn count(&mut self, min_element: usize) -> Result<usize, ReadError> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| self.error(format!("array count {n}")))?;
        if n > self.remaining() / min_element.max(1) {
            return Err(self.error(format!(
                "array count {n} exceeds what the {} bytes left can hold",
                self.remaining()
            )));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_refuses_what_the_bytes_do_not_hold() {
        let mut b = Vec::new();
        b.extend_from_slice(&7i16.to_be_bytes());
        b.extend_from_slice(&3i16.to_be_bytes());
        b.extend_from_slice(b"abc");
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(b"xy");
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        let mut r = Reader::new(&b);
        assert_eq!(r.i16(), Ok(7));
        assert_eq!(r.nullable_str(), Ok(Some("abc")));
        assert_eq!(r.nullable_str(), Ok(None));
        assert_eq!(r.nullable_bytes(), Ok(Some(&b"xy"[..])));
        let e = r.count(1).unwrap_err();
        assert!(e.reason.contains("array count 2147483647"), "{e}");
        assert_eq!(r.remaining(), 0);
        assert!(Reader::new(&[0, 5, b'a']).nullable_str().is_err());
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff]).count(1).is_err());
        assert!(Reader::new(&[1]).i16().is_err());
    }
}
