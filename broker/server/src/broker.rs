//! The running broker: shared state, start-up and clean shutdown.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::group::coordinator::CoordinatorError;
use crate::group::GroupCoordinator;
use crate::metadata::MetadataRecord;
use crate::metrics::Metrics;
use crate::replica_manager::{ReplicaError, ReplicaManager};

/// How often retention and `flush.ms` run.
const LOG_TICK: Duration = Duration::from_secs(1);
/// How often group timers (sessions, rebalance deadlines) are checked.
const GROUP_TICK: Duration = Duration::from_millis(100);
/// How often compacted logs are checked for a new inactive segment to clean.
const CLEANER_TICK: Duration = Duration::from_secs(1);
/// A compacted log is cleaned again at least this often (tombstones expire with time).
const CLEAN_AT_LEAST_EVERY_MS: i64 = 60_000;
/// Kafka's `delete.retention.ms` default.
const DEFAULT_DELETE_RETENTION_MS: i64 = 86_400_000;
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
            config.group.clone(),
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

    let ticker = spawn_periodic(&broker, LOG_TICK, "log maintenance", |b| b.replicas.tick());
    let group_ticks = std::sync::atomic::AtomicU64::new(0);
    let group_ticker = spawn_periodic(&broker, GROUP_TICK, "group coordinator", move |b| {
        b.groups.tick(&b.replicas, crate::replica_manager::now_ms());
        // Lag gauges every 10th tick (1 s): they read every group's offsets.
        if group_ticks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(10)
        {
            b.groups.update_metrics(&b.replicas);
        }
    });
    let progress = std::sync::Mutex::new(CleanerProgress::default());
    let cleaner = spawn_periodic(&broker, CLEANER_TICK, "log cleaner", move |b| {
        let mut progress = progress.lock().unwrap_or_else(|e| e.into_inner());
        clean_compacted_logs(b, &mut progress);
    });
    let http_task = tokio::spawn(crate::http::serve(http, broker.clone()));
    crate::net::accept_loop(listener, broker.clone()).await;
    http_task.abort();
    let _ = ticker.await;
    let _ = group_ticker.await;
    let _ = cleaner.await;

    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.replicas.shutdown())
        .await?
        .map_err(|e| anyhow::anyhow!("flushing logs at shutdown failed: {e}"))?;
    tracing::info!("broker stopped cleanly");
    Ok(())
}

/// Runs `work` on the blocking pool every `period` until shutdown. Background work is
/// blocking (file I/O under std locks), so it never runs on the async workers.
fn spawn_periodic(
    broker: &Arc<Broker>,
    period: Duration,
    name: &'static str,
    work: impl Fn(&Broker) + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    let broker = broker.clone();
    let work = Arc::new(work);
    let mut shutdown = broker.shutdown_signal();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    let (b, w) = (broker.clone(), work.clone());
                    if let Err(e) = tokio::task::spawn_blocking(move || w(&b)).await {
                        tracing::error!(error = %e, task = name, "background task failed");
                    }
                }
                _ = stopped(&mut shutdown) => break,
            }
        }
    })
}

/// Per compacted partition: the active segment's base offset and the time at the last
/// cleaning, so a log is cleaned only when a segment rolled (or time passed).
#[derive(Default)]
struct CleanerProgress {
    last: std::collections::HashMap<(String, i32), (i64, i64)>,
}

/// Compacts every partition of topics with `cleanup.policy` compact (or compact,delete),
/// `__consumer_offsets` included. See `ironlog_storage::cleaner`.
fn clean_compacted_logs(broker: &Broker, progress: &mut CleanerProgress) {
    use ironlog_storage::CleanupPolicy;
    let now = crate::replica_manager::now_ms();
    let image = broker.replicas.metadata();
    for topic in image.topics.values() {
        let delete_retention_ms = topic
            .configs
            .get("delete.retention.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_DELETE_RETENTION_MS);
        for partition in 0..topic.partitions {
            let Ok(log) = broker.replicas.log(&topic.name, partition) else {
                continue;
            };
            let mut log = crate::replica_manager::write(&log);
            if log.config().cleanup_policy == CleanupPolicy::Delete {
                continue;
            }
            let active = log.segment_base_offsets().last().copied().unwrap_or(0);
            let key = (topic.name.clone(), partition);
            if let Some(&(base, at)) = progress.last.get(&key) {
                if base == active && now - at < CLEAN_AT_LEAST_EVERY_MS {
                    continue;
                }
            }
            match ironlog_storage::cleaner::clean_log(&mut log, now, delete_retention_ms) {
                Ok(stats) if stats.records_removed > 0 => {
                    tracing::info!(topic = %topic.name, partition, removed = stats.records_removed,
                        bytes_before = stats.bytes_before, bytes_after = stats.bytes_after, "compacted log");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(topic = %topic.name, partition, error = %e,
                        "log compaction failed; will retry after the next segment roll");
                }
            }
            progress.last.insert(key, (active, now));
        }
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, so callers stay `Send`.
    let _ = shutdown.wait_for(|s| *s).await;
}
