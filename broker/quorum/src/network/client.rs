//! The client side: one persistent, multiplexed connection per peer address, reconnected on
//! the next call after it breaks; and openraft's network factory on top of it.
//!
//! A connection also counts as broken when a call times out and nothing at all came back on
//! it while the call waited nor for [`SILENCE_BEFORE_RECONNECT`]. That is a connection into a
//! network cut: TCP does not close it, it retransmits with a backoff that grows to minutes,
//! so without this a peer back from a cut stayed unreachable long after the network healed
//! (its old connection kept swallowing every call). A peer that is slow but answering other
//! calls keeps its connection, and so does one that misses a single short call (a 100 ms
//! heartbeat on a loaded machine): reconnecting then would only fail the calls in flight.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RPCTypes, RaftNetwork, RaftNetworkFactory};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{
    encode_frame, read_frame, split_plain, split_tls, write_frame, Envelope, Frame, QuorumTls,
    Request, Response, WriteHalf, TLS_HANDSHAKE_TIMEOUT,
};
use crate::types::{NodeId, TypeConfig};

/// Why a call got no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// Nothing was sent: the peer could not be reached.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    /// The connection broke after the request may have been sent.
    #[error("connection to {addr} lost: {reason}")]
    Lost { addr: String, reason: String },
    #[error("no response from {addr} within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    /// Nothing was sent: the request is over the frame limit.
    #[error("{0}")]
    TooLarge(io::Error),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Response>>>>;

/// How long a connection must have been silent, with a call timing out on it, to be dropped.
const SILENCE_BEFORE_RECONNECT: Duration = Duration::from_secs(2);

/// The connections of one node to its peers, by address. Clones share them.
#[derive(Clone, Default)]
pub(crate) struct Peers {
    peers: Arc<Mutex<HashMap<String, Slot>>>,
    /// Mutual TLS to the peers' controller listeners; `None`: plain TCP.
    tls: Option<QuorumTls>,
}

/// A peer's connection, if one is open; the async mutex serializes (re)connecting.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Conn>>>>;

