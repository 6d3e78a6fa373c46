//! The running broker: shared state, start-up and clean shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::config::BrokerConfig;
use crate::group::coordinator::CoordinatorError;
use crate::group::GroupCoordinator;
use crate::metrics::Metrics;
use crate::partition::{IsrChange, Partition};
use crate::replica_manager::{ReplicaError, ReplicaManager};
use ironlog_metadata::{CommandResult, MetadataCommand};
use ironlog_storage::cleaner::{Cleaner, CleanerError};

/// How often retention and `flush.ms` run.
const LOG_TICK: Duration = Duration::from_secs(1);
/// How often group timers (sessions, rebalance deadlines) are checked.
const GROUP_TICK: Duration = Duration::from_millis(100);
/// High watermarks are checkpointed every this many log ticks, 5 s (Kafka's
/// replica.high.watermark.checkpoint.interval.ms), and at shutdown.
const HIGH_WATERMARK_CHECKPOINT_TICKS: u64 = 5;
/// Producer snapshots are written every this many log ticks (and at shutdown).
const PRODUCER_SNAPSHOT_TICKS: u64 = 30;
/// Producer ids are reserved from the metadata in blocks, like Kafka's controller does.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// State shared by every connection.
pub struct Broker {
    pub config: BrokerConfig,
    pub cluster: Arc<Cluster>,
    pub replicas: ReplicaManager,
    pub metrics: Metrics,
    pub groups: GroupCoordinator,
    /// Clients' byte rates against their quotas.
    pub quotas: crate::quota::Quotas,
    /// Fetch sessions (KIP-227). A std mutex: it is held only for the session bookkeeping
    /// of one Fetch, never across an await.
    pub fetch_sessions: std::sync::Mutex<crate::fetch_session::FetchSessionCache>,
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
    #[error("{0}")]
    Cluster(#[from] crate::cluster::ClusterError),
}

#[derive(Debug, Default)]
struct ProducerIdBlock {
    next: i64,
    end: i64,
}

impl Broker {
    /// Opens the logs and makes them and the group coordinator agree with the cluster's
    /// metadata.
    pub fn open(
        config: BrokerConfig,
        cluster: Arc<Cluster>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, OpenError> {
        let replicas = ReplicaManager::open(
            cluster.clone(),
            &config.data_dir,
            config.default_topic_config.clone(),
            config.log_write_behind_bytes,
        )?;
        let metrics = Metrics::new();
        let groups = GroupCoordinator::new(config.group.clone(), metrics.groups.clone());
        groups.follow_metadata(
            &replicas,
            &replicas.metadata(),
            crate::replica_manager::now_ms(),
        );
        let fetch_sessions = std::sync::Mutex::new(crate::fetch_session::FetchSessionCache::new(
            config.fetch_session_cache_slots,
        ));
        Ok(Arc::new(Broker {
            config,
            cluster,
            replicas,
            metrics,
            groups,
            quotas: crate::quota::Quotas::default(),
            fetch_sessions,
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

    /// A producer id never handed out before, on this cluster, across restarts: taken from
    /// a block this broker reserved through the metadata quorum.
    pub async fn allocate_producer_id(&self) -> Result<i64, ReplicaError> {
        loop {
            {
                let mut block = self.producer_ids.lock().unwrap_or_else(|e| e.into_inner());
                if block.next < block.end {
                    let id = block.next;
                    block.next += 1;
                    return Ok(id);
                }
            }
            let result = self
                .cluster
                .propose(MetadataCommand::AllocateProducerIds {
                    count: PRODUCER_ID_BLOCK,
                })
                .await?;
            let CommandResult::ProducerIds { first, count } = result else {
                return Err(crate::cluster::ClusterError::Unexpected(Box::new(result)).into());
            };
            let mut block = self.producer_ids.lock().unwrap_or_else(|e| e.into_inner());
            if block.next >= block.end {
                *block = ProducerIdBlock {
                    next: first,
                    end: first + count,
                };
            }
        }
    }

    /// Brings the logs, partitions and the group coordinator in line with the applied
    /// metadata.
    fn follow_metadata(&self, image: &ironlog_metadata::MetadataImage) {
        if let Err(e) = self.replicas.sync_logs(image) {
            tracing::error!(error = %e, "cannot make the local logs match the metadata; will retry at the next change");
        }
        self.groups
            .follow_metadata(&self.replicas, image, crate::replica_manager::now_ms());
        self.metrics.cluster.observe_image(image);
    }
}

/// `--add-scram`: creates each user's credential for its mechanism unless the metadata has
/// one already (a restart, or another broker created it first). Retried a few times while
/// the quorum settles; a failure is logged, the broker serves anyway.
async fn add_scram_users(broker: &Arc<Broker>) {
    for user in &broker.config.security.add_scram {
        for attempt in 1..=10 {
            if broker
                .replicas
                .metadata()
                .scram_credential(&user.name, user.mechanism)
                .is_some()
            {
                break;
            }
            let credential = ironlog_security::scram::new_credential(
                user.mechanism,
                &user.password,
                user.iterations,
            );
            let command = ironlog_metadata::MetadataCommand::UpsertScramCredential {
                user: user.name.clone(),
                credential,
            };
            match broker.cluster.propose(command).await {
                Ok(_) => {
                    tracing::info!(user = %user.name, mechanism = user.mechanism.sasl_name(),
                        "created SCRAM user (--add-scram)");
                    break;
                }
                Err(e) if attempt < 10 => {
                    tracing::warn!(user = %user.name, error = %e, "cannot create SCRAM user yet; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(e) => tracing::error!(user = %user.name, error = %e,
                    "cannot create SCRAM user (--add-scram); it cannot log in until it is created"),
            }
        }
    }
}

/// Runs a broker until `shutdown` turns true, then stops accepting, lets connections finish
/// the request in hand, flushes the logs and writes the clean-shutdown marker.
pub async fn run(config: BrokerConfig, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut listeners = Vec::new();
    for listener in &config.listeners {
        listeners.push(TcpListener::bind(listener.bind).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} for listener {} (is another broker running?): {e}",
                listener.bind,
                listener.name
            )
        })?);
    }
    let http = TcpListener::bind(config.metrics_listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} for /metrics: {e}",
                config.metrics_listen
            )
        })?;
    run_on_listeners(config, listeners, http, shutdown).await
}

