//! The node's shared core: serves peers' requests, routes control requests to the leader,
//! computes the status, and keeps a learner asking to join.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironlog_metadata::{BrokerId, MetadataImage};
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::QuorumError;
use crate::log_store::CommitIndex;
use crate::network::client::Peers;
use crate::network::{ControlError, ControlReply, ControlRequest, Request, Response};
use crate::quorum::{QuorumStatus, ReplicaStatus};
use crate::types::{NodeId, Raft, RaftMetrics};

/// What the request handlers and the public API share.
pub(crate) struct Core {
    pub(crate) node_id: NodeId,
    pub(crate) raft: Raft,
    pub(crate) peers: Peers,
    /// Other voters' controller addresses, for a node that knows no leader yet.
    pub(crate) voter_addrs: Vec<String>,
    pub(crate) images: watch::Receiver<Arc<MetadataImage>>,
    pub(crate) commit_index: CommitIndex,
    pub(crate) heartbeats: Mutex<LeaderHeartbeats>,
    /// How long a heartbeat or a join attempt may take.
    pub(crate) control_timeout: Duration,
}

/// Broker heartbeats received while leading in `term`.
#[derive(Default)]
pub(crate) struct LeaderHeartbeats {
    pub(crate) term: u64,
    pub(crate) last: HashMap<BrokerId, (Uuid, Instant)>,
}

