//! JoinGroup (key 11): enter a group's rebalance. The response waits (parked in the
//! coordinator) until the join phase completes: every member rejoined or the rebalance
//! timeout passed. v4+ members without an id first get MEMBER_ID_REQUIRED with one.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use ironlog_protocol::kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::broker::Broker;
use crate::group::metadata::{JoinRequest, JoinResult};
use crate::group::{GroupError, Pending};
use crate::replica_manager::now_ms;

const API: &str = "JoinGroup";

pub async fn handle(
    broker: &Arc<Broker>,
    request: JoinGroupRequest,
    version: i16,
    client_id: String,
) -> JoinGroupResponse {
    let group_id = request.group_id.0.to_string();
    if group_id.is_empty() {
        return response(
            broker,
            version,
            JoinResult {
                error: Some(GroupError::InvalidGroupId),
                generation_id: -1,
                protocol_type: None,
                protocol_name: None,
                leader: String::new(),
                member_id: request.member_id.to_string(),
                members: Vec::new(),
                skip_assignment: false,
            },
            None,
        );
    }
    let instance = request.group_instance_id.as_ref().map(|s| s.to_string());
    let new_member_id = format!(
        "{}-{}",
        instance.as_deref().unwrap_or(client_id.as_str()),
        uuid::Uuid::new_v4()
    );
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: instance,
        client_id,
        client_host: String::new(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
        new_member_id,
    };
    let member_id = join.member_id.clone();
    let result = match broker
        .groups
        .join(&broker.replicas, &group_id, join, now_ms())
    {
        Pending::Ready(r) => Some(r),
        Pending::Wait(rx) => {
            let mut shutdown = broker.shutdown_signal();
            tokio::select! {
                r = rx => r.ok(),
                _ = crate::broker::stopped(&mut shutdown) => None,
            }
        }
    };
    match result {
        Some(r) => response(broker, version, r, None),
        None => response(
            broker,
            version,
            JoinResult {
                error: None,
                generation_id: -1,
                protocol_type: None,
                protocol_name: None,
                leader: String::new(),
                member_id,
                members: Vec::new(),
                skip_assignment: false,
            },
            Some(ResponseError::NotCoordinator),
        ),
    }
}

fn response(
    broker: &Broker,
    version: i16,
    r: JoinResult,
    other: Option<ResponseError>,
) -> JoinGroupResponse {
    let error = other.or(r.error.as_ref().map(GroupError::response_error));
    if let Some(e) = &r.error {
        tracing::debug!(member = %r.member_id, error = %e, "join refused");
    }
    // Before v7 the protocol name is a non-nullable string.
    let protocol_name = match r.protocol_name {
        None if version < 7 => Some(str_bytes("")),
        p => p.map(str_bytes),
    };
    JoinGroupResponse::default()
        .with_error_code(error_code(broker, API, error))
        .with_generation_id(r.generation_id)
        .with_protocol_type(r.protocol_type.map(str_bytes))
        .with_protocol_name(protocol_name)
        .with_leader(str_bytes(r.leader))
        .with_skip_assignment(r.skip_assignment && version >= 9)
        .with_member_id(str_bytes(r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(m.group_instance_id.map(str_bytes))
                        .with_metadata(m.metadata)
                })
                .collect(),
        )
}
