//! LeaveGroup (key 13): members leave at once instead of waiting for their session to
//! expire. v0–v2 name one member; v3+ a batch of members (by member id or instance id).

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::leave_group_response::MemberResponse;
use ironlog_protocol::kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::{error_code, str_bytes};
use crate::broker::Broker;
use crate::replica_manager::now_ms;

const API: &str = "LeaveGroup";

pub fn handle(
    broker: &Arc<Broker>,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let results = broker
        .groups
        .leave(&broker.replicas, &request.group_id.0, &members, now_ms());
    let results = match results {
        Err(e) => {
            let code = error_code(broker, API, Some(e.response_error()));
            return LeaveGroupResponse::default().with_error_code(code);
        }
        Ok(r) => r,
    };
    if version < 3 {
        let error = results
            .into_iter()
            .next()
            .and_then(|r| r.err())
            .map(|e| e.response_error());
        return LeaveGroupResponse::default().with_error_code(error_code(broker, API, error));
    }
    let responses = members
        .into_iter()
        .zip(results)
        .map(|((member_id, instance), result)| {
            MemberResponse::default()
                .with_member_id(str_bytes(member_id))
                .with_group_instance_id(instance.map(str_bytes))
                .with_error_code(error_code(
                    broker,
                    API,
                    result.err().map(|e| e.response_error()),
                ))
        })
        .collect();
    LeaveGroupResponse::default().with_members(responses)
}
