//! SCRAM (RFC 5802, with the SHA-256 / SHA-512 hashes of RFC 7677) as Kafka uses it for the
//! SASL mechanisms `SCRAM-SHA-256` and `SCRAM-SHA-512`.
//!
//! The exchange, with `H` the mechanism's hash and `HMAC` its HMAC:
//!
//! ```text
//! client-first   n,,n=<user>,r=<client nonce>[,<extensions>]
//! server-first   r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>
//! client-final   c=<base64 GS2 header>,r=<client nonce><server nonce>,p=<base64 proof>
//! server-final   v=<base64 server signature>
//! ```
//!
//! `AuthMessage = client-first-bare + "," + server-first + "," + client-final-without-proof`,
//! `ClientSignature = HMAC(StoredKey, AuthMessage)`, `proof = ClientKey XOR ClientSignature`.
//! The server recovers `ClientKey = proof XOR ClientSignature` and accepts when
//! `H(ClientKey) == StoredKey`; it proves itself with `HMAC(ServerKey, AuthMessage)`.
//!
//! As in Kafka, passwords are used as their UTF-8 bytes (no SASLprep) and channel binding
//! is not supported.

use std::fmt;
use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ironlog_metadata::{ScramCredential, ScramMechanism};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};

/// The lowest iteration count Kafka accepts for a SCRAM credential (and that a client accepts
/// from a server).
pub const MIN_ITERATIONS: u32 = 4096;
/// The highest iteration count Kafka accepts for a SCRAM credential.
pub const MAX_ITERATIONS: u32 = 16384;

/// Length of the random salt [`new_credential`] draws.
const SALT_LEN: usize = 32;
/// Random bytes in a generated nonce (base64: 32 printable characters, no comma).
const NONCE_BYTES: usize = 24;

/// Why a SCRAM step failed. The texts name what was wrong, never a password, a key, a proof
/// or any other secret, and never echo the peer's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// The message does not follow the SCRAM grammar (or does not match the exchange so far).
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// The username has no credential for this mechanism.
    #[error("unknown SCRAM user")]
    UnknownUser,
    /// The client's proof is wrong: wrong password, or a proof forged without the key.
    #[error("invalid SCRAM credentials")]
    InvalidCredentials,
    /// The peer asked for something this implementation refuses (channel binding, a
    /// delegation token, a mandatory extension, an authorization identity of another user).
    #[error("unsupported SCRAM feature: {0}")]
    Unsupported(&'static str),
    /// A step was called before the step it depends on, or after the exchange ended.
    #[error("SCRAM step out of order: {0}")]
    OutOfOrder(&'static str),
    /// The stored credential belongs to another SCRAM mechanism than the exchange.
    #[error("SCRAM mechanism mismatch: the exchange uses {exchange} but the credential is for {credential}")]
    MechanismMismatch {
        exchange: &'static str,
        credential: &'static str,
    },
    /// Client side: the server asked for fewer iterations than [`MIN_ITERATIONS`].
    #[error("SCRAM iteration count {0} is below the minimum of 4096")]
    IterationCount(u32),
    /// Client side: the server's signature is wrong (the server does not hold the key).
    #[error("SCRAM server signature does not match")]
    ServerSignatureMismatch,
    /// Client side: the server ended the exchange with `e=<reason>`.
    #[error("SCRAM server error: {0}")]
    ServerError(String),
}

fn hmac_algorithm(mechanism: ScramMechanism) -> hmac::Algorithm {
    match mechanism {
        ScramMechanism::Sha256 => hmac::HMAC_SHA256,
        ScramMechanism::Sha512 => hmac::HMAC_SHA512,
    }
}

fn digest_algorithm(mechanism: ScramMechanism) -> &'static digest::Algorithm {
    match mechanism {
        ScramMechanism::Sha256 => &digest::SHA256,
        ScramMechanism::Sha512 => &digest::SHA512,
    }
}

fn pbkdf2_algorithm(mechanism: ScramMechanism) -> pbkdf2::Algorithm {
    match mechanism {
        ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
    }
}