/// A leader serves a forwarded proposal at most this long (the proposer gives up sooner).
const MAX_SERVE: Duration = Duration::from_secs(60);
/// Between two attempts to reach a leader when nothing changed.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Our node ids come from `BrokerId`s, so they fit; a foreign id shows as -1.
fn broker_id(id: NodeId) -> BrokerId {
    BrokerId::try_from(id).unwrap_or(-1)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing behind these mutexes can be left half-updated by a panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Core {
    fn metrics(&self) -> RaftMetrics {
        self.raft.metrics().borrow().clone()
    }

    pub(crate) async fn initialize(
        &self,
        voters: BTreeMap<NodeId, BasicNode>,
    ) -> Result<(), QuorumError> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| QuorumError::Fatal(e.to_string()))?;
        if initialized {
            return Ok(());
        }
        tracing::info!(node = self.node_id, voters = ?voters.keys().collect::<Vec<_>>(),
            "initializing a fresh metadata quorum");
        match self.raft.initialize(voters).await {
            Ok(()) => Ok(()),
            // Another voter reached us first: we are part of the quorum already.
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::info!("not initializing the metadata quorum: {e}");
                Ok(())
            }
            Err(e) => Err(QuorumError::Fatal(format!(
                "initializing the metadata quorum: {e}"
            ))),
        }
    }

    /// Serves one request from a peer.
    pub(crate) async fn handle(&self, request: Request) -> Response {
        match request {
            Request::AppendEntries(rpc) => {
                Response::AppendEntries(self.raft.append_entries(rpc).await)
            }
            Request::Vote(rpc) => Response::Vote(self.raft.vote(rpc).await),
            Request::InstallSnapshot(rpc) => {
                Response::InstallSnapshot(self.raft.install_snapshot(rpc).await)
            }
            Request::Control { request, relayed } => {
                Response::Control(self.control(request, relayed).await)
            }
        }
    }

    /// A control request from a peer: served if we lead, relayed once to the leader if we
    /// know it, refused otherwise.
    async fn control(
        &self,
        request: ControlRequest,
        relayed: bool,
    ) -> Result<ControlReply, ControlError> {
        let m = self.metrics();
        if m.current_leader == Some(self.node_id) {
            return self.lead(request).await;
        }
        let leader_addr = m.current_leader.and_then(|l| {
            m.membership_config
                .membership()
                .get_node(&l)
                .map(|n| n.addr.clone())
        });
        match leader_addr {
            Some(addr) if !relayed => {
                let relay = Request::Control {
                    request,
                    relayed: true,
                };
                match self.peers.call(&addr, relay, MAX_SERVE).await {
                    Ok(Response::Control(r)) => r,
                    Ok(other) => Err(ControlError::Failed(format!(
                        "unexpected answer from the leader: {other:?}"
                    ))),
                    Err(e) => Err(ControlError::Failed(format!("relaying to the leader: {e}"))),
                }
            }
            _ => Err(ControlError::NotLeader {
                leader: m.current_leader,
            }),
        }
    }

    /// Serves a control request as the leader.
    async fn lead(&self, request: ControlRequest) -> Result<ControlReply, ControlError> {
        let not_leader = |e: &ClientWriteError<NodeId, BasicNode>| match e {
            ClientWriteError::ForwardToLeader(f) => Some(ControlError::NotLeader {
                leader: f.leader_id,
            }),
            ClientWriteError::ChangeMembershipError(_) => None,
        };
        match request {
            ControlRequest::Forward(cmd) => {
                match tokio::time::timeout(MAX_SERVE, self.raft.client_write(cmd)).await {
                    Ok(Ok(resp)) => Ok(ControlReply::Applied {
                        result: resp.data,
                        index: resp.log_id.index,
                    }),
                    Ok(Err(RaftError::APIError(e))) => {
                        Err(not_leader(&e).unwrap_or(ControlError::Failed(e.to_string())))
                    }
                    Ok(Err(RaftError::Fatal(e))) => Err(ControlError::Failed(e.to_string())),
                    Err(_) => Err(ControlError::Failed(format!(
                        "not committed within {MAX_SERVE:?}"
                    ))),
                }
            }
            ControlRequest::Join { id, addr } => {
                let m = self.metrics();
                let membership = m.membership_config.membership();
                let known = membership.get_node(&id).map(|n| n.addr.clone());
                let is_voter = membership.voter_ids().any(|v| v == id);
                let node = BasicNode::new(addr.clone());
                let added = match known {
                    Some(known) if known == addr => return Ok(ControlReply::Joined),
                    // Re-pointing a voter's id at another address could split the quorum:
                    // voters' addresses are static configuration.
                    Some(known) if is_voter => {
                        return Err(ControlError::Failed(format!(
                            "node {id} is a voter at {known}; it cannot join as a learner at {addr}"
                        )))
                    }
                    // A learner that moved (restarted on another address).
                    Some(known) => {
                        tracing::info!(node = id, from = %known, to = %addr, "updating a quorum member's address");
                        let change = ChangeMembers::SetNodes(BTreeMap::from([(id, node)]));
                        self.raft.change_membership(change, true).await
                    }
                    None => {
                        tracing::info!(node = id, %addr, "adding a learner to the metadata quorum");
                        self.raft.add_learner(id, node, false).await
                    }
                };
                match added {
                    Ok(_) => Ok(ControlReply::Joined),
                    Err(RaftError::APIError(e)) => {
                        Err(not_leader(&e).unwrap_or(ControlError::Failed(e.to_string())))
                    }
                    Err(RaftError::Fatal(e)) => Err(ControlError::Failed(e.to_string())),
                }
            }
            ControlRequest::Heartbeat {
                broker,
                incarnation,
            } => {
                let m = self.metrics();
                if m.state != ServerState::Leader {
                    return Err(ControlError::NotLeader {
                        leader: m.current_leader,
                    });
                }
                let mut hb = lock(&self.heartbeats);
                if hb.term != m.current_term {
                    // Heartbeats from an earlier term of ours are not evidence for this one.
                    hb.term = m.current_term;
                    hb.last.clear();
                }
                hb.last.insert(broker, (incarnation, Instant::now()));
                Ok(ControlReply::HeartbeatRecorded)
            }
        }
    }

    /// Gets `request` served by the leader, wherever it is, retrying until `deadline`.
    pub(crate) async fn route(
        &self,
        request: ControlRequest,
        timeout: Duration,
        deadline: Instant,
    ) -> Result<ControlReply, QuorumError> {
        let mut metrics = self.raft.metrics();
        let mut last_error: Option<String> = None;
        let mut next_voter = 0;
        loop {
            let m = metrics.borrow_and_update().clone();
            if let Err(e) = &m.running_state {
                return Err(QuorumError::Fatal(e.to_string()));
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt = if m.current_leader == Some(self.node_id) {
                self.lead(request.clone()).await
            } else {
                // The leader if we know it; otherwise any voter, which relays to the leader
                // (a learner that has not joined yet knows no leader).
                let target = match m.current_leader {
                    Some(l) => m
                        .membership_config
                        .membership()
                        .get_node(&l)
                        .map(|n| n.addr.clone()),
                    None if !self.voter_addrs.is_empty() => {
                        next_voter = (next_voter + 1) % self.voter_addrs.len();
                        Some(self.voter_addrs[next_voter].clone())
                    }
                    None => None,
                };
                match target {
                    Some(addr) => {
                        let call = Request::Control {
                            request: request.clone(),
                            relayed: false,
                        };
                        match self.peers.call(&addr, call, remaining).await {
                            Ok(Response::Control(r)) => r,
                            Ok(other) => Err(ControlError::Failed(format!(
                                "unexpected answer: {other:?}"
                            ))),
                            Err(e) => Err(ControlError::Failed(e.to_string())),
                        }
                    }
                    None => Err(ControlError::NotLeader { leader: None }),
                }
            };
            match attempt {
                Ok(reply) => return Ok(reply),
                Err(ControlError::NotLeader { leader: None }) => {}
                Err(e) => last_error = Some(e.to_string()),
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(match last_error {
                    None => QuorumError::NoLeader(timeout),
                    Some(e) => QuorumError::Timeout(timeout, e),
                });
            }
            // Retry when the leader changes, or after a pause.
            let _ = tokio::time::timeout(remaining.min(RETRY_PAUSE), metrics.changed()).await;
        }
    }

    pub(crate) fn status(&self) -> QuorumStatus {
        let m = self.raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        let replicas = |ids: Vec<NodeId>| -> Vec<ReplicaStatus> {
            ids.into_iter()
                .map(|id| {
                    let matched = match &m.replication {
                        Some(_) if id == self.node_id => Some(m.last_log_index),
                        Some(r) => Some(r.get(&id).copied().flatten().map(|l| l.index)),
                        None => None,
                    };
                    let lag = matched.map(|matched| {
                        let have = m.last_log_index.map_or(0, |i| i + 1);
                        have.saturating_sub(matched.map_or(0, |i| i + 1))
                    });
                    ReplicaStatus {
                        id: broker_id(id),
                        addr: membership
                            .get_node(&id)
                            .map(|n| n.addr.clone())
                            .unwrap_or_default(),
                        matched_index: matched.flatten(),
                        lag,
                    }
                })
                .collect()
        };
        QuorumStatus {
            node_id: broker_id(self.node_id),
            leader: m.current_leader.map(broker_id),
            term: m.current_term,
            commit_index: self.commit_index.get().unwrap_or(0),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            voters: replicas(membership.voter_ids().collect()),
            learners: replicas(membership.learner_ids().collect()),
            is_leader: m.state == ServerState::Leader,
        }
    }
}

