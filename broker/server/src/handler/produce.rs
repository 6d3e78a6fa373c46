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
//! it is appended; the connection stays up. With one broker the ISR is the leader alone,
//! so acks=1 and acks=all both answer once the leader's log has the data.

use std::sync::Arc;

use bytes::BytesMut;

use ironlog_protocol::kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use ironlog_protocol::kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::broker::Broker;
use crate::group::offsets::OFFSETS_TOPIC;
use crate::replica_manager::ReplicaError;

const API: &str = "Produce";

/// Returns `None` for acks=0: the client expects no response.
pub fn handle(
    broker: &Arc<Broker>,
    request: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks = request.acks;
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
                        // The log rewrites batch headers in place, so the bytes are copied
                        // out of the request frame, which the decoded request (topic names
                        // included) still shares. Profiled: one memcpy of the payload.
                        let mut records = BytesMut::from(&records[..]);
                        broker
                            .replicas
                            .append(&name, data.index, &mut records)
                            .map_err(|e| (e.error_code(), e.to_string(), record_errors(&e)))
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
