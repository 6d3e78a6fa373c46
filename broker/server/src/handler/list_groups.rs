//! ListGroups (key 16): every group this coordinator knows, optionally filtered by state
//! (v4+).

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::list_groups_response::ListedGroup;
use ironlog_protocol::kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::str_bytes;
use crate::authorizer::Access;
use crate::broker::Broker;
use ironlog_metadata::acl::AclOperation;

pub fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let filter: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let may_list_all = access.cluster(AclOperation::Describe);
    let groups = broker
        .groups
        .list_groups()
        .into_iter()
        .filter(|(_, _, state)| {
            filter.is_empty() || filter.contains(&state.name().to_ascii_lowercase())
        })
        // DESCRIBE on the cluster lists every group; otherwise those the principal may
        // describe.
        .filter(|(id, _, _)| may_list_all || access.group(AclOperation::Describe, id))
        .map(|(id, protocol_type, state)| {
            let mut g = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(id)))
                .with_protocol_type(str_bytes(protocol_type));
            if version >= 4 {
                g.group_state = str_bytes(state.name());
            }
            g
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
