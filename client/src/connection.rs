//! One TCP connection to one broker: framing, correlation ids and API version negotiation.
//!
//! Requests on a connection are strictly sequential (send, then read the answer), so a
//! response always belongs to the request just sent; the correlation id is still checked to
//! catch a confused stream early. After an I/O error or a timeout the stream position is
//! unknown, so the connection marks itself broken and refuses further requests.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Request, StrBytes, VersionRange,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{ClientError, UNSUPPORTED_VERSION};

/// Responses larger than this are refused rather than allocated: a garbage size prefix
/// (for example from talking to something that is not Kafka) must not exhaust memory.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// The ApiVersions version we try first; older brokers answer UNSUPPORTED_VERSION and we
/// fall back to v0, which every broker understands.
const API_VERSIONS_FIRST_TRY: i16 = 3;

/// The range of versions a broker advertises for one API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersionRange {
    pub min: i16,
    pub max: i16,
}

/// Picks the highest version both sides support: the intersection of the broker's advertised
/// range and the range the client library can encode. `None` when the broker does not offer
/// the API or the ranges do not overlap.
pub fn select_version(broker: Option<ApiVersionRange>, client: VersionRange) -> Option<i16> {
    let broker = broker?;
    let min = broker.min.max(client.min);
    let max = broker.max.min(client.max);
    (min <= max).then_some(max)
}

/// The API name of a request type, e.g. `"CreateTopics"` for `CreateTopicsRequest`.
pub fn api_name<R: Request>() -> &'static str {
    let full = std::any::type_name::<R>();
    let short = full.rsplit("::").next().unwrap_or(full);
    short.strip_suffix("Request").unwrap_or(short)
}

/// A connection to one broker with negotiated API versions.
#[derive(Debug)]
pub struct Connection {
    broker: String,
    stream: TcpStream,
    client_id: StrBytes,
    next_correlation_id: i32,
    request_timeout: Duration,
    versions: BTreeMap<i16, ApiVersionRange>,
    broken: bool,
}

