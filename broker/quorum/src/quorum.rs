//! [`Quorum`], its configuration and status: the crate's public face.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironlog_metadata::{BrokerId, CommandResult, MetadataCommand, MetadataImage};
use openraft::{BasicNode, ServerState, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::QuorumError;
use crate::log_store::{CommitIndex, LogStore};
use crate::network::client::{NetworkFactory, Peers};
use crate::network::server::serve;
use crate::network::{ControlReply, ControlRequest, QuorumTls};
use crate::node::{join_as_learner, lock, publish_status, Core, LeaderHeartbeats};
use crate::state_machine::StateMachineStore;
use crate::types::{NodeId, Raft};

/// How a node takes part in the metadata quorum.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    pub node_id: BrokerId,
    /// `<data_dir>/__cluster_metadata-0`: the Raft log, vote, committed index and snapshot.
    pub dir: PathBuf,
    /// The controller listener to bind (Raft RPCs and forwarding). `None`: no network (a
    /// quorum of one, no voters).
    pub listen: Option<SocketAddr>,
    /// `host:port` other nodes reach this node's controller listener at. A voter's address
    /// is taken from `voters` instead.
    pub advertised: String,
    /// The static voter set (`controller.quorum.voters`): id -> `host:port`. Empty: a quorum
    /// of one made of this node.
    pub voters: BTreeMap<BrokerId, String>,
    /// Default 100 ms.
    pub heartbeat_interval: Duration,
    /// A follower that hears from no leader for a random time in this range stands for
    /// election. Default 500..1000 ms.
    pub election_timeout: (Duration, Duration),
    /// A snapshot is taken once this many entries were applied since the last one
    /// (default 1000).
    pub snapshot_every: u64,
    /// Entries a snapshot covers that are kept in the log anyway, so a follower that is a
    /// little behind catches up from the log rather than a snapshot (default 500).
    pub keep_after_snapshot: u64,
    /// Mutual TLS on the controller listener and to the peers'; `None`: plain TCP.
    pub tls: Option<QuorumTls>,
}

impl QuorumConfig {
    /// A quorum of one without network, with default timings.
    pub fn new(node_id: BrokerId, dir: impl Into<PathBuf>) -> QuorumConfig {
        QuorumConfig {
            node_id,
            dir: dir.into(),
            listen: None,
            advertised: String::new(),
            voters: BTreeMap::new(),
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(500), Duration::from_millis(1000)),
            snapshot_every: 1000,
            keep_after_snapshot: 500,
            tls: None,
        }
    }
}

/// Where the quorum stands, as seen from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    pub node_id: BrokerId,
    pub leader: Option<BrokerId>,
    pub term: u64,
    /// The index of the last committed entry (openraft indexes from 0; 0 also before any).
    pub commit_index: u64,
    /// The index of the last entry applied to this node's image (0 also before any).
    pub applied_index: u64,
    pub voters: Vec<ReplicaStatus>,
    pub learners: Vec<ReplicaStatus>,
    pub is_leader: bool,
}

/// One member of the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub id: BrokerId,
    /// Its controller listener.
    pub addr: String,
    /// The last log index known to match the leader's; only known on the leader.
    pub matched_index: Option<u64>,
    /// Entries the leader has that this replica has not matched yet; only on the leader.
    pub lag: Option<u64>,
}

/// This node's part in the metadata quorum. See the crate docs.
pub struct Quorum {
    core: Arc<Core>,
    status: watch::Receiver<QuorumStatus>,
    local_addr: Option<SocketAddr>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    shut_down: AtomicBool,
    /// An exclusive flock on `<dir>/.lock` for as long as this quorum member lives: a
    /// second process on the same directory would corrupt the log.
    _lock: std::fs::File,
}