/// [`run`] on a listener bound by the caller (tests bind port 0), for a config with one
/// Kafka listener.
pub async fn run_on(
    config: BrokerConfig,
    listener: TcpListener,
    http: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    run_on_listeners(config, vec![listener], http, shutdown).await
}

/// [`run`] on sockets bound by the caller, one per `config.listeners` entry, in order.
pub async fn run_on_listeners(
    config: BrokerConfig,
    listeners: Vec<TcpListener>,
    http: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        listeners.len() == config.listeners.len(),
        "{} sockets for {} listeners",
        listeners.len(),
        config.listeners.len()
    );
    let tls = match config.security.tls.clone() {
        Some(files) => Some(Arc::new(
            crate::net::tls::Tls::load(files).map_err(|e| anyhow::anyhow!("TLS: {e}"))?,
        )),
        None => None,
    };
    let data_dir = config.data_dir.clone();
    let cluster = Cluster::start(&config, tls.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!("cannot join the cluster: {e}"))?;
    let broker = {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || Broker::open(config, cluster, shutdown))
            .await?
            .map_err(|e| anyhow::anyhow!("cannot open data dir {}: {e}", data_dir.display()))?
    };
    let listeners: Vec<_> = listeners
        .into_iter()
        .zip(broker.config.listeners.iter().cloned().map(Arc::new))
        .collect();
    let listening = listeners
        .iter()
        .map(|(socket, l)| {
            Ok(format!(
                "{}://{} ({})",
                l.name,
                socket.local_addr()?,
                l.protocol.name()
            ))
        })
        .collect::<std::io::Result<Vec<_>>>()?
        .join(", ");
    tracing::info!(
        node_id = broker.config.node_id,
        listeners = %listening,
        advertised = %format!("{}:{}", broker.config.advertised_host, broker.config.advertised_port),
        metrics = %http.local_addr()?,
        data_dir = %broker.config.data_dir.display(),
        cluster_id = %broker.replicas.metadata().cluster_id,
        controller = %broker.config.cluster.controller_advertised,
        "broker started"
    );

    let heartbeats = cluster.spawn_heartbeats(broker.shutdown_signal());
    let sessions = cluster.spawn_session_checks(broker.shutdown_signal());
    let follower = spawn_metadata_follower(&broker);
    let fetchers = crate::replica_fetcher::spawn_manager(
        &broker,
        broker.replicas.subscribe_follower_changes(),
    );
    let isr_checks = spawn_isr_checks(&broker);
    let rebalance = broker
        .config
        .cluster
        .leader_imbalance_check_interval
        .map(|every| spawn_leader_rebalance(&broker, every));
    let log_ticks = std::sync::atomic::AtomicU64::new(0);
    let ticker = spawn_periodic(&broker, LOG_TICK, "log maintenance", move |b| {
        b.replicas.tick();
        let tick = log_ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if tick.is_multiple_of(HIGH_WATERMARK_CHECKPOINT_TICKS) {
            if let Err(e) = b.replicas.checkpoint_high_watermarks() {
                tracing::error!(error = %e, "cannot write the high-watermark checkpoint; will retry");
            }
        }
        if tick.is_multiple_of(PRODUCER_SNAPSHOT_TICKS) {
            b.replicas.snapshot_producers();
        }
        b.metrics.cluster.observe_quorum(&b.cluster.status());
    });
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
    add_scram_users(&broker).await;
    let tls_reloader = tls.as_ref().map(|tls| {
        tls.spawn_reloader(
            broker.config.security.tls_reload_interval,
            broker.shutdown_signal(),
        )
    });
    let http_task = tokio::spawn(crate::http::serve(http, broker.clone()));
    crate::net::serve_listeners(listeners, tls, broker.clone()).await;
    if let Some(reloader) = tls_reloader {
        reloader.abort();
    }
    // Leaderships move before the logs close, so clients switch to the new leaders.
    cluster.controlled_shutdown().await;
    http_task.abort();
    // Heartbeats and session checks may be waiting on a quorum that is gone (the last
    // nodes of a full stop): they hold nothing that needs finishing.
    heartbeats.abort();
    sessions.abort();
    fetchers.abort();
    isr_checks.abort();
    if let Some(rebalance) = rebalance {
        rebalance.abort();
    }
    let _ = follower.await;
    let _ = ticker.await;
    let _ = group_ticker.await;
    if let Some(cleaner) = cleaner {
        let _ = cleaner.await;
    }

    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.replicas.shutdown())
        .await?
        .map_err(|e| anyhow::anyhow!("flushing logs at shutdown failed: {e}"))?;
    cluster.shutdown_quorum().await;
    tracing::info!("broker stopped cleanly");
    Ok(())
}

