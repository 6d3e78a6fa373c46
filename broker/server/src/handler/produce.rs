//! Produce (key 0): append record batches to partition logs.
//!
//! The client's batch bytes are written as they are, never re-encoded. Before anything is
//! appended, every record of every batch is walked once (compressed batches decompressed
//! under a limit; see `ironlog_storage::records`), then the log validates each batch
//! (magic 2, sizes, CRC-32C) and rewrites only the header fields Kafka rewrites (base
//! offset; timestamp and CRC for LogAppendTime topics). A refused partition gets its error
//! code (CORRUPT_MESSAGE, INVALID_RECORD, MESSAGE_TOO_LARGE…, chosen in
//! `replica_manager`) and nothing of it is appended; the connection stays up. With one
//! broker the ISR is the leader alone, so acks=1 and acks=all both answer once the
//! leader's log has the data.

use std::sync::Arc;

use bytes::BytesMut;

use ironlog_protocol::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use ironlog_protocol::kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::broker::Broker;
use crate::group::offsets::OFFSETS_TOPIC;

const API: &str = "Produce";

/// Returns `None` for acks=0: the client expects no response.
pub fn handle(
    broker: &Arc<Broker>,
    request: ProduceRequest,
    _version: i16,
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
                ))
            } else if name == OFFSETS_TOPIC {
                // As Kafka: only the broker writes its internal topic; a client's bytes
                // there would be replayed into group state at the next start.
                Err((
                    ResponseError::InvalidTopicException,
                    format!("cannot produce to the internal topic {OFFSETS_TOPIC}"),
                ))
            } else if request.transactional_id.is_some() {
                Err((
                    ResponseError::TransactionalIdAuthorizationFailed,
                    "transactions are not supported yet".into(),
                ))
            } else {
                match data.records {
                    None => Err((ResponseError::CorruptMessage, "null record set".into())),
                    Some(records) => {
                        // The log rewrites batch headers in place, so the bytes are copied
                        // out of the request frame, which the decoded request (topic names
                        // included) still shares. Profiled: one memcpy of the payload.
                        let mut records = BytesMut::from(&records[..]);
                        broker
                            .replicas
                            .append(&name, data.index, &mut records)
                            .map_err(|e| (e.error_code(), e.to_string()))
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
                Err((error, message)) => {
                    tracing::debug!(topic = %name, partition = data.index, %message, "produce refused");
                    response.error_code = error_code(broker, API, Some(error));
                    response.base_offset = -1;
                    response.error_message = Some(str_bytes(message));
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
