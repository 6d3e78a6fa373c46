//! Fetch (key 1): read record batches, waiting up to `max_wait_ms` for `min_bytes`.
//!
//! Whole stored batches are returned, starting with the batch that contains the fetch
//! offset (clients skip the records below it). Size limits follow KIP-74: `max_bytes` for
//! the response and `partition_max_bytes` per partition, except that the first batch found
//! is returned whole even if larger, so a consumer always makes progress.
//!
//! Consumers (replica id -1) read up to the high watermark. A follower broker's Fetch
//! (replica id ≥ 0) reads up to the log end, and its fetch offset tells the leader how far
//! the follower's log goes (see `crate::partition`): that may move the high watermark and
//! add the follower to the ISR. `current_leader_epoch` (v9+) is checked: an older epoch is
//! FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH.
//!
//! Fetch sessions (KIP-227) are kept (see [`crate::fetch_session`], the pure core): a Fetch
//! with epoch 0 opens one and is answered in full with its session id; later Fetches of
//! the session (epoch 1, 2, ...) list only what changed and are answered with only the
//! partitions that have something new. Epoch -1 is a sessionless full fetch (session id 0),
//! as are all Fetches below v7, and all Fetches when no session slot can be had. Here, the
//! shell: the request's session fields are applied to the session once, when it arrives;
//! the long poll reads the session's partitions as often as it needs to; the response it
//! finally sends is what the session records as sent.

use std::sync::Arc;
use std::time::Duration;

use ironlog_protocol::kafka_protocol::messages::fetch_response::{
    FetchableTopicResponse, PartitionData,
};
use ironlog_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse};
use ironlog_protocol::ResponseError;
use tokio::time::Instant;

use super::{error_code, str_bytes};
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::fetch_session::{
    Admission, FetchContext, FetchPosition, PartitionOutcome, SessionError, SessionOwner,
    SessionPartition, SessionRequest, TopicRef, FINAL_EPOCH, INVALID_SESSION_ID,
};
use crate::replica_manager::{now_ms, ReplicaError};
use ironlog_metadata::acl::AclOperation;

const API: &str = "Fetch";
/// Upper bound on a long poll, whatever the client asks, so shutdown and buggy clients
/// can't park a connection forever.
const MAX_WAIT_CAP: Duration = Duration::from_secs(60);

pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: FetchRequest,
    version: i16,
) -> FetchResponse {
    let owner = SessionOwner {
        principal: access.principal().to_string(),
        replica_id: replica_id(&request, version),
    };
    let uses_topic_ids = version >= 13;
    let requested = requested_partitions(&request, version);
    let (session_id, epoch) = if version >= 7 {
        (request.session_id, request.session_epoch)
    } else {
        (INVALID_SESSION_ID, FINAL_EPOCH)
    };
    let context = {
        let mut cache = lock_sessions(broker);
        let context = cache.new_context(
            &owner,
            &SessionRequest {
                session_id,
                epoch,
                uses_topic_ids,
                partitions: &requested,
                forgotten: &forgotten_partitions(&request, version),
            },
            now_ms(),
        );
        broker.metrics.fetch_sessions.observe(&cache);
        context
    };
    let (context, partitions) = match context {
        Err(e) => return session_error(broker, e),
        Ok(FetchContext::Incremental {
            id,
            epoch,
            partitions,
        }) => (
            Some(Answer::Incremental(Incremental { id, epoch })),
            partitions,
        ),
        Ok(FetchContext::Full) => (Some(Answer::Full), requested),
        Ok(FetchContext::Sessionless) => (None, requested),
    };

    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let mut appends = broker.replicas.subscribe_appends();
    let mut shutdown = broker.shutdown_signal();
    let read = loop {
        // Mark the current append count as seen *before* reading, so an append that lands
        // between the read and the wait still wakes us.
        appends.borrow_and_update();
        let read = read_once(broker, access, &request, &partitions, &owner, version);
        let satisfied = read.bytes >= request.min_bytes.max(1) as usize || read.any_error;
        if satisfied || Instant::now() >= deadline || broker.is_shutting_down() {
            break read;
        }
        tokio::select! {
            changed = appends.changed() => if changed.is_err() { break read },
            _ = tokio::time::sleep_until(deadline) => {}
            _ = crate::broker::stopped(&mut shutdown) => {}
        }
    };
    respond(
        broker,
        &owner,
        context,
        partitions,
        read.partitions,
        version,
    )
}

