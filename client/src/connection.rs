//! One TCP connection to one broker: framing, correlation ids and API version negotiation.
//!
//! Requests on a connection are strictly sequential (send, then read the answer), so a
//! response always belongs to the request just sent; the correlation id is still checked to
//! catch a confused stream early. After an I/O error or a timeout, or when a request's
//! future is dropped before its response was read, the stream position is unknown, so the
//! connection marks itself broken and refuses further requests.
//!
//! [`Connection::connect_with`] secures the connection as a [`Security`] says: TLS over the
//! TCP stream (SSL, SASL_SSL), then, after ApiVersions, SASL (SaslHandshake v1 and
//! SaslAuthenticate; PLAIN or SCRAM). A SASL session with a lifetime (KIP-368) makes the
//! connection count as broken shortly before it ends, so a [`crate::Client`] replaces it
//! with a freshly authenticated one instead of having requests refused.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ironlog_security::ScramClient;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Encodable, HeaderVersion, Request, StrBytes, VersionRange};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::error::{error_name, ClientError, UNSUPPORTED_VERSION};
use crate::security::{SaslCredentials, SaslMechanism, Security};
use ironlog_wire::schema;

/// Decodes a response body of `R`'s API after checking every length and count in it
/// against the bytes present: a hostile or broken broker can make the decoders of the
/// `kafka_protocol` crate allocate from a forged count otherwise.
pub(crate) fn decode_response<R: Request>(
    mut body: Bytes,
    version: i16,
    broker: &str,
) -> Result<R::Response, ClientError> {
    let context = || format!("{} v{version} response from {broker}", api_name::<R>());
    let layout = ApiKey::try_from(R::KEY)
        .ok()
        .and_then(schema::response_layout)
        .ok_or_else(|| ClientError::protocol(context(), schema::Reason::NoLayout))?;
    schema::decode::<R::Response>(layout, &mut body, version)
        .map_err(|e| ClientError::protocol(context(), e))
}

/// Responses whose size prefix says more than this are refused without reading them: a
/// garbage size prefix (for example from talking to something that is not Kafka) must not
/// exhaust memory. Sizes below it are still allocated only as the bytes arrive
/// ([`read_body`]).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

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

/// The byte stream under a connection: plain TCP or TLS over TCP.
enum Stream {
    Plain(TcpStream),
    // Boxed: a TLS session is a few hundred bytes, a TcpStream a handful.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stream::Plain(_) => f.write_str("Plain"),
            Stream::Tls(_) => f.write_str("Tls"),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A connection to one broker with negotiated API versions.
#[derive(Debug)]
pub struct Connection {
    broker: String,
    stream: Stream,
    client_id: StrBytes,
    next_correlation_id: i32,
    request_timeout: Duration,
    max_response_bytes: usize,
    versions: BTreeMap<i16, ApiVersionRange>,
    broken: bool,
    /// When the SASL session should be renewed (before the broker's `session_lifetime_ms`
    /// runs out); from then on the connection counts as broken.
    reauthenticate_at: Option<Instant>,
}

impl Connection {
    /// Connects to `broker` (`host:port`) over plain TCP and negotiates API versions.
    ///
    /// # Errors
    /// [`ClientError::Connect`] when the TCP connection fails or does not complete within
    /// `timeout`; any request error from the ApiVersions exchange.
    pub async fn connect(
        broker: &str,
        client_id: &str,
        timeout: Duration,
    ) -> Result<Connection, ClientError> {
        Connection::connect_with(broker, client_id, timeout, &Security::plaintext()).await
    }

