//! One connection's security state: which listener it came in on, who it is (its
//! principal) and where it is in SASL authentication. Pure: the connection loop and the
//! SaslHandshake / SaslAuthenticate handlers drive it, with the metadata image for
//! credentials and a clock passed in.
//!
//! On a SASL listener a connection starts unauthenticated: it may send ApiVersions and
//! SaslHandshake, then its tokens (SaslAuthenticate, or raw length-prefixed tokens after
//! SaslHandshake v0), and nothing else; its frames are capped at
//! [`SASL_MAX_RECEIVE_SIZE`]. PLAIN and SCRAM check one credential store (the salted SCRAM
//! credentials in the metadata). With `connections.max.reauth.ms` a session expires: the
//! client re-authenticates on the same connection (KIP-368) as the same principal, and a
//! request other than ApiVersions, SaslHandshake or SaslAuthenticate after expiry closes
//! the connection.
//!
//! On PLAINTEXT and SSL listeners a connection is authenticated from the start, as
//! `User:ANONYMOUS` or as its verified client certificate's subject.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironlog_metadata::{MetadataImage, ScramMechanism};
use ironlog_protocol::ApiKey;
use ironlog_security::principal::KafkaPrincipal;
use ironlog_security::scram::ScramServer;

use crate::config::security::{ListenerConfig, SASL_MAX_RECEIVE_SIZE};

/// One connection's security state.
pub struct Session {
    pub listener: Arc<ListenerConfig>,
    pub peer: SocketAddr,
    /// `None` until a SASL connection authenticates.
    principal: Option<KafkaPrincipal>,
    state: AuthState,
    /// When the SASL session ends (KIP-368); `None`: never.
    expires_at: Option<Instant>,
    /// The mechanism the session authenticated with (re-authentication must keep it).
    mechanism: Option<String>,
    /// Set when the response being written is the last one (a failed authentication).
    close_reason: Option<String>,
    /// A quota throttle: no request of this connection is read before then (KIP-219).
    muted_until: Option<Instant>,
}

enum AuthState {
    Authenticated,
    /// Waiting for SaslHandshake.
    Handshake,
    /// SaslHandshake chose `mechanism`; waiting for its first token. `raw`: SaslHandshake
    /// v0, tokens come as bare length-prefixed frames.
    FirstToken {
        mechanism: String,
        raw: bool,
    },
    /// A SCRAM exchange waiting for the client's final message.
    ScramFinal {
        server: Box<ScramServer>,
        mechanism: String,
        raw: bool,
    },
}

/// What a SASL token step answers.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenStep {
    /// More to come: send this challenge.
    Challenge(Vec<u8>),
    /// Authenticated: send this last token; the session lasts `lifetime` (None: no limit).
    Authenticated {
        token: Vec<u8>,
        lifetime: Option<Duration>,
    },
}

/// Why authentication failed. The message is what the client is told: it never says
/// whether the user exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthFailure {
    pub message: String,
    /// For the broker's log only.
    pub detail: String,
}

/// Why SaslHandshake was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// Not an enabled mechanism (UNSUPPORTED_SASL_MECHANISM).
    Unsupported,
    /// Not expected now: mid-exchange, or on a listener without SASL (ILLEGAL_SASL_STATE).
    IllegalState(String),
}

impl Session {
    /// A new connection on `listener`, with its TLS client certificate's principal if it
    /// presented one.
    pub fn new(
        listener: Arc<ListenerConfig>,
        peer: SocketAddr,
        certificate: Option<KafkaPrincipal>,
    ) -> Session {
        let sasl = listener.protocol.is_sasl();
        Session {
            principal: if sasl {
                None
            } else {
                Some(certificate.unwrap_or_else(anonymous))
            },
            state: if sasl {
                AuthState::Handshake
            } else {
                AuthState::Authenticated
            },
            listener,
            peer,
            expires_at: None,
            mechanism: None,
            close_reason: None,
            muted_until: None,
        }
    }

