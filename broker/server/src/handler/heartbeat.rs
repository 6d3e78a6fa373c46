//! Heartbeat (key 12): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to
//! rejoin.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::error_code;
use crate::broker::Broker;
use crate::replica_manager::now_ms;

const API: &str = "Heartbeat";

pub fn handle(broker: &Arc<Broker>, request: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
    let result = broker.groups.heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
        now_ms(),
    );
    let error = result.err().map(|e| e.response_error());
    HeartbeatResponse::default().with_error_code(error_code(broker, API, error))
}
