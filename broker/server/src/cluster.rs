//! This node's part in the cluster: the metadata quorum, the broker's registration and
//! heartbeats, and, on the Raft leader, the controller's duties.
//!
//! KRaft's shape, on [`ironlog_quorum`]: every node runs a quorum member (a voter when it
//! is in `--voters`, otherwise a learner that follows the log) and applies the committed
//! [`MetadataCommand`]s to its own [`MetadataImage`]. Whichever node leads Raft is the
//! controller: it receives every broker's heartbeats and fences a broker whose heartbeats
//! stop for `--broker-session-timeout-ms`. Any node may propose; a follower's proposal is
//! forwarded to the leader by the quorum layer. Decisions that depend on the image
//! (placement, leader election) are made when a command is applied (see
//! [`ironlog_metadata`]), so they come out the same on every node.
//!
//! Start-up, in order: the quorum starts (a quorum of one when there are no voters); the
//! first command of a new quorum, `Bootstrap`, sets the cluster id and imports a
//! single-node data directory's `cluster-metadata.json` when there is one (the file is
//! then renamed `cluster-metadata.json.imported`); the broker registers, and is unfenced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironlog_metadata::{
    BrokerRegistration, CommandError, CommandResult, LegacyImport, MetadataCommand, MetadataImage,
};
use ironlog_quorum::{Quorum, QuorumConfig, QuorumError, QuorumStatus};
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::BrokerConfig;

/// The single-node metadata file of versions before clustering.
const LEGACY_FILE: &str = "cluster-metadata.json";
/// Where the Raft log and snapshots live, under the data directory (KRaft's name).
pub const QUORUM_DIR: &str = ironlog_storage::METADATA_LOG_DIR;
/// How long one proposal may wait for a leader and a commit.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the controller checks broker sessions.
const SESSION_CHECK: Duration = Duration::from_millis(250);

