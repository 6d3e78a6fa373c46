//! DeleteAcls (key 31): removes the ACL bindings matching each filter, and answers, per
//! filter, the bindings it removed. An unknown code in a filter answers INVALID_REQUEST for
//! that filter; the others are applied in one metadata command.

use std::sync::Arc;

use ironlog_metadata::{CommandResult, MetadataCommand};
use ironlog_protocol::kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use ironlog_protocol::kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use ironlog_protocol::ResponseError;

use super::{acl_codes, error_code, str_bytes};
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::replica_manager::ReplicaError;
use ironlog_metadata::acl::AclOperation;

const API: &str = "DeleteAcls";

pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: DeleteAclsRequest,
    _version: i16,
) -> DeleteAclsResponse {
    let may_alter = access.cluster(AclOperation::Alter);
    let checked: Vec<_> = request
        .filters
        .iter()
        .map(|f| {
            if !may_alter {
                return Err((
                    ResponseError::ClusterAuthorizationFailed,
                    format!("{} may not alter the cluster's ACLs", access.principal()),
                ));
            }
            acl_codes::filter(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
            .map_err(|reason| (ResponseError::InvalidRequest, reason))
        })
        .collect();
    let valid: Vec<_> = checked
        .iter()
        .filter_map(|f| f.as_ref().ok())
        .cloned()
        .collect();
    let mut deleted = if valid.is_empty() {
        Ok(Vec::new())
    } else {
        match broker
            .cluster
            .propose(MetadataCommand::DeleteAcls { filters: valid })
            .await
        {
            Ok(CommandResult::AclsDeleted(per_filter)) => Ok(per_filter),
            Ok(other) => {
                tracing::error!(?other, "DeleteAcls answered something else");
                Err(ResponseError::UnknownServerError)
            }
            Err(e) => Err(ReplicaError::from(e).error_code()),
        }
    };
    let mut next = 0usize;
    let results = checked
        .into_iter()
        .map(|f| match (f, &mut deleted) {
            (Err((code, reason)), _) => DeleteAclsFilterResult::default()
                .with_error_code(error_code(broker, API, Some(code)))
                .with_error_message(Some(str_bytes(reason))),
            (Ok(_), Err(code)) => DeleteAclsFilterResult::default()
                .with_error_code(error_code(broker, API, Some(*code)))
                .with_error_message(Some(str_bytes("cannot delete the ACLs"))),
            (Ok(_), Ok(per_filter)) => {
                let removed = per_filter
                    .get_mut(next)
                    .map(std::mem::take)
                    .unwrap_or_default();
                next += 1;
                if !removed.is_empty() {
                    tracing::info!(count = removed.len(), "ACLs deleted");
                }
                DeleteAclsFilterResult::default().with_matching_acls(
                    removed
                        .into_iter()
                        .map(|b| {
                            DeleteAclsMatchingAcl::default()
                                .with_resource_type(b.resource_type.code())
                                .with_resource_name(str_bytes(b.resource_name))
                                .with_pattern_type(b.pattern_type.code())
                                .with_principal(str_bytes(b.principal))
                                .with_host(str_bytes(b.host))
                                .with_operation(b.operation.code())
                                .with_permission_type(b.permission.code())
                        })
                        .collect(),
                )
            }
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
