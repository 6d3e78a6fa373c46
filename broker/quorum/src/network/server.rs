//! The controller listener: accepts peers' connections and serves their requests.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::{
    encode_frame, read_frame, split_plain, split_tls, write_frame, Envelope, Frame, QuorumTls,
    Request, Response, TLS_HANDSHAKE_TIMEOUT,
};
use crate::node::Core;

/// Peers are the other controllers and brokers: a few connections each. The cap only stops
/// a misbehaving client from exhausting the node.
const MAX_CONNECTIONS: usize = 256;
/// Responses waiting to be written on one connection.
const RESPONSE_QUEUE: usize = 64;

/// Accepts connections until the task is aborted; aborting it also ends every connection
/// (they live in its `JoinSet`).
pub(crate) async fn serve(listener: TcpListener, core: Arc<Core>, tls: Option<QuorumTls>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let core = core.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    serve_connection(stream, core, tls).await;
                    tracing::debug!(%peer, "controller connection closed");
                    drop(permit);
                });
            }
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!("controller listener accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, core: Arc<Core>, tls: Option<QuorumTls>) {
    let _ = stream.set_nodelay(true);
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let (mut read, mut write) = match tls {
        None => split_plain(stream),
        Some(tls) => {
            let handshake = (tls.acceptor)().accept(stream);
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Ok(stream)) => split_tls(stream),
                Ok(Err(e)) => {
                    // An untrusted or missing client certificate, or not TLS at all.
                    tracing::warn!(%peer, "controller listener: TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%peer, "controller listener: TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(RESPONSE_QUEUE);
    let mut requests = JoinSet::new();
    requests.spawn(async move {
        while let Some(frame) = rx.recv().await {
            if write_frame(&mut write, &frame).await.is_err() {
                break;
            }
        }
    });
    loop {
        while requests.try_join_next().is_some() {}
        let bytes = match read_frame(&mut read).await {
            Ok(Some(Frame::Data(bytes))) => bytes,
            Ok(Some(Frame::TooLarge(len))) => {
                tracing::error!(%peer, len, limit = super::MAX_FRAME_BYTES,
                    "refused an oversized controller request; its sender gets no response");
                continue;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(%peer, "controller connection read failed: {e}");
                break;
            }
        };
        let (id, request) = match serde_json::from_slice::<Envelope<Request>>(&bytes) {
            Ok(env) => (env.id, Ok(env.body)),
            // Answer by id if at least that much is readable.
            Err(e) => match serde_json::from_slice::<Envelope<serde::de::IgnoredAny>>(&bytes) {
                Ok(env) => (env.id, Err(e.to_string())),
                Err(_) => {
                    tracing::warn!(%peer, "undecodable controller request: {e}");
                    continue;
                }
            },
        };
        let core = core.clone();
        let tx = tx.clone();
        requests.spawn(async move {
            let body = match request {
                Ok(request) => core.handle(request).await,
                Err(e) => Response::Invalid(e),
            };
            match encode_frame(&Envelope { id, body }) {
                Ok(frame) => {
                    let _ = tx.send(frame).await;
                }
                Err(e) => tracing::error!("cannot send a controller response: {e}"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use uuid::Uuid;

    use super::*;
    use crate::network::{ControlReply, ControlRequest, MAX_FRAME_BYTES};
    use crate::{Quorum, QuorumConfig};

    #[tokio::test]
    async fn an_oversized_request_is_refused_and_the_connection_keeps_serving() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = QuorumConfig::new(1, dir.path());
        config.listen = Some("127.0.0.1:0".parse().unwrap());
        let quorum = Quorum::start(config).await.unwrap();
        let addr = quorum.local_addr().unwrap();

        let mut stream = TcpStream::connect(addr).await.unwrap();
        let too_big = MAX_FRAME_BYTES + 1;
        stream
            .write_all(&(too_big as u32).to_be_bytes())
            .await
            .unwrap();
        stream.write_all(&vec![b'x'; too_big]).await.unwrap();
        let incarnation = Uuid::new_v4();
        let request = Request::Control {
            request: ControlRequest::Heartbeat {
                broker: 3,
                incarnation,
            },
            relayed: false,
        };
        let frame = encode_frame(&Envelope {
            id: 42,
            body: request,
        })
        .unwrap();
        stream.write_all(&frame).await.unwrap();

        let Some(Frame::Data(bytes)) = read_frame(&mut stream).await.unwrap() else {
            panic!("expected a response frame");
        };
        let response: Envelope<Response> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(response.id, 42);
        assert!(
            matches!(
                response.body,
                Response::Control(Ok(ControlReply::HeartbeatRecorded))
            ),
            "{:?}",
            response.body
        );
        assert_eq!(quorum.heartbeats()[&3].0, incarnation);
        quorum.shutdown().await.unwrap();
    }
}
