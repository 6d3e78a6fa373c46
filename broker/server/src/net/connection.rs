//! One client connection: read frames, handle each request in order, write responses in
//! the same order.
//!
//! Requests on one connection are handled one at a time, like Kafka does: clients pipeline
//! (librdkafka keeps up to 5 produce requests in flight) and rely on the broker applying and
//! answering them in order. Frames that arrived together are answered with one write.
//!
//! What one connection holds, and for how long:
//! - its input buffer grows only as bytes arrive (`frame::reserve_for_read`), up to the frame
//!   being read plus `frame::READ_AHEAD`;
//! - a frame's declared size is taken from the broker-wide [`RequestBudget`] when its prefix
//!   arrives, before its body is read, and returned once the request has been handled; while
//!   waiting for budget the connection reads nothing (TCP pushes back on the client);
//! - it is closed after `connections.max.idle.ms` without a request, when no byte of a started
//!   request arrives for `request_read_timeout_ms`, and when a request takes longer than
//!   `connections.max.idle.ms` to arrive (waiting for budget included).

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use ironlog_protocol::frame::{frame_size, parse_frame, reserve_for_read, FrameError};
use ironlog_protocol::request::{decode_header, DecodeError, RawRequest};
use ironlog_protocol::response::ResponseFrame;
use ironlog_protocol::ApiKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::budget::{BudgetPermit, RequestBudget};
use super::session::Session;
use crate::broker::Broker;
use crate::handler;

/// Why a connection is closed by the broker.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Encode(#[from] ironlog_protocol::response::EncodeError),
    #[error("no request for {idle_ms} ms (connections.max.idle.ms)")]
    Idle { idle_ms: u64 },
    #[error(
        "a request took longer than connections.max.idle.ms ({idle_ms} ms) to arrive; \
         {received} bytes of it were read"
    )]
    RequestTooSlow { idle_ms: u64, received: usize },
    #[error(
        "no byte of a started request for {timeout_ms} ms ({received} bytes of it read); \
         raise --request-read-timeout-ms if clients are this slow"
    )]
    ReadStalled { timeout_ms: u64, received: usize },
    #[error(
        "waited connections.max.idle.ms ({idle_ms} ms) to read a {size}-byte request: \
         queued.max.request.bytes ({cap} bytes) stayed in use by other connections \
         (see ironlog_queued_request_bytes; raise --queued-max-request-bytes if they are \
         legitimate)"
    )]
    QueueFull {
        idle_ms: u64,
        size: usize,
        cap: usize,
    },
    /// A request the connection's SASL state does not allow, or a failed authentication.
    #[error("{0}")]
    Authentication(String),
}

impl ConnectionError {
    /// The `reason` label of `ironlog_refused_frames_total`, if the broker refused what the
    /// client sent or how it sent it (I/O errors and our own encode failures are not refusals).
    fn refusal_reason(&self) -> Option<&'static str> {
        match self {
            ConnectionError::Frame(FrameError::TooLarge { .. }) => Some("too_large"),
            ConnectionError::Frame(FrameError::NegativeSize { .. }) => Some("negative_size"),
            ConnectionError::Decode(DecodeError::UnknownApiKey { .. }) => Some("unknown_api"),
            ConnectionError::Decode(DecodeError::UnsupportedVersion { .. }) => {
                Some("unsupported_version")
            }
            // TooShort, Malformed, and whatever body validation may add later.
            ConnectionError::Decode(_) => Some("malformed"),
            ConnectionError::Idle { .. } | ConnectionError::RequestTooSlow { .. } => {
                Some("idle_timeout")
            }
            ConnectionError::ReadStalled { .. } => Some("read_timeout"),
            ConnectionError::QueueFull { .. } => Some("queue_full"),
            ConnectionError::Authentication(_) => Some("authentication"),
            ConnectionError::Io(_) | ConnectionError::Encode(_) => None,
        }
    }
}

/// How long a connection stays open after a failed authentication's answer (Kafka's
/// connection.failed.authentication.delay.ms default).
const FAILED_AUTHENTICATION_DELAY: Duration = Duration::from_millis(100);

/// Responses smaller than this are gathered into one write (pipelined produce acks).
const GATHER_LIMIT: usize = 16 * 1024;

