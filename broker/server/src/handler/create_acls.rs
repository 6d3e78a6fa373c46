//! CreateAcls (key 30): adds ACL bindings to the cluster metadata. Each creation is
//! checked on its own (an unknown code, a filter-only value such as ANY, a principal that
//! is not `Type:name`: INVALID_REQUEST with the reason); the valid ones are committed in one
//! metadata command. Re-creating an existing binding succeeds and changes nothing.

use std::sync::Arc;

use ironlog_metadata::MetadataCommand;
use ironlog_protocol::kafka_protocol::messages::create_acls_response::AclCreationResult;
use ironlog_protocol::kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use ironlog_protocol::ResponseError;

use super::{acl_codes, error_code, str_bytes};
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::replica_manager::ReplicaError;
use ironlog_metadata::acl::AclOperation;

const API: &str = "CreateAcls";

pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: CreateAclsRequest,
    _version: i16,
) -> CreateAclsResponse {
    let may_alter = access.cluster(AclOperation::Alter);
    let checked: Vec<_> = request
        .creations
        .iter()
        .map(|c| {
            if !may_alter {
                return Err((
                    ResponseError::ClusterAuthorizationFailed,
                    format!("{} may not alter the cluster's ACLs", access.principal()),
                ));
            }
            acl_codes::binding(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
            .map_err(|reason| (ResponseError::InvalidRequest, reason))
        })
        .collect();
    let valid: Vec<_> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .cloned()
        .collect();
    let committed = if valid.is_empty() {
        Ok(())
    } else {
        let count = valid.len();
        match broker
            .cluster
            .propose(MetadataCommand::CreateAcls { acls: valid })
            .await
        {
            Ok(_) => {
                tracing::info!(count, "ACLs created");
                Ok(())
            }
            Err(e) => Err((
                ReplicaError::from(e).error_code(),
                "cannot store the ACLs".to_string(),
            )),
        }
    };
    let results = checked
        .into_iter()
        .map(|c| {
            let refusal = match (&c, &committed) {
                (Err((code, reason)), _) => Some((*code, reason.clone())),
                (Ok(_), Err((code, reason))) => Some((*code, reason.clone())),
                (Ok(_), Ok(())) => None,
            };
            match refusal {
                None => AclCreationResult::default(),
                Some((code, message)) => AclCreationResult::default()
                    .with_error_code(error_code(broker, API, Some(code)))
                    .with_error_message(Some(str_bytes(message))),
            }
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}
