//! The controller listener's protocol: Raft RPCs between the voters, and the control
//! requests (forwarded proposals, learner joins, broker heartbeats) that go to the leader.
//!
//! A connection carries frames in both directions: a big-endian `u32` length, then that many
//! bytes of JSON: an [`Envelope`] holding a [`Request`] (client to server) or a [`Response`]
//! (server to client) with the request's id. Requests are served concurrently, so responses
//! may come back out of order; the id pairs them up. A frame over [`MAX_FRAME_BYTES`] is
//! refused: its bytes are skipped and the connection keeps serving.

use std::io;
use std::sync::Arc;

use rustls_pki_types::ServerName;

use ironlog_metadata::{BrokerId, CommandResult, MetadataCommand};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use crate::types::{NodeId, TypeConfig};

pub(crate) mod client;
pub(crate) mod server;

/// The largest frame either side sends or accepts.
pub(crate) const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope<T> {
    pub id: u64,
    pub body: T,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot (openraft 0.9's chunked transfer).
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Served by the leader. A node that is not the leader relays it to the leader once
    /// (`relayed` then set), or answers [`ControlError::NotLeader`].
    Control {
        request: ControlRequest,
        relayed: bool,
    },
}

/// What only the leader can do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ControlRequest {
    /// Propose a command.
    Forward(MetadataCommand),
    /// Add a node as a learner (or confirm it is a member already).
    Join { id: NodeId, addr: String },
    /// A broker is alive.
    Heartbeat { broker: BrokerId, incarnation: Uuid },
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Response {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Control(Result<ControlReply, ControlError>),
    /// The request frame could not be decoded.
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ControlReply {
    /// The command was committed and applied on the leader at log `index`.
    Applied {
        result: CommandResult,
        index: u64,
    },
    Joined,
    HeartbeatRecorded,
}

#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub(crate) enum ControlError {
    #[error("not the metadata quorum leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("{0}")]
    Failed(String),
}

/// A frame read off a connection.
pub(crate) enum Frame {
    Data(Vec<u8>),
    /// A frame over [`MAX_FRAME_BYTES`], whose bytes were skipped.
    TooLarge(usize),
}

/// Reads one frame; `Ok(None)` on a clean end of stream (between frames).
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Frame>> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        match r.read(&mut header[filled..]).await? {
            0 if filled == 0 => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => filled += n,
        }
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_BYTES {
        // Skip it without buffering it: the length is the peer's claim, not memory we hold.
        let skipped = tokio::io::copy(&mut r.take(len as u64), &mut tokio::io::sink()).await?;
        if skipped < len as u64 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        return Ok(Some(Frame::TooLarge(len)));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Some(Frame::Data(body)))
}

/// Encodes `value` as one frame (length prefix included).
pub(crate) fn encode_frame<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4];
    serde_json::to_writer(&mut buf, value).map_err(io::Error::other)?;
    let len = buf.len() - 4;
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a {len}-byte controller message is over the {MAX_FRAME_BYTES}-byte frame limit"
            ),
        ));
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> io::Result<()> {
    w.write_all(frame).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_oversized_frame_is_skipped_and_the_next_one_read() {
        let mut bytes = Vec::new();
        let too_big = MAX_FRAME_BYTES + 1;
        bytes.extend_from_slice(&(too_big as u32).to_be_bytes());
        bytes.resize(bytes.len() + too_big, 7);
        bytes.extend_from_slice(&encode_frame(&"hello").unwrap());
        let mut r = &bytes[..];
        assert!(
            matches!(read_frame(&mut r).await.unwrap(), Some(Frame::TooLarge(n)) if n == too_big)
        );
        match read_frame(&mut r).await.unwrap() {
            Some(Frame::Data(d)) => {
                assert_eq!(serde_json::from_slice::<String>(&d).unwrap(), "hello")
            }
            _ => panic!("expected the frame after the oversized one"),
        }
        assert!(read_frame(&mut r).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_torn_frame_is_an_error_not_a_clean_end() {
        let frame = encode_frame(&"hello").unwrap();
        let mut r = &frame[..frame.len() - 1];
        assert!(read_frame(&mut r).await.is_err());
        let mut r = &frame[..2];
        assert!(read_frame(&mut r).await.is_err(), "a torn length prefix");
    }
}

/// Mutual TLS on the controller listener: a node proves itself to the peer it connects to,
/// and accepts only peers whose certificates chain to its CAs. Both are asked for anew for
/// each connection, so certificate files reloaded meanwhile take effect.
#[derive(Clone)]
pub struct QuorumTls {
    /// For accepted connections (requiring and verifying a client certificate).
    pub acceptor: Arc<dyn Fn() -> tokio_rustls::TlsAcceptor + Send + Sync>,
    /// For a connection to the peer at `host:port`.
    pub connector: Arc<ConnectPeer>,
}

/// What a connection to the peer at `host:port` needs: the connector (the peers' CAs, this
/// node's certificate) and the name the peer's certificate must carry.
pub type ConnectPeer =
    dyn Fn(&str) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), String> + Send + Sync;

impl std::fmt::Debug for QuorumTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QuorumTls")
    }
}

/// How long a TLS handshake on the controller listener may take.
pub(crate) const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One half of a connection, TLS or plain.
pub(crate) type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
pub(crate) type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// Splits a plain connection.
pub(crate) fn split_plain(stream: tokio::net::TcpStream) -> (ReadHalf, WriteHalf) {
    let (read, write) = stream.into_split();
    (Box::new(read), Box::new(write))
}

/// Splits a TLS connection.
pub(crate) fn split_tls<S>(stream: S) -> (ReadHalf, WriteHalf)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (read, write) = tokio::io::split(stream);
    (Box::new(read), Box::new(write))
}
