//! AlterConfigs (key 33): replace a topic's whole set of config overrides.

use std::collections::BTreeMap;
use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use ironlog_protocol::kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use ironlog_protocol::ResponseError;

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{error_code, str_bytes};
use crate::authorizer::Access;
use crate::broker::Broker;
use ironlog_metadata::acl::AclOperation;

const API: &str = "AlterConfigs";

pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        {
            let name = resource.resource_name.to_string();
            let configs: BTreeMap<String, String> = resource
                .configs
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| (c.name.to_string(), v.to_string()))
                })
                .collect();
            let outcome = match resource.resource_type {
                RESOURCE_TOPIC if !access.topic(AclOperation::AlterConfigs, &name) => Err((
                    ResponseError::TopicAuthorizationFailed,
                    format!("{} may not alter the configs of {name}", access.principal()),
                )),
                RESOURCE_BROKER if !access.cluster(AclOperation::AlterConfigs) => Err((
                    ResponseError::ClusterAuthorizationFailed,
                    format!("{} may not alter broker configs", access.principal()),
                )),
                RESOURCE_TOPIC => broker
                    .replicas
                    .set_topic_configs(&name, configs, request.validate_only)
                    .await
                    .map_err(|e| (e.error_code(), e.to_string())),
                RESOURCE_BROKER => Err((
                    ResponseError::InvalidRequest,
                    "broker configs are static: set them with ironlog broker flags".to_string(),
                )),
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("resource type {other} is not supported"),
                )),
            };
            responses.push(result(
                broker,
                API,
                resource.resource_type,
                resource.resource_name,
                outcome,
            ));
        }
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// The per-resource answer of AlterConfigs and IncrementalAlterConfigs (same shape).
pub fn result(
    broker: &Broker,
    api: &str,
    resource_type: i8,
    resource_name: ironlog_protocol::kafka_protocol::protocol::StrBytes,
    outcome: Result<(), (ResponseError, String)>,
) -> AlterConfigsResourceResponse {
    let mut response = AlterConfigsResourceResponse::default()
        .with_resource_type(resource_type)
        .with_resource_name(resource_name);
    if let Err((code, message)) = outcome {
        response.error_code = error_code(broker, api, Some(code));
        response.error_message = Some(str_bytes(message));
    }
    response
}