/// Why the cluster layer failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("metadata quorum: {0}")]
    Quorum(#[from] QuorumError),
    #[error("{0}")]
    Rejected(#[from] CommandError),
    #[error("cannot read {path}: {reason}")]
    Legacy { path: PathBuf, reason: String },
    #[error("the command was applied but answered {0:?}")]
    Unexpected(Box<CommandResult>),
    #[error("TLS: {0}")]
    Tls(String),
}

/// This node in the cluster.
pub struct Cluster {
    quorum: Quorum,
    node_id: i32,
    registration: BrokerRegistration,
    session_timeout: Duration,
    heartbeat_interval: Duration,
}

impl Cluster {
    /// Starts the quorum member, bootstraps the cluster id (importing a single-node
    /// directory's metadata) and registers this broker. Waits as long as it takes for a
    /// quorum to form (the other voters may start later), logging while it waits.
    ///
    /// `tls`: the broker's TLS files, which the controller listener serves with
    /// `--controller-security-protocol SSL`.
    pub async fn start(
        config: &BrokerConfig,
        tls: Option<&Arc<crate::net::tls::Tls>>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let settings = &config.cluster;
        let quorum_tls = match (&settings.controller_tls, tls) {
            (Some(client), Some(tls)) => {
                let (tls, client) = (tls.clone(), client.clone());
                // Built once here so unusable files fail the start, then per connection.
                ironlog_client::security::tls_connector(&client)
                    .map_err(|e| ClusterError::Tls(format!("controller listener: {e}")))?;
                Some(ironlog_quorum::QuorumTls {
                    acceptor: Arc::new(move || tls.acceptor(true)),
                    connector: Arc::new(move |peer: &str| {
                        Ok((
                            ironlog_client::security::tls_connector(&client)?,
                            ironlog_client::security::server_name(peer)?,
                        ))
                    }),
                })
            }
            (Some(_), None) => {
                return Err(ClusterError::Tls(
                    "controller listener: TLS needs --tls-cert and --tls-key".into(),
                ))
            }
            (None, _) => None,
        };
        let quorum = Quorum::start(QuorumConfig {
            listen: settings.controller_listen,
            advertised: settings.controller_advertised.clone(),
            voters: settings.voters.clone(),
            tls: quorum_tls,
            ..QuorumConfig::new(config.node_id, config.data_dir.join(QUORUM_DIR))
        })
        .await?;
        let cluster = Arc::new(Cluster {
            quorum,
            node_id: config.node_id,
            registration: BrokerRegistration {
                id: config.node_id,
                incarnation: Uuid::new_v4(),
                host: config.advertised_host.clone(),
                port: config.advertised_port,
                rack: settings.rack.clone(),
                listeners: config
                    .listeners
                    .iter()
                    .map(|l| ironlog_metadata::BrokerEndpoint {
                        name: l.name.clone(),
                        host: l.advertised_host.clone(),
                        port: l.advertised_port,
                    })
                    .collect(),
                fenced: false,
            },
            session_timeout: settings.session_timeout,
            heartbeat_interval: settings.heartbeat_interval,
        });
        cluster.bootstrap(&config.data_dir).await?;
        cluster
            .propose_until_leader(MetadataCommand::RegisterBroker(
                cluster.registration.clone(),
            ))
            .await?;
        tracing::info!(
            node_id = config.node_id,
            incarnation = %cluster.registration.incarnation,
            voters = settings.voters.len().max(1),
            "registered with the metadata quorum"
        );
        Ok(cluster)
    }

    /// Sets the cluster id if no node has yet, importing `cluster-metadata.json` if this
    /// data directory has one.
    async fn bootstrap(&self, data_dir: &Path) -> Result<(), ClusterError> {
        let legacy_path = data_dir.join(LEGACY_FILE);
        let legacy = read_legacy(&legacy_path)?;
        if !self.image().cluster_id.is_empty() && legacy.is_none() {
            return Ok(());
        }
        let cluster_id = legacy
            .as_ref()
            .map(|l| l.cluster_id.clone())
            .unwrap_or_else(new_cluster_id);
        let import = legacy.as_ref().map(|l| LegacyImport {
            node: self.node_id,
            topics: l.topics.values().cloned().collect(),
            next_producer_id: l.next_producer_id,
        });
        self.propose_until_leader(MetadataCommand::Bootstrap {
            cluster_id: cluster_id.clone(),
            legacy: import,
        })
        .await?;
        if let Some(legacy) = legacy {
            let image = self.image();
            if image.cluster_id != legacy.cluster_id {
                tracing::warn!(path = %legacy_path.display(), legacy_cluster_id = %legacy.cluster_id,
                    cluster_id = %image.cluster_id,
                    "this data directory's single-node metadata was not imported: the quorum already \
                     belongs to another cluster; its topics are not part of this cluster");
            } else {
                tracing::info!(topics = legacy.topics.len(), cluster_id = %image.cluster_id,
                    "imported single-node metadata into the quorum");
            }
            let done = legacy_path.with_extension("json.imported");
            std::fs::rename(&legacy_path, &done).map_err(|e| ClusterError::Legacy {
                path: legacy_path.clone(),
                reason: format!("imported, but cannot rename it to {}: {e}", done.display()),
            })?;
        }
        Ok(())
    }

    /// Proposes at start-up, when the quorum may not have formed yet: retries until it has.
    async fn propose_until_leader(
        &self,
        command: MetadataCommand,
    ) -> Result<CommandResult, ClusterError> {
        let started = Instant::now();
        loop {
            match self.quorum.propose(command.clone(), PROPOSE_TIMEOUT).await {
                Ok(CommandResult::Rejected(e)) => return Err(e.into()),
                Ok(result) => return Ok(result),
                Err(
                    e @ (QuorumError::NoLeader(_)
                    | QuorumError::Timeout(..)
                    | QuorumError::Network(_)),
                ) => {
                    tracing::warn!(waited_s = started.elapsed().as_secs(), error = %e,
                        "waiting for the metadata quorum to elect a leader (are the other voters up?)");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn incarnation(&self) -> Uuid {
        self.registration.incarnation
    }

    /// The latest applied metadata.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// Changes to the applied metadata.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.quorum.subscribe()
    }

    pub fn status(&self) -> QuorumStatus {
        self.quorum.status()
    }

    /// The controller (the Raft leader), if one is known.
    pub fn controller_id(&self) -> Option<i32> {
        self.quorum.status().leader
    }

    /// Proposes a command and waits until it is applied here. A rejected command is an
    /// `Err(ClusterError::Rejected)`.
    pub async fn propose(&self, command: MetadataCommand) -> Result<CommandResult, ClusterError> {
        match self.quorum.propose(command, PROPOSE_TIMEOUT).await? {
            CommandResult::Rejected(e) => Err(e.into()),
            result => Ok(result),
        }
    }

    /// Clean shutdown: asks the controller to move this broker's leaderships away.
    pub async fn controlled_shutdown(&self) {
        let started = Instant::now();
        let command = MetadataCommand::ControlledShutdown {
            id: self.node_id,
            incarnation: self.registration.incarnation,
        };
        match self.quorum.propose(command, Duration::from_secs(5)).await {
            Ok(_) => tracing::info!(
                ms = started.elapsed().as_millis() as u64,
                "controlled shutdown: fenced; leaderships moved to other live in-sync replicas \
                 (partitions with none are offline until this broker returns)"
            ),
            Err(e) => tracing::warn!(error = %e,
                "controlled shutdown could not reach the controller; the broker will be fenced when its session times out"),
        }
    }

    pub async fn shutdown_quorum(&self) {
        if let Err(e) = self.quorum.shutdown().await {
            tracing::warn!(error = %e, "metadata quorum did not stop cleanly");
        }
    }

    /// Heartbeats to the controller every `--broker-heartbeat-interval-ms`, and registers
    /// again when the image shows this broker fenced or registered by another incarnation
    /// (it was cut off longer than its session).
    pub fn spawn_heartbeats(
        self: &Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(cluster.heartbeat_interval);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = crate::broker::stopped(&mut shutdown) => break,
                }
                let me = cluster.registration.clone();
                if let Err(e) = cluster.quorum.heartbeat(me.id, me.incarnation).await {
                    tracing::debug!(error = %e, "broker heartbeat not delivered");
                }
                let registered = cluster.image().brokers.get(&me.id).cloned();
                let current = registered
                    .as_ref()
                    .is_some_and(|b| !b.fenced && b.incarnation == me.incarnation);
                if !current {
                    tracing::info!("this broker is fenced in the metadata; registering again");
                    if let Err(e) = cluster.propose(MetadataCommand::RegisterBroker(me)).await {
                        tracing::warn!(error = %e, "registering again failed; will retry");
                    }
                }
            }
        })
    }

    /// Logs changes of the controller, and runs the controller's session check: while this
    /// node leads Raft, a registered unfenced broker that has not heartbeated for the
    /// session timeout is fenced. Sessions start
    /// when this node becomes leader, so a new controller gives every broker a full session.
    pub fn spawn_session_checks(
        self: &Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut leading_since: Option<Instant> = None;
            let mut last_leader = None;
            let mut interval = tokio::time::interval(SESSION_CHECK);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = crate::broker::stopped(&mut shutdown) => break,
                }
                let status = cluster.quorum.status();
                if status.leader != last_leader {
                    match status.leader {
                        Some(leader) => tracing::info!(
                            controller = leader,
                            term = status.term,
                            this_node = status.is_leader,
                            "metadata quorum has a leader (the controller)"
                        ),
                        None => tracing::warn!(
                            term = status.term,
                            "metadata quorum has no leader: is a majority of the voters up?"
                        ),
                    }
                    last_leader = status.leader;
                }
                if !status.is_leader {
                    leading_since = None;
                    continue;
                }
                let since = *leading_since.get_or_insert_with(Instant::now);
                let heartbeats = cluster.quorum.heartbeats();
                let image = cluster.image();
                for expired in expired_sessions(&image, &heartbeats, since, cluster.session_timeout)
                {
                    tracing::warn!(
                        broker = expired.id,
                        timeout_ms = cluster.session_timeout.as_millis() as u64,
                        "broker session expired; fencing it and moving its leaderships"
                    );
                    if let Err(e) = cluster
                        .propose(MetadataCommand::FenceBroker {
                            id: expired.id,
                            incarnation: expired.incarnation,
                        })
                        .await
                    {
                        tracing::warn!(broker = expired.id, error = %e, "fencing failed; will retry");
                    }
                }
            }
        })
    }
}

