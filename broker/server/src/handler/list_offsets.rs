//! ListOffsets (key 2): offsets by time. Special timestamps: -1 latest (the high
//! watermark), -2 earliest (log start offset), -3 the record with the largest timestamp
//! (KIP-734), -4 earliest local (same as earliest: no tiered storage).
//!
//! Answers are per record, as Kafka's: the log's time index finds the batch, and that one
//! batch is decoded (decompressed if needed, under the topic's decompression limit) with
//! the storage crate's [`RecordDecoder`] to find the record. LogAppendTime batches give
//! every record the batch's timestamp, so their first record is the answer.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use ironlog_protocol::kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use ironlog_protocol::ResponseError;

use bytes::Bytes;
use ironlog_storage::batch::{BatchHeader, TimestampType};
use ironlog_storage::records::{max_uncompressed_bytes, RecordDecoder};
use ironlog_storage::{Log, LogError};

use super::error_code;
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::replica_manager::{log_error_code, read};
use ironlog_metadata::acl::AclOperation;

const API: &str = "ListOffsets";
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let describable = access.topic(AclOperation::Describe, &name);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let mut out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    if !describable {
                        out.error_code =
                            error_code(broker, API, Some(ResponseError::TopicAuthorizationFailed));
                        return out;
                    }
                    let partition = match broker.replicas.leader_partition(&name, p.partition_index)
                    {
                        Ok(partition) => partition,
                        Err(e) => {
                            out.error_code = error_code(broker, API, Some(e.error_code()));
                            return out;
                        }
                    };
                    let leader_epoch = partition.leader_epoch();
                    if version >= 4 {
                        out.leader_epoch = leader_epoch;
                        if p.current_leader_epoch >= 0 && p.current_leader_epoch != leader_epoch {
                            let code = if p.current_leader_epoch < leader_epoch {
                                ResponseError::FencedLeaderEpoch
                            } else {
                                ResponseError::UnknownLeaderEpoch
                            };
                            out.error_code = error_code(broker, API, Some(code));
                            return out;
                        }
                    }
                    // Consumers see the log up to the high watermark (read_uncommitted).
                    let high_watermark = partition.high_watermark();
                    let log = read(partition.log());
                    let found = match p.timestamp {
                        LATEST => Ok(Some((high_watermark, -1))),
                        EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                        MAX_TIMESTAMP => max_timestamp_record(&log),
                        LATEST_TIERED => Ok(None),
                        ts => first_record_at_or_after(&log, ts),
                    };
                    match found {
                        Ok(Some((offset, timestamp))) => {
                            out.offset = offset;
                            out.timestamp = timestamp;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            out.error_code = error_code(broker, API, Some(log_error_code(&e)))
                        }
                    }
                    out
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// The first record with timestamp >= `ts`, as (offset, timestamp).
fn first_record_at_or_after(log: &Log, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
    let Some((base, batch_max)) = log.offset_for_timestamp(ts)? else {
        return Ok(None);
    };
    let found = find_record(log, base, |offset, timestamp| {
        offset >= base && timestamp >= ts
    })?;
    Ok(Some(found.unwrap_or((base, batch_max))))
}

/// The first record carrying the log's largest timestamp, as (offset, timestamp).
fn max_timestamp_record(log: &Log) -> Result<Option<(i64, i64)>, LogError> {
    let Some((last_offset, max_ts)) = log.max_timestamp_offset() else {
        return Ok(None);
    };
    let found = find_record(log, last_offset, |_, timestamp| timestamp == max_ts)?;
    Ok(Some(found.unwrap_or((last_offset, max_ts))))
}

/// The (offset, timestamp) of the first record matching `wanted` in the batch containing
/// `offset`; `None` for LogAppendTime batches (whose stored record timestamps are not the
/// ones that count), when no record matches, or for a batch that can't be decoded (the
/// caller then answers at batch granularity).
fn find_record(
    log: &Log,
    offset: i64,
    wanted: impl Fn(i64, i64) -> bool,
) -> Result<Option<(i64, i64)>, LogError> {
    let data: Bytes = log.read(offset, 1, true)?.data;
    if BatchHeader::new(&data).is_none_or(|h| h.timestamp_type() == TimestampType::LogAppendTime) {
        return Ok(None);
    }
    let mut decoder = RecordDecoder::new(max_uncompressed_bytes(log.config().max_message_bytes));
    let records = match decoder.records(&data, 0) {
        Ok(records) => records,
        Err(error) => {
            tracing::warn!(dir = %log.dir().display(), offset, %error,
                "ListOffsets answers at batch granularity: the batch's records do not decode");
            return Ok(None);
        }
    };
    for record in records {
        match record {
            Ok(r) if wanted(r.offset, r.timestamp) => return Ok(Some((r.offset, r.timestamp))),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(dir = %log.dir().display(), offset, %error,
                    "ListOffsets answers at batch granularity: the batch's records do not decode");
                return Ok(None);
            }
        }
    }
    Ok(None)
}
