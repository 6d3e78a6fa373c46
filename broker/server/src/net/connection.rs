//! One client connection: read frames, handle each request in order, write responses in
//! the same order.
//!
//! Requests on one connection are handled one at a time, like Kafka does: clients pipeline
//! (librdkafka keeps up to 5 produce requests in flight) and rely on the broker applying and
//! answering them in order. Frames that arrived together are answered with one write.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ironlog_protocol::frame::{parse_frame, FrameError};
use ironlog_protocol::request::{decode_header, DecodeError, RawRequest};
use ironlog_protocol::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
}

/// Responses smaller than this are gathered into one write (pipelined produce acks).
const GATHER_LIMIT: usize = 16 * 1024;

pub async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>) {
    broker.metrics.connections_open.inc();
    broker.metrics.connections_total.inc();
    match serve(&mut stream, &broker).await {
        Ok(()) => tracing::debug!(%peer, "connection closed"),
        Err(ConnectionError::Io(e)) => tracing::debug!(%peer, error = %e, "connection closed"),
        Err(e) => tracing::warn!(%peer, error = %e, "closing connection"),
    }
    broker.metrics.connections_open.dec();
}

async fn serve(stream: &mut TcpStream, broker: &Arc<Broker>) -> Result<(), ConnectionError> {
    let mut shutdown = broker.shutdown_signal();
    let mut input = BytesMut::with_capacity(64 * 1024);
    let mut output = BytesMut::new();
    loop {
        // Handle every complete frame already buffered. Small responses are gathered and
        // sent with one write; a large one (fetched records) is written as it is rather
        // than copied into the gathering buffer.
        while let Some(frame) = parse_frame(&mut input, broker.config.socket_request_max_bytes)? {
            broker.metrics.bytes_in.inc_by(frame.len() as u64 + 4);
            if let Some(response) = handle_frame(frame, broker).await? {
                broker.metrics.bytes_out.inc_by(response.len() as u64);
                if response.len() < GATHER_LIMIT {
                    output.extend_from_slice(&response);
                } else {
                    if !output.is_empty() {
                        stream.write_all(&output).await?;
                        output.clear();
                    }
                    stream.write_all(&response).await?;
                }
            }
            if broker.is_shutting_down() {
                break;
            }
        }
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
        if broker.is_shutting_down() {
            return Ok(());
        }
        let read = tokio::select! {
            read = stream.read_buf(&mut input) => read?,
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
    }
}

/// Decodes and handles one request. `Ok(None)` means no response is owed (acks=0 produce).
async fn handle_frame(
    frame: Bytes,
    broker: &Arc<Broker>,
) -> Result<Option<Bytes>, ConnectionError> {
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
            return Ok(Some(handler::api_versions::unsupported_version_response(
                correlation_id,
            )?));
        }
        Err(e) => return Err(e.into()),
    };
    let body = request.decode_body()?;
    let RawRequest { api, header, .. } = request;
    Ok(handler::dispatch(broker, api, &header, body).await?)
}
