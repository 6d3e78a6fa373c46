//! SaslHandshake (key 17): the client names its SASL mechanism. v0 means its tokens follow
//! as bare length-prefixed frames, v1 that they come in SaslAuthenticate requests. Also
//! starts a re-authentication (KIP-368) on an authenticated connection (v1). An unknown
//! mechanism answers UNSUPPORTED_SASL_MECHANISM with the enabled ones, a handshake out of
//! turn ILLEGAL_SASL_STATE; both then close the connection, as Kafka does.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::broker::Broker;
use crate::net::session::{HandshakeError, Session};

const API: &str = "SaslHandshake";

pub fn handle(
    broker: &Arc<Broker>,
    session: &mut Session,
    request: SaslHandshakeRequest,
    version: i16,
) -> SaslHandshakeResponse {
    let enabled = &broker.config.security.sasl_mechanisms;
    let mechanism = request.mechanism.as_str();
    let error = match session.handshake(mechanism, version, enabled) {
        Ok(()) => None,
        Err(HandshakeError::Unsupported) => {
            session.close_after_response(format!(
                "SASL mechanism {mechanism:?} is not enabled (enabled: {})",
                enabled.join(", ")
            ));
            Some(ResponseError::UnsupportedSaslMechanism)
        }
        Err(HandshakeError::IllegalState(why)) => {
            session.close_after_response(format!("SaslHandshake refused: {why}"));
            Some(ResponseError::IllegalSaslState)
        }
    };
    SaslHandshakeResponse::default()
        .with_error_code(error_code(broker, API, error))
        .with_mechanisms(enabled.iter().map(|m| str_bytes(m.clone())).collect())
}
