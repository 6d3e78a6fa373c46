//! CreatePartitions (key 37): grow a topic's partition count.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use ironlog_protocol::kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse,
};

use super::{error_code, str_bytes};
use crate::authorizer::Access;
use crate::broker::Broker;
use ironlog_metadata::acl::AclOperation;
use ironlog_protocol::ResponseError;

const API: &str = "CreatePartitions";

pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: CreatePartitionsRequest,
    _version: i16,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatePartitionsTopicResult::default().with_name(topic.name);
        if !access.topic(AclOperation::Alter, &name) {
            result.error_code =
                error_code(broker, API, Some(ResponseError::TopicAuthorizationFailed));
            result.error_message = Some(str_bytes(format!(
                "{} may not alter topic {name}",
                access.principal()
            )));
            results.push(result);
            continue;
        }
        let assignments = topic.assignments.map(|a| {
            a.iter()
                .map(|p| p.broker_ids.iter().map(|b| b.0).collect::<Vec<i32>>())
                .collect::<Vec<_>>()
        });
        let outcome = broker
            .replicas
            .create_partitions(&name, topic.count, assignments, request.validate_only)
            .await;
        if let Err(e) = outcome {
            result.error_code = error_code(broker, API, Some(e.error_code()));
            result.error_message = Some(str_bytes(e.to_string()));
        }
        results.push(result);
    }
    CreatePartitionsResponse::default().with_results(results)
}
