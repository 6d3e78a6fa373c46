//! IncrementalAlterConfigs (key 44): set, delete, append to or subtract from single
//! topic configs, leaving the others as they are.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use ironlog_protocol::kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use ironlog_protocol::ResponseError;

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{error_code, str_bytes};
use crate::authorizer::Access;
use crate::broker::Broker;
use ironlog_metadata::acl::AclOperation;

const API: &str = "IncrementalAlterConfigs";
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        {
            let name = resource.resource_name.to_string();
            let outcome = match resource.resource_type {
                RESOURCE_TOPIC if !access.topic(AclOperation::AlterConfigs, &name) => Err((
                    ResponseError::TopicAuthorizationFailed,
                    format!("{} may not alter the configs of {name}", access.principal()),
                )),
                RESOURCE_BROKER if !access.cluster(AclOperation::AlterConfigs) => Err((
                    ResponseError::ClusterAuthorizationFailed,
                    format!("{} may not alter broker configs", access.principal()),
                )),
                RESOURCE_TOPIC => {
                    alter_topic(broker, &name, &resource.configs, request.validate_only).await
                }
                RESOURCE_BROKER => Err((
                    ResponseError::InvalidRequest,
                    "broker configs are static: set them with ironlog broker flags".to_string(),
                )),
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("resource type {other} is not supported"),
                )),
            };
            let mut response = AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name);
            if let Err((code, message)) = outcome {
                response.error_code = error_code(broker, API, Some(code));
                response.error_message = Some(str_bytes(message));
            }
            responses.push(response);
        }
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

async fn alter_topic(
    broker: &Broker,
    name: &str,
    ops: &[ironlog_protocol::kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    let image = broker.replicas.metadata();
    let topic = image.topic(name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("topic {name:?} does not exist"),
        )
    })?;
    let mut configs = topic.configs.clone();
    for op in ops {
        let key = op.name.to_string();
        let value = op.value.as_ref().map(|v| v.to_string());
        match op.config_operation {
            SET => {
                let value = value.ok_or_else(|| {
                    (
                        ResponseError::InvalidRequest,
                        format!("SET {key} needs a value"),
                    )
                })?;
                configs.insert(key, value);
            }
            DELETE => {
                configs.remove(&key);
            }
            APPEND | SUBTRACT => {
                // Only list-typed configs take these; cleanup.policy is the one topic config
                // that is a list.
                if key != "cleanup.policy" {
                    return Err((
                        ResponseError::InvalidConfig,
                        format!("{key} is not a list config; use SET"),
                    ));
                }
                let current = configs
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| "delete".into());
                let mut items: Vec<String> =
                    current.split(',').map(|s| s.trim().to_string()).collect();
                for item in value
                    .unwrap_or_default()
                    .split(',')
                    .map(|s| s.trim().to_string())
                {
                    if op.config_operation == APPEND && !items.contains(&item) {
                        items.push(item);
                    } else if op.config_operation == SUBTRACT {
                        items.retain(|i| *i != item);
                    }
                }
                configs.insert(key, items.join(","));
            }
            other => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("unknown config operation {other}"),
                ))
            }
        }
    }
    broker
        .replicas
        .set_topic_configs(name, configs, validate_only)
        .await
        .map_err(|e| (e.error_code(), e.to_string()))
}