/// Republishes the status whenever Raft's metrics change.
pub(crate) async fn publish_status(core: Arc<Core>, tx: watch::Sender<QuorumStatus>) {
    let mut metrics = core.raft.metrics();
    while metrics.changed().await.is_ok() {
        let status = core.status();
        tx.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }
}

/// Asks the voters to add this node as a learner until one says it is a member.
pub(crate) async fn join_as_learner(core: Arc<Core>, advertised: String) {
    let mut pause = Duration::from_millis(100);
    let mut attempts = 0u32;
    loop {
        let m = core.metrics();
        let member = m
            .membership_config
            .membership()
            .get_node(&core.node_id)
            .map(|n| n.addr.clone());
        if member.as_deref() == Some(advertised.as_str()) {
            tracing::info!(
                node = core.node_id,
                "this node is a learner of the metadata quorum"
            );
            return;
        }
        let request = ControlRequest::Join {
            id: core.node_id,
            addr: advertised.clone(),
        };
        let deadline = Instant::now() + core.control_timeout;
        match core.route(request, core.control_timeout, deadline).await {
            Ok(_) => {
                tracing::info!(
                    node = core.node_id,
                    "joined the metadata quorum as a learner"
                );
                return;
            }
            Err(e) => {
                attempts += 1;
                // The first failures are expected while the voters elect a leader.
                if attempts % 10 == 3 {
                    tracing::warn!(
                        node = core.node_id,
                        "cannot join the metadata quorum yet: {e}"
                    );
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}
