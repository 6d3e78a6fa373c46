//! `ironlog-wire`: Kafka's wire formats, checked before anything in them is trusted.
//!
//! Both sides of a Kafka connection read bytes a peer wrote: the broker reads requests and
//! record batches from clients, the toolbox and the operator read responses and fetched
//! records from brokers. Everything here is sans-IO and allocation-safe: no count or
//! length read from the bytes is used before it has been checked against the bytes that
//! are actually there, and decompression is bounded.
//!
//! # Layout
//! - [`schema`]: the wire layout of every Kafka message Ironlog decodes, and
//!   [`schema::check`], which walks a message before a `kafka_protocol` decoder is allowed
//!   to allocate from its prefixes; plus a generator of valid and mutated messages for the
//!   fuzzers ([`schema::gen`]).
//! - [`batch`]: the v2 record batch header (61 bytes), checked and patched in place without
//!   decoding records; the storage crate stores batches in exactly this format.
//! - [`reader`]: Kafka's classic encoding read field by field, for the few messages decoded
//!   by hand (`__consumer_offsets` records, old request versions).
//! - [`records`]: the one record decoder: the records inside a batch, compressed or not,
//!   with every count and length checked and decompression capped.
//! - [`encode`]: the other direction: records and the four codecs, for the log cleaner's
//!   rewritten batches and for tests.
//!
//! # Dependency rule
//! No I/O, no tokio, no broker logic: this crate knows bytes. The broker's crates
//! (`ironlog-protocol`, `ironlog-storage`) and the client (and through it the operator)
//! depend on it; it depends on none of them.

pub mod batch;
pub mod encode;
pub mod reader;
pub mod records;
pub mod schema;

pub use kafka_protocol;
