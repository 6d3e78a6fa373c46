//! DescribeConfigs (key 32): topic configs (defaults and overrides) and broker configs.

use std::collections::BTreeMap;
use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use ironlog_protocol::kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::authorizer::Access;
use crate::broker::Broker;
use ironlog_metadata::acl::AclOperation;

const API: &str = "DescribeConfigs";
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// One described config: (name, value, source, read only).
type Entry = (String, String, i8, bool);

pub fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            let wanted = |key: &str| {
                resource
                    .configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
            };
            let mut result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let entries: Result<Vec<Entry>, (ResponseError, String)> = match resource.resource_type
            {
                RESOURCE_TOPIC if !access.topic(AclOperation::DescribeConfigs, &name) => Err((
                    ResponseError::TopicAuthorizationFailed,
                    format!(
                        "{} may not describe the configs of {name}",
                        access.principal()
                    ),
                )),
                RESOURCE_BROKER if !access.cluster(AclOperation::DescribeConfigs) => Err((
                    ResponseError::ClusterAuthorizationFailed,
                    format!("{} may not describe broker configs", access.principal()),
                )),
                RESOURCE_TOPIC => match broker.replicas.metadata().topic(&name) {
                    None => Err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("topic {name:?} does not exist"),
                    )),
                    Some(topic) => Ok(topic_entries(broker, &topic.configs)),
                },
                RESOURCE_BROKER if name.is_empty() || name == broker.config.node_id.to_string() => {
                    Ok(broker_entries(broker))
                }
                RESOURCE_BROKER => Err((
                    ResponseError::InvalidRequest,
                    format!("this is broker {}, not {name}", broker.config.node_id),
                )),
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("resource type {other} is not supported"),
                )),
            };
            match entries {
                Ok(entries) => {
                    result.configs = entries
                        .into_iter()
                        .filter(|(key, ..)| wanted(key))
                        .map(|(key, value, source, read_only)| {
                            let mut entry = DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(key.clone()))
                                .with_value(Some(str_bytes(value.clone())))
                                .with_read_only(read_only);
                            if version == 0 {
                                entry.config_source = if source == SOURCE_DEFAULT { 5 } else { -1 };
                            } else {
                                entry.config_source = source;
                            }
                            if version >= 1 && request.include_synonyms {
                                entry.synonyms = vec![DescribeConfigsSynonym::default()
                                    .with_name(str_bytes(key))
                                    .with_value(Some(str_bytes(value)))
                                    .with_source(source)];
                            }
                            entry
                        })
                        .collect();
                }
                Err((code, message)) => {
                    result.error_code = error_code(broker, API, Some(code));
                    result.error_message = Some(str_bytes(message));
                }
            }
            result
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn topic_entries(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
) -> Vec<(String, String, i8, bool)> {
    let defaults = broker.replicas.default_topic_configs();
    defaults
        .into_iter()
        .map(|(key, default)| match overrides.get(&key) {
            Some(value) => (key, value.clone(), SOURCE_TOPIC, false),
            None => (key, default, SOURCE_DEFAULT, false),
        })
        .collect()
}

fn broker_entries(broker: &Broker) -> Vec<Entry> {
    let c = &broker.config;
    let mut entries = vec![
        ("node.id".to_string(), c.node_id.to_string()),
        ("broker.id".to_string(), c.node_id.to_string()),
        ("log.dirs".to_string(), c.data_dir.display().to_string()),
        (
            "auto.create.topics.enable".to_string(),
            c.auto_create_topics.to_string(),
        ),
        (
            "num.partitions".to_string(),
            c.default_partitions.to_string(),
        ),
        (
            "default.replication.factor".to_string(),
            c.default_replication_factor.to_string(),
        ),
        (
            "socket.request.max.bytes".to_string(),
            c.socket_request_max_bytes.to_string(),
        ),
        (
            "advertised.listeners".to_string(),
            format!("PLAINTEXT://{}:{}", c.advertised_host, c.advertised_port),
        ),
    ];
    entries.sort();
    entries
        .into_iter()
        .map(|(k, v)| (k, v, SOURCE_STATIC_BROKER, true))
        .collect()
}
