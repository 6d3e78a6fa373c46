//! DescribeGroups (key 15): state, protocol and members (with their subscription and
//! assignment) of groups. An unknown group is described as Dead with no members, as in
//! Kafka before v6.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::describe_groups_response::{
    DescribedGroup, DescribedGroupMember,
};
use ironlog_protocol::kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{str_bytes, AUTHORIZED_OPERATIONS_OMITTED};
use crate::authorizer::Access;
use crate::broker::Broker;
use ironlog_metadata::acl::AclOperation;
use ironlog_protocol::ResponseError;

pub fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: DescribeGroupsRequest,
    _version: i16,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            if !access.group(AclOperation::Describe, &group_id.0) {
                return DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                    .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
            }
            if let Err(e) = broker.groups.check_coordinator(&group_id.0) {
                return DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_error_code(e.response_error().code())
                    .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
            }
            let d = broker.groups.describe(&group_id.0);
            let members = d
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(m.group_instance_id.map(str_bytes))
                        .with_client_id(str_bytes(m.client_id))
                        .with_client_host(str_bytes(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect();
            DescribedGroup::default()
                .with_group_id(group_id)
                .with_group_state(str_bytes(d.state.name()))
                .with_protocol_type(str_bytes(d.protocol_type))
                .with_protocol_data(str_bytes(d.protocol_name))
                .with_members(members)
                .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
