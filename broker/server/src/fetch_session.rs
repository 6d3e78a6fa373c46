//! Fetch sessions (KIP-227): the broker remembers what a client fetches, so the client
//! need only send what changed and the broker need only answer what is new.
//!
//! A client opens a session with a full Fetch (epoch 0, [`INITIAL_EPOCH`]); the response
//! carries the new session's id. Each later Fetch of that session is incremental: it
//! names the session id and the next epoch (1, 2, ...), lists only the partitions it adds
//! or whose fetch position changed, and names the partitions to forget. The broker fetches
//! every partition of the session and answers only those with something new for the
//! client: records, an error, or a high watermark, last stable offset or log start offset
//! other than the one last sent in this session. Epoch -1 ([`FINAL_EPOCH`]) closes the
//! session; with session id 0 it is a plain sessionless full fetch (as before KIP-227).
//!
//! This module is the pure core: no clock (callers pass `now` in milliseconds), no
//! randomness (callers pass a source of candidate ids), no I/O. `handler::fetch` is the
//! shell around it.
//!
//! # The cache
//! At most `max.incremental.fetch.session.cache.slots` sessions are kept. When a new one
//! needs a slot and none is free, as Kafka's `FetchSessionCache` does:
//! 1. the session used least recently is evicted if it has been idle longer than
//!    [`MIN_EVICTION_MS`] (Kafka's 120 s);
//! 2. otherwise the least valuable session is evicted if the new one is worth more:
//!    sessions rank by (follower, partition count), lowest first; a session is a candidate
//!    only once it is older than [`MIN_EVICTION_MS`], except that a follower's new session
//!    may evict any consumer session. Unlike Kafka (which breaks ties by id), the new
//!    session must rank strictly higher, so equal sessions don't evict each other in turn;
//! 3. otherwise no session is created and the full response has session id 0, which
//!    clients take as "keep sending full fetches".
//!
//! A session belongs to the principal and replica id that created it: anyone else naming
//! its id is told FETCH_SESSION_ID_NOT_FOUND, and cannot close it.
//!
//! [`client`] is the other side, for this broker's replica fetchers.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

/// "No session" in requests and responses.
pub const INVALID_SESSION_ID: i32 = 0;
/// The epoch of a full fetch that opens a session.
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full fetch that keeps (or closes) no session.
pub const FINAL_EPOCH: i32 = -1;
/// How long a session is safe from eviction, since its last use (or creation, for eviction
/// by rank): Kafka's `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`.
pub const MIN_EVICTION_MS: i64 = 120_000;
/// Kafka's default `max.incremental.fetch.session.cache.slots`.
pub const DEFAULT_CACHE_SLOTS: usize = 1000;

/// The epoch expected after `epoch`: it counts up from 1 and wraps back to 1.
pub fn next_epoch(epoch: i32) -> i32 {
    match epoch {
        e if e < 0 => FINAL_EPOCH,
        i32::MAX => 1,
        e => e + 1,
    }
}

/// How a request names a topic: by name (Fetch v7–12) or by id (v13+).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicRef {
    Name(String),
    Id(Uuid),
}

/// One partition of a session, named as its requests name it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionPartition {
    pub topic: TopicRef,
    pub partition: i32,
}

/// What the client asks of one partition; kept by the session until the client changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchPosition {
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    pub log_start_offset: i64,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
}

/// What a response tells the client about one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionOutcome {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// -1: none (KIP-392).
    pub preferred_read_replica: i32,
    pub has_error: bool,
    pub record_bytes: usize,
}

/// Who a session belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOwner {
    pub principal: String,
    /// -1 for consumers; a follower's broker id.
    pub replica_id: i32,
}

impl SessionOwner {
    /// Followers' sessions are worth more than consumers' (Kafka's "privileged").
    fn is_follower(&self) -> bool {
        self.replica_id >= 0
    }
}

/// Why a Fetch's session fields were refused; the response carries the error and no
/// partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("fetch session {0} is not known (or not this client's)")]
    IdNotFound(i32),
    #[error("fetch session {id} expected epoch {expected}, the request has {got}")]
    InvalidEpoch { id: i32, expected: i32, got: i32 },
    #[error("fetch session {0} mixes topic names and topic ids")]
    TopicIdMismatch(i32),
}

/// What a Fetch says about its session.
#[derive(Debug, Clone, Copy)]
pub struct SessionRequest<'a> {
    pub session_id: i32,
    pub epoch: i32,
    /// v13+: topics named by id.
    pub uses_topic_ids: bool,
    /// The partitions the request lists.
    pub partitions: &'a [(SessionPartition, FetchPosition)],
    /// The partitions it forgets (v7+).
    pub forgotten: &'a [SessionPartition],
}

