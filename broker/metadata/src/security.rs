//! Security metadata: SCRAM credentials (salted, never the password), kept in the metadata
//! image so every broker authenticates the same users.

use serde::{Deserialize, Serialize};

use crate::image::MetadataImage;

/// The fewest PBKDF2 iterations a stored credential may use (Kafka's, for both mechanisms).
pub const MIN_SCRAM_ITERATIONS: u32 = 4096;

/// The most PBKDF2 iterations a stored credential may use (Kafka's, for both mechanisms).
pub const MAX_SCRAM_ITERATIONS: u32 = 16384;

/// The SCRAM mechanisms Kafka defines (RFC 5802 with SHA-256 / SHA-512, RFC 7677).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name: `SCRAM-SHA-256`, `SCRAM-SHA-512`.
    pub fn sasl_name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// From a SASL mechanism name (case-sensitive, as Kafka).
    pub fn from_sasl_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|m| m.sasl_name() == name)
    }

    /// The code in DescribeUserScramCredentials / AlterUserScramCredentials (1, 2).
    pub fn wire_code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_wire_code(code: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|m| m.wire_code() == code)
    }

    /// The digest's length in bytes (32, 64).
    pub fn digest_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }
}

/// One user's credential for one mechanism, as RFC 5802 stores it:
/// `StoredKey = H(HMAC(SaltedPassword, "Client Key"))`,
/// `ServerKey = HMAC(SaltedPassword, "Server Key")`,
/// `SaltedPassword = Hi(password, salt, iterations)` (PBKDF2 with the mechanism's HMAC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub mechanism: ScramMechanism,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

/// Whether `credential` may be stored for `user` (Kafka's AlterUserScramCredentials
/// checks): a non-empty user name, iterations in
/// [`MIN_SCRAM_ITERATIONS`]`..=`[`MAX_SCRAM_ITERATIONS`], a non-empty salt, and stored and
/// server keys of the mechanism's [`ScramMechanism::digest_len`]. `Err` is a sentence,
/// Kafka's UNACCEPTABLE_CREDENTIAL.
pub fn validate_scram_credential(user: &str, credential: &ScramCredential) -> Result<(), String> {
    let mechanism = credential.mechanism.sasl_name();
    if user.is_empty() {
        return Err("the user name is empty".into());
    }
    if !(MIN_SCRAM_ITERATIONS..=MAX_SCRAM_ITERATIONS).contains(&credential.iterations) {
        return Err(format!(
            "{mechanism} takes {MIN_SCRAM_ITERATIONS} to {MAX_SCRAM_ITERATIONS} iterations, got {}",
            credential.iterations
        ));
    }
    if credential.salt.is_empty() {
        return Err(format!("the {mechanism} salt is empty"));
    }
    let digest_len = credential.mechanism.digest_len();
    for (what, key) in [
        ("stored key", &credential.stored_key),
        ("server key", &credential.server_key),
    ] {
        if key.len() != digest_len {
            return Err(format!(
                "the {mechanism} {what} is {} bytes long, not {digest_len}",
                key.len()
            ));
        }
    }
    Ok(())
}

impl MetadataImage {
    /// `user`'s credential for `mechanism`.
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Option<&ScramCredential> {
        self.scram.get(user)?.get(&mechanism)
    }

    /// `user`'s credentials, in mechanism order; none for an unknown user.
    pub fn scram_credentials(&self, user: &str) -> impl Iterator<Item = &ScramCredential> {
        self.scram.get(user).into_iter().flat_map(|m| m.values())
    }

    /// The users with at least one credential, in name order.
    pub fn scram_users(&self) -> impl Iterator<Item = &str> {
        self.scram.keys().map(String::as_str)
    }
}
