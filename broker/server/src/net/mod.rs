//! The Kafka listener: accepts connections (at most `max_connections` at once, at most
//! `max.connections.per.ip` from one address) and serves each on its own task until shutdown.
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

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::broker::Broker;

use budget::RequestBudget;
use connection::serve_connection;
use per_ip::ConnectionsPerIp;

/// Accepts until shutdown, then waits for every connection to finish its request in hand.
pub async fn accept_loop(listener: TcpListener, broker: Arc<Broker>) {
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
    let per_ip = ConnectionsPerIp::new(broker.config.net.max_connections_per_ip);
    let budget = RequestBudget::new(
        broker.config.net.queued_max_request_bytes,
        broker.metrics.queued_request_bytes.clone(),
    );
    broker
        .metrics
        .queued_request_max_bytes
        .set(i64::try_from(budget.cap()).unwrap_or(i64::MAX));
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
                connections.spawn(async move {
                    serve_connection(stream, peer, broker, budget).await;
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
