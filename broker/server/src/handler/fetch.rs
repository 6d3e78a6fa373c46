//! Fetch (key 1): read record batches, waiting up to `max_wait_ms` for `min_bytes`.
//!
//! Whole stored batches are returned, starting with the batch that contains the fetch
//! offset (clients skip the records below it). Size limits follow KIP-74: `max_bytes` for
//! the response and `partition_max_bytes` per partition, except that the first batch found
//! is returned whole even if larger, so a consumer always makes progress.
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
use crate::broker::Broker;
use crate::replica_manager::{log_error_code, read, ReplicaError};

const API: &str = "Fetch";
/// Upper bound on a long poll, whatever the client asks, so shutdown and buggy clients
/// can't park a connection forever.
const MAX_WAIT_CAP: Duration = Duration::from_secs(60);

pub async fn handle(broker: &Arc<Broker>, request: FetchRequest, version: i16) -> FetchResponse {
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let mut appends = broker.replicas.subscribe_appends();
    let mut shutdown = broker.shutdown_signal();
    loop {
        // Mark the current append count as seen *before* reading, so an append that lands
        // between the read and the wait still wakes us.
        appends.borrow_and_update();
        let (response, bytes, errors) = read_once(broker, &request, version);
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
    request: &FetchRequest,
    version: i16,
) -> (FetchResponse, usize, bool) {
    let image = broker.replicas.metadata();
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
            match broker.replicas.leader_log(name, p.partition) {
                Err(e) => {
                    let code = match e {
                        ReplicaError::UnknownTopic(_) if version >= 13 => {
                            ResponseError::UnknownTopicId
                        }
                        e => e.error_code(),
                    };
                    data.error_code = error_code(broker, API, Some(code));
                    data.high_watermark = -1;
                    any_error = true;
                }
                Ok(log) => {
                    let log = read(&log);
                    let high_watermark = log.log_end_offset();
                    data.high_watermark = high_watermark;
                    data.last_stable_offset = high_watermark;
                    data.log_start_offset = log.log_start_offset();
                    let limit = (p.partition_max_bytes.max(0) as usize).min(remaining);
                    match log.read_up_to(
                        p.fetch_offset,
                        limit as u64,
                        total == 0,
                        Some(high_watermark),
                    ) {
                        Ok(result) => {
                            let n = result.data.len();
                            total += n;
                            remaining = remaining.saturating_sub(n);
                            data.records = Some(result.data);
                        }
                        Err(e) => {
                            tracing::debug!(topic = name, partition = p.partition, error = %e, "fetch refused");
                            data.error_code = error_code(broker, API, Some(log_error_code(&e)));
                            any_error = true;
                        }
                    }
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