/// How the response of a session's Fetch is chosen (`None` in [`handle`]: sessionless).
enum Answer {
    /// Open a session with the request's partitions; answer all of them.
    Full,
    /// Answer what is new since the session's last response.
    Incremental(Incremental),
}

struct Incremental {
    id: i32,
    /// The epoch the session expects next, after this request.
    epoch: i32,
}

/// The response to send, with the session's bookkeeping for it: the fetched `data` of each
/// of `partitions`, filtered for an incremental fetch.
fn respond(
    broker: &Broker,
    owner: &SessionOwner,
    answer: Option<Answer>,
    partitions: Vec<(SessionPartition, FetchPosition)>,
    data: Vec<PartitionData>,
    version: i16,
) -> FetchResponse {
    let mut session_id = INVALID_SESSION_ID;
    let mut send: Option<Vec<bool>> = None;
    if let Some(answer) = answer {
        let now = now_ms();
        let mut cache = lock_sessions(broker);
        match answer {
            Answer::Full => {
                let full: Vec<_> = partitions
                    .iter()
                    .zip(&data)
                    .map(|((key, position), data)| (key.clone(), *position, outcome(data)))
                    .collect();
                let admission = cache.create(owner, version >= 13, &full, now, random_id);
                if let Admission::Created { id, evicted } = admission {
                    session_id = id;
                    let metrics = &broker.metrics.fetch_sessions;
                    metrics.created.inc();
                    if let Some(evicted) = evicted {
                        metrics.evictions.inc();
                        tracing::debug!(session = evicted, "fetch session evicted");
                    }
                }
            }
            Answer::Incremental(Incremental { id, epoch }) => {
                let fetched: Vec<_> = partitions
                    .iter()
                    .zip(&data)
                    .map(|((key, _), data)| (key.clone(), outcome(data)))
                    .collect();
                match cache.complete_incremental(owner, id, epoch, &fetched) {
                    Ok(mask) => {
                        session_id = id;
                        send = Some(mask);
                        broker.metrics.fetch_sessions.incremental_fetches.inc();
                    }
                    Err(e) => {
                        drop(cache);
                        return session_error(broker, e);
                    }
                }
            }
        }
        broker.metrics.fetch_sessions.observe(&cache);
    }
    // Adjacent partitions of one topic share its entry, as in Kafka's responses.
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut last: Option<&TopicRef> = None;
    for (i, ((key, _), data)) in partitions.iter().zip(data).enumerate() {
        if send.as_ref().is_some_and(|send| !send[i]) {
            continue;
        }
        if last != Some(&key.topic) || topics.is_empty() {
            let mut topic = FetchableTopicResponse::default();
            match &key.topic {
                TopicRef::Id(id) => topic.topic_id = *id,
                TopicRef::Name(name) => topic.topic = str_bytes(name.clone()).into(),
            }
            topics.push(topic);
            last = Some(&key.topic);
        }
        if let Some(topic) = topics.last_mut() {
            topic.partitions.push(data);
        }
    }
    FetchResponse::default()
        .with_error_code(0)
        .with_session_id(session_id)
        .with_responses(topics)
}