/// Unfenced brokers whose last heartbeat (of their registered incarnation) is older than
/// `timeout`, counting from `since` for brokers not heard from at all.
fn expired_sessions<'a>(
    image: &'a MetadataImage,
    heartbeats: &HashMap<i32, (Uuid, Instant)>,
    since: Instant,
    timeout: Duration,
) -> Vec<&'a BrokerRegistration> {
    image
        .live_brokers()
        .filter(|b| {
            let last = match heartbeats.get(&b.id) {
                Some((incarnation, at)) if *incarnation == b.incarnation => (*at).max(since),
                _ => since,
            };
            last.elapsed() > timeout
        })
        .collect()
}

fn read_legacy(path: &Path) -> Result<Option<MetadataImage>, ClusterError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ClusterError::Legacy {
                path: path.to_path_buf(),
                reason: format!(
                    "{e}; restore it from a backup, or move it away to start without its topics"
                ),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ClusterError::Legacy {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// A Kafka-style cluster id: 16 random bytes, URL-safe base64 without padding (22 chars).
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = u128::from_be_bytes(Uuid::new_v4().into_bytes());
    let mut out = String::with_capacity(22);
    for _ in 0..22 {
        out.push(ALPHABET[(bits & 63) as usize] as char);
        bits >>= 6;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(id: i32) -> BrokerRegistration {
        BrokerRegistration {
            id,
            incarnation: Uuid::from_u128(id as u128),
            host: "h".into(),
            port: 1,
            rack: None,
            listeners: Vec::new(),
            fenced: false,
        }
    }

    #[test]
    fn sessions_expire_from_the_last_heartbeat_of_the_registered_incarnation() {
        let mut image = MetadataImage::default();
        for id in [1, 2, 3] {
            image.brokers.insert(id, registration(id));
        }
        let timeout = Duration::from_millis(50);
        let long_ago = Instant::now() - Duration::from_secs(10);
        let heartbeats = HashMap::from([
            (1, (Uuid::from_u128(1), Instant::now())),
            // 2 heartbeats, but as another incarnation than the registered one.
            (2, (Uuid::from_u128(99), Instant::now())),
        ]);
        let expired: Vec<i32> = expired_sessions(&image, &heartbeats, long_ago, timeout)
            .iter()
            .map(|b| b.id)
            .collect();
        assert_eq!(expired, vec![2, 3]);
        // A controller that has just taken over gives everyone a full session.
        assert!(expired_sessions(&image, &heartbeats, Instant::now(), timeout).is_empty());
        image.brokers.get_mut(&3).unwrap().fenced = true;
        let expired: Vec<i32> = expired_sessions(&image, &heartbeats, long_ago, timeout)
            .iter()
            .map(|b| b.id)
            .collect();
        assert_eq!(expired, vec![2], "a fenced broker is not fenced again");
    }
}
