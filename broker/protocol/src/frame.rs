//! Length-prefixed frames: `[size: i32 BE][size bytes]`.
//!
//! The size prefix is untrusted: it only ever decides whether a frame is refused (negative or
//! over `socket.request.max.bytes`) and how many bytes of it are still missing. Memory follows
//! the bytes that actually arrived: [`reserve_for_read`] grows a connection's buffer in bounded,
//! geometric steps, so a client that declares 100 MiB and sends 1 MiB costs about 1 MiB, not
//! 100 MiB. (Budgeting the bytes across connections is the server's job; see its `net` module.)

use bytes::{Buf, Bytes, BytesMut};

/// Kafka's default `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// Bytes a read may take in before the frame at the front of the buffer is known to need them.
///
/// This is what lets one read pick up several small pipelined requests, and it is also the most a
/// connection buffers beyond the frame it is reading: small, because a broker holds thousands of
/// connections.
pub const READ_AHEAD: usize = 8 * 1024;

/// Smallest step by which the buffer of a large frame grows. Past this, each step is as large as
/// what has already arrived (geometric growth: O(log n) reads and an amortised copy per byte).
pub const READ_CHUNK: usize = 64 * 1024;

/// A frame that can never be valid. The connection that sent it must be closed, because the
/// byte stream can't be resynchronised after a bad length.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame size {size} is negative")]
    NegativeSize { size: i32 },
    #[error("frame size {size} bytes exceeds socket.request.max.bytes ({max} bytes)")]
    TooLarge { size: usize, max: usize },
}

/// The size declared by the frame at the front of `buf`, once its 4-byte prefix has arrived.
///
/// `Ok(None)` until then. The size is checked here, so an oversize or negative frame is refused
/// from its prefix alone, before any of its body is buffered.
pub fn frame_size(buf: &[u8], max_size: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let size = i32::from_be_bytes(*prefix);
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
    Ok(Some(size))
}

/// Takes one complete frame off the front of `buf`.
///
/// Returns `Ok(None)` when `buf` doesn't hold a whole frame yet ("incomplete" is not an
/// error: read more bytes and call again). Nothing is reserved from the prefix: see
/// [`reserve_for_read`] for how the buffer grows.
///
/// A frame bigger than [`READ_AHEAD`] had the buffer grown for it; what is left in `buf` is then
/// moved to a fresh allocation, so the frame's allocation is freed as soon as the frame is
/// dropped instead of staying behind as `buf`'s spare capacity for the connection's lifetime.
pub fn parse_frame(buf: &mut BytesMut, max_size: usize) -> Result<Option<Bytes>, FrameError> {
    let Some(size) = frame_size(buf, max_size)? else {
        return Ok(None);
    };
    if buf.len() < 4 + size {
        return Ok(None);
    }
    buf.advance(4);
    let frame = buf.split_to(size).freeze();
    if size > READ_AHEAD {
        *buf = BytesMut::from(&buf[..]);
    }
    Ok(Some(frame))
}

