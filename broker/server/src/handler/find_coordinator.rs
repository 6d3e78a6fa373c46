//! FindCoordinator (key 10): which broker coordinates a group (or transactional id).
//!
//! With one broker every key is coordinated here. v0–v3 ask for one `key`; v4+ batch
//! several `coordinator_keys` and get one `Coordinator` entry per key.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::find_coordinator_response::Coordinator;
use ironlog_protocol::kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::broker::Broker;

const API: &str = "FindCoordinator";
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub fn handle(
    broker: &Arc<Broker>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let c = &broker.config;
    let error = match request.key_type {
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => None,
        _ => Some(ResponseError::InvalidRequest),
    };
    let code = error_code(broker, API, error);
    let (node, host, port) = if error.is_some() {
        (-1, String::new(), -1)
    } else {
        (c.node_id, c.advertised_host.clone(), c.advertised_port)
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(node.into())
                    .with_host(str_bytes(host.clone()))
                    .with_port(port)
                    .with_error_code(code)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_node_id(node.into())
        .with_host(str_bytes(host))
        .with_port(port)
}
