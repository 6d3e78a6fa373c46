//! The Ironlog broker: a Kafka-compatible server on a segmented log.
//!
//! Dependency rule: the server wires the sans-IO protocol crate and the storage crate to
//! tokio. Handlers never touch sockets; the storage crate never sees the network.
//!
//! # Layout
//! - [`config`]: flags / environment / `--config` file → [`config::BrokerConfig`]; which
//!   Kafka keys a file may hold is the `ironlog_broker_config` crate's.
//! - [`broker`]: shared state, start-up, clean shutdown.
//! - [`cluster`]: the metadata quorum, broker registration and heartbeats, the controller.
//! - [`net`]: listeners (TLS), per-connection request loop (ordered responses), SASL
//!   sessions.
//! - [`authorizer`]: Kafka's ACL authorizer, asked by the handlers.
//! - [`quota`]: client byte-rate quotas and throttling.
//! - [`handler`]: one file per Kafka API; Kafka error codes are chosen there.
//! - [`fetch_session`]: fetch sessions (KIP-227), the pure core of incremental fetches.
//! - [`group`]: the group coordinator (consumer groups, committed offsets).
//! - [`replica_manager`]: topics and partitions on top of metadata and logs.
//! - [`partition`]: one hosted partition: log, producers, role, ISR, high watermark.
//! - [`replica_fetcher`]: followers fetching from their leaders.
//! - [`metadata`]: topic configs; the image itself is `ironlog_metadata`'s.
//! - [`metrics`], [`http`]: Prometheus metrics on `/metrics`, health on `/health`.

pub mod authorizer;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod fetch_session;
pub mod group;
pub mod handler;
pub mod http;
pub mod metadata;
pub mod metrics;
pub mod net;
pub mod partition;
pub mod producer_state;
pub mod quota;
pub mod replica_fetcher;
pub mod replica_manager;
