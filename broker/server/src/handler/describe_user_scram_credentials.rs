//! DescribeUserScramCredentials (key 50): which SCRAM mechanisms (and iteration counts)
//! each user has; never salts or keys. No users named: every user with a credential. A
//! named user without one answers RESOURCE_NOT_FOUND, a user named twice
//! DUPLICATE_RESOURCE.

use std::collections::BTreeMap;
use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use ironlog_protocol::kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::broker::Broker;

const API: &str = "DescribeUserScramCredentials";

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeUserScramCredentialsRequest,
    _version: i16,
) -> DescribeUserScramCredentialsResponse {
    let image = broker.replicas.metadata();
    let names: Vec<String> = match request.users {
        Some(users) if !users.is_empty() => users.into_iter().map(|u| u.name.to_string()).collect(),
        _ => image.scram_users().map(|u| u.to_string()).collect(),
    };
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for name in &names {
        *seen.entry(name).or_default() += 1;
    }
    let mut results = Vec::new();
    let mut reported = std::collections::BTreeSet::new();
    for name in &names {
        if !reported.insert(name.as_str()) {
            continue;
        }
        let result =
            DescribeUserScramCredentialsResult::default().with_user(str_bytes(name.clone()));
        let result = if seen[name.as_str()] > 1 {
            result
                .with_error_code(error_code(
                    broker,
                    API,
                    Some(ResponseError::DuplicateResource),
                ))
                .with_error_message(Some(str_bytes(format!(
                    "user {name} is named more than once"
                ))))
        } else {
            let infos: Vec<CredentialInfo> = image
                .scram_credentials(name)
                .map(|c| {
                    CredentialInfo::default()
                        .with_mechanism(c.mechanism.wire_code())
                        .with_iterations(c.iterations as i32)
                })
                .collect();
            if infos.is_empty() {
                result
                    .with_error_code(error_code(
                        broker,
                        API,
                        Some(ResponseError::ResourceNotFound),
                    ))
                    .with_error_message(Some(str_bytes(format!(
                        "user {name} has no SCRAM credential"
                    ))))
            } else {
                result.with_credential_infos(infos)
            }
        };
        results.push(result);
    }
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
