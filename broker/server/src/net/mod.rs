//! The Kafka listeners: each accepts connections (at most `max_connections` at once, at most
//! `max.connections.per.ip` from one address, both across listeners), completes the TLS
//! handshake on SSL and SASL_SSL listeners ([`tls`]) and serves each connection on its own
//! task until shutdown, with its [`session::Session`] (who it is, SASL progress).
//!
//! What a client can make the broker hold is bounded here and in [`connection`]:
//! - connections: `max_connections` overall, `max.connections.per.ip` per address;
//! - request bytes: `queued.max.request.bytes` across connections ([`budget`]), plus a small
//!   read-ahead per connection; a connection's buffer grows only as bytes arrive;
//! - time: `connections.max.idle.ms` without a request, `request_read_timeout_ms` without a
//!   byte in the middle of one.
//!
//! Every refusal is counted in `ironlog_refused_frames_total{reason}`.

mod budget;
mod connection;
mod per_ip;
pub mod session;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::broker::Broker;
use crate::config::security::{ListenerConfig, SecurityProtocol};

use budget::RequestBudget;
use connection::serve_connection;
use per_ip::ConnectionsPerIp;

/// How long a client has to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the listeners share: the connection limits and the request byte budget.
struct Shared {
    limit: Arc<Semaphore>,
    per_ip: Arc<ConnectionsPerIp>,
    budget: Arc<RequestBudget>,
}

/// Serves every listener (each bound socket with its listener's config) until shutdown,
/// then waits for every connection to finish its request in hand. `tls` is needed when a
/// listener is SSL or SASL_SSL.
pub async fn serve_listeners(
    listeners: Vec<(TcpListener, Arc<ListenerConfig>)>,
    tls: Option<Arc<tls::Tls>>,
    broker: Arc<Broker>,
) {
    let budget = RequestBudget::new(
        broker.config.net.queued_max_request_bytes,
        broker.metrics.queued_request_bytes.clone(),
    );
    broker
        .metrics
        .queued_request_max_bytes
        .set(i64::try_from(budget.cap()).unwrap_or(i64::MAX));
    let shared = Arc::new(Shared {
        limit: Arc::new(Semaphore::new(broker.config.max_connections)),
        per_ip: ConnectionsPerIp::new(broker.config.net.max_connections_per_ip),
        budget,
    });
    let mut loops = JoinSet::new();
    for (listener, config) in listeners {
        loops.spawn(accept_loop(
            listener,
            config,
            tls.clone(),
            broker.clone(),
            shared.clone(),
        ));
    }
    while loops.join_next().await.is_some() {}
}

/// One listener's loop: accepts until shutdown, then waits for its connections.
async fn accept_loop(
    listener: TcpListener,
    config: Arc<ListenerConfig>,
    tls: Option<Arc<tls::Tls>>,
    broker: Arc<Broker>,
    shared: Arc<Shared>,
) {
    let Shared {
        limit,
        per_ip,
        budget,
    } = &*shared;
    let mut shutdown = broker.shutdown_signal();
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // the semaphore is never closed
            },
            _ = crate::broker::stopped(&mut shutdown) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = crate::broker::stopped(&mut shutdown) => break,
        };
        // Reap finished connection tasks so the set doesn't grow without bound.
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, peer)) => {
                let Some(slot) = per_ip.try_open(peer.ip()) else {
                    // Closed before anything is read or allocated for it; the client sees EOF.
                    broker
                        .metrics
                        .refused
                        .with_label_values(&["per_ip_limit"])
                        .inc();
                    tracing::warn!(%peer, limit = broker.config.net.max_connections_per_ip,
                        "closing connection: too many from this address (raise --max-connections-per-ip if this client is legitimate)");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let broker = broker.clone();
                let budget = budget.clone();
                let config = config.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    if config.protocol.is_tls() {
                        let Some(tls) = tls else {
                            tracing::error!(listener = %config.name, "TLS listener without TLS files");
                            return;
                        };
                        let require = config.protocol == SecurityProtocol::Ssl && tls.mutual();
                        let handshake = tls.acceptor(require).accept(stream);
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
                            Ok(Ok(stream)) => {
                                let principal = tls::client_principal(stream.get_ref().1);
                                let session = session::Session::new(config, peer, principal);
                                serve_connection(stream, session, broker, budget).await;
                            }
                            Ok(Err(e)) => {
                                broker.metrics.refused.with_label_values(&["tls_handshake"]).inc();
                                tracing::info!(%peer, listener = %config.name, error = %e, "TLS handshake failed");
                            }
                            Err(_) => {
                                broker.metrics.refused.with_label_values(&["tls_handshake"]).inc();
                                tracing::info!(%peer, listener = %config.name, "TLS handshake timed out");
                            }
                        }
                    } else {
                        let session = session::Session::new(config, peer, None);
                        serve_connection(stream, session, broker, budget).await;
                    }
                    drop((slot, permit));
                });
            }
            Err(e) => {
                // EMFILE and friends: keep serving the connections we have.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}