struct Conn {
    writer: tokio::sync::Mutex<WriteHalf>,
    pending: Pending,
    next_id: AtomicU64,
    alive: Arc<AtomicBool>,
    /// When the last frame arrived, in milliseconds since `opened`, plus one; 0: none yet.
    heard_ms: Arc<AtomicU64>,
    opened: Instant,
    reader: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Peers {
    pub(crate) fn new(tls: Option<QuorumTls>) -> Peers {
        Peers {
            peers: Arc::default(),
            tls,
        }
    }

    /// Sends `request` to `addr` and waits up to `timeout` for its response.
    pub(crate) async fn call(
        &self,
        addr: &str,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, CallError> {
        let slot = {
            // Only held to look up the slot (std mutex: never across an await).
            let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
            peers.entry(addr.to_string()).or_default().clone()
        };
        let started = Instant::now();
        let mut used: Option<Arc<Conn>> = None;
        let attempt = async {
            let conn = {
                let mut slot = slot.lock().await;
                match slot.as_ref() {
                    Some(conn) if conn.alive.load(Ordering::Acquire) => conn.clone(),
                    _ => {
                        let conn = Arc::new(Conn::connect(addr, self.tls.as_ref()).await?);
                        *slot = Some(conn.clone());
                        conn
                    }
                }
            };
            used = Some(conn.clone());
            let id = conn.next_id.fetch_add(1, Ordering::Relaxed);
            let frame =
                encode_frame(&Envelope { id, body: request }).map_err(CallError::TooLarge)?;
            let (tx, rx) = oneshot::channel();
            lock(&conn.pending).insert(id, tx);
            let _unregister = Unregister {
                pending: &conn.pending,
                id,
            };
            if !conn.alive.load(Ordering::Acquire) {
                // The reader ended (and cleared `pending`) since we picked the connection.
                return Err(CallError::Lost {
                    addr: addr.to_string(),
                    reason: "closed before the request was sent".into(),
                });
            }
            let written = {
                let mut w = conn.writer.lock().await;
                write_frame(&mut *w, &frame).await
            };
            if let Err(e) = written {
                conn.alive.store(false, Ordering::Release);
                return Err(CallError::Lost {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                });
            }
            rx.await.map_err(|_| CallError::Lost {
                addr: addr.to_string(),
                reason: "closed before the response".into(),
            })
        };
        let result = tokio::time::timeout(timeout, attempt).await;
        match result {
            Ok(result) => result,
            Err(_) => {
                if let Some(conn) = used {
                    let silent_since = Instant::now()
                        .checked_sub(SILENCE_BEFORE_RECONNECT)
                        .map_or(started, |t| t.min(started));
                    let old_enough = conn.opened.elapsed() >= SILENCE_BEFORE_RECONNECT;
                    if old_enough && !conn.heard_since(silent_since) {
                        tracing::info!(peer = %addr, ?timeout, "nothing heard on the controller connection: reconnecting on the next call");
                        conn.alive.store(false, Ordering::Release);
                    }
                }
                Err(CallError::Timeout {
                    addr: addr.to_string(),
                    timeout,
                })
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps behind these mutexes stay consistent even if a holder panicked.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes a call's pending slot however the call ends (response, error, timeout).
struct Unregister<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.id);
    }
}

impl Conn {
    /// Whether any frame arrived on this connection at or after `since`.
    fn heard_since(&self, since: Instant) -> bool {
        match self.heard_ms.load(Ordering::Acquire) {
            0 => false,
            // Millisecond resolution: a frame in the same millisecond as `since` counts.
            ms => self.opened + Duration::from_millis(ms) > since,
        }
    }

    async fn connect(addr: &str, tls: Option<&QuorumTls>) -> Result<Conn, CallError> {
        let failed = |source| CallError::Connect {
            addr: addr.to_string(),
            source,
        };
        let stream = TcpStream::connect(addr).await.map_err(failed)?;
        // Raft RPCs are small and latency-bound.
        let _ = stream.set_nodelay(true);
        let (mut read, write) = match tls {
            None => split_plain(stream),
            Some(tls) => {
                let (connector, name) = (tls.connector)(addr)
                    .map_err(|m| failed(io::Error::new(io::ErrorKind::InvalidInput, m)))?;
                let handshake = connector.connect(name, stream);
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
                    Ok(Ok(stream)) => split_tls(stream),
                    Ok(Err(e)) => return Err(failed(e)),
                    Err(_) => {
                        return Err(failed(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "TLS handshake timed out",
                        )))
                    }
                }
            }
        };
        let pending: Pending = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let opened = Instant::now();
        let heard_ms = Arc::new(AtomicU64::new(0));
        let reader = {
            let pending = pending.clone();
            let alive = alive.clone();
            let heard_ms = heard_ms.clone();
            let addr = addr.to_string();
            tokio::spawn(async move {
                let end = loop {
                    let frame = read_frame(&mut read).await;
                    heard_ms.store(opened.elapsed().as_millis() as u64 + 1, Ordering::Release);
                    match frame {
                        Ok(Some(Frame::Data(bytes))) => {
                            match serde_json::from_slice::<Envelope<Response>>(&bytes) {
                                Ok(env) => {
                                    if let Some(tx) = lock(&pending).remove(&env.id) {
                                        let _ = tx.send(env.body);
                                    }
                                }
                                Err(e) => break format!("undecodable response: {e}"),
                            }
                        }
                        Ok(Some(Frame::TooLarge(len))) => {
                            tracing::error!(peer = %addr, len, "skipped an oversized controller response");
                        }
                        Ok(None) => break "closed by the peer".to_string(),
                        Err(e) => break e.to_string(),
                    }
                };
                tracing::debug!(peer = %addr, "controller connection ended: {end}");
                alive.store(false, Ordering::Release);
                // Dropping the senders fails every call still waiting on this connection.
                lock(&pending).clear();
            })
        };
        Ok(Conn {
            writer: tokio::sync::Mutex::new(write),
            pending,
            next_id: AtomicU64::new(0),
            alive,
            heard_ms,
            opened,
            reader,
        })
    }
}

/// openraft's network: hands out [`RaftPeer`]s that share this node's [`Peers`].
pub(crate) struct NetworkFactory {
    pub(crate) node_id: NodeId,
    pub(crate) peers: Peers,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = RaftPeer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> RaftPeer {
        RaftPeer {
            node_id: self.node_id,
            target,
            addr: node.addr.clone(),
            peers: self.peers.clone(),
        }
    }
}

pub(crate) struct RaftPeer {
    node_id: NodeId,
    target: NodeId,
    addr: String,
    peers: Peers,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl RaftPeer {
    /// Maps a transport failure so openraft backs off from unreachable peers and retries
    /// the rest.
    fn transport_error<E: std::error::Error>(
        &self,
        e: CallError,
        action: RPCTypes,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        match e {
            CallError::Connect { .. } | CallError::Lost { .. } => {
                RPCError::Unreachable(Unreachable::new(&e))
            }
            CallError::Timeout { timeout, .. } => RPCError::Timeout(Timeout {
                action,
                id: self.node_id,
                target: self.target,
                timeout,
            }),
            CallError::TooLarge(_) => RPCError::Network(NetworkError::new(&e)),
        }
    }

    fn unexpected<E: std::error::Error>(
        &self,
        resp: Response,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        let e = io::Error::other(format!(
            "unexpected response from node {}: {resp:?}",
            self.target
        ));
        RPCError::Network(NetworkError::new(&e))
    }

    fn remote<E: std::error::Error>(
        &self,
        e: RaftError<NodeId, E>,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

impl RaftNetwork<TypeConfig> for RaftPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        let entries = rpc.entries.len() as u64;
        match self
            .peers
            .call(&self.addr, Request::AppendEntries(rpc), option.hard_ttl())
            .await
        {
            Ok(Response::AppendEntries(r)) => r.map_err(|e| self.remote(e)),
            Ok(other) => Err(self.unexpected(other)),
            // Ask openraft for smaller batches.
            Err(CallError::TooLarge(_)) if entries > 1 => Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(entries / 2),
            )),
            Err(e) => Err(self.transport_error(e, RPCTypes::AppendEntries)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self
            .peers
            .call(&self.addr, Request::InstallSnapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(Response::InstallSnapshot(r)) => r.map_err(|e| self.remote(e)),
            Ok(other) => Err(self.unexpected(other)),
            Err(e) => Err(self.transport_error(e, RPCTypes::InstallSnapshot)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        match self
            .peers
            .call(&self.addr, Request::Vote(rpc), option.hard_ttl())
            .await
        {
            Ok(Response::Vote(r)) => r.map_err(|e| self.remote(e)),
            Ok(other) => Err(self.unexpected(other)),
            Err(e) => Err(self.transport_error(e, RPCTypes::Vote)),
        }
    }
}