/// A Fetch refused for its session fields: the error, no session, no partitions.
fn session_error(broker: &Broker, error: SessionError) -> FetchResponse {
    let code = match error {
        SessionError::IdNotFound(_) => ResponseError::FetchSessionIdNotFound,
        SessionError::InvalidEpoch { .. } => ResponseError::InvalidFetchSessionEpoch,
        SessionError::TopicIdMismatch(_) => ResponseError::FetchSessionTopicIdError,
    };
    tracing::debug!(%error, "fetch session refused");
    FetchResponse::default()
        .with_error_code(error_code(broker, API, Some(code)))
        .with_session_id(INVALID_SESSION_ID)
}

/// What a response tells the client about a partition, as the session compares it.
fn outcome(data: &PartitionData) -> PartitionOutcome {
    PartitionOutcome {
        high_watermark: data.high_watermark,
        last_stable_offset: data.last_stable_offset,
        log_start_offset: data.log_start_offset,
        preferred_read_replica: data.preferred_read_replica.0,
        has_error: data.error_code != 0,
        record_bytes: data.records.as_ref().map_or(0, |r| r.len()),
    }
}

fn lock_sessions(
    broker: &Broker,
) -> std::sync::MutexGuard<'_, crate::fetch_session::FetchSessionCache> {
    // The cache's bookkeeping cannot panic halfway (no I/O, no user code); a poisoned lock
    // still holds a consistent cache.
    broker
        .fetch_sessions
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A random session id (the core skips 0 and ids in use).
fn random_id() -> i32 {
    // Truncating a random 128-bit value keeps it uniformly random.
    uuid::Uuid::new_v4().as_u128() as i32
}

fn replica_id(request: &FetchRequest, version: i16) -> i32 {
    if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    }
}

/// The request's partitions, named as its version names topics.
fn requested_partitions(
    request: &FetchRequest,
    version: i16,
) -> Vec<(SessionPartition, FetchPosition)> {
    request
        .topics
        .iter()
        .flat_map(|topic| {
            let topic_ref = topic_ref(version, topic.topic_id, &topic.topic);
            topic.partitions.iter().map(move |p| {
                let position = FetchPosition {
                    fetch_offset: p.fetch_offset,
                    partition_max_bytes: p.partition_max_bytes,
                    log_start_offset: p.log_start_offset,
                    current_leader_epoch: if version >= 9 {
                        p.current_leader_epoch
                    } else {
                        -1
                    },
                    last_fetched_epoch: p.last_fetched_epoch,
                };
                let key = SessionPartition {
                    topic: topic_ref.clone(),
                    partition: p.partition,
                };
                (key, position)
            })
        })
        .collect()
}

/// The partitions an incremental Fetch removes from its session (v7+).
fn forgotten_partitions(request: &FetchRequest, version: i16) -> Vec<SessionPartition> {
    if version < 7 {
        return Vec::new();
    }
    request
        .forgotten_topics_data
        .iter()
        .flat_map(|topic| {
            let topic_ref = topic_ref(version, topic.topic_id, &topic.topic);
            topic
                .partitions
                .iter()
                .map(move |&partition| SessionPartition {
                    topic: topic_ref.clone(),
                    partition,
                })
        })
        .collect()
}

fn topic_ref(
    version: i16,
    id: uuid::Uuid,
    name: &ironlog_protocol::kafka_protocol::messages::TopicName,
) -> TopicRef {
    if version >= 13 {
        TopicRef::Id(id)
    } else {
        TopicRef::Name(name.0.to_string())
    }
}

/// One pass over the partitions to fetch.
struct Read {
    /// One entry per partition, in order.
    partitions: Vec<PartitionData>,
    /// Record bytes read.
    bytes: usize,
    /// Whether any partition has an error (errors answer at once, without waiting).
    any_error: bool,
}

