//! DeleteTopics (key 20): by name, or by topic id (v6+).

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use ironlog_protocol::kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::authorizer::Access;
use crate::broker::Broker;
use ironlog_metadata::acl::AclOperation;

const API: &str = "DeleteTopics";

pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    // (name as given, id as given)
    let targets: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        {
            let resolved = match &name {
                Some(name) => Ok(name.clone()),
                None => broker
                    .replicas
                    .metadata()
                    .topic_by_id(id)
                    .map(|t| t.name.clone())
                    .ok_or(ResponseError::UnknownTopicId),
            };
            let mut result = DeletableTopicResult::default()
                .with_name(name.clone().map(|n| str_bytes(n).into()));
            if version >= 6 {
                result.topic_id = id;
            }
            // A topic id the principal may not describe is answered as unknown: ids are
            // not revealed to those who can't see the topic.
            let resolved = match resolved {
                Ok(n) if name.is_none() && !access.topic(AclOperation::Describe, &n) => {
                    Err(ResponseError::UnknownTopicId)
                }
                Ok(n) if !access.topic(AclOperation::Delete, &n) => {
                    Err(ResponseError::TopicAuthorizationFailed)
                }
                other => other,
            };
            let outcome = match resolved {
                Ok(n) => broker
                    .replicas
                    .delete_topic(&n)
                    .await
                    .map_err(|e| e.error_code()),
                Err(code) => Err(code),
            };
            match outcome {
                Ok(meta) => {
                    if version >= 6 {
                        result.topic_id = meta.id;
                        result.name = Some(str_bytes(meta.name).into());
                    }
                }
                Err(code) => {
                    result.error_code = error_code(broker, API, Some(code));
                    if version >= 5 {
                        result.error_message = Some(str_bytes(format!("{code}")));
                    }
                }
            }
            responses.push(result);
        }
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