impl Connection {
    /// Connects to `broker` (`host:port`) and negotiates API versions.
    ///
    /// # Errors
    /// [`ClientError::Connect`] when the TCP connection fails or does not complete within
    /// `timeout`; any request error from the ApiVersions exchange.
    pub async fn connect(
        broker: &str,
        client_id: &str,
        timeout: Duration,
    ) -> Result<Connection, ClientError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(broker)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(ClientError::Connect {
                    broker: broker.to_owned(),
                    source,
                })
            }
            Err(_) => {
                return Err(ClientError::Connect {
                    broker: broker.to_owned(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("connect timed out after {timeout:?}"),
                    ),
                })
            }
        };
        // Requests are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let mut connection = Connection {
            broker: broker.to_owned(),
            stream,
            client_id: StrBytes::from_string(client_id.to_owned()),
            next_correlation_id: 0,
            request_timeout: timeout,
            versions: BTreeMap::new(),
            broken: false,
        };
        connection.negotiate_versions().await?;
        Ok(connection)
    }

    /// The `host:port` this connection talks to.
    pub fn broker(&self) -> &str {
        &self.broker
    }

    /// The API version ranges the broker advertised, by API key.
    pub fn broker_versions(&self) -> &BTreeMap<i16, ApiVersionRange> {
        &self.versions
    }

    /// Whether an earlier I/O error or timeout left the stream in an unknown state.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The version that will be used for `R`.
    ///
    /// # Errors
    /// [`ClientError::UnsupportedApi`] when the broker does not offer `R` in any version the
    /// client can encode.
    pub fn version_for<R: Request>(&self) -> Result<i16, ClientError> {
        select_version(self.versions.get(&R::KEY).copied(), R::VERSIONS).ok_or_else(|| {
            ClientError::UnsupportedApi {
                api: api_name::<R>(),
                broker: self.broker.clone(),
            }
        })
    }

    /// Sends `request` with the negotiated version and the default request timeout.
    pub async fn send<R: Request>(&mut self, request: &R) -> Result<R::Response, ClientError> {
        let version = self.version_for::<R>()?;
        self.send_with(request, version, self.request_timeout).await
    }

    /// Sends `request` with an explicit version and timeout and decodes the response.
    pub async fn send_with<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        let mut body = self.round_trip(request, version, timeout, true).await?;
        let response = R::Response::decode(&mut body, version).map_err(|e| {
            ClientError::protocol(
                format!(
                    "{} v{version} response from {}",
                    api_name::<R>(),
                    self.broker
                ),
                e,
            )
        })?;
        Ok(response)
    }

    /// Sends `request` without waiting for a response: only for Produce with `acks=0`,
    /// to which brokers never answer.
    pub async fn send_without_response<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.round_trip(request, version, timeout, false).await?;
        Ok(())
    }

    async fn negotiate_versions(&mut self) -> Result<(), ClientError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("ironlog-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let timeout = self.request_timeout;
        let mut version = API_VERSIONS_FIRST_TRY;
        let mut body = self.round_trip(&request, version, timeout, true).await?;
        // The error code is the first field in every ApiVersions response version. A broker
        // that does not know our version answers in v0 with UNSUPPORTED_VERSION.
        if body.len() >= 2 && (&body[..2]).get_i16() == UNSUPPORTED_VERSION {
            version = 0;
            body = self.round_trip(&request, version, timeout, true).await?;
        }
        let response = ApiVersionsResponse::decode(&mut body, version).map_err(|e| {
            ClientError::protocol(
                format!("ApiVersions v{version} response from {}", self.broker),
                e,
            )
        })?;
        crate::error::check(response.error_code, None, || {
            format!("ApiVersions request to {}", self.broker)
        })?;
        self.versions = response
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    ApiVersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect();
        Ok(())
    }

    /// Writes one request and, when `expect_response`, reads the matching response and
    /// returns its body after the response header.
    async fn round_trip<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
        expect_response: bool,
    ) -> Result<Bytes, ClientError> {
        let api = api_name::<R>();
        if self.broken {
            return Err(ClientError::Io {
                broker: self.broker.clone(),
                api,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "connection was closed after an earlier error",
                ),
            });
        }
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_request(request, version, correlation_id, &self.client_id)?;

        let exchange = async {
            self.stream.write_all(&frame).await?;
            if !expect_response {
                return Ok(Bytes::new());
            }
            let size = self.stream.read_i32().await?;
            let size = usize::try_from(size)
                .ok()
                .filter(|s| *s <= MAX_RESPONSE_BYTES)
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("implausible response size {size}"),
                    )
                })?;
            let mut body = BytesMut::zeroed(size);
            self.stream.read_exact(&mut body).await?;
            Ok::<Bytes, std::io::Error>(body.freeze())
        };
        let body = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(body)) => body,
            Ok(Err(source)) => {
                self.broken = true;
                return Err(ClientError::Io {
                    broker: self.broker.clone(),
                    api,
                    source,
                });
            }
            Err(_) => {
                self.broken = true;
                return Err(ClientError::Timeout {
                    broker: self.broker.clone(),
                    api,
                    timeout,
                });
            }
        };
        if !expect_response {
            return Ok(body);
        }
        decode_response_header::<R>(body, version, correlation_id).inspect_err(|_| {
            self.broken = true;
        })
    }
}

/// Encodes a size-prefixed request frame.
pub(crate) fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
) -> Result<Bytes, ClientError> {
    let api = api_name::<R>();
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let mut buf = BytesMut::new();
    buf.put_i32(0); // size, filled in below
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| ClientError::protocol(format!("{api} v{version} request header"), e))?;
    request
        .encode(&mut buf, version)
        .map_err(|e| ClientError::protocol(format!("{api} v{version} request"), e))?;
    let size = i32::try_from(buf.len() - 4)
        .map_err(|_| ClientError::protocol(format!("{api} request"), "request too large"))?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// Strips the response header from `body`, checking the correlation id.
