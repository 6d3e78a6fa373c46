//! The Kafka listener: accepts connections (at most `max_connections` at once) and serves
//! each on its own task until shutdown.

mod connection;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::broker::Broker;

pub use connection::serve_connection;

/// Accepts until shutdown, then waits for every connection to finish its request in hand.
pub async fn accept_loop(listener: TcpListener, broker: Arc<Broker>) {
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
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
                let _ = stream.set_nodelay(true);
                let broker = broker.clone();
                connections.spawn(async move {
                    serve_connection(stream, peer, broker).await;
                    drop(permit);
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
