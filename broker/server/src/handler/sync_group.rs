//! SyncGroup (key 14): the leader hands in the assignment; every member gets its own.
//! Followers wait (parked) until the leader's SyncGroup arrives.

use std::sync::Arc;

use bytes::Bytes;
use ironlog_protocol::kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::broker::Broker;
use crate::group::metadata::SyncResult;
use crate::group::{GroupError, Pending};
use crate::replica_manager::now_ms;

const API: &str = "SyncGroup";

pub async fn handle(
    broker: &Arc<Broker>,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    let assignments: Vec<(String, Bytes)> = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let pending = broker.groups.sync(
        &broker.replicas,
        &group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
        request.protocol_type.as_deref(),
        request.protocol_name.as_deref(),
        assignments,
        now_ms(),
    );
    let result = match pending {
        Pending::Ready(r) => Some(r),
        Pending::Wait(rx) => {
            let mut shutdown = broker.shutdown_signal();
            tokio::select! {
                r = rx => r.ok(),
                _ = crate::broker::stopped(&mut shutdown) => None,
            }
        }
    };
    let (result, error) = match result {
        Some(r) => {
            let e = r.error.as_ref().map(GroupError::response_error);
            (r, e)
        }
        None => (
            SyncResult {
                error: None,
                protocol_type: None,
                protocol_name: None,
                assignment: Bytes::new(),
            },
            Some(ResponseError::NotCoordinator),
        ),
    };
    let mut response = SyncGroupResponse::default()
        .with_error_code(error_code(broker, API, error))
        .with_assignment(result.assignment);
    if version >= 5 {
        response.protocol_type = result.protocol_type.map(str_bytes);
        response.protocol_name = result.protocol_name.map(str_bytes);
    }
    response
}