pub(crate) fn decode_response_header<R: Request>(
    mut body: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<Bytes, ClientError> {
    let api = api_name::<R>();
    // ApiVersions responses always use header v0, even for flexible versions, so that a
    // client can parse the answer before it knows which versions the broker speaks.
    let header_version = if R::KEY == ApiKey::ApiVersions as i16 {
        0
    } else {
        R::Response::header_version(version)
    };
    let header = ResponseHeader::decode(&mut body, header_version)
        .map_err(|e| ClientError::protocol(format!("{api} v{version} response header"), e))?;
    if header.correlation_id != correlation_id {
        return Err(ClientError::protocol(
            format!("{api} v{version} response header"),
            format!(
                "correlation id {} does not match request {correlation_id}",
                header.correlation_id
            ),
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{CreateTopicsRequest, MetadataRequest, MetadataResponse};
    use kafka_protocol::protocol::Message;

    fn range(min: i16, max: i16) -> Option<ApiVersionRange> {
        Some(ApiVersionRange { min, max })
    }

    #[test]
    fn picks_highest_common_version() {
        let client = VersionRange { min: 0, max: 13 };
        assert_eq!(select_version(range(0, 9), client), Some(9));
        assert_eq!(select_version(range(4, 20), client), Some(13));
        assert_eq!(select_version(range(13, 13), client), Some(13));
    }

    #[test]
    fn no_version_when_api_missing_or_ranges_disjoint() {
        let client = VersionRange { min: 2, max: 7 };
        assert_eq!(select_version(None, client), None);
        assert_eq!(select_version(range(0, 1), client), None);
        assert_eq!(select_version(range(8, 9), client), None);
    }

    #[test]
    fn api_names_strip_path_and_suffix() {
        assert_eq!(api_name::<CreateTopicsRequest>(), "CreateTopics");
        assert_eq!(api_name::<MetadataRequest>(), "Metadata");
        assert_eq!(api_name::<ApiVersionsRequest>(), "ApiVersions");
    }

    #[test]
    fn request_frame_carries_size_key_version_and_correlation_id() {
        let client_id = StrBytes::from_static_str("cli");
        let frame = encode_request(&MetadataRequest::default(), 9, 42, &client_id).unwrap();
        let mut buf = frame.clone();
        assert_eq!(buf.get_i32() as usize, frame.len() - 4);
        assert_eq!(buf.get_i16(), ApiKey::Metadata as i16);
        assert_eq!(buf.get_i16(), 9);
        assert_eq!(buf.get_i32(), 42);
        assert_eq!(buf.get_i16(), 3); // client id length (nullable string in header v1/v2)
        assert_eq!(&buf[..3], b"cli");
    }

    #[test]
    fn api_versions_response_header_is_v0_even_for_flexible_versions() {
        // v3 is a flexible version: its body has tagged fields but its header has none.
        let response = ApiVersionsResponse::default();
        let mut buf = BytesMut::new();
        buf.put_i32(7); // correlation id, header v0: no tagged fields follow
        response.encode(&mut buf, 3).unwrap();
        let body = decode_response_header::<ApiVersionsRequest>(buf.freeze(), 3, 7).unwrap();
        let mut body = body;
        let decoded = ApiVersionsResponse::decode(&mut body, 3).unwrap();
        assert_eq!(decoded, response);
    }

    #[test]
    fn flexible_response_header_is_v1() {
        let version = MetadataResponse::VERSIONS.max;
        let response = MetadataResponse::default().with_controller_id(3.into());
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(5)
            .encode(&mut buf, 1)
            .unwrap();
        response.encode(&mut buf, version).unwrap();
        let mut body = decode_response_header::<MetadataRequest>(buf.freeze(), version, 5).unwrap();
        assert_eq!(
            MetadataResponse::decode(&mut body, version).unwrap(),
            response
        );
    }

    #[test]
    fn mismatched_correlation_id_is_a_protocol_error() {
        let mut buf = BytesMut::new();
        buf.put_i32(8);
        ApiVersionsResponse::default().encode(&mut buf, 0).unwrap();
        let err = decode_response_header::<ApiVersionsRequest>(buf.freeze(), 0, 7).unwrap_err();
        assert!(
            err.to_string()
                .contains("correlation id 8 does not match request 7"),
            "{err}"
        );
    }
}