    /// The connection's principal (`User:ANONYMOUS` before SASL authentication).
    pub fn principal(&self) -> KafkaPrincipal {
        self.principal.clone().unwrap_or_else(anonymous)
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, AuthState::Authenticated)
    }

    /// The largest frame accepted now: `configured`, or Kafka's small SASL limit before
    /// a SASL connection has authenticated.
    pub fn max_frame(&self, configured: usize) -> usize {
        if self.principal.is_none() {
            configured.min(SASL_MAX_RECEIVE_SIZE)
        } else {
            configured
        }
    }

    /// Whether the next frame is a bare SASL token (after SaslHandshake v0).
    pub fn expects_raw_token(&self) -> bool {
        matches!(
            self.state,
            AuthState::FirstToken { raw: true, .. } | AuthState::ScramFinal { raw: true, .. }
        )
    }

    /// Whether a request for `api` may be handled now; the error closes the connection.
    pub fn admits(&self, api: ApiKey, now: Instant) -> Result<(), String> {
        let auth_api = matches!(
            api,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        );
        if auth_api {
            return Ok(());
        }
        match &self.state {
            AuthState::Authenticated => match self.expires_at {
                Some(at) if now >= at => Err(format!(
                    "{api:?} after the SASL session of {} expired (connections.max.reauth.ms); the client must re-authenticate",
                    self.principal()
                )),
                _ => Ok(()),
            },
            _ => Err(format!(
                "{api:?} before SASL authentication completed (only ApiVersions, SaslHandshake and SaslAuthenticate are allowed)"
            )),
        }
    }

    /// SaslHandshake for `mechanism` with request version `version`.
    pub fn handshake(
        &mut self,
        mechanism: &str,
        version: i16,
        enabled: &[String],
    ) -> Result<(), HandshakeError> {
        if !self.listener.protocol.is_sasl() {
            return Err(HandshakeError::IllegalState(format!(
                "listener {} is {}, not SASL",
                self.listener.name,
                self.listener.protocol.name()
            )));
        }
        match &self.state {
            AuthState::Handshake => {}
            // KIP-368: an authenticated client starts over on the same connection.
            AuthState::Authenticated if version >= 1 => {}
            AuthState::Authenticated => {
                return Err(HandshakeError::IllegalState(
                    "re-authentication needs SaslHandshake v1".into(),
                ))
            }
            _ => {
                return Err(HandshakeError::IllegalState(
                    "SaslHandshake in the middle of an authentication".into(),
                ))
            }
        }
        if !enabled.iter().any(|m| m == mechanism) {
            return Err(HandshakeError::Unsupported);
        }
        if let Some(previous) = &self.mechanism {
            if previous != mechanism {
                return Err(HandshakeError::IllegalState(format!(
                    "re-authentication must use {previous}, the session's mechanism"
                )));
            }
        }
        self.state = AuthState::FirstToken {
            mechanism: mechanism.to_string(),
            raw: version == 0,
        };
        Ok(())
    }

    /// One SASL token from the client. A failure ends the connection after its response.
    pub fn token(
        &mut self,
        token: &[u8],
        image: &MetadataImage,
        reauth_ms: u64,
        now: Instant,
    ) -> Result<TokenStep, AuthFailure> {
        match std::mem::replace(&mut self.state, AuthState::Handshake) {
            AuthState::FirstToken { mechanism, raw } => {
                if mechanism == "PLAIN" {
                    let message = ironlog_security::plain::parse(token).map_err(|e| {
                        failure(&mechanism, format!("malformed PLAIN message: {e}"))
                    })?;
                    let user = message.username.clone();
                    let ok = ironlog_security::plain::verify_password(
                        image.scram_credentials(&user),
                        &message.password,
                    );
                    if !ok {
                        return Err(failure(
                            &mechanism,
                            format!("PLAIN: user {user:?} unknown or wrong password"),
                        ));
                    }
                    return self.authenticated(user, mechanism, Vec::new(), reauth_ms, now);
                }
                let scram = ScramMechanism::from_sasl_name(&mechanism)
                    .ok_or_else(|| failure(&mechanism, "no such mechanism".into()))?;
                let mut server = Box::new(ScramServer::new(scram));
                let challenge = server
                    .client_first(token, |user| image.scram_credential(user, scram).cloned())
                    .map_err(|e| failure(&mechanism, format!("{e}")))?;
                self.state = AuthState::ScramFinal {
                    server,
                    mechanism,
                    raw,
                };
                Ok(TokenStep::Challenge(challenge))
            }
            AuthState::ScramFinal {
                mut server,
                mechanism,
                ..
            } => {
                let (last, user) = server
                    .client_final(token)
                    .map_err(|e| failure(&mechanism, format!("{e}")))?;
                self.authenticated(user, mechanism, last, reauth_ms, now)
            }
            other => {
                self.state = other;
                Err(AuthFailure {
                    message: "SaslAuthenticate before SaslHandshake".into(),
                    detail: "token out of order".into(),
                })
            }
        }
    }

    fn authenticated(
        &mut self,
        user: String,
        mechanism: String,
        token: Vec<u8>,
        reauth_ms: u64,
        now: Instant,
    ) -> Result<TokenStep, AuthFailure> {
        let principal = KafkaPrincipal::user(&user);
        if let Some(previous) = &self.principal {
            if *previous != principal {
                return Err(AuthFailure {
                    message: format!(
                        "re-authentication as {principal} on a connection of {previous}: the principal cannot change"
                    ),
                    detail: "principal changed at re-authentication".into(),
                });
            }
        }
        self.principal = Some(principal);
        self.mechanism = Some(mechanism);
        self.state = AuthState::Authenticated;
        let lifetime = (reauth_ms > 0).then(|| Duration::from_millis(reauth_ms));
        self.expires_at = lifetime.map(|l| now + l);
        Ok(TokenStep::Authenticated { token, lifetime })
    }

    /// The principal's name for quotas (`alice` for `User:alice`).
    pub fn quota_user(&self) -> String {
        self.principal().name
    }

    /// Mutes the connection for `throttle` from `now` (a longer mute already set stays).
    pub fn throttle(&mut self, throttle: Duration, now: Instant) {
        if throttle.is_zero() {
            return;
        }
        let until = now + throttle;
        if self.muted_until.is_none_or(|u| u < until) {
            self.muted_until = Some(until);
        }
    }

    /// Until when the connection is muted, if it still is at `now`.
    pub fn muted_until(&mut self, now: Instant) -> Option<Instant> {
        match self.muted_until {
            Some(until) if until > now => Some(until),
            _ => {
                self.muted_until = None;
                None
            }
        }
    }

    /// Marks the connection to close once the current response is written.
    pub fn close_after_response(&mut self, reason: String) {
        self.close_reason = Some(reason);
    }

    /// Why the connection closes after the response just written, if it does.
    pub fn take_close_reason(&mut self) -> Option<String> {
        self.close_reason.take()
    }
}

