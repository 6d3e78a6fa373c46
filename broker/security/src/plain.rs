//! SASL PLAIN (RFC 4616): one message `[authzid] NUL authcid NUL passwd`.
//!
//! The broker checks the password against the same salted SCRAM credentials that SCRAM
//! uses ([`verify_password`]), so one credential store serves both mechanisms and no
//! password is ever stored.

use std::fmt;

use ironlog_metadata::ScramCredential;

use crate::scram::{keys_equal, salted_password, stored_key};

/// A parsed PLAIN message. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainMessage {
    /// The authorization identity: empty, or equal to `username`.
    pub authzid: String,
    /// The authentication identity (`authcid`), non-empty.
    pub username: String,
    /// The password, non-empty.
    pub password: String,
}

impl fmt::Debug for PlainMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainMessage")
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why a PLAIN message was refused. The texts never contain the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    #[error("SASL PLAIN message is not UTF-8")]
    NotUtf8,
    #[error("SASL PLAIN message must have three NUL-separated fields")]
    FieldCount,
    #[error("SASL PLAIN username is empty")]
    EmptyUsername,
    #[error("SASL PLAIN password is empty")]
    EmptyPassword,
    #[error("SASL PLAIN authorization identity differs from the username")]
    AuthzidMismatch,
}

/// Parses `[authzid] NUL authcid NUL passwd`: UTF-8, exactly two NULs, a non-empty username
/// and password, and an authzid that is empty or equal to the username (as Kafka, no
/// impersonation).
pub fn parse(message: &[u8]) -> Result<PlainMessage, PlainError> {
    let text = std::str::from_utf8(message).map_err(|_| PlainError::NotUtf8)?;
    let mut fields = text.split('\0');
    let (Some(authzid), Some(username), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(PlainError::FieldCount);
    };
    if username.is_empty() {
        return Err(PlainError::EmptyUsername);
    }
    if password.is_empty() {
        return Err(PlainError::EmptyPassword);
    }
    if !authzid.is_empty() && authzid != username {
        return Err(PlainError::AuthzidMismatch);
    }
    Ok(PlainMessage {
        authzid: authzid.to_string(),
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// Whether `password` matches any of a user's SCRAM credentials: the salted password is
/// recomputed with each credential's salt and iteration count, its StoredKey derived and
/// compared in constant time. Credentials with zero iterations never match.
pub fn verify_password<'a>(
    credentials: impl IntoIterator<Item = &'a ScramCredential>,
    password: &str,
) -> bool {
    credentials.into_iter().any(|credential| {
        if credential.iterations == 0 {
            return false;
        }
        let salted = salted_password(
            credential.mechanism,
            password.as_bytes(),
            &credential.salt,
            credential.iterations,
        );
        keys_equal(
            &stored_key(credential.mechanism, &salted),
            &credential.stored_key,
        )
    })
}
