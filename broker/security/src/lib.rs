//! Ironlog's authentication primitives: the SASL mechanisms SCRAM-SHA-256, SCRAM-SHA-512 and
//! PLAIN, and Kafka principals (including the default principal of a TLS client
//! certificate). The broker's network layer drives these; this crate only computes.
//!
//! # SCRAM
//!
//! [`ScramServer`] is the broker's side of one exchange (RFC 5802 with the hashes of
//! RFC 7677, as Kafka uses it), in two explicit steps:
//!
//! 1. [`ScramServer::client_first`] takes `n,,n=<user>,r=<client nonce>`, looks the user's
//!    credential up, and answers `r=<client nonce><server nonce>,s=<salt>,i=<iterations>`.
//! 2. [`ScramServer::client_final`] takes `c=<GS2 header>,r=<nonce>,p=<proof>`, checks the
//!    proof against the stored key in constant time, and answers `v=<server signature>`
//!    with the authenticated username.
//!
//! Any failure ends the exchange; steps out of order are errors, never panics. Channel
//! binding, delegation tokens (`tokenauth=true`) and authorization identities other than
//! the username are refused. [`ScramClient`] is the other side, for tools and tests.
//!
//! The credential store holds, per user and mechanism, only a [`ScramCredential`]: the salt,
//! the iteration count, `StoredKey = H(HMAC(SaltedPassword, "Client Key"))` and
//! `ServerKey = HMAC(SaltedPassword, "Server Key")`, where `SaltedPassword` is PBKDF2 of the
//! password ([`salted_password`]). Neither the password nor the salted password is stored;
//! [`credential_from_salted_password`] turns the salted password an AlterUserScramCredentials
//! request carries into a credential, [`new_credential`] makes one from a password.
//!
//! # PLAIN
//!
//! [`plain::parse`] reads `[authzid] NUL user NUL password` (the authzid must be empty or the
//! user). [`plain::verify_password`] accepts the password when it matches any of the user's
//! SCRAM credentials, so PLAIN and SCRAM share one salted credential store.
//!
//! # Principals
//!
//! A [`KafkaPrincipal`] prints and parses as `Type:name` (`User:alice`); unauthenticated
//! connections are [`ANONYMOUS`] (`User:ANONYMOUS`). [`from_certificate_der`] gives Kafka's
//! default TLS principal: `User:` and the certificate subject as Java's
//! `X500Principal.getName()` prints it, e.g. `User:CN=client,O=Org,C=US`.
//!
//! # Invariants
//!
//! * No I/O: no sockets, files or clocks; randomness only from the operating system's
//!   generator (salts and nonces).
//! * Secrets (passwords, salted passwords, keys, proofs) are never logged, never part of an
//!   error's text and never shown by `Debug`.
//! * Keys and signatures are compared in constant time.
//! * Cryptography comes from `ring` only.

pub mod plain;
pub mod principal;
pub mod protocol;
pub mod scram;

pub use ironlog_metadata::{ScramCredential, ScramMechanism};
pub use plain::{PlainError, PlainMessage};
pub use principal::{
    from_certificate_der, subject_rfc2253, KafkaPrincipal, PrincipalError, ANONYMOUS,
};
pub use protocol::SecurityProtocol;
pub use scram::{
    credential_from_salted_password, new_credential, salted_password, ScramClient, ScramError,
    ScramServer, MAX_ITERATIONS, MIN_ITERATIONS,
};