    /// Connects to `broker` (`host:port`) secured as `security` says: TCP, TLS when it has a
    /// TLS connector (the server name is `broker`'s host), ApiVersions, then SASL when it
    /// has credentials.
    ///
    /// # Errors
    /// [`ClientError::Connect`] when the TCP connection fails or does not complete within
    /// `timeout`; [`ClientError::Tls`] when the TLS handshake fails;
    /// [`ClientError::Authentication`] when SASL fails; any request error from the
    /// ApiVersions or SASL exchanges.
    pub async fn connect_with(
        broker: &str,
        client_id: &str,
        timeout: Duration,
        security: &Security,
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
        let stream = match &security.tls {
            None => Stream::Plain(stream),
            Some(connector) => {
                let tls_error = |message: String| ClientError::Tls {
                    broker: broker.to_owned(),
                    message,
                };
                let name = crate::security::server_name(broker).map_err(tls_error)?;
                match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
                    Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
                    // rustls reports certificate and protocol problems as InvalidData; the
                    // rest (a reset, an early close) is the connection failing.
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                        return Err(tls_error(e.to_string()))
                    }
                    Ok(Err(e)) => {
                        return Err(tls_error(format!(
                            "{e} (is this a TLS listener? the broker may also have refused \
                             the client certificate)"
                        )))
                    }
                    Err(_) => {
                        return Err(ClientError::Connect {
                            broker: broker.to_owned(),
                            source: std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                format!("TLS handshake timed out after {timeout:?}"),
                            ),
                        })
                    }
                }
            }
        };
        let mut connection = Connection {
            broker: broker.to_owned(),
            stream,
            client_id: StrBytes::from_string(client_id.to_owned()),
            next_correlation_id: 0,
            request_timeout: timeout,
            max_response_bytes: MAX_RESPONSE_BYTES,
            versions: BTreeMap::new(),
            broken: false,
            reauthenticate_at: None,
        };
        connection.negotiate_versions().await?;
        if let Some(sasl) = &security.sasl {
            connection.authenticate(sasl).await?;
        }
        Ok(connection)
    }

    /// Refuses responses larger than `limit` bytes (default [`MAX_RESPONSE_BYTES`]).
    /// Decoded responses take a few times their encoded size in memory, so a process that
    /// only makes admin calls (the operator) sets this well below the default, which is
    /// sized for fetches.
    pub fn set_max_response_bytes(&mut self, limit: usize) {
        self.max_response_bytes = limit;
    }

    /// The `host:port` this connection talks to.
    pub fn broker(&self) -> &str {
        &self.broker
    }

    /// The API version ranges the broker advertised, by API key.
    pub fn broker_versions(&self) -> &BTreeMap<i16, ApiVersionRange> {
        &self.versions
    }

    /// Whether an earlier I/O error or timeout left the stream in an unknown state, or the
    /// SASL session is about to expire: either way the connection must be replaced.
    pub fn is_broken(&self) -> bool {
        self.broken
            || self
                .reauthenticate_at
                .is_some_and(|at| Instant::now() >= at)
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
        let body = self.round_trip(request, version, timeout, true).await?;
        decode_response::<R>(body, version, &self.broker)
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

    fn authentication_error(&self, message: String) -> ClientError {
        ClientError::Authentication {
            broker: self.broker.clone(),
            message,
        }
    }

    /// SASL after ApiVersions: SaslHandshake v1 names the mechanism, then SaslAuthenticate
    /// carries its tokens (one for PLAIN, two for SCRAM, whose last answer proves the broker
    /// holds the credential too).
    async fn authenticate(&mut self, sasl: &SaslCredentials) -> Result<(), ClientError> {
        let mechanism = sasl.mechanism.name();
        let version = self.version_for::<SaslHandshakeRequest>()?;
        if version < 1 {
            return Err(self.authentication_error(
                "the broker speaks only SaslHandshake v0 (bare SASL tokens); this client needs v1"
                    .into(),
            ));
        }
        let request =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let response = self
            .send_with(&request, version, self.request_timeout)
            .await?;
        if response.error_code != 0 {
            let enabled: Vec<String> = response.mechanisms.iter().map(|m| m.to_string()).collect();
            return Err(self.authentication_error(format!(
                "SaslHandshake for {mechanism}: {} (error code {}); the broker enables: {}",
                error_name(response.error_code),
                response.error_code,
                if enabled.is_empty() {
                    "none (is this a SASL listener?)".to_owned()
                } else {
                    enabled.join(", ")
                }
            )));
        }
        let lifetime_ms = match sasl.mechanism {
            SaslMechanism::Plain => {
                let mut token = Vec::with_capacity(2 + sasl.username.len() + sasl.password.len());
                token.push(0);
                token.extend_from_slice(sasl.username.as_bytes());
                token.push(0);
                token.extend_from_slice(sasl.password.as_bytes());
                self.sasl_token(token).await?.1
            }
            SaslMechanism::Scram(scram_mechanism) => {
                let mut scram = ScramClient::new(
                    scram_mechanism,
                    sasl.username.clone(),
                    sasl.password.clone(),
                );
                let (server_first, _) = self.sasl_token(scram.client_first()).await?;
                let client_final = scram
                    .client_final(&server_first)
                    .map_err(|e| self.authentication_error(format!("{mechanism}: {e}")))?;
                let (server_final, lifetime_ms) = self.sasl_token(client_final).await?;
                scram
                    .verify_server_final(&server_final)
                    .map_err(|e| self.authentication_error(format!("{mechanism}: {e}")))?;
                lifetime_ms
            }
        };
        // Renewed at 85% of the session (Kafka's clients pick 85-95%), by reconnecting.
        self.reauthenticate_at = u64::try_from(lifetime_ms)
            .ok()
            .filter(|ms| *ms > 0)
            .map(|ms| Instant::now() + Duration::from_millis(ms / 100 * 85));
        Ok(())
    }

    /// One SaslAuthenticate round trip: the broker's token and session lifetime.
    async fn sasl_token(&mut self, token: Vec<u8>) -> Result<(Bytes, i64), ClientError> {
        let version = self.version_for::<SaslAuthenticateRequest>()?;
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let response = self
            .send_with(&request, version, self.request_timeout)
            .await?;
        if response.error_code != 0 {
            // The broker closes the connection after a failed authentication.
            self.broken = true;
            let message = response
                .error_message
                .map(|m| m.to_string())
                .filter(|m| !m.is_empty());
            return Err(self.authentication_error(format!(
                "{} (error code {}){}",
                error_name(response.error_code),
                response.error_code,
                message.map(|m| format!(": {m}")).unwrap_or_default()
            )));
        }
        Ok((response.auth_bytes, response.session_lifetime_ms))
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
        let response = decode_response::<ApiVersionsRequest>(body, version, &self.broker)?;
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

        let max_response_bytes = self.max_response_bytes;
        // Until the exchange completes the stream is mid-request. If this future is dropped
        // there (a caller's `select!` or timeout), the connection must not be reused: the
        // next request would read this one's response.
        self.broken = true;
        let exchange = async {
            self.stream.write_all(&frame).await?;
            // TLS buffers what it encrypts; a plain socket has nothing to flush.
            self.stream.flush().await?;
            if !expect_response {
                return Ok(Bytes::new());
            }
            let size = self.stream.read_i32().await?;
            let size = usize::try_from(size)
                .ok()
                .filter(|s| *s <= max_response_bytes)
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "implausible response size {size} (negative or above the \
                             {max_response_bytes}-byte limit)"
                        ),
                    )
                })?;
            let mut body = BytesMut::new();
            read_body(&mut self.stream, size, &mut body).await?;
            Ok::<Bytes, std::io::Error>(body.freeze())
        };
        let body = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(body)) => {
                self.broken = false;
                body
            }
            Ok(Err(source)) => {
                return Err(ClientError::Io {
                    broker: self.broker.clone(),
                    api,
                    source,
                });
            }
            Err(_) => {
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
        decode_response_header::<R>(body, version, correlation_id, &self.broker).inspect_err(|_| {
            self.broken = true;
        })
    }
}

