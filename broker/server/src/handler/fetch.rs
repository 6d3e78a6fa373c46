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
//! Fetch sessions (KIP-227) are not kept: every response has session id 0, which tells
//! clients to send full fetch requests.

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
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let mut appends = broker.replicas.subscribe_appends();
    let mut shutdown = broker.shutdown_signal();
    loop {
        // Mark the current append count as seen *before* reading, so an append that lands
        // between the read and the wait still wakes us.
        appends.borrow_and_update();
        let (response, bytes, errors) = read_once(broker, access, &request, version);
        let satisfied = bytes >= request.min_bytes.max(1) as usize || errors;
        if satisfied || Instant::now() >= deadline || broker.is_shutting_down() {
            return response;
        }
        tokio::select! {
            changed = appends.changed() => if changed.is_err() { return response },
            _ = tokio::time::sleep_until(deadline) => {}
            _ = crate::broker::stopped(&mut shutdown) => {}
        }
    }
}

/// One pass over the requested partitions: the response, its record bytes, and whether any
/// partition has an error (errors answer at once, without waiting).
fn read_once(
    broker: &Arc<Broker>,
    access: &Access,
    request: &FetchRequest,
    version: i16,
) -> (FetchResponse, usize, bool) {
    let image = broker.replicas.metadata();
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let mut remaining = if version >= 3 {
        request.max_bytes.max(0) as usize
    } else {
        usize::MAX
    };
    let mut total = 0usize;
    let mut any_error = false;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        // v13+ names topics by id.
        let name = if version >= 13 {
            image.topic_by_id(topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.topic.0.to_string())
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let mut data = PartitionData::default()
                .with_partition_index(p.partition)
                .with_records(None);
            if request.isolation_level == 0 {
                data.aborted_transactions = None;
            }
            let Some(name) = name.as_deref() else {
                data.error_code = error_code(broker, API, Some(ResponseError::UnknownTopicId));
                data.high_watermark = -1;
                any_error = true;
                partitions.push(data);
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
                partitions.push(data);
                continue;
            }
            let limit = (p.partition_max_bytes.max(0) as usize).min(remaining) as u64;
            let current_leader_epoch = if version >= 9 {
                p.current_leader_epoch
            } else {
                -1
            };
            let read = broker
                .replicas
                .partition(name, p.partition)
                .and_then(|partition| {
                    if replica_id >= 0 {
                        let (read, expand) = partition.read_for_follower(
                            replica_id,
                            p.fetch_offset,
                            limit,
                            current_leader_epoch,
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
                            current_leader_epoch,
                        )
                    }
                });
            match read {
                Err(e) => {
                    let code = match e {
                        ReplicaError::UnknownTopic(_) if version >= 13 => {
                            ResponseError::UnknownTopicId
                        }
                        e => e.error_code(),
                    };
                    data.high_watermark = -1;
                    if code == ResponseError::OffsetOutOfRange {
                        // Where the log is now, so a follower can start over.
                        if let Ok(partition) = broker.replicas.partition(name, p.partition) {
                            data.high_watermark = partition.high_watermark();
                            data.log_start_offset =
                                crate::replica_manager::read(partition.log()).log_start_offset();
                        }
                    }
                    tracing::debug!(
                        topic = name,
                        partition = p.partition,
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
            partitions.push(data);
        }
        let mut response = FetchableTopicResponse::default().with_partitions(partitions);
        if version >= 13 {
            response.topic_id = topic.topic_id;
        } else {
            response.topic = str_bytes(topic.topic.0.to_string()).into();
        }
        topics.push(response);
    }
    let response = FetchResponse::default()
        .with_error_code(0)
        .with_session_id(0)
        .with_responses(topics);
    (response, total, any_error)
}
