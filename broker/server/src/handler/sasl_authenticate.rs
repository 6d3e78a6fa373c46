//! SaslAuthenticate (key 36): one SASL token each way, checked by the connection's
//! [`Session`] against the credentials in the metadata. A failure answers
//! SASL_AUTHENTICATION_FAILED with a message that doesn't say whether the user exists, then
//! closes the connection. v1+ tells the client how long its session lasts
//! (`session_lifetime_ms`, KIP-368). [`raw_token`] serves the same exchange after
//! SaslHandshake v0, where tokens travel as bare length-prefixed frames.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use ironlog_protocol::kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse,
};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::broker::Broker;
use crate::net::session::{AuthFailure, Session, TokenStep};

const API: &str = "SaslAuthenticate";

pub fn handle(
    broker: &Arc<Broker>,
    session: &mut Session,
    request: SaslAuthenticateRequest,
    _version: i16,
) -> SaslAuthenticateResponse {
    match step(broker, session, &request.auth_bytes) {
        Ok((token, lifetime_ms)) => SaslAuthenticateResponse::default()
            .with_auth_bytes(Bytes::from(token))
            .with_session_lifetime_ms(lifetime_ms),
        Err(failure) => {
            session.close_after_response(format!("SASL authentication failed: {}", failure.detail));
            SaslAuthenticateResponse::default()
                .with_error_code(error_code(
                    broker,
                    API,
                    Some(ResponseError::SaslAuthenticationFailed),
                ))
                .with_error_message(Some(str_bytes(failure.message)))
        }
    }
}

/// A bare token after SaslHandshake v0: answered with a bare length-prefixed token. A
/// failure closes the connection without an answer (there is no error field).
pub fn raw_token(
    broker: &Arc<Broker>,
    session: &mut Session,
    token: &[u8],
) -> Result<Bytes, String> {
    match step(broker, session, token) {
        Ok((token, _)) => {
            let mut out = BytesMut::with_capacity(4 + token.len());
            out.put_i32(token.len() as i32);
            out.put_slice(&token);
            Ok(out.freeze())
        }
        Err(failure) => {
            broker
                .metrics
                .record_error(API, ResponseError::SaslAuthenticationFailed);
            Err(format!("SASL authentication failed: {}", failure.detail))
        }
    }
}

/// The session's next step; the token to send and the session lifetime (0: none or not
/// done yet).
fn step(
    broker: &Arc<Broker>,
    session: &mut Session,
    token: &[u8],
) -> Result<(Vec<u8>, i64), AuthFailure> {
    let image = broker.replicas.metadata();
    let reauth_ms = broker.config.security.connections_max_reauth_ms;
    match session.token(token, &image, reauth_ms, std::time::Instant::now())? {
        TokenStep::Challenge(challenge) => Ok((challenge, 0)),
        TokenStep::Authenticated { token, lifetime } => {
            tracing::debug!(peer = %session.peer, principal = %session.principal(),
                listener = %session.listener.name, "SASL authentication succeeded");
            let lifetime_ms =
                lifetime.map_or(0, |l| i64::try_from(l.as_millis()).unwrap_or(i64::MAX));
            Ok((token, lifetime_ms))
        }
    }
}