/// One pass over `partitions`, within the request's `max_bytes`.
fn read_once(
    broker: &Arc<Broker>,
    access: &Access,
    request: &FetchRequest,
    partitions: &[(SessionPartition, FetchPosition)],
    owner: &SessionOwner,
    version: i16,
) -> Read {
    let image = broker.replicas.metadata();
    let replica_id = owner.replica_id;
    let mut remaining = if version >= 3 {
        request.max_bytes.max(0) as usize
    } else {
        usize::MAX
    };
    let mut total = 0usize;
    let mut any_error = false;
    let mut out = Vec::with_capacity(partitions.len());
    // The topic of the previous partition and its name (None: an unknown topic id).
    let mut topic_name: Option<(&TopicRef, Option<String>)> = None;
    for (key, p) in partitions {
        let name = match &topic_name {
            Some((topic, name)) if *topic == &key.topic => name.clone(),
            _ => {
                // v13+ names topics by id.
                let name = match &key.topic {
                    TopicRef::Id(id) => image.topic_by_id(*id).map(|t| t.name.clone()),
                    TopicRef::Name(name) => Some(name.clone()),
                };
                topic_name = Some((&key.topic, name.clone()));
                name
            }
        };
        // Records are never null, even beside an error: Kafka sends an empty record set,
        // and librdkafka refuses a null one as a parse failure of the whole response (its
        // consumer then never sees the error code and retries the same fetch forever).
        let mut data = PartitionData::default()
            .with_partition_index(key.partition)
            .with_records(Some(Default::default()));
        if request.isolation_level == 0 {
            data.aborted_transactions = None;
        }
        let Some(name) = name.as_deref() else {
            data.error_code = error_code(broker, API, Some(ResponseError::UnknownTopicId));
            data.high_watermark = -1;
            any_error = true;
            out.push(data);
            continue;
        };
        // Followers need CLUSTER_ACTION on the cluster, consumers READ on the topic.
        let refused = if replica_id >= 0 {
            (!access.cluster(AclOperation::ClusterAction))
                .then_some(ResponseError::ClusterAuthorizationFailed)
        } else {
            (!access.topic(AclOperation::Read, name))
                .then_some(ResponseError::TopicAuthorizationFailed)
        };
        if let Some(refused) = refused {
            data.error_code = error_code(broker, API, Some(refused));
            data.high_watermark = -1;
            any_error = true;
            out.push(data);
            continue;
        }
        let limit = (p.partition_max_bytes.max(0) as usize).min(remaining) as u64;
        let read = broker
            .replicas
            .partition(name, key.partition)
            .and_then(|partition| {
                if replica_id >= 0 {
                    let (read, expand) = partition.read_for_follower(
                        replica_id,
                        p.fetch_offset,
                        limit,
                        p.current_leader_epoch,
                        now_ms(),
                    )?;
                    if let Some(change) = expand {
                        crate::broker::spawn_isr_change(broker, partition.clone(), change);
                    }
                    Ok(read)
                } else {
                    partition.read_for_consumer(
                        p.fetch_offset,
                        limit,
                        total == 0,
                        p.current_leader_epoch,
                    )
                }
            });
        match read {
            Err(e) => {
                let code = match e {
                    ReplicaError::UnknownTopic(_) if version >= 13 => ResponseError::UnknownTopicId,
                    e => e.error_code(),
                };
                data.high_watermark = -1;
                if code == ResponseError::OffsetOutOfRange {
                    // Where the log is now, so a follower can start over.
                    if let Ok(partition) = broker.replicas.partition(name, key.partition) {
                        data.high_watermark = partition.high_watermark();
                        data.log_start_offset =
                            crate::replica_manager::read(partition.log()).log_start_offset();
                    }
                }
                tracing::debug!(
                    topic = name,
                    partition = key.partition,
                    ?code,
                    "fetch refused"
                );
                data.error_code = error_code(broker, API, Some(code));
                any_error = true;
            }
            Ok(read) => {
                data.high_watermark = read.high_watermark;
                data.last_stable_offset = read.high_watermark;
                data.log_start_offset = read.log_start_offset;
                let n = read.result.data.len();
                total += n;
                remaining = remaining.saturating_sub(n);
                data.records = Some(read.result.data);
            }
        }
        out.push(data);
    }
    Read {
        partitions: out,
        bytes: total,
        any_error,
    }
}