/// Takes the directory's exclusive lock, or fails if another process holds it.
fn lock_dir(dir: &std::path::Path) -> Result<std::fs::File, QuorumError> {
    std::fs::create_dir_all(dir).map_err(QuorumError::io("create", dir))?;
    let path = dir.join(".lock");
    let file = std::fs::File::create(&path).map_err(QuorumError::io("create", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(QuorumError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(QuorumError::io("lock", &path)(e)),
    }
}

fn node_id(id: BrokerId) -> Result<NodeId, QuorumError> {
    NodeId::try_from(id).map_err(|_| QuorumError::Config(format!("node id {id} is negative")))
}

impl Quorum {
    /// Opens the on-disk state in `config.dir` and starts Raft.
    ///
    /// - A quorum of one (no `voters`) initializes itself and is leader when this returns
    ///   (after at most a few election timeouts on restart).
    /// - A voter whose store is fresh initializes the quorum with all the voters (every voter
    ///   does so with the same membership, which openraft allows); the leader is elected in
    ///   the background once a majority is up.
    /// - A node not in `voters` is a learner: it asks the voters to add it, in the background,
    ///   until one answers that it is a member.
    ///
    /// # Errors
    /// [`QuorumError::Config`] for a negative id, voters without this node's address or an
    /// invalid timing; [`QuorumError::Io`]/[`QuorumError::Storage`] if the directory cannot
    /// be read; [`QuorumError::Bind`] if the listener cannot be bound.
    pub async fn start(config: QuorumConfig) -> Result<Quorum, QuorumError> {
        let id = node_id(config.node_id)?;
        let mut voters = BTreeMap::new();
        for (&voter, addr) in &config.voters {
            voters.insert(node_id(voter)?, BasicNode::new(addr.clone()));
        }
        let is_voter = voters.is_empty() || voters.contains_key(&id);
        if !voters.is_empty() && config.listen.is_none() {
            return Err(QuorumError::Config(
                "a node of a multi-node quorum needs a controller listener".into(),
            ));
        }
        if voters.is_empty() {
            voters.insert(id, BasicNode::new(config.advertised.clone()));
        }
        let voter_addrs: Vec<String> = voters
            .iter()
            .filter(|(v, _)| **v != id)
            .map(|(_, n)| n.addr.clone())
            .collect();
        let advertised = match voters.get(&id) {
            Some(node) => node.addr.clone(),
            None => config.advertised.clone(),
        };
        if !is_voter && advertised.is_empty() {
            return Err(QuorumError::Config(format!(
                "node {id} is not a voter, so it joins as a learner and needs an advertised \
                 controller address"
            )));
        }

        let raft_config = openraft::Config {
            cluster_name: "ironlog-metadata".into(),
            heartbeat_interval: millis(config.heartbeat_interval),
            election_timeout_min: millis(config.election_timeout.0),
            election_timeout_max: millis(config.election_timeout.1),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.keep_after_snapshot,
            // Chunks travel as JSON (a byte array costs ~4x): keep frames well under the limit.
            snapshot_max_chunk_size: 1024 * 1024,
            // openraft's 200 ms default is too short for a 1 MiB chunk on a loaded machine: a
            // node back from a network cut then never gets its snapshot, and retries forever.
            install_snapshot_timeout: 10_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| QuorumError::Config(e.to_string()))?;

        let lock = lock_dir(&config.dir)?;
        let commit_index = CommitIndex::default();
        let (images_tx, images) = watch::channel(Arc::new(MetadataImage::default()));
        let log_store = LogStore::open(&config.dir, commit_index.clone())?;
        let state_machine = StateMachineStore::open(&config.dir, Arc::new(images_tx))?;

        // Bind before starting Raft, so a taken port fails the start cleanly.
        let listener = match config.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| QuorumError::Bind { addr, source })?,
            ),
            None => None,
        };
        let local_addr = match &listener {
            Some(l) => Some(l.local_addr().map_err(|source| QuorumError::Bind {
                addr: config.listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                source,
            })?),
            None => None,
        };

        let peers = Peers::new(config.tls.clone());
        let network = NetworkFactory {
            node_id: id,
            peers: peers.clone(),
        };
        let raft = Raft::new(id, Arc::new(raft_config), network, log_store, state_machine)
            .await
            .map_err(|e| QuorumError::Fatal(e.to_string()))?;

        let core = Arc::new(Core {
            node_id: id,
            raft,
            peers,
            voter_addrs,
            images,
            commit_index,
            heartbeats: Mutex::new(LeaderHeartbeats::default()),
            control_timeout: (config.election_timeout.1 * 3).max(Duration::from_secs(1)),
        });

        let (status_tx, status) = watch::channel(core.status());
        let mut tasks = vec![tokio::spawn(publish_status(core.clone(), status_tx))];
        if let Some(listener) = listener {
            tasks.push(tokio::spawn(serve(
                listener,
                core.clone(),
                config.tls.clone(),
            )));
        }

        if !is_voter {
            tasks.push(tokio::spawn(join_as_learner(core.clone(), advertised)));
        }
        // Built before anything else can fail: dropping it stops the tasks.
        let quorum = Quorum {
            core,
            status,
            local_addr,
            tasks: Mutex::new(tasks),
            shut_down: AtomicBool::new(false),
            _lock: lock,
        };
        if is_voter {
            quorum.core.initialize(voters).await?;
        }
        if config.voters.is_empty() {
            let wait = config.election_timeout.1 * 5;
            let leading = quorum
                .core
                .raft
                .wait(Some(wait))
                .current_leader(id, "a quorum of one elects itself")
                .await;
            if leading.is_err() {
                tracing::warn!(
                    node = id,
                    "a quorum of one did not elect itself within {wait:?}"
                );
            }
        }
        Ok(quorum)
    }

    /// Proposes `cmd` and waits until it is committed and applied to this node's image;
    /// returns what applying it answered. On a node that does not lead, the command is
    /// forwarded to the leader; across leader changes it is retried until `timeout`.
    ///
    /// A command whose first attempt reached the leader but whose answer was lost may be
    /// applied twice; the metadata commands are written to make that harmless (a retried
    /// `CreateTopic` is answered `TopicExists` with the same topic id).
    ///
    /// # Errors
    /// [`QuorumError::NoLeader`] if no leader was reachable for the whole `timeout`,
    /// [`QuorumError::Timeout`] if one was but the command was not applied in time.
    pub async fn propose(
        &self,
        cmd: MetadataCommand,
        timeout: Duration,
    ) -> Result<CommandResult, QuorumError> {
        let deadline = Instant::now() + timeout;
        // The caller's timeout bounds the whole call, including a leader that has lost its
        // majority and would wait for a commit that cannot come.
        let routed = tokio::time::timeout(
            timeout,
            self.core
                .route(ControlRequest::Forward(cmd), timeout, deadline),
        )
        .await
        .map_err(|_| QuorumError::Timeout(timeout, "not committed in time".into()))?;
        match routed? {
            ControlReply::Applied { result, index } => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                self.core
                    .raft
                    .wait(Some(remaining))
                    .applied_index_at_least(Some(index), "the proposal is applied here")
                    .await
                    .map_err(|e| {
                        QuorumError::Timeout(
                            timeout,
                            format!("committed at index {index}, not applied here: {e}"),
                        )
                    })?;
                Ok(result)
            }
            other => Err(QuorumError::Network(format!(
                "unexpected answer to a proposal: {other:?}"
            ))),
        }
    }

    /// The latest applied image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.core.images.borrow().clone()
    }

    /// A watch of the applied image: every apply publishes (watchers may see only the last
    /// of several quick ones).
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.core.images.clone()
    }

    pub fn status(&self) -> QuorumStatus {
        self.core.status()
    }

    /// A watch of [`Quorum::status`]; changes at least on leader and term changes.
    pub fn subscribe_status(&self) -> watch::Receiver<QuorumStatus> {
        self.status.clone()
    }

    /// The address the controller listener is bound to (e.g. after binding port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Records a broker heartbeat on the leader (here if this node leads).
    ///
    /// # Errors
    /// [`QuorumError::NoLeader`]/[`QuorumError::Timeout`] if no leader took it in a few
    /// election timeouts.
    pub async fn heartbeat(&self, broker: BrokerId, incarnation: Uuid) -> Result<(), QuorumError> {
        let timeout = self.core.control_timeout;
        let request = ControlRequest::Heartbeat {
            broker,
            incarnation,
        };
        self.core
            .route(request, timeout, Instant::now() + timeout)
            .await?;
        Ok(())
    }

    /// On the leader: per broker, the incarnation and arrival time of the last heartbeat
    /// received since this node became leader. Empty on other nodes.
    pub fn heartbeats(&self) -> HashMap<BrokerId, (Uuid, Instant)> {
        let (is_leader, term) = {
            let m = self.core.raft.metrics();
            let m = m.borrow();
            (m.state == ServerState::Leader, m.current_term)
        };
        let hb = lock(&self.core.heartbeats);
        if is_leader && hb.term == term {
            hb.last.clone()
        } else {
            HashMap::new()
        }
    }

    /// Stops Raft and the controller listener. Idempotent.
    ///
    /// # Errors
    /// [`QuorumError::Fatal`] if Raft's task had panicked.
    pub async fn shutdown(&self) -> Result<(), QuorumError> {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        self.core
            .raft
            .shutdown()
            .await
            .map_err(|e| QuorumError::Fatal(format!("raft task failed: {e}")))
    }
}

impl Drop for Quorum {
    fn drop(&mut self) {
        // The tasks hold the Raft handle; once they and we are gone Raft stops too.
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
