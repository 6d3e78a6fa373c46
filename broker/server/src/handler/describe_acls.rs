//! DescribeAcls (key 29): the ACL bindings matching one filter, grouped by resource
//! pattern. An unknown code in the filter answers INVALID_REQUEST.

use std::collections::BTreeMap;
use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::describe_acls_response::{
    AclDescription, DescribeAclsResource,
};
use ironlog_protocol::kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use ironlog_protocol::ResponseError;

use super::{acl_codes, error_code, str_bytes};
use crate::broker::Broker;

const API: &str = "DescribeAcls";

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeAclsRequest,
    _version: i16,
) -> DescribeAclsResponse {
    let filter = match acl_codes::filter(
        request.resource_type_filter,
        request.resource_name_filter.as_deref(),
        request.pattern_type_filter,
        request.principal_filter.as_deref(),
        request.host_filter.as_deref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(filter) => filter,
        Err(reason) => {
            return DescribeAclsResponse::default()
                .with_error_code(error_code(broker, API, Some(ResponseError::InvalidRequest)))
                .with_error_message(Some(str_bytes(reason)))
        }
    };
    let mut resources: BTreeMap<_, Vec<AclDescription>> = BTreeMap::new();
    for b in broker.replicas.metadata().describe_acls(&filter) {
        resources
            .entry((b.resource_type, b.resource_name.clone(), b.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(str_bytes(b.principal))
                    .with_host(str_bytes(b.host))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
    }
    DescribeAclsResponse::default().with_resources(
        resources
            .into_iter()
            .map(|((resource_type, name, pattern), acls)| {
                DescribeAclsResource::default()
                    .with_resource_type(resource_type.code())
                    .with_resource_name(str_bytes(name))
                    .with_pattern_type(pattern.code())
                    .with_acls(acls)
            })
            .collect(),
    )
}