fn hmac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac_algorithm(mechanism), key);
    hmac::sign(&key, data).as_ref().to_vec()
}

fn hash(mechanism: ScramMechanism, data: &[u8]) -> Vec<u8> {
    digest::digest(digest_algorithm(mechanism), data)
        .as_ref()
        .to_vec()
}

/// `ClientKey = HMAC(SaltedPassword, "Client Key")`.
fn client_key(mechanism: ScramMechanism, salted_password: &[u8]) -> Vec<u8> {
    hmac(mechanism, salted_password, b"Client Key")
}

/// `StoredKey = H(ClientKey)` for a salted password.
pub(crate) fn stored_key(mechanism: ScramMechanism, salted_password: &[u8]) -> Vec<u8> {
    hash(mechanism, &client_key(mechanism, salted_password))
}

/// Compares two secrets without a timing side channel on their content: both are blinded
/// with an HMAC under a fresh random key and ring compares the tags in constant time.
/// Lengths are not secret (they follow from the mechanism).
pub(crate) fn keys_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let rng = SystemRandom::new();
    let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
        // Without randomness the blinding key is fixed; the comparison stays constant time.
        .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, &[0u8; 32]));
    let tag = hmac::sign(&key, b);
    hmac::verify(&key, a, tag.as_ref()).is_ok()
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source failed");
    bytes
}

/// A fresh nonce: base64 of random bytes, printable and without commas.
fn random_nonce() -> String {
    B64.encode(random_bytes(NONCE_BYTES))
}

/// `Hi(password, salt, iterations)`: PBKDF2 with the mechanism's HMAC, as long as its digest.
///
/// `Hi` is undefined for zero iterations; 0 is treated as 1. Callers taking an iteration
/// count from users check it against [`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`] first.
pub fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    let mut out = vec![0u8; mechanism.digest_len()];
    pbkdf2::derive(
        pbkdf2_algorithm(mechanism),
        iterations,
        salt,
        password,
        &mut out,
    );
    out
}

/// The credential a salted password gives: `StoredKey = H(HMAC(salted, "Client Key"))`,
/// `ServerKey = HMAC(salted, "Server Key")`. Kafka's AlterUserScramCredentials carries the
/// salt and the salted password, and the broker stores this.
pub fn credential_from_salted_password(
    mechanism: ScramMechanism,
    salt: Vec<u8>,
    salted_password: &[u8],
    iterations: u32,
) -> ScramCredential {
    ScramCredential {
        mechanism,
        stored_key: stored_key(mechanism, salted_password),
        server_key: hmac(mechanism, salted_password, b"Server Key"),
        salt,
        iterations,
    }
}

/// A credential for a password, with a random 32-byte salt.
///
/// # Panics
/// If the operating system's random source fails.
pub fn new_credential(
    mechanism: ScramMechanism,
    password: &str,
    iterations: u32,
) -> ScramCredential {
    let salt = random_bytes(SALT_LEN);
    let salted = salted_password(mechanism, password.as_bytes(), &salt, iterations);
    credential_from_salted_password(mechanism, salt, &salted, iterations)
}

/// Encodes a username as a SCRAM `saslname`: `,` becomes `=2C` and `=` becomes `=3D`.
pub fn encode_username(username: &str) -> String {
    let mut out = String::with_capacity(username.len());
    for c in username.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    out
}

/// Decodes a SCRAM `saslname`: `=2C` is `,`, `=3D` is `=`; any other `=`, a comma or a NUL
/// is malformed, and so is an empty name.
pub fn decode_username(saslname: &str) -> Result<String, ScramError> {
    if saslname.is_empty() {
        return Err(ScramError::Malformed("empty username"));
    }
    let mut out = String::with_capacity(saslname.len());
    let mut rest = saslname;
    while let Some(c) = rest.chars().next() {
        match c {
            '=' => {
                if let Some(tail) = rest.strip_prefix("=2C") {
                    out.push(',');
                    rest = tail;
                } else if let Some(tail) = rest.strip_prefix("=3D") {
                    out.push('=');
                    rest = tail;
                } else {
                    return Err(ScramError::Malformed("invalid '=' escape in username"));
                }
            }
            ',' | '\0' => return Err(ScramError::Malformed("invalid character in username")),
            c => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    Ok(out)
}

/// RFC 5802 `printable`: %x21-2B / %x2D-7E (visible ASCII without the comma), non-empty.
fn is_valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Splits an extension attribute `key=value`; the key must be non-empty.
fn split_extension(attribute: &str) -> Result<(&str, &str), ScramError> {
    match attribute.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key, value)),
        _ => Err(ScramError::Malformed("invalid extension attribute")),
    }
}

