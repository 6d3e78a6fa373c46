//! Request header decoding.
//!
//! A request frame is `[api_key: i16][api_version: i16][correlation_id: i32][client_id]
//! [tagged fields, header v2 only][body]`. The first eight bytes have the same layout in every
//! header version, which is what lets a broker answer a request whose version it doesn't
//! know: ApiVersions with an unsupported version must still get an UNSUPPORTED_VERSION
//! answer (in version 0) so the client can fall back.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use crate::{schema, versions};

/// Why a request could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("request frame of {len} bytes is shorter than a request header")]
    TooShort { len: usize },
    #[error("unknown API key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    #[error("{api:?} version {version} is not supported (correlation id {correlation_id})")]
    UnsupportedVersion {
        api: ApiKey,
        version: i16,
        correlation_id: i32,
    },
    #[error("malformed {api:?} v{version} request (correlation id {correlation_id}): {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        reason: String,
    },
}

/// A request whose header has been decoded; the body is still bytes.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub api: ApiKey,
    pub header: RequestHeader,
    pub body: Bytes,
}

/// The fixed first eight bytes of any request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Reads the fixed part of a request header without consuming the frame.
pub fn peek_prefix(frame: &[u8]) -> Result<HeaderPrefix, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::TooShort { len: frame.len() });
    }
    let mut b = &frame[..8];
    Ok(HeaderPrefix {
        api_key: b.get_i16(),
        api_version: b.get_i16(),
        correlation_id: b.get_i32(),
    })
}

/// Decodes the request header of `frame` and checks the API version is served.
pub fn decode_header(mut frame: Bytes) -> Result<RawRequest, DecodeError> {
    let prefix = peek_prefix(&frame)?;
    let api = ApiKey::try_from(prefix.api_key).map_err(|()| DecodeError::UnknownApiKey {
        api_key: prefix.api_key,
        correlation_id: prefix.correlation_id,
    })?;
    if !versions::is_supported(api, prefix.api_version) {
        return Err(DecodeError::UnsupportedVersion {
            api,
            version: prefix.api_version,
            correlation_id: prefix.correlation_id,
        });
    }
    let header_version = api.request_header_version(prefix.api_version);
    let malformed = |reason: String| DecodeError::Malformed {
        api,
        version: prefix.api_version,
        correlation_id: prefix.correlation_id,
        reason,
    };
    schema::check(
        &schema::tables::request_header::REQUEST_HEADER,
        header_version,
        &frame,
    )
    .map_err(|e| malformed(format!("header: {e}")))?;
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| malformed(format!("header: {e:#}")))?;
    Ok(RawRequest {
        api,
        header,
        body: frame,
    })
}

impl RawRequest {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }

    /// Decodes the body as the message type of this request's API (a
    /// [`legacy`](crate::legacy) version as the version it is read as, see
    /// [`legacy::effective_version`](crate::legacy::effective_version)).
    ///
    /// Bytes left after the body are ignored, as Kafka does: some clients send them
    /// (librdkafka 2.x appends stray bytes to Metadata v12+ "all topics" requests), and those
    /// clients work against Kafka only because it reads the body and stops there.
    ///
    /// Every length and count in the body is checked against the bytes present first
    /// ([`schema::check`]), so a hostile prefix is a [`DecodeError::Malformed`], never an
    /// allocation the frame can't pay for.
    pub fn decode_body(&self) -> Result<RequestKind, DecodeError> {
        let malformed = |reason: String| DecodeError::Malformed {
            api: self.api,
            version: self.version(),
            correlation_id: self.correlation_id(),
            reason,
        };
        if crate::legacy::is_legacy(self.api, self.version()) {
            return crate::legacy::decode(self.api, self.version(), &self.body).map_err(malformed);
        }
        let layout = schema::request_layout(self.api)
            .ok_or_else(|| malformed(schema::Reason::NoLayout.to_string()))?;
        schema::check(layout, self.version(), &self.body).map_err(|e| malformed(e.to_string()))?;
        let mut body = self.body.clone();
        RequestKind::decode(self.api, &mut body, self.version())
            .map_err(|e| malformed(format!("{e:#}")))
    }
}