fn anonymous() -> KafkaPrincipal {
    KafkaPrincipal::user("ANONYMOUS")
}

fn failure(mechanism: &str, detail: String) -> AuthFailure {
    AuthFailure {
        message: format!(
            "Authentication failed: invalid credentials with SASL mechanism {mechanism}"
        ),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::security::SecurityProtocol;
    use ironlog_security::scram::{new_credential, ScramClient};

    fn listener(protocol: SecurityProtocol) -> Arc<ListenerConfig> {
        Arc::new(ListenerConfig {
            name: protocol.name().into(),
            protocol,
            bind: "127.0.0.1:0".parse().unwrap(),
            advertised_host: "localhost".into(),
            advertised_port: 9092,
        })
    }

    fn image_with(user: &str, password: &str) -> MetadataImage {
        let mut image = MetadataImage::new("c".into());
        for m in ScramMechanism::ALL {
            let credential = new_credential(m, password, 4096);
            let result = image.apply(&ironlog_metadata::MetadataCommand::UpsertScramCredential {
                user: user.into(),
                credential,
            });
            assert!(!matches!(
                result,
                ironlog_metadata::CommandResult::Rejected(_)
            ));
        }
        image
    }

    fn enabled() -> Vec<String> {
        vec![
            "PLAIN".into(),
            "SCRAM-SHA-512".into(),
            "SCRAM-SHA-256".into(),
        ]
    }

    fn sasl_session() -> Session {
        Session::new(
            listener(SecurityProtocol::SaslSsl),
            "127.0.0.1:1".parse().unwrap(),
            None,
        )
    }

    #[test]
    fn plaintext_and_ssl_are_authenticated_from_the_start() {
        let now = Instant::now();
        let s = Session::new(
            listener(SecurityProtocol::Plaintext),
            "127.0.0.1:1".parse().unwrap(),
            None,
        );
        assert!(s.admits(ApiKey::Produce, now).is_ok());
        assert_eq!(s.principal().to_string(), "User:ANONYMOUS");
        assert_eq!(s.max_frame(100 << 20), 100 << 20);
        let s = Session::new(
            listener(SecurityProtocol::Ssl),
            "127.0.0.1:1".parse().unwrap(),
            Some(KafkaPrincipal::user("CN=client,O=Org")),
        );
        assert_eq!(s.principal().to_string(), "User:CN=client,O=Org");
    }

    #[test]
    fn a_sasl_connection_may_only_authenticate_until_it_has() {
        let now = Instant::now();
        let mut s = sasl_session();
        assert!(s.admits(ApiKey::ApiVersions, now).is_ok());
        assert!(s.admits(ApiKey::SaslHandshake, now).is_ok());
        let refused = s.admits(ApiKey::Metadata, now).unwrap_err();
        assert!(refused.contains("before SASL authentication"), "{refused}");
        assert_eq!(s.max_frame(100 << 20), SASL_MAX_RECEIVE_SIZE);
        assert_eq!(
            s.handshake("GSSAPI", 1, &enabled()),
            Err(HandshakeError::Unsupported)
        );
        s.handshake("PLAIN", 1, &enabled()).unwrap();
        let image = image_with("alice", "secret");
        let step = s.token(b"\0alice\0secret", &image, 0, now).unwrap();
        assert_eq!(
            step,
            TokenStep::Authenticated {
                token: vec![],
                lifetime: None
            }
        );
        assert!(s.admits(ApiKey::Metadata, now).is_ok());
        assert_eq!(s.principal().to_string(), "User:alice");
        assert_eq!(s.max_frame(100 << 20), 100 << 20);
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_alike() {
        let now = Instant::now();
        let image = image_with("alice", "secret");
        let mut a = sasl_session();
        a.handshake("PLAIN", 1, &enabled()).unwrap();
        let wrong = a.token(b"\0alice\0nope", &image, 0, now).unwrap_err();
        let mut b = sasl_session();
        b.handshake("PLAIN", 1, &enabled()).unwrap();
        let unknown = b.token(b"\0mallory\0secret", &image, 0, now).unwrap_err();
        assert_eq!(wrong.message, unknown.message);
        assert!(!a.is_authenticated());
    }

    #[test]
    fn scram_exchange_and_reauthentication() {
        let start = Instant::now();
        let image = image_with("alice", "secret");
        let mut s = sasl_session();
        s.handshake("SCRAM-SHA-512", 0, &enabled()).unwrap();
        assert!(s.expects_raw_token());
        let mut client = ScramClient::new(ScramMechanism::Sha512, "alice", "secret");
        let TokenStep::Challenge(first) = s
            .token(&client.client_first(), &image, 60_000, start)
            .unwrap()
        else {
            panic!("expected a challenge")
        };
        let last = client.client_final(&first).unwrap();
        let TokenStep::Authenticated { token, lifetime } =
            s.token(&last, &image, 60_000, start).unwrap()
        else {
            panic!("expected authentication")
        };
        client.verify_server_final(&token).unwrap();
        assert_eq!(lifetime, Some(Duration::from_secs(60)));
        assert!(s.admits(ApiKey::Fetch, start).is_ok());
        let later = start + Duration::from_secs(61);
        assert!(s.admits(ApiKey::Fetch, later).is_err());
        // Re-authenticating as someone else fails; as the same user it renews the session.
        assert!(matches!(
            s.handshake("SCRAM-SHA-512", 0, &enabled()),
            Err(HandshakeError::IllegalState(_))
        ));
        s.handshake("SCRAM-SHA-512", 1, &enabled()).unwrap();
        let mut client = ScramClient::new(ScramMechanism::Sha512, "alice", "secret");
        let TokenStep::Challenge(first) = s
            .token(&client.client_first(), &image, 60_000, later)
            .unwrap()
        else {
            panic!("expected a challenge")
        };
        let last = client.client_final(&first).unwrap();
        s.token(&last, &image, 60_000, later).unwrap();
        assert!(s.admits(ApiKey::Fetch, later).is_ok());
    }

    #[test]
    fn reauthentication_cannot_change_the_principal() {
        let now = Instant::now();
        let mut image = image_with("alice", "secret");
        let bob = new_credential(ScramMechanism::Sha256, "pw", 4096);
        image.apply(&ironlog_metadata::MetadataCommand::UpsertScramCredential {
            user: "bob".into(),
            credential: bob,
        });
        let mut s = sasl_session();
        s.handshake("PLAIN", 1, &enabled()).unwrap();
        s.token(b"\0alice\0secret", &image, 0, now).unwrap();
        s.handshake("PLAIN", 1, &enabled()).unwrap();
        let e = s.token(b"\0bob\0pw", &image, 0, now).unwrap_err();
        assert!(e.message.contains("cannot change"), "{}", e.message);
    }
}