fn utf8(message: &[u8]) -> Result<&str, ScramError> {
    std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))
}

/// The parts of a client-first-message the server keeps.
struct ClientFirst<'a> {
    gs2_header: &'a str,
    username: String,
    nonce: &'a str,
    bare: &'a str,
}

fn parse_client_first(message: &str) -> Result<ClientFirst<'_>, ScramError> {
    let (flag, rest) = message
        .split_once(',')
        .ok_or(ScramError::Malformed("missing GS2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramError::Unsupported("channel binding")),
        _ => return Err(ScramError::Malformed("invalid GS2 channel binding flag")),
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or(ScramError::Malformed("missing GS2 header"))?;
    let authzid = if authzid.is_empty() {
        None
    } else {
        let encoded = authzid
            .strip_prefix("a=")
            .ok_or(ScramError::Malformed("invalid authorization identity"))?;
        Some(
            decode_username(encoded)
                .map_err(|_| ScramError::Malformed("invalid authorization identity"))?,
        )
    };
    // `bare` is a suffix of `message`: the GS2 header is everything before it.
    let gs2_header = &message[..message.len() - bare.len()];

    let mut attributes = bare.split(',');
    let first = attributes.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(ScramError::Unsupported("mandatory extension"));
    }
    let encoded_user = first
        .strip_prefix("n=")
        .ok_or(ScramError::Malformed("missing username"))?;
    let username = decode_username(encoded_user)?;
    let nonce = attributes
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(ScramError::Malformed("missing client nonce"))?;
    if !is_valid_nonce(nonce) {
        return Err(ScramError::Malformed("invalid client nonce"));
    }
    for attribute in attributes {
        let (key, value) = split_extension(attribute)?;
        // Kafka's delegation tokens authenticate with `tokenauth=true`; not supported here.
        if key == "tokenauth" && value.eq_ignore_ascii_case("true") {
            return Err(ScramError::Unsupported(
                "delegation token authentication (tokenauth)",
            ));
        }
    }
    if let Some(authzid) = authzid {
        if authzid != username {
            return Err(ScramError::Unsupported(
                "an authorization identity other than the username",
            ));
        }
    }
    Ok(ClientFirst {
        gs2_header,
        username,
        nonce,
        bare,
    })
}

enum ServerState {
    /// Waiting for the client-first-message.
    Initial,
    /// The server-first-message was sent; waiting for the client-final-message.
    FirstSent {
        username: String,
        credential: ScramCredential,
        gs2_header: String,
        nonce: String,
        /// `client-first-bare + "," + server-first + ","`: the start of the AuthMessage.
        auth_message_prefix: String,
    },
    /// The exchange succeeded.
    Complete,
    /// A step failed; the exchange cannot go on.
    Failed,
}