/// Makes room in `buf` for the next socket read and returns how many bytes that read may add.
///
/// Call it after [`parse_frame`] has taken every complete frame. The answer is bounded so the
/// buffer never holds more than `max(READ_AHEAD, 4 + size of the frame at its front)` bytes:
/// - before the frame's prefix has arrived: up to [`READ_AHEAD`] bytes in all;
/// - within a frame: at most the bytes the frame still lacks, and at most
///   `max(READ_CHUNK, bytes buffered)`, so the buffer doubles as bytes arrive rather than
///   jumping to the declared size (small pipelined frames may still use the read-ahead).
///
/// Returns 0 only if a complete frame is buffered. The capacity reserved may exceed the answer
/// (the allocator rounds up, `BytesMut` grows by doubling), but callers read at most the answer,
/// and capacity that is never written is never resident.
pub fn reserve_for_read(buf: &mut BytesMut, max_size: usize) -> Result<usize, FrameError> {
    let room = match frame_size(buf, max_size)? {
        // No prefix yet, so fewer than 4 bytes are buffered and this is never 0.
        None => READ_AHEAD.saturating_sub(buf.len()),
        Some(size) => {
            let missing = (4 + size).saturating_sub(buf.len());
            if missing == 0 {
                return Ok(0);
            }
            let step = missing.min(READ_CHUNK.max(buf.len()));
            step.max(READ_AHEAD.saturating_sub(buf.len()))
        }
    };
    buf.reserve(room);
    Ok(room)
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
        assert_eq!(
            reserve_for_read(&mut buf, 255),
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
        assert_eq!(
            frame_size(&buf, 255),
            Err(FrameError::NegativeSize { size: -2 })
        );
    }

    #[test]
    fn frame_size_waits_for_the_whole_prefix() {
        assert_eq!(frame_size(&[0, 0, 1], 1000), Ok(None));
        assert_eq!(frame_size(&[0, 0, 1, 0], 1000), Ok(Some(256)));
        assert_eq!(frame_size(&[0, 0, 1, 0, 9, 9], 1000), Ok(Some(256)));
    }

    /// The declared size must not size the allocation: 100 MiB declared, 10 bytes sent.
    #[test]
    fn a_large_prefix_does_not_reserve_its_declared_size() {
        let declared: i32 = 100 * 1024 * 1024;
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&declared.to_be_bytes());
        buf.extend_from_slice(&[7; 10]);
        assert_eq!(parse_frame(&mut buf, DEFAULT_MAX_REQUEST_BYTES), Ok(None));
        let room = reserve_for_read(&mut buf, DEFAULT_MAX_REQUEST_BYTES).unwrap();
        assert_eq!(room, READ_CHUNK);
        assert!(
            buf.capacity() <= 2 * (READ_CHUNK + 14),
            "capacity {} after a 100 MiB prefix and 10 bytes",
            buf.capacity()
        );
    }

    /// Feeding a frame in the sizes `reserve_for_read` allows: the buffer never holds more than
    /// the frame, grows in O(log n) steps, and its capacity stays within twice what arrived.
    #[test]
    fn the_buffer_grows_geometrically_with_the_bytes_that_arrive() {
        let size = 10 * 1024 * 1024 + 17;
        let mut wire = (size as i32).to_be_bytes().to_vec();
        wire.extend((0..size).map(|i| i as u8));
        // Two more small frames pipelined behind it.
        wire.extend_from_slice(&[0, 0, 0, 1, b'x', 0, 0, 0, 1, b'y']);

        let mut buf = BytesMut::new();
        let mut sent = 0;
        let mut reads = 0;
        let mut frames = vec![];
        while sent < wire.len() {
            while let Some(frame) = parse_frame(&mut buf, size).unwrap() {
                frames.push(frame);
            }
            let room = reserve_for_read(&mut buf, size).unwrap();
            assert!(room > 0);
            let n = room.min(wire.len() - sent);
            buf.extend_from_slice(&wire[sent..sent + n]);
            sent += n;
            reads += 1;
            assert!(
                buf.len() <= (4 + size).max(READ_AHEAD),
                "buffered {} bytes",
                buf.len()
            );
            assert!(
                buf.capacity() <= 2 * buf.len() + 2 * READ_CHUNK,
                "capacity {} with {} bytes buffered",
                buf.capacity(),
                buf.len()
            );
        }
        while let Some(frame) = parse_frame(&mut buf, size).unwrap() {
            frames.push(frame);
        }
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].len(), size);
        assert_eq!(&frames[0][..], &wire[4..4 + size]);
        assert_eq!((&frames[1][..], &frames[2][..]), (&b"x"[..], &b"y"[..]));
        assert!(reads < 20, "{reads} reads for a 10 MiB frame");
        // The big frame's allocation isn't kept as spare capacity once it has been taken.
        assert!(buf.capacity() <= READ_AHEAD, "kept {}", buf.capacity());
    }

    #[test]
    fn small_pipelined_frames_share_one_read_ahead() {
        let mut buf = BytesMut::new();
        let room = reserve_for_read(&mut buf, 1000).unwrap();
        assert_eq!(room, READ_AHEAD);
        // A 3-byte frame's prefix and one byte have arrived: the read may still fill the
        // read-ahead (pipelined frames), not just the 2 missing bytes.
        buf.extend_from_slice(&[0, 0, 0, 3, b'a']);
        assert_eq!(reserve_for_read(&mut buf, 1000).unwrap(), READ_AHEAD - 5);
        // A complete frame is buffered: parse it first.
        buf.extend_from_slice(b"bc");
        assert_eq!(reserve_for_read(&mut buf, 1000).unwrap(), 0);
    }
}