pub(crate) async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    mut session: Session,
    broker: Arc<Broker>,
    budget: Arc<RequestBudget>,
) {
    let peer = session.peer;
    broker.metrics.connections_open.inc();
    broker.metrics.connections_total.inc();
    let result = serve(&mut stream, &mut session, &broker, &budget).await;
    if let Err(e) = &result {
        if let Some(reason) = e.refusal_reason() {
            broker.metrics.refused.with_label_values(&[reason]).inc();
        }
    }
    match result {
        Ok(()) => tracing::debug!(%peer, "connection closed"),
        // Routine: clients come and go, and Kafka closes idle connections too.
        Err(e @ (ConnectionError::Io(_) | ConnectionError::Idle { .. })) => {
            tracing::debug!(%peer, error = %e, "connection closed")
        }
        Err(e) => tracing::warn!(%peer, error = %e, "closing connection"),
    }
    broker.metrics.connections_open.dec();
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    session: &mut Session,
    broker: &Arc<Broker>,
    budget: &Arc<RequestBudget>,
) -> Result<(), ConnectionError> {
    let configured_max = broker.config.socket_request_max_bytes;
    let idle_ms = broker.config.net.connections_max_idle_ms;
    let idle = Duration::from_millis(idle_ms);
    let read_timeout_ms = broker.config.net.request_read_timeout_ms;
    let read_timeout = Duration::from_millis(read_timeout_ms);
    let mut shutdown = broker.shutdown_signal();
    // Starts empty: an idle connection holds no buffer, and it grows only as bytes arrive.
    let mut input = BytesMut::new();
    let mut output = BytesMut::new();
    // Budget for the frame at the front of `input`, from its prefix until it has been handled.
    let mut permit: Option<BudgetPermit> = None;
    // The idle clock: when the last request was handled (or the connection opened).
    let mut last_request = Instant::now();
    // When the first byte of the frame at the front of `input` arrived.
    let mut frame_started: Option<Instant> = None;
    loop {
        // Before a SASL connection has authenticated, only small frames.
        let mut max_size = session.max_frame(configured_max);
        // Handle every complete frame already buffered. Small responses are gathered and
        // sent with one write; a large one (fetched records) is written as it is rather
        // than copied into the gathering buffer: its pieces with vectored writes, the
        // records from the buffers the log read them into.
        while let Some(size) = frame_size(&input, max_size)? {
            if permit.is_none() {
                let started = frame_started.unwrap_or_else(Instant::now);
                permit = Some(match budget.try_acquire(size) {
                    Some(p) => p,
                    None => {
                        // Send what is owed first: the client may be waiting on those
                        // responses before it sends anything else.
                        flush(stream, &mut output).await?;
                        broker.metrics.queued_request_waits.inc();
                        tokio::select! {
                            p = budget.acquire(size) => p,
                            _ = tokio::time::sleep_until(started + idle) => {
                                return Err(ConnectionError::QueueFull {
                                    idle_ms,
                                    size,
                                    cap: budget.cap(),
                                });
                            }
                            _ = crate::broker::stopped(&mut shutdown) => return Ok(()),
                        }
                    }
                });
            }
            let Some(frame) = parse_frame(&mut input, max_size)? else {
                break;
            };
            broker.metrics.bytes_in.inc_by(frame.len() as u64 + 4);
            let response = handle_frame(frame, broker, session).await?;
            // Handled: the request's bytes are no longer queued.
            permit = None;
            last_request = Instant::now();
            frame_started = (!input.is_empty()).then_some(last_request);
            if let Some(mut response) = response {
                broker.metrics.bytes_out.inc_by(response.len() as u64);
                if response.len() < GATHER_LIMIT {
                    for piece in response.pieces() {
                        output.extend_from_slice(piece);
                    }
                } else {
                    flush(stream, &mut output).await?;
                    stream.write_all_buf(&mut response).await?;
                    stream.flush().await?;
                }
            }
            if let Some(reason) = session.take_close_reason() {
                // The client reads why (a failed authentication), then the connection ends.
                // Like Kafka's connection.failed.authentication.delay.ms, the close waits
                // (for the client to close first, at most FAILED_AUTHENTICATION_DELAY): a
                // client that sees the close before the answer reports a lost connection
                // instead of the failure, and immediate retries are slowed down.
                flush(stream, &mut output).await?;
                let mut sink = [0u8; 512];
                let _ = tokio::time::timeout(FAILED_AUTHENTICATION_DELAY, async {
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                })
                .await;
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
                return Err(ConnectionError::Authentication(reason));
            }
            max_size = session.max_frame(configured_max);
            if broker.is_shutting_down() {
                break;
            }
            // A quota throttle mutes the connection: answers go out now, the next request
            // is handled once the throttle time has passed (KIP-219).
            if let Some(until) = session.muted_until(std::time::Instant::now()) {
                flush(stream, &mut output).await?;
                broker.metrics.throttled_requests.inc();
                tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => {}
                    _ = crate::broker::stopped(&mut shutdown) => return Ok(()),
                }
                last_request = Instant::now();
            }
        }
        flush(stream, &mut output).await?;
        if broker.is_shutting_down() {
            return Ok(());
        }

        // No complete frame is buffered, so `room` > 0.
        let room = reserve_for_read(&mut input, max_size)?;
        let received = input.len();
        let (deadline, timed_out) = match frame_started {
            None => (last_request + idle, ConnectionError::Idle { idle_ms }),
            Some(started) => {
                let stalled = Instant::now() + read_timeout;
                if stalled < started + idle {
                    (
                        stalled,
                        ConnectionError::ReadStalled {
                            timeout_ms: read_timeout_ms,
                            received,
                        },
                    )
                } else {
                    (
                        started + idle,
                        ConnectionError::RequestTooSlow { idle_ms, received },
                    )
                }
            }
        };
        // At most `room` bytes: the read never takes in more than the buffer was sized for.
        let mut limited = (&mut input).limit(room);
        let read = tokio::select! {
            read = stream.read_buf(&mut limited) => read?,
            _ = tokio::time::sleep_until(deadline) => return Err(timed_out),
            _ = crate::broker::stopped(&mut shutdown) => return Ok(()),
        };
        if read == 0 {
            return if input.is_empty() {
                Ok(())
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed mid-request",
                )
                .into())
            };
        }
        frame_started.get_or_insert_with(Instant::now);
    }
}