/// How much buffer a response body may grow by per read: the body is allocated as its
/// bytes arrive, never up front from the size prefix.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Reads exactly `size` body bytes from `stream` into `body`.
///
/// The size prefix is the peer's claim, not bytes in hand: a broker that says 256 MiB and
/// then sends nothing must cost one chunk, not 256 MiB. So the buffer grows by at most
/// [`READ_CHUNK_BYTES`] (plus `BytesMut`'s amortized doubling) ahead of what has arrived,
/// and a peer has to actually send a large body to make it large. The caller bounds `size`
/// by [`MAX_RESPONSE_BYTES`] and the whole read by the request timeout.
///
/// Cancel-safe in the sense the caller needs: bytes read before a timeout stay in `body`
/// (the connection is then marked broken anyway).
///
/// # Errors
/// `UnexpectedEof` when the peer closes before `size` bytes arrived; any read error.
async fn read_body<S>(stream: &mut S, size: usize, body: &mut BytesMut) -> std::io::Result<()>
where
    S: AsyncRead + Unpin,
{
    while body.len() < size {
        let missing = size - body.len();
        body.reserve(missing.min(READ_CHUNK_BYTES));
        // `take` stops the read at the end of this frame: bytes after it belong to the next.
        let read = (&mut *stream).take(missing as u64).read_buf(body).await?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed after {} of {size} response body bytes",
                    body.len()
                ),
            ));
        }
    }
    Ok(())
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
    broker: &str,
) -> Result<Bytes, ClientError> {
    let api = api_name::<R>();
    // ApiVersions responses always use header v0, even for flexible versions, so that a
    // client can parse the answer before it knows which versions the broker speaks.
    let header_version = if R::KEY == ApiKey::ApiVersions as i16 {
        0
    } else {
        R::Response::header_version(version)
    };
    let header = schema::decode::<ResponseHeader>(
        &schema::tables::response_header::RESPONSE_HEADER,
        &mut body,
        header_version,
    )
    .map_err(|e| {
        ClientError::protocol(format!("{api} v{version} response header from {broker}"), e)
    })?;
    if header.correlation_id != correlation_id {
        return Err(ClientError::protocol(
            format!("{api} v{version} response header from {broker}"),
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
    use kafka_protocol::messages::ApiVersionsResponse;
    use kafka_protocol::messages::{CreateTopicsRequest, MetadataRequest, MetadataResponse};
    use kafka_protocol::protocol::Decodable;
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
        let body =
            decode_response_header::<ApiVersionsRequest>(buf.freeze(), 3, 7, "b:9092").unwrap();
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
        let mut body =
            decode_response_header::<MetadataRequest>(buf.freeze(), version, 5, "b:9092").unwrap();
        assert_eq!(
            MetadataResponse::decode(&mut body, version).unwrap(),
            response
        );
    }

    #[tokio::test]
    async fn body_grows_with_bytes_received_not_with_the_size_prefix() {
        // A peer claims the largest size accepted, sends 100 bytes and hangs up.
        let (mut client, mut peer) = tokio::io::duplex(4096);
        peer.write_all(&[7u8; 100]).await.unwrap();
        drop(peer);
        let mut body = BytesMut::new();
        let err = read_body(&mut client, MAX_RESPONSE_BYTES, &mut body)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(
            err.to_string()
                .contains(&format!("after 100 of {MAX_RESPONSE_BYTES}")),
            "{err}"
        );
        assert_eq!(&body[..], &[7u8; 100][..]);
        assert!(
            body.capacity() <= 2 * READ_CHUNK_BYTES,
            "buffer of {} bytes for 100 received",
            body.capacity()
        );
    }

    #[tokio::test]
    async fn body_arriving_in_small_pieces_is_read_whole_and_no_further() {
        // A 3-byte pipe forces many short reads; the next frame's bytes must stay unread.
        let (mut client, mut peer) = tokio::io::duplex(3);
        let body_bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let sent = body_bytes.clone();
        let writer = tokio::spawn(async move {
            peer.write_all(&sent).await.unwrap();
            peer.write_all(b"next").await.unwrap();
            peer
        });
        let mut body = BytesMut::new();
        read_body(&mut client, body_bytes.len(), &mut body)
            .await
            .unwrap();
        assert_eq!(&body[..], &body_bytes[..]);
        let mut next = [0u8; 4];
        client.read_exact(&mut next).await.unwrap();
        assert_eq!(&next, b"next");
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn empty_body_reads_nothing() {
        let (mut client, _peer) = tokio::io::duplex(16);
        let mut body = BytesMut::new();
        read_body(&mut client, 0, &mut body).await.unwrap();
        assert!(body.is_empty());
    }

    #[test]
    fn mismatched_correlation_id_is_a_protocol_error() {
        let mut buf = BytesMut::new();
        buf.put_i32(8);
        ApiVersionsResponse::default().encode(&mut buf, 0).unwrap();
        let err =
            decode_response_header::<ApiVersionsRequest>(buf.freeze(), 0, 7, "b:9092").unwrap_err();
        assert!(
            err.to_string()
                .contains("correlation id 8 does not match request 7"),
            "{err}"
        );
    }
}
