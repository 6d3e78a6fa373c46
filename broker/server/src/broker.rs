//! The running broker: shared state, start-up and clean shutdown.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::group::coordinator::CoordinatorError;
use crate::group::{GroupConfig, GroupCoordinator};
use crate::metadata::MetadataRecord;
use crate::metrics::Metrics;
use crate::replica_manager::{ReplicaError, ReplicaManager};

/// How often retention and `flush.ms` run.
const LOG_TICK: Duration = Duration::from_secs(1);
/// How often group timers (sessions, rebalance deadlines) are checked.
const GROUP_TICK: Duration = Duration::from_millis(100);
/// Producer ids are reserved from the metadata in blocks, like Kafka's controller does.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// State shared by every connection.
pub struct Broker {
    pub config: BrokerConfig,
    pub replicas: ReplicaManager,
    pub metrics: Metrics,
    pub groups: GroupCoordinator,
    shutdown: watch::Receiver<bool>,
    producer_ids: std::sync::Mutex<ProducerIdBlock>,
    started_ms: AtomicI64,
}

/// Why the broker could not open its data directory.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Replicas(#[from] ReplicaError),
    #[error("group coordinator: {0}")]
    Groups(#[from] CoordinatorError),
}

#[derive(Debug, Default)]
struct ProducerIdBlock {
    next: i64,
    end: i64,
}

impl Broker {
    pub fn open(
        config: BrokerConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, OpenError> {
        let replicas = ReplicaManager::open(
            config.node_id,
            &config.data_dir,
            config.default_topic_config.clone(),
        )?;
        let metrics = Metrics::new();
        let groups = GroupCoordinator::open(
            &replicas,
            GroupConfig::default(),
            metrics.groups.clone(),
            crate::replica_manager::now_ms(),
        )?;
        Ok(Arc::new(Broker {
            config,
            replicas,
            metrics,
            groups,
            shutdown,
            producer_ids: std::sync::Mutex::new(ProducerIdBlock::default()),
            started_ms: AtomicI64::new(crate::replica_manager::now_ms()),
        }))
    }

    /// A receiver that turns `true` when the broker is shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub fn started_ms(&self) -> i64 {
        self.started_ms.load(Ordering::Relaxed)
    }

    /// A producer id never handed out before, on this cluster, across restarts.
    pub fn allocate_producer_id(&self) -> Result<i64, ReplicaError> {
        let mut block = self.producer_ids.lock().unwrap_or_else(|e| e.into_inner());
        if block.next >= block.end {
            let first = self.replicas.metadata().next_producer_id;
            self.replicas
                .metadata_store()
                .propose(&[MetadataRecord::ProducerIdsAllocated {
                    first,
                    count: PRODUCER_ID_BLOCK,
                }])?;
            *block = ProducerIdBlock {
                next: first,
                end: first + PRODUCER_ID_BLOCK,
            };
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}

/// Runs a broker until `shutdown` turns true, then stops accepting, lets connections finish
/// the request in hand, flushes the logs and writes the clean-shutdown marker.
pub async fn run(config: BrokerConfig, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {} (is another broker running?): {e}",
            config.listen
        )
    })?;
    let http = TcpListener::bind(config.metrics_listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} for /metrics: {e}",
                config.metrics_listen
            )
        })?;
    run_on(config, listener, http, shutdown).await
}

/// [`run`] on listeners bound by the caller (tests bind port 0).
pub async fn run_on(
    config: BrokerConfig,
    listener: TcpListener,
    http: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let broker = tokio::task::spawn_blocking(move || Broker::open(config, shutdown))
        .await?
        .map_err(|e| anyhow::anyhow!("cannot open data dir {}: {e}", data_dir.display()))?;
    tracing::info!(
        node_id = broker.config.node_id,
        listen = %listener.local_addr()?,
        advertised = %format!("{}:{}", broker.config.advertised_host, broker.config.advertised_port),
        metrics = %http.local_addr()?,
        data_dir = %broker.config.data_dir.display(),
        cluster_id = %broker.replicas.metadata().cluster_id,
        "broker started"
    );

    let ticker = {
        let broker = broker.clone();
        let mut shutdown = broker.shutdown_signal();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(LOG_TICK);
            loop {
                tokio::select! {
                    _ = interval.tick() => {
                        let b = broker.clone();
                        if let Err(e) = tokio::task::spawn_blocking(move || b.replicas.tick()).await {
                            tracing::error!(error = %e, "log maintenance task failed");
                        }
                    }
                    _ = stopped(&mut shutdown) => break,
                }
            }
        })
    };
    let group_ticker = {
        let broker = broker.clone();
        let mut shutdown = broker.shutdown_signal();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(GROUP_TICK);
            let mut ticks = 0u64;
            loop {
                tokio::select! {
                    _ = interval.tick() => {
                        let b = broker.clone();
                        ticks += 1;
                        let refresh_metrics = ticks % 10 == 0;
                        let done = tokio::task::spawn_blocking(move || {
                            b.groups.tick(&b.replicas, crate::replica_manager::now_ms());
                            if refresh_metrics {
                                b.groups.update_metrics(&b.replicas);
                            }
                        });
                        if let Err(e) = done.await {
                            tracing::error!(error = %e, "group coordinator tick failed");
                        }
                    }
                    _ = stopped(&mut shutdown) => break,
                }
            }
        })
    };
    let http_task = tokio::spawn(crate::http::serve(http, broker.clone()));
    crate::net::accept_loop(listener, broker.clone()).await;
    http_task.abort();
    let _ = ticker.await;
    let _ = group_ticker.await;

    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.replicas.shutdown())
        .await?
        .map_err(|e| anyhow::anyhow!("flushing logs at shutdown failed: {e}"))?;
    tracing::info!("broker stopped cleanly");
    Ok(())
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, so callers stay `Send`.
    let _ = shutdown.wait_for(|s| *s).await;
}
