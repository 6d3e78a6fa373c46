//! Produce (key 0): append record batches to partition logs.
//!
//! The client's batch bytes are written as they are, never re-encoded. Before anything is
//! appended, the storage crate's `LogValidator` checks every batch as Kafka's does (CRC,
//! every record walked, compressed batches decompressed under a limit, offsets, timestamps,
//! keys in compacted topics) and rewrites only the header fields Kafka rewrites (base
//! offset; maxTimestamp and CRC when the header disagrees with the records, or for
//! LogAppendTime topics). As in Kafka, Produce v3+ carries exactly one batch per partition.
//! A refused partition gets its error code (CORRUPT_MESSAGE, INVALID_RECORD,
//! INVALID_TIMESTAMP, MESSAGE_TOO_LARGE…, chosen in `replica_manager`), from v8 on an
//! error message and the index of each offending record (`record_errors`), and nothing of
//! it is appended; the connection stays up.
//!
//! acks=1 answers once the leader's log has the data. acks=all (-1) first needs
//! `min.insync.replicas` in the ISR (else NOT_ENOUGH_REPLICAS, nothing appended), then
//! waits, without holding a thread, until the high watermark passes the append (every ISR
//! member has it) or the request's `timeout_ms` passes (REQUEST_TIMED_OUT; the records
//! may still be replicated, as in Kafka). If the ISR shrank below the minimum meanwhile
//! the answer is NOT_ENOUGH_REPLICAS_AFTER_APPEND; if leadership moved,
//! NOT_LEADER_OR_FOLLOWER. Partitions whose log fsyncs on append (`flush.messages`) are
//! appended on the blocking pool, off the async workers.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::time::Instant;

use ironlog_protocol::kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use ironlog_protocol::kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::group::offsets::OFFSETS_TOPIC;
use crate::partition::Partition;
use crate::replica_manager::{replication_timeout, ReplicaError};
use ironlog_metadata::acl::AclOperation;

const API: &str = "Produce";

type Refusal = (ResponseError, String, Vec<BatchIndexAndErrorMessage>);

/// Returns `None` for acks=0: the client expects no response.
pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let deadline = Instant::now() + replication_timeout(request.timeout_ms);
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let mut response = PartitionProduceResponse::default().with_index(data.index);
            let result = if !matches!(acks, -1..=1) {
                Err((
                    ResponseError::InvalidRequiredAcks,
                    format!("acks must be -1, 0 or 1, got {acks}"),
                    Vec::new(),
                ))
            } else if !access.topic(AclOperation::Write, &name) {
                Err((
                    ResponseError::TopicAuthorizationFailed,
                    format!("{} may not write to {name}", access.principal()),
                    Vec::new(),
                ))
            } else if name == OFFSETS_TOPIC {
                // As Kafka: only the broker writes its internal topic; a client's bytes
                // there would be replayed into group state at the next start.
                Err((
                    ResponseError::InvalidTopicException,
                    format!("cannot produce to the internal topic {OFFSETS_TOPIC}"),
                    Vec::new(),
                ))
            } else if request.transactional_id.is_some() {
                Err((
                    ResponseError::TransactionalIdAuthorizationFailed,
                    "transactions are not supported yet".into(),
                    Vec::new(),
                ))
            } else {
                match data.records {
                    None => Err((
                        ResponseError::CorruptMessage,
                        "null record set".into(),
                        Vec::new(),
                    )),
                    Some(records) if version >= 3 && holds_several_batches(&records) => Err((
                        ResponseError::InvalidRecord,
                        format!(
                            "Produce v{version} must carry exactly one record batch per partition"
                        ),
                        Vec::new(),
                    )),
                    Some(records) => {
                        // The log rewrites batch headers in place, so it needs the records
                        // to itself. They usually are the only owner of the request
                        // frame's allocation (decoding copied the request's small fields
                        // out of the frame, and the connection dropped the frame), and
                        // `BytesMut::from` then takes the allocation over; it copies while
                        // the frame is shared (the request's partitions not yet handled
                        // hold it too, or the frame was small enough to have shared the
                        // connection's read buffer).
                        let records = BytesMut::from(records);
                        match append(broker, &name, data.index, records, acks).await {
                            Ok((info, epoch, partition)) if acks == -1 => {
                                wait(&partition, info.last_offset, epoch, deadline)
                                    .await
                                    .map(|()| info)
                            }
                            Ok((info, _, _)) => Ok(info),
                            Err(e) => Err(e),
                        }
                    }
                }
            };
            match result {
                Ok(info) => {
                    broker.metrics.records_in.inc_by(info.record_count);
                    broker.metrics.produced_bytes.inc_by(info.bytes);
                    response.base_offset = info.first_offset;
                    response.log_append_time_ms = info.log_append_time;
                    response.log_start_offset = broker
                        .replicas
                        .log(&name, data.index)
                        .map(|log| crate::replica_manager::read(&log).log_start_offset())
                        .unwrap_or(-1);
                }
                Err((error, message, record_errors)) => {
                    tracing::debug!(topic = %name, partition = data.index, %message, "produce refused");
                    response.error_code = error_code(broker, API, Some(error));
                    response.base_offset = -1;
                    response.error_message = Some(str_bytes(message));
                    // Encoded from v8 on; older versions carry the error code alone.
                    response.record_errors = record_errors;
                }
            }
            partitions.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions),
        );
    }
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

