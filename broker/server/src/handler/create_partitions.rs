//! CreatePartitions (key 37): grow a topic's partition count.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use ironlog_protocol::kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse,
};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::broker::Broker;

const API: &str = "CreatePartitions";

pub fn handle(
    broker: &Arc<Broker>,
    request: CreatePartitionsRequest,
    _version: i16,
) -> CreatePartitionsResponse {
    let node = broker.config.node_id;
    let results = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let mut result = CreatePartitionsTopicResult::default().with_name(topic.name);
            let assignment_ok = topic.assignments.as_ref().is_none_or(|a| {
                a.iter()
                    .all(|p| !p.broker_ids.is_empty() && p.broker_ids.iter().all(|b| b.0 == node))
            });
            let outcome = if !assignment_ok {
                Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!("only broker {node} exists"),
                ))
            } else {
                broker
                    .replicas
                    .create_partitions(&name, topic.count, request.validate_only)
                    .map_err(|e| (e.error_code(), e.to_string()))
            };
            if let Err((code, message)) = outcome {
                result.error_code = error_code(broker, API, Some(code));
                result.error_message = Some(str_bytes(message));
            }
            result
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
