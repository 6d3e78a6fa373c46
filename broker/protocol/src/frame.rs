//! Length-prefixed frames: `[size: i32 BE][size bytes]`.

use bytes::{Buf, Bytes, BytesMut};

/// Kafka's default `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// A frame that can never be valid. The connection that sent it must be closed, because the
/// byte stream can't be resynchronised after a bad length.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame size {size} is negative")]
    NegativeSize { size: i32 },
    #[error("frame size {size} bytes exceeds socket.request.max.bytes ({max} bytes)")]
    TooLarge { size: usize, max: usize },
}

/// Takes one complete frame off the front of `buf`.
///
/// Returns `Ok(None)` when `buf` doesn't hold a whole frame yet ("incomplete" is not an
/// error: read more bytes and call again). The size is checked as soon as the 4-byte prefix
/// has arrived, so an oversize request is refused before its body is buffered.
pub fn parse_frame(buf: &mut BytesMut, max_size: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(FrameError::NegativeSize { size });
    }
    let size = size as usize;
    if size > max_size {
        return Err(FrameError::TooLarge {
            size,
            max: max_size,
        });
    }
    if buf.len() < 4 + size {
        // Reserve now so the socket read can fill the whole frame without reallocating.
        buf.reserve(4 + size - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_then_complete() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0, 0, 0, 3, b'a']);
        assert_eq!(parse_frame(&mut buf, 10), Ok(None));
        buf.extend_from_slice(b"bcX");
        assert_eq!(
            parse_frame(&mut buf, 10),
            Ok(Some(Bytes::from_static(b"abc")))
        );
        assert_eq!(&buf[..], b"X");
    }

    #[test]
    fn two_frames_in_one_read_come_out_in_order() {
        let mut buf = BytesMut::from(&[0, 0, 0, 1, b'a', 0, 0, 0, 2, b'b', b'c'][..]);
        assert_eq!(parse_frame(&mut buf, 10).unwrap().unwrap(), &b"a"[..]);
        assert_eq!(parse_frame(&mut buf, 10).unwrap().unwrap(), &b"bc"[..]);
        assert!(buf.is_empty());
    }

    #[test]
    fn oversize_is_refused_from_the_prefix_alone() {
        let mut buf = BytesMut::from(&[0, 0, 1, 0][..]);
        assert_eq!(
            parse_frame(&mut buf, 255),
            Err(FrameError::TooLarge {
                size: 256,
                max: 255
            })
        );
    }

    #[test]
    fn negative_size_is_refused() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert_eq!(
            parse_frame(&mut buf, 255),
            Err(FrameError::NegativeSize { size: -2 })
        );
    }
}
