//! ListOffsets (key 2): offsets by time. Special timestamps: -1 latest (the high
//! watermark), -2 earliest (log start offset), -3 the record with the largest timestamp
//! (KIP-734), -4 earliest local (same as earliest: no tiered storage).

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use ironlog_protocol::kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::error_code;
use crate::broker::Broker;
use crate::replica_manager::{log_error_code, read};

const API: &str = "ListOffsets";
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub fn handle(
    broker: &Arc<Broker>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let mut out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    if version >= 4 {
                        out.leader_epoch = 0;
                    }
                    let log = match broker.replicas.log(&name, p.partition_index) {
                        Ok(log) => log,
                        Err(e) => {
                            out.error_code = error_code(broker, API, Some(e.error_code()));
                            return out;
                        }
                    };
                    let log = read(&log);
                    let found = match p.timestamp {
                        LATEST => Ok(Some((log.log_end_offset(), -1))),
                        EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                        MAX_TIMESTAMP => {
                            Ok(log.max_timestamp_offset().map(|(offset, ts)| (offset, ts)))
                        }
                        LATEST_TIERED => Ok(None),
                        ts => log.offset_for_timestamp(ts),
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
