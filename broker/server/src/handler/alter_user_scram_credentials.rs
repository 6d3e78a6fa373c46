//! AlterUserScramCredentials (key 51): creates, replaces and deletes users' SCRAM
//! credentials in the cluster metadata. The client sends the salt and the salted password
//! (never the password); the broker keeps only the derived stored and server keys. One
//! result per user: an unknown mechanism answers UNSUPPORTED_SASL_MECHANISM, an iteration
//! count outside 4096..=16384 or an empty name UNACCEPTABLE_CREDENTIAL, deleting a missing
//! credential RESOURCE_NOT_FOUND, a user's mechanism altered twice in one request
//! DUPLICATE_RESOURCE (and nothing of that user changes).

use std::collections::BTreeMap;
use std::sync::Arc;

use ironlog_metadata::{CommandError, MetadataCommand, ScramMechanism};
use ironlog_protocol::kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use ironlog_protocol::kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::cluster::ClusterError;
use crate::replica_manager::ReplicaError;
use ironlog_metadata::acl::AclOperation;

const API: &str = "AlterUserScramCredentials";

pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: AlterUserScramCredentialsRequest,
    _version: i16,
) -> AlterUserScramCredentialsResponse {
    // Per user, in first-seen order: the commands, or why the user's changes are refused.
    let mut users: Vec<String> = Vec::new();
    let mut plans: BTreeMap<String, Result<Vec<MetadataCommand>, (ResponseError, String)>> =
        BTreeMap::new();
    let mut touched: BTreeMap<(String, i8), usize> = BTreeMap::new();
    let changes = request
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism, None))
        .chain(
            request
                .upsertions
                .iter()
                .map(|u| (u.name.to_string(), u.mechanism, Some(u))),
        );
    for (name, code, upsertion) in changes {
        if !plans.contains_key(&name) {
            users.push(name.clone());
            plans.insert(name.clone(), Ok(Vec::new()));
        }
        *touched.entry((name.clone(), code)).or_default() += 1;
        let plan = plans.get_mut(&name).expect("inserted above");
        let Ok(commands) = plan else { continue };
        let refusal = if !access.cluster(AclOperation::Alter) {
            Some((
                ResponseError::ClusterAuthorizationFailed,
                format!("{} may not alter SCRAM credentials", access.principal()),
            ))
        } else if name.is_empty() {
            Some((
                ResponseError::UnacceptableCredential,
                "the user name is empty".to_string(),
            ))
        } else if touched[&(name.clone(), code)] > 1 {
            Some((
                ResponseError::DuplicateResource,
                format!("user {name}'s mechanism {code} is altered more than once in this request"),
            ))
        } else {
            match (ScramMechanism::from_wire_code(code), upsertion) {
                (None, _) => Some((
                    ResponseError::UnsupportedSaslMechanism,
                    format!("unknown SCRAM mechanism {code}"),
                )),
                (Some(mechanism), None) => {
                    commands.push(MetadataCommand::DeleteScramCredential {
                        user: name.clone(),
                        mechanism,
                    });
                    None
                }
                (Some(mechanism), Some(u)) => {
                    let iterations = u32::try_from(u.iterations).unwrap_or(0);
                    if !(ironlog_security::scram::MIN_ITERATIONS
                        ..=ironlog_security::scram::MAX_ITERATIONS)
                        .contains(&iterations)
                    {
                        Some((
                            ResponseError::UnacceptableCredential,
                            format!(
                                "iterations {} outside {}..={}",
                                u.iterations,
                                ironlog_security::scram::MIN_ITERATIONS,
                                ironlog_security::scram::MAX_ITERATIONS
                            ),
                        ))
                    } else if u.salt.is_empty() || u.salted_password.len() != mechanism.digest_len()
                    {
                        Some((
                            ResponseError::UnacceptableCredential,
                            format!(
                                "a {} upsertion needs a salt and a {}-byte salted password",
                                mechanism.sasl_name(),
                                mechanism.digest_len()
                            ),
                        ))
                    } else {
                        let credential = ironlog_security::scram::credential_from_salted_password(
                            mechanism,
                            u.salt.to_vec(),
                            &u.salted_password,
                            iterations,
                        );
                        commands.push(MetadataCommand::UpsertScramCredential {
                            user: name.clone(),
                            credential,
                        });
                        None
                    }
                }
            }
        };
        if let Some(refusal) = refusal {
            *plan = Err(refusal);
        }
    }
    let mut results = Vec::new();
    for name in users {
        let mut result =
            AlterUserScramCredentialsResult::default().with_user(str_bytes(name.clone()));
        let outcome = match plans.remove(&name).expect("planned") {
            Err(refusal) => Err(refusal),
            Ok(commands) => {
                let mut outcome = Ok(());
                for command in commands {
                    if let Err(e) = broker.cluster.propose(command).await {
                        outcome = Err(refusal_of(e));
                        break;
                    }
                }
                outcome
            }
        };
        match outcome {
            Ok(()) => tracing::info!(user = %name, "SCRAM credentials altered"),
            Err((code, message)) => {
                result.error_code = error_code(broker, API, Some(code));
                result.error_message = Some(str_bytes(message));
            }
        }
        results.push(result);
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}

fn refusal_of(e: ClusterError) -> (ResponseError, String) {
    let message = e.to_string();
    let code = match e {
        ClusterError::Rejected(CommandError::ResourceNotFound(_)) => {
            ResponseError::ResourceNotFound
        }
        ClusterError::Rejected(CommandError::UnacceptableCredential(_)) => {
            ResponseError::UnacceptableCredential
        }
        other => ReplicaError::from(other).error_code(),
    };
    (code, message)
}