/// Applies every metadata change to this broker's logs and group coordinator, as it
/// arrives (changes that arrive during one application are coalesced into the next).
fn spawn_metadata_follower(broker: &Arc<Broker>) -> tokio::task::JoinHandle<()> {
    let broker = broker.clone();
    let mut images = broker.cluster.subscribe();
    let mut shutdown = broker.shutdown_signal();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = images.changed() => if changed.is_err() { break },
                _ = stopped(&mut shutdown) => break,
            }
            let image = images.borrow_and_update().clone();
            let b = broker.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || b.follow_metadata(&image)).await {
                tracing::error!(error = %e, "applying a metadata change failed");
            }
            for (partition, change) in broker.replicas.take_isr_changes() {
                spawn_isr_change(&broker, partition, change);
            }
        }
    })
}

/// Proposes an ISR change of a partition this broker leads (AlterPartition with the
/// partition epoch it was computed at). Refused or failed, the partition may propose
/// again at its next check; committed, it takes effect when the image arrives.
pub fn spawn_isr_change(broker: &Arc<Broker>, partition: Arc<Partition>, change: IsrChange) {
    let broker = broker.clone();
    tokio::spawn(async move {
        let before = broker
            .replicas
            .metadata()
            .partition(partition.topic(), partition.index())
            .map(|p| p.isr.len())
            .unwrap_or(0);
        let command = MetadataCommand::AlterPartition {
            topic: partition.topic().to_string(),
            partition: partition.index(),
            leader: broker.config.node_id,
            leader_epoch: change.leader_epoch,
            isr: change.isr.clone(),
            partition_epoch: Some(change.partition_epoch),
        };
        match broker.cluster.propose(command).await {
            Ok(_) => {
                let metrics = &broker.metrics.replication;
                if change.isr.len() < before {
                    metrics.isr_shrinks.inc();
                } else if change.isr.len() > before {
                    metrics.isr_expands.inc();
                }
                tracing::info!(topic = partition.topic(), partition = partition.index(),
                    isr = ?change.isr, previous_size = before, "ISR changed");
            }
            Err(e) => {
                tracing::info!(topic = partition.topic(), partition = partition.index(),
                    isr = ?change.isr, error = %e, "ISR change not committed; will retry");
                partition.isr_change_failed();
            }
        }
    });
}

/// Every `replica.lag.time.max.ms / 2` (as Kafka): followers of partitions led here that
/// have not caught up within the lag time leave the ISR.
fn spawn_isr_checks(broker: &Arc<Broker>) -> tokio::task::JoinHandle<()> {
    let broker = broker.clone();
    let lag = broker.config.cluster.replica_lag_time_max;
    let period = (lag / 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut shutdown = broker.shutdown_signal();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stopped(&mut shutdown) => break,
            }
            let now = crate::replica_manager::now_ms();
            for partition in broker.replicas.partitions() {
                if let Some(change) = partition.shrink_isr_candidate(now, lag.as_millis() as i64) {
                    tracing::info!(topic = partition.topic(), partition = partition.index(),
                        isr = ?change.isr, lag_ms = lag.as_millis() as u64,
                        "followers not caught up within replica.lag.time.max.ms leave the ISR");
                    spawn_isr_change(&broker, partition, change);
                }
            }
        }
    })
}

/// Kafka's auto.leader.rebalance.enable, run by the controller: every `every`, each
/// partition whose preferred replica is back in sync but not leading gets a preferred
/// election.
fn spawn_leader_rebalance(broker: &Arc<Broker>, every: Duration) -> tokio::task::JoinHandle<()> {
    let broker = broker.clone();
    let mut shutdown = broker.shutdown_signal();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stopped(&mut shutdown) => break,
            }
            if !broker.cluster.status().is_leader {
                continue;
            }
            for (topic, partition) in broker.replicas.metadata().preferred_leader_imbalance() {
                let command = MetadataCommand::ElectPreferred {
                    topic: topic.clone(),
                    partition,
                };
                match broker.cluster.propose(command).await {
                    Ok(_) => tracing::info!(%topic, partition,
                        "leadership moved back to the preferred replica"),
                    Err(e) => tracing::debug!(%topic, partition, error = %e,
                        "preferred leader election not done"),
                }
            }
        }
    })
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
