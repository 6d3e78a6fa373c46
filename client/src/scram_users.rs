//! SCRAM users: DescribeUserScramCredentials and AlterUserScramCredentials.
//!
//! A credential is created from a password on the client: a random 32-byte salt and the
//! salted password (PBKDF2 with the mechanism's hash) go to the broker, which keeps only
//! the keys derived from them. The password itself never crosses the wire.

use bytes::Bytes;
use ironlog_security::{ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use ring::rand::{SecureRandom, SystemRandom};

use crate::client::{Client, Target};
use crate::error::{check, ClientError};

/// Length of the random salt of a new credential (as Kafka's tools use).
pub const SALT_LEN: usize = 32;

/// One SCRAM credential of a user, as the broker describes it (never its keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// `None` for a mechanism code this client does not know.
    pub mechanism: Option<ScramMechanism>,
    pub iterations: i32,
}

/// A user's SCRAM credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScramCredentials {
    pub user: String,
    pub credentials: Vec<ScramCredentialInfo>,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl Client {
    /// The SCRAM credentials of `users`, or of every user with one when `None`, sorted by
    /// user.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] for the request as a whole, and for a named user without a
    /// credential (RESOURCE_NOT_FOUND).
    pub async fn describe_user_scram_credentials(
        &self,
        users: Option<&[String]>,
    ) -> Result<Vec<UserScramCredentials>, ClientError> {
        let request =
            DescribeUserScramCredentialsRequest::default().with_users(users.map(|users| {
                users
                    .iter()
                    .map(|u| UserName::default().with_name(str_bytes(u)))
                    .collect()
            }));
        let response = self
            .with_retries(None, || self.send(Target::Any, &request))
            .await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            || "describe SCRAM credentials".to_owned(),
        )?;
        let mut out = Vec::with_capacity(response.results.len());
        for result in response.results {
            let user = result.user.to_string();
            check(result.error_code, result.error_message.as_deref(), || {
                format!("describe SCRAM credentials of {user}")
            })?;
            out.push(UserScramCredentials {
                user,
                credentials: result
                    .credential_infos
                    .iter()
                    .map(|c| ScramCredentialInfo {
                        mechanism: ScramMechanism::from_wire_code(c.mechanism),
                        iterations: c.iterations,
                    })
                    .collect(),
            });
        }
        out.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(out)
    }

    /// Creates or replaces `user`'s credential for `mechanism` from `password`, salted with
    /// a fresh random salt and `iterations` rounds on this side.
    ///
    /// # Errors
    /// [`ClientError::InvalidArgument`] for an empty user or password or an iteration count
    /// outside 4096..=16384; [`ClientError::Kafka`] when the broker refuses.
    pub async fn upsert_user_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        iterations: u32,
        password: &str,
    ) -> Result<(), ClientError> {
        if user.is_empty() {
            return Err(ClientError::InvalidArgument("empty user name".into()));
        }
        if password.is_empty() {
            return Err(ClientError::InvalidArgument("empty password".into()));
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ClientError::InvalidArgument(format!(
                "iterations {iterations} outside {MIN_ITERATIONS}..={MAX_ITERATIONS}"
            )));
        }
        let mut salt = vec![0u8; SALT_LEN];
        SystemRandom::new().fill(&mut salt).map_err(|_| {
            ClientError::InvalidArgument("the operating system's random source failed".into())
        })?;
        let salted = ironlog_security::scram::salted_password(
            mechanism,
            password.as_bytes(),
            &salt,
            iterations,
        );
        let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            ScramCredentialUpsertion::default()
                .with_name(str_bytes(user))
                .with_mechanism(mechanism.wire_code())
                .with_iterations(iterations as i32)
                .with_salt(Bytes::from(salt))
                .with_salted_password(Bytes::from(salted)),
        ]);
        self.alter_scram(&request, user, || {
            format!("set {} credential of {user}", mechanism.sasl_name())
        })
        .await
    }

    /// Deletes `user`'s credential for `mechanism`.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] when the broker refuses, e.g. RESOURCE_NOT_FOUND when the
    /// user has no such credential.
    pub async fn delete_user_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<(), ClientError> {
        let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![
            ScramCredentialDeletion::default()
                .with_name(str_bytes(user))
                .with_mechanism(mechanism.wire_code()),
        ]);
        self.alter_scram(&request, user, || {
            format!("delete {} credential of {user}", mechanism.sasl_name())
        })
        .await
    }

    async fn alter_scram(
        &self,
        request: &AlterUserScramCredentialsRequest,
        user: &str,
        context: impl Fn() -> String,
    ) -> Result<(), ClientError> {
        let response = self
            .with_retries(None, || self.send(Target::Controller, request))
            .await?;
        let result = response
            .results
            .iter()
            .find(|r| r.user.as_str() == user)
            .ok_or_else(|| {
                ClientError::protocol(
                    "AlterUserScramCredentials response",
                    format!("no result for user {user:?}"),
                )
            })?;
        check(result.error_code, result.error_message.as_deref(), context)
    }
}
