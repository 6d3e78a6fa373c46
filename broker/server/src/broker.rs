//! The running broker: shared state, start-up and clean shutdown.

use std::collections::HashMap;
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
use ironlog_storage::cleaner::{Cleaner, CleanerError};

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
    let cleaner = broker.config.cleaner.clone().map(|settings| {
        let shutdown = broker.shutdown_signal();
        let state = std::sync::Mutex::new(LogCleaner {
            cleaner: Cleaner::new(settings.cleaner).with_stop(move || *shutdown.borrow()),
            backlog: HashMap::new(),
        });
        spawn_periodic(&broker, settings.backoff, "log cleaner", move |b| {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            clean_compacted_logs(b, &mut state);
        })
    });
    let http_task = tokio::spawn(crate::http::serve(http, broker.clone()));
    crate::net::accept_loop(listener, broker.clone()).await;
    http_task.abort();
    let _ = ticker.await;
    let _ = group_ticker.await;
    if let Some(cleaner) = cleaner {
        let _ = cleaner.await;
    }

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

/// The log cleaner and what it last measured of each compacted log.
struct LogCleaner {
    cleaner: Cleaner,
    /// (topic, partition) → (dirty bytes, dirty ratio), for the backlog gauges.
    backlog: HashMap<(String, i32), (u64, f64)>,
}

impl LogCleaner {
    fn publish_backlog(&self, metrics: &crate::metrics::CleanerMetrics) {
        let dirty: u64 = self.backlog.values().map(|(d, _)| d).sum();
        let ratio = self.backlog.values().map(|(_, r)| *r).fold(0.0, f64::max);
        metrics
            .dirty_bytes
            .set(i64::try_from(dirty).unwrap_or(i64::MAX));
        metrics.max_dirty_ratio.set(ratio);
    }
}

/// One round of the log cleaner: every partition of topics with `cleanup.policy` compact
/// (or compact,delete), `__consumer_offsets` included, is measured (the backlog gauges are
/// published before each pass, so a long pass shows its backlog) and cleaned if due (see
/// `ironlog_storage::cleaner`). Appends go on meanwhile: the cleaner takes the log's write
/// lock only to swap segments in.
fn clean_compacted_logs(broker: &Broker, state: &mut LogCleaner) {
    use ironlog_storage::cleaner::PassOutcome;
    use ironlog_storage::CleanupPolicy;
    let metrics = &broker.metrics.cleaner;
    let image = broker.replicas.metadata();
    let mut seen = std::collections::HashSet::new();
    for topic in image.topics.values() {
        for partition in 0..topic.partitions {
            if broker.is_shutting_down() {
                return;
            }
            let Ok(log) = broker.replicas.log(&topic.name, partition) else {
                continue;
            };
            let now = crate::replica_manager::now_ms();
            let section = {
                let log = crate::replica_manager::read(&log);
                if log.config().cleanup_policy == CleanupPolicy::Delete {
                    continue;
                }
                log.cleanable_section(now)
            };
            let section = match section {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(topic = %topic.name, partition, error = %e,
                        "cannot inspect log for compaction");
                    continue;
                }
            };
            let key = (topic.name.clone(), partition);
            state
                .backlog
                .insert(key.clone(), (section.dirty_bytes(), section.dirty_ratio()));
            seen.insert(key.clone());
            if section.due(now).is_none() {
                continue;
            }
            state.publish_backlog(metrics);
            match state.cleaner.clean_section(&log, section, now) {
                Ok(PassOutcome::Cleaned(stats)) => {
                    metrics.passes.with_label_values(&["cleaned"]).inc();
                    metrics.bytes_read.inc_by(stats.bytes_read);
                    metrics.bytes_written.inc_by(stats.bytes_written);
                    metrics.records_removed.inc_by(stats.records_removed);
                    metrics.last_pass_seconds.set(stats.duration.as_secs_f64());
                    if stats.bytes_read > 0 {
                        metrics
                            .last_pass_ratio
                            .set(stats.bytes_written as f64 / stats.bytes_read as f64);
                    }
                    // What is left is measured in the next round.
                    state.backlog.insert(key, (0, 0.0));
                    tracing::info!(topic = %topic.name, partition, removed = stats.records_removed,
                        kept = stats.records_kept, bytes_read = stats.bytes_read,
                        bytes_written = stats.bytes_written, segments_before = stats.segments_before,
                        segments_after = stats.segments_after, end_offset = stats.end_offset,
                        seconds = stats.duration.as_secs_f64(),
                        swap_lock_ms = stats.swap_duration.as_secs_f64() * 1e3, "compacted log");
                }
                Ok(PassOutcome::NotDue { .. }) => {}
                Ok(PassOutcome::Stale) => {
                    metrics.passes.with_label_values(&["stale"]).inc();
                    tracing::info!(topic = %topic.name, partition,
                        "segments changed during cleaning; the pass was discarded and will be retried");
                }
                Err(CleanerError::Interrupted) => return,
                Err(e) => {
                    metrics.passes.with_label_values(&["failed"]).inc();
                    tracing::error!(topic = %topic.name, partition, error = %e,
                        "log compaction failed; will retry");
                }
            }
        }
    }
    state.backlog.retain(|k, _| seen.contains(k));
    state.publish_backlog(metrics);
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, so callers stay `Send`.
    let _ = shutdown.wait_for(|s| *s).await;
}