/// Appends as the leader; on the blocking pool when the log fsyncs on append.
async fn append(
    broker: &Arc<Broker>,
    topic: &str,
    partition: i32,
    mut records: BytesMut,
    acks: i16,
) -> Result<(ironlog_storage::AppendInfo, i32, Arc<Partition>), Refusal> {
    let refusal = |e: ReplicaError| (e.error_code(), e.to_string(), record_errors(&e));
    let fsyncs = broker
        .replicas
        .leader_partition(topic, partition)
        .map_err(refusal)?
        .fsyncs_on_append();
    if !fsyncs {
        return broker
            .replicas
            .append(topic, partition, &mut records, acks)
            .map_err(refusal);
    }
    let (b, topic) = (broker.clone(), topic.to_string());
    tokio::task::spawn_blocking(move || b.replicas.append(&topic, partition, &mut records, acks))
        .await
        .map_err(|e| {
            (
                ResponseError::UnknownServerError,
                format!("append failed: {e}"),
                Vec::new(),
            )
        })?
        .map_err(refusal)
}

/// acks=all: waits for the ISR until `deadline`. A retried batch found to be a duplicate
/// waits too: its first append may not be replicated yet.
async fn wait(
    partition: &Partition,
    last_offset: i64,
    epoch: i32,
    deadline: Instant,
) -> Result<(), Refusal> {
    let timeout = deadline.saturating_duration_since(Instant::now());
    partition
        .wait_for_replication(last_offset, epoch, timeout)
        .await
        .map_err(|e| (e.error_code(), e.to_string(), Vec::new()))
}

/// True if `records` holds at least two whole batch headers (only their lengths are read;
/// anything malformed is left to the validator to report).
fn holds_several_batches(records: &[u8]) -> bool {
    let first = ironlog_storage::batch::BatchHeader::new(records).and_then(|h| h.total_size());
    first.is_some_and(|size| {
        records
            .get(size..)
            .and_then(ironlog_storage::batch::BatchHeader::new)
            .is_some()
    })
}

/// Produce v8+ `record_errors`: the index of each record that broke a rule, and why.
fn record_errors(e: &ReplicaError) -> Vec<BatchIndexAndErrorMessage> {
    e.record_violations()
        .iter()
        .map(|v| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(v.index)
                .with_batch_index_error_message(Some(str_bytes(v.message.clone())))
        })
        .collect()
}