/// How one Fetch is to be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchContext {
    /// Epoch -1: fetch the request's partitions, answer all of them, session id 0.
    Sessionless,
    /// Epoch 0: fetch the request's partitions, answer all of them, then open a session
    /// with them ([`FetchSessionCache::create`]).
    Full,
    /// An incremental fetch of session `id`: fetch `partitions` (the whole session, in
    /// order), then answer what [`FetchSessionCache::complete_incremental`] selects.
    /// `epoch` is the epoch the session now expects next.
    Incremental {
        id: i32,
        epoch: i32,
        partitions: Vec<(SessionPartition, FetchPosition)>,
    },
}

/// The result of trying to open a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Opened as `id`; `evicted` made room for it.
    Created { id: i32, evicted: Option<i32> },
    /// No slot could be had: answer with session id 0.
    NoSlot,
}

/// What the session last told the client about a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LastSent {
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
}

/// Nothing sent yet: the first response of a partition always includes it.
const NOTHING_SENT: LastSent = LastSent {
    high_watermark: -1,
    last_stable_offset: -1,
    log_start_offset: -1,
};

#[derive(Debug)]
struct CachedPartition {
    /// Place in the session's fetch order (see [`FetchSession::order`]).
    seq: u64,
    position: FetchPosition,
    sent: LastSent,
}

#[derive(Debug)]
struct FetchSession {
    owner: SessionOwner,
    uses_topic_ids: bool,
    /// The epoch the next incremental request must carry.
    next_epoch: i32,
    created_ms: i64,
    last_used_ms: i64,
    partitions: HashMap<SessionPartition, CachedPartition>,
    /// Fetch order: partitions that returned records move to the back, so a response
    /// size limit does not starve the partitions behind them (as Kafka does).
    order: BTreeMap<u64, SessionPartition>,
    next_seq: u64,
}

impl FetchSession {
    fn upsert(&mut self, key: SessionPartition, position: FetchPosition) {
        match self.partitions.get_mut(&key) {
            Some(cached) => cached.position = position,
            None => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.order.insert(seq, key.clone());
                self.partitions.insert(
                    key,
                    CachedPartition {
                        seq,
                        position,
                        sent: NOTHING_SENT,
                    },
                );
            }
        }
    }

    fn forget(&mut self, key: &SessionPartition) {
        if let Some(cached) = self.partitions.remove(key) {
            self.order.remove(&cached.seq);
        }
    }

    fn move_to_back(&mut self, key: &SessionPartition) {
        let seq = self.next_seq;
        if let Some(cached) = self.partitions.get_mut(key) {
            self.order.remove(&cached.seq);
            cached.seq = seq;
            self.order.insert(seq, key.clone());
            self.next_seq += 1;
        }
    }

    fn in_order(&self) -> Vec<(SessionPartition, FetchPosition)> {
        self.order
            .values()
            .map(|key| (key.clone(), self.partitions[key].position))
            .collect()
    }

    /// Eviction rank: lower is evicted first.
    fn rank(&self) -> (bool, usize) {
        (self.owner.is_follower(), self.partitions.len())
    }
}

/// Records `outcome` as sent for `cached`; whether the client must be told about it.
fn must_respond(cached: &mut CachedPartition, outcome: &PartitionOutcome) -> bool {
    let now = LastSent {
        high_watermark: outcome.high_watermark,
        last_stable_offset: outcome.last_stable_offset,
        log_start_offset: outcome.log_start_offset,
    };
    let changed = cached.sent != now;
    cached.sent = now;
    if outcome.has_error || outcome.preferred_read_replica >= 0 {
        // Forget what was sent, so the partition is answered again once this clears.
        cached.sent = NOTHING_SENT;
        return true;
    }
    changed || outcome.record_bytes > 0
}

/// The broker's fetch sessions. Not thread-safe by itself: the shell holds it in a mutex.
#[derive(Debug)]
pub struct FetchSessionCache {
    max_slots: usize,
    sessions: HashMap<i32, FetchSession>,
    cached_partitions: usize,
}

impl FetchSessionCache {
    /// A cache of at most `max_slots` sessions (0: sessions are never created).
    pub fn new(max_slots: usize) -> Self {
        FetchSessionCache {
            max_slots,
            sessions: HashMap::new(),
            cached_partitions: 0,
        }
    }

    /// Sessions kept (Kafka's NumIncrementalFetchSessions).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Partitions across all sessions (Kafka's NumIncrementalFetchPartitionsCached).
    pub fn cached_partitions(&self) -> usize {
        self.cached_partitions
    }

