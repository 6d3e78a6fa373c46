//! DeleteGroups (key 42): removes empty groups and their committed offsets (tombstones in
//! `__consumer_offsets`). A group with members answers NON_EMPTY_GROUP.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use ironlog_protocol::kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::error_code;
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::replica_manager::now_ms;
use ironlog_metadata::acl::AclOperation;
use ironlog_protocol::ResponseError;

const API: &str = "DeleteGroups";

pub fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: DeleteGroupsRequest,
    _version: i16,
) -> DeleteGroupsResponse {
    let results = request
        .groups_names
        .into_iter()
        .map(|group_id| {
            if !access.group(AclOperation::Delete, &group_id.0) {
                return DeletableGroupResult::default()
                    .with_group_id(group_id)
                    .with_error_code(error_code(
                        broker,
                        API,
                        Some(ResponseError::GroupAuthorizationFailed),
                    ));
            }
            let result = broker
                .groups
                .delete_group(&broker.replicas, &group_id.0, now_ms());
            if result.is_ok() {
                tracing::info!(group = %group_id.0.as_str(), "deleted consumer group");
            }
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error_code(
                    broker,
                    API,
                    result.err().map(|e| e.response_error()),
                ))
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
