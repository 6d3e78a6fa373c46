//! Kafka wire protocol for Ironlog, sans-IO.
//!
//! Dependency rule: this crate knows bytes, not sockets. It must not depend on tokio, on
//! the storage crate or on anything that does I/O, so it can be tested (and fuzzed) on
//! plain buffers.
//!
//! # Layout
//! - [`frame`]: the 4-byte big-endian length prefix that wraps every request and response,
//!   and the request size limit (`socket.request.max.bytes`).
//! - [`request`]: request header decoding, including the cases a broker must answer without
//!   being able to decode the body (unknown API key, unsupported version).
//! - [`response`]: response encoding with the right response header version.
//! - [`versions`]: the API version ranges this broker serves (advertised in ApiVersions).
//! - [`schema`] (from `ironlog-wire`): the wire layout of every message we decode, and the
//!   length check that runs before any of them reaches a decoder (the `kafka_protocol`
//!   decoders trust count and length prefixes and allocate from them).
//!
//! Message bodies are the types of the [`kafka_protocol`] crate, re-exported here so the
//! server uses one version of it. Record batches are never decoded on the produce path: the
//! request's `records` field is kept as the raw bytes the client sent.
//!
//! # Invariants
//! - No bytes from outside the process reach a `kafka_protocol` decoder without passing
//!   [`schema::check`] first: [`request::RawRequest::decode_body`] and
//!   [`request::decode_header`] do it for requests, [`schema::decode`] for everything else
//!   (responses in the client, embedded consumer-protocol blobs).
//! - A frame's length is non-negative and at most the configured maximum; anything else is a
//!   [`frame::FrameError`] and the connection must be closed (the stream can't be resynced).
//! - Responses go back in request order on each connection (Kafka clients pipeline requests
//!   and match responses by order as well as correlation id); the server enforces that.

pub mod frame;
pub mod legacy;
pub mod request;
pub mod response;
pub mod versions;

pub use ironlog_wire::{reader, schema};
pub use kafka_protocol;
pub use kafka_protocol::error::ResponseError;
pub use kafka_protocol::messages::ApiKey;