    /// Decides how a Fetch is answered from its session fields. An incremental fetch updates its session here,
    /// once per request: positions, forgotten partitions, the next expected epoch.
    pub fn new_context(
        &mut self,
        owner: &SessionOwner,
        request: &SessionRequest<'_>,
        now: i64,
    ) -> Result<FetchContext, SessionError> {
        let &SessionRequest {
            session_id,
            epoch,
            uses_topic_ids,
            partitions,
            forgotten,
        } = request;
        if epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH {
            if session_id != INVALID_SESSION_ID
                && self
                    .sessions
                    .get(&session_id)
                    .is_some_and(|s| s.owner == *owner)
            {
                self.remove(session_id);
            }
            return Ok(if epoch == INITIAL_EPOCH {
                FetchContext::Full
            } else {
                FetchContext::Sessionless
            });
        }
        let session = self
            .sessions
            .get_mut(&session_id)
            .filter(|s| s.owner == *owner)
            .ok_or(SessionError::IdNotFound(session_id))?;
        if session.next_epoch != epoch {
            return Err(SessionError::InvalidEpoch {
                id: session_id,
                expected: session.next_epoch,
                got: epoch,
            });
        }
        if session.uses_topic_ids != uses_topic_ids {
            return Err(SessionError::TopicIdMismatch(session_id));
        }
        let before = session.partitions.len();
        for (key, position) in partitions {
            session.upsert(key.clone(), *position);
        }
        for key in forgotten {
            session.forget(key);
        }
        session.next_epoch = next_epoch(epoch);
        session.last_used_ms = now;
        let after = session.partitions.len();
        let context = FetchContext::Incremental {
            id: session_id,
            epoch: session.next_epoch,
            partitions: session.in_order(),
        };
        self.cached_partitions = self.cached_partitions + after - before;
        Ok(context)
    }

    /// Opens a session for a [`FetchContext::Full`] fetch once its response is known:
    /// `partitions` are the request's, with what the response tells of each.
    /// `candidate_id` is asked for random ids until one is non-zero and unused.
    pub fn create(
        &mut self,
        owner: &SessionOwner,
        uses_topic_ids: bool,
        partitions: &[(SessionPartition, FetchPosition, PartitionOutcome)],
        now: i64,
        mut candidate_id: impl FnMut() -> i32,
    ) -> Admission {
        let mut evicted = None;
        if self.sessions.len() >= self.max_slots {
            match self.evictee(owner.is_follower(), partitions.len(), now) {
                Some(id) => {
                    self.remove(id);
                    evicted = Some(id);
                }
                None => return Admission::NoSlot,
            }
        }
        let id = loop {
            let id = candidate_id();
            if id != INVALID_SESSION_ID && !self.sessions.contains_key(&id) {
                break id;
            }
        };
        let mut session = FetchSession {
            owner: owner.clone(),
            uses_topic_ids,
            next_epoch: next_epoch(INITIAL_EPOCH),
            created_ms: now,
            last_used_ms: now,
            partitions: HashMap::with_capacity(partitions.len()),
            order: BTreeMap::new(),
            next_seq: 0,
        };
        for (key, position, outcome) in partitions {
            session.upsert(key.clone(), *position);
            if let Some(cached) = session.partitions.get_mut(key) {
                must_respond(cached, outcome);
            }
        }
        self.cached_partitions += session.partitions.len();
        self.sessions.insert(id, session);
        Admission::Created { id, evicted }
    }

    /// Chooses which partitions of an incremental response to send, given what was fetched
    /// for each partition of the context, and records them as sent. `epoch` is the
    /// context's: if another request of the session came meanwhile, the session has moved
    /// on and this response is refused as INVALID_FETCH_SESSION_EPOCH.
    pub fn complete_incremental(
        &mut self,
        owner: &SessionOwner,
        id: i32,
        epoch: i32,
        fetched: &[(SessionPartition, PartitionOutcome)],
    ) -> Result<Vec<bool>, SessionError> {
        let session = self
            .sessions
            .get_mut(&id)
            .filter(|s| s.owner == *owner)
            .ok_or(SessionError::IdNotFound(id))?;
        if session.next_epoch != epoch {
            return Err(SessionError::InvalidEpoch {
                id,
                expected: session.next_epoch,
                got: epoch,
            });
        }
        let mut send = Vec::with_capacity(fetched.len());
        for (key, outcome) in fetched {
            // A partition forgotten by a later request is gone; a request of a later epoch
            // would have failed the check above, so this does not happen, but a missing
            // partition is answered rather than dropped.
            let respond = match session.partitions.get_mut(key) {
                Some(cached) => must_respond(cached, outcome),
                None => true,
            };
            if respond && outcome.record_bytes > 0 {
                session.move_to_back(key);
            }
            send.push(respond);
        }
        Ok(send)
    }

    fn remove(&mut self, id: i32) {
        if let Some(session) = self.sessions.remove(&id) {
            self.cached_partitions -= session.partitions.len();
        }
    }

    /// The session to evict for a new one, if any may be.
    fn evictee(&self, follower: bool, partitions: usize, now: i64) -> Option<i32> {
        let (&lru_id, lru) = self
            .sessions
            .iter()
            .min_by_key(|(id, s)| (s.last_used_ms, **id))?;
        if now - lru.last_used_ms > MIN_EVICTION_MS {
            return Some(lru_id);
        }
        let (&id, least) = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                now - s.created_ms > MIN_EVICTION_MS || (follower && !s.owner.is_follower())
            })
            .min_by_key(|(id, s)| (s.rank(), **id))?;
        ((follower, partitions) > least.rank()).then_some(id)
    }
}

pub mod client;

#[cfg(test)]
mod tests;