/// The server side of one SCRAM exchange, in two explicit steps: [`ScramServer::client_first`]
/// then [`ScramServer::client_final`]. Any failure ends the exchange; a step called out of
/// order is an error, never a panic.
pub struct ScramServer {
    mechanism: ScramMechanism,
    server_nonce: String,
    state: ServerState,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            ServerState::Initial => "initial",
            ServerState::FirstSent { .. } => "first-sent",
            ServerState::Complete => "complete",
            ServerState::Failed => "failed",
        };
        f.debug_struct("ScramServer")
            .field("mechanism", &self.mechanism)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl ScramServer {
    /// A new exchange with a random server nonce.
    ///
    /// # Panics
    /// If the operating system's random source fails.
    pub fn new(mechanism: ScramMechanism) -> ScramServer {
        ScramServer::with_nonce(mechanism, random_nonce())
    }

    /// A new exchange with a given server nonce (printable ASCII without commas), for tests.
    pub fn with_nonce(mechanism: ScramMechanism, server_nonce: String) -> ScramServer {
        ScramServer {
            mechanism,
            server_nonce,
            state: ServerState::Initial,
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Whether the client has been authenticated.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, ServerState::Complete)
    }

    /// Takes the client-first-message and returns the server-first-message. `lookup` is
    /// called with the (decoded) username and returns that user's credential for this
    /// mechanism, if any.
    pub fn client_first(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Vec<u8>, ScramError> {
        match self.state {
            ServerState::Initial => {}
            ServerState::FirstSent { .. } => {
                return Err(ScramError::OutOfOrder("client-first already received"))
            }
            ServerState::Complete => {
                return Err(ScramError::OutOfOrder("exchange already complete"))
            }
            ServerState::Failed => return Err(ScramError::OutOfOrder("exchange already failed")),
        }
        // Any error below ends the exchange.
        self.state = ServerState::Failed;
        let message = utf8(message)?;
        let first = parse_client_first(message)?;
        let credential = lookup(&first.username).ok_or(ScramError::UnknownUser)?;
        if credential.mechanism != self.mechanism {
            return Err(ScramError::MechanismMismatch {
                exchange: self.mechanism.sasl_name(),
                credential: credential.mechanism.sasl_name(),
            });
        }
        let nonce = format!("{}{}", first.nonce, self.server_nonce);
        let server_first = format!(
            "r={},s={},i={}",
            nonce,
            B64.encode(&credential.salt),
            credential.iterations
        );
        let auth_message_prefix = format!("{},{},", first.bare, server_first);
        self.state = ServerState::FirstSent {
            username: first.username,
            credential,
            gs2_header: first.gs2_header.to_string(),
            nonce,
            auth_message_prefix,
        };
        Ok(server_first.into_bytes())
    }

    /// Takes the client-final-message, checks the proof, and returns the
    /// server-final-message with the authenticated username.
    pub fn client_final(&mut self, message: &[u8]) -> Result<(Vec<u8>, String), ScramError> {
        match self.state {
            ServerState::FirstSent { .. } => {}
            ServerState::Initial => {
                return Err(ScramError::OutOfOrder("client-final before client-first"))
            }
            ServerState::Complete => {
                return Err(ScramError::OutOfOrder("exchange already complete"))
            }
            ServerState::Failed => return Err(ScramError::OutOfOrder("exchange already failed")),
        }
        // Any error below ends the exchange.
        let ServerState::FirstSent {
            username,
            credential,
            gs2_header,
            nonce,
            auth_message_prefix,
        } = std::mem::replace(&mut self.state, ServerState::Failed)
        else {
            return Err(ScramError::OutOfOrder("exchange already failed"));
        };

        let message = utf8(message)?;
        let (without_proof, proof_attribute) = message
            .rsplit_once(',')
            .ok_or(ScramError::Malformed("missing proof"))?;
        let proof = proof_attribute
            .strip_prefix("p=")
            .ok_or(ScramError::Malformed(
                "the proof must be the last attribute",
            ))?;
        let mut attributes = without_proof.split(',');
        let channel_binding = attributes
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(ScramError::Malformed("missing channel binding attribute"))?;
        let channel_binding = B64
            .decode(channel_binding)
            .map_err(|_| ScramError::Malformed("channel binding is not base64"))?;
        if channel_binding != gs2_header.as_bytes() {
            return Err(ScramError::Malformed(
                "channel binding does not match the GS2 header",
            ));
        }
        let client_nonce = attributes
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("missing nonce"))?;
        // Kafka accepts a nonce that ends with the combined nonce: librdkafka before 2.2
        // (Debian's 2.0.2 among them) sends its own nonce again in front of it. The proof
        // covers the message as the client sent it, so nothing is weakened.
        if !client_nonce.ends_with(nonce.as_str()) {
            return Err(ScramError::Malformed("nonce does not match"));
        }
        for attribute in attributes {
            let (key, _) = split_extension(attribute)?;
            if key == "p" {
                return Err(ScramError::Malformed(
                    "the proof must be the last attribute",
                ));
            }
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        if proof.len() != self.mechanism.digest_len() {
            return Err(ScramError::Malformed("proof has the wrong length"));
        }

        let auth_message = format!("{auth_message_prefix}{without_proof}");
        let client_signature = hmac(
            self.mechanism,
            &credential.stored_key,
            auth_message.as_bytes(),
        );
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if !keys_equal(&hash(self.mechanism, &client_key), &credential.stored_key) {
            return Err(ScramError::InvalidCredentials);
        }
        let server_signature = hmac(
            self.mechanism,
            &credential.server_key,
            auth_message.as_bytes(),
        );
        self.state = ServerState::Complete;
        Ok((
            format!("v={}", B64.encode(server_signature)).into_bytes(),
            username,
        ))
    }
}

enum ClientState {
    /// The client-final-message has not been made yet.
    Initial,
    /// The client-final-message was made; the server's signature is expected.
    FinalSent { server_signature: Vec<u8> },
    /// A step failed.
    Failed,
}

/// The client side of one SCRAM exchange (no authorization identity, no channel binding):
/// [`ScramClient::client_first`], [`ScramClient::client_final`], then
/// [`ScramClient::verify_server_final`].
pub struct ScramClient {
    mechanism: ScramMechanism,
    username: String,
    password: String,
    client_nonce: String,
    state: ClientState,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The GS2 header the client sends: no channel binding, no authorization identity.
const CLIENT_GS2_HEADER: &str = "n,,";

impl ScramClient {
    /// A new exchange with a random client nonce.
    ///
    /// # Panics
    /// If the operating system's random source fails.
    pub fn new(
        mechanism: ScramMechanism,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> ScramClient {
        ScramClient::with_nonce(mechanism, username, password, random_nonce())
    }

    /// A new exchange with a given client nonce (printable ASCII without commas), for tests.
    pub fn with_nonce(
        mechanism: ScramMechanism,
        username: impl Into<String>,
        password: impl Into<String>,
        client_nonce: String,
    ) -> ScramClient {
        ScramClient {
            mechanism,
            username: username.into(),
            password: password.into(),
            client_nonce,
            state: ClientState::Initial,
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    fn client_first_bare(&self) -> String {
        format!(
            "n={},r={}",
            encode_username(&self.username),
            self.client_nonce
        )
    }

    /// The client-first-message `n,,n=<user>,r=<nonce>` (the same on every call).
    pub fn client_first(&self) -> Vec<u8> {
        format!("{CLIENT_GS2_HEADER}{}", self.client_first_bare()).into_bytes()
    }

    /// Takes the server-first-message and returns the client-final-message with the proof.
    /// The server's nonce must extend ours and its iteration count be at least
    /// [`MIN_ITERATIONS`].
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        match self.state {
            ClientState::Initial => {}
            ClientState::FinalSent { .. } => {
                return Err(ScramError::OutOfOrder("client-final already made"))
            }
            ClientState::Failed => return Err(ScramError::OutOfOrder("exchange already failed")),
        }
        self.state = ClientState::Failed;
        let message = utf8(server_first)?;
        if let Some(reason) = message.strip_prefix("e=") {
            return Err(ScramError::ServerError(reason.to_string()));
        }
        let mut attributes = message.split(',');
        let first = attributes.next().unwrap_or_default();
        if first.starts_with("m=") {
            return Err(ScramError::Unsupported("mandatory extension"));
        }
        let nonce = first
            .strip_prefix("r=")
            .ok_or(ScramError::Malformed("missing nonce"))?;
        if !is_valid_nonce(nonce) {
            return Err(ScramError::Malformed("invalid nonce"));
        }
        if nonce.len() <= self.client_nonce.len() || !nonce.starts_with(&self.client_nonce) {
            return Err(ScramError::Malformed(
                "server nonce does not extend the client nonce",
            ));
        }
        let salt = attributes
            .next()
            .and_then(|a| a.strip_prefix("s="))
            .ok_or(ScramError::Malformed("missing salt"))?;
        let salt = B64
            .decode(salt)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        if salt.is_empty() {
            return Err(ScramError::Malformed("empty salt"));
        }
        let iterations = attributes
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .ok_or(ScramError::Malformed("missing iteration count"))?;
        if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ScramError::Malformed("invalid iteration count"));
        }
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| ScramError::Malformed("invalid iteration count"))?;
        if iterations < MIN_ITERATIONS {
            return Err(ScramError::IterationCount(iterations));
        }
        for attribute in attributes {
            split_extension(attribute)?;
        }

        let mechanism = self.mechanism;
        let salted = salted_password(mechanism, self.password.as_bytes(), &salt, iterations);
        let client_key = client_key(mechanism, &salted);
        let stored_key = hash(mechanism, &client_key);
        let server_key = hmac(mechanism, &salted, b"Server Key");
        let without_proof = format!("c={},r={}", B64.encode(CLIENT_GS2_HEADER), nonce);
        let auth_message = format!("{},{},{}", self.client_first_bare(), message, without_proof);
        let client_signature = hmac(mechanism, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        self.state = ClientState::FinalSent {
            server_signature: hmac(mechanism, &server_key, auth_message.as_bytes()),
        };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final-message: `v=` must carry the server signature this exchange
    /// expects; `e=<reason>` is the server refusing.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let ClientState::FinalSent { server_signature } = &self.state else {
            return Err(ScramError::OutOfOrder(
                "server-final before a client-final was made",
            ));
        };
        let message = utf8(server_final)?;
        if let Some(reason) = message.strip_prefix("e=") {
            return Err(ScramError::ServerError(reason.to_string()));
        }
        let verifier = message
            .split(',')
            .next()
            .and_then(|a| a.strip_prefix("v="))
            .ok_or(ScramError::Malformed("missing server signature"))?;
        let verifier = B64
            .decode(verifier)
            .map_err(|_| ScramError::Malformed("server signature is not base64"))?;
        if keys_equal(&verifier, server_signature) {
            Ok(())
        } else {
            Err(ScramError::ServerSignatureMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_encoding_round_trips() {
        assert_eq!(encode_username("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(decode_username("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert_eq!(decode_username("=3D=2C").unwrap(), "=,");
        assert_eq!(decode_username("ünï").unwrap(), "ünï");
        for bad in ["", "a=", "a=2", "a=2c", "a=3d", "a=41", "a=x", "a\0b"] {
            assert!(
                matches!(decode_username(bad), Err(ScramError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn nonce_rules() {
        assert!(is_valid_nonce(
            "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
        ));
        assert!(!is_valid_nonce(""));
        assert!(!is_valid_nonce("a,b"));
        assert!(!is_valid_nonce("a b"));
        assert!(!is_valid_nonce("ab\u{7f}"));
        assert!(!is_valid_nonce("é"));
    }

    #[test]
    fn generated_nonces_are_printable_and_distinct() {
        let a = random_nonce();
        let b = random_nonce();
        assert_eq!(a.len(), 32);
        assert!(is_valid_nonce(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn keys_equal_compares_content_and_length() {
        assert!(keys_equal(b"abc", b"abc"));
        assert!(!keys_equal(b"abc", b"abd"));
        assert!(!keys_equal(b"abc", b"abcd"));
        assert!(keys_equal(b"", b""));
    }

    #[test]
    fn gs2_header_is_split_exactly() {
        let first = parse_client_first("n,a=bob,n=bob,r=abc,ext=1").unwrap();
        assert_eq!(first.gs2_header, "n,a=bob,");
        assert_eq!(first.bare, "n=bob,r=abc,ext=1");
        assert_eq!(first.username, "bob");
        assert_eq!(first.nonce, "abc");
        let first = parse_client_first("y,,n=x,r=n").unwrap();
        assert_eq!(first.gs2_header, "y,,");
        assert_eq!(first.bare, "n=x,r=n");
    }
}
