//! DeleteRecords (key 21): advance partitions' log start offsets.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use ironlog_protocol::kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::error_code;
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::replica_manager::{log_error_code, write};
use ironlog_metadata::acl::AclOperation;
use ironlog_protocol::ResponseError;

const API: &str = "DeleteRecords";

pub fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: DeleteRecordsRequest,
    _version: i16,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let deletable = access.topic(AclOperation::Delete, &name);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let mut result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    if !deletable {
                        result.error_code =
                            error_code(broker, API, Some(ResponseError::TopicAuthorizationFailed));
                        return result;
                    }
                    match broker.replicas.leader_partition(&name, p.partition_index) {
                        Err(e) => result.error_code = error_code(broker, API, Some(e.error_code())),
                        Ok(partition) => {
                            let high_watermark = partition.high_watermark();
                            let mut log = write(partition.log());
                            // -1 means "up to the high watermark"; beyond it is out of
                            // range, as in Kafka (followers may not have those records).
                            let offset = if p.offset == -1 {
                                high_watermark
                            } else {
                                p.offset
                            };
                            let deleted = if offset > high_watermark {
                                Err(ironlog_storage::LogError::OffsetOutOfRange {
                                    dir: log.dir().to_path_buf(),
                                    offset,
                                    log_start_offset: log.log_start_offset(),
                                    log_end_offset: high_watermark,
                                })
                            } else {
                                log.delete_records_before(offset)
                            };
                            match deleted {
                                Ok(low_watermark) => result.low_watermark = low_watermark,
                                Err(e) => {
                                    result.error_code =
                                        error_code(broker, API, Some(log_error_code(&e)))
                                }
                            }
                        }
                    }
                    result
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