/// Writes the gathered responses, if any (and pushes them through TLS).
async fn flush<S: AsyncWrite + Unpin>(
    stream: &mut S,
    output: &mut BytesMut,
) -> std::io::Result<()> {
    if !output.is_empty() {
        stream.write_all(output).await?;
        output.clear();
        stream.flush().await?;
    }
    Ok(())
}

/// Decodes and handles one request. `Ok(None)` means no response is owed (acks=0 produce).
async fn handle_frame(
    frame: Bytes,
    broker: &Arc<Broker>,
    session: &mut Session,
) -> Result<Option<ResponseFrame>, ConnectionError> {
    if session.expects_raw_token() {
        // After SaslHandshake v0 the tokens come without a Kafka header.
        return handler::sasl_authenticate::raw_token(broker, session, &frame)
            .map(|token| Some(token.into()))
            .map_err(ConnectionError::Authentication);
    }
    let request = match decode_header(frame) {
        Ok(request) => request,
        Err(DecodeError::UnsupportedVersion {
            api: ApiKey::ApiVersions,
            correlation_id,
            ..
        }) => {
            // KIP-511: answer in version 0 with UNSUPPORTED_VERSION and our ranges so the
            // client can retry with a version we serve.
            broker.metrics.record_error(
                "ApiVersions",
                ironlog_protocol::ResponseError::UnsupportedVersion,
            );
            return Ok(Some(
                handler::api_versions::unsupported_version_response(correlation_id)?.into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    session
        .admits(request.api, std::time::Instant::now())
        .map_err(ConnectionError::Authentication)?;
    let body = request.decode_body()?;
    // The frame goes before the request is handled: then a Produce request's records
    // (decoded as the only slices of the frame, see `ironlog_protocol::request`) own its
    // allocation, and the log patches batch headers in it without copying the payload.
    let RawRequest {
        api,
        header,
        body: frame,
    } = request;
    drop(frame);
    Ok(handler::dispatch(broker, session, api, &header, body).await?)
}
