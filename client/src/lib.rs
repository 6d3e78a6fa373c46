//! `ironlog-client`: a small async Kafka client built on the `kafka-protocol` crate and tokio.
//!
//! It serves two users: the `ironlog` command-line tools ([`tools`]: `topics`, `produce`,
//! `consume`, `groups`, `cluster`, which work against any Kafka-compatible cluster, Apache Kafka included) and the
//! Kubernetes operator's admin calls.
//!
//! # Layout
//! - [`connection`]: one connection to one broker — TLS and SASL when configured, framing,
//!   correlation ids, version negotiation. Usable on its own for any `kafka_protocol`
//!   request type.
//! - [`security`]: `security.protocol`, TLS trust and client certificates (PEM), SASL
//!   PLAIN / SCRAM credentials, and the Kafka client properties that set them.
//! - [`Client`] (`client.rs`): bootstrap, metadata cache, a connection per broker, routing
//!   (partition requests to the leader, admin requests to the controller) and bounded retries.
//! - `admin.rs`, `data.rs`: the typed admin and data APIs as methods on [`Client`];
//!   [`acl`] (Describe/Create/DeleteAcls), `scram_users.rs`
//!   (Describe/AlterUserScramCredentials) and [`quotas`] (Describe/AlterClientQuotas)
//!   likewise.
//! - [`groups`]: consumer-group admin (list, describe, committed offsets, reset, delete);
//!   [`member`]: taking part in a group as a consumer (join, sync with the range assignor,
//!   heartbeat, commit, leave).
//! - [`quorum`]: the metadata quorum (DescribeQuorum).
//! - [`records`]: produce/consume record types and v2 record batch encoding/decoding (pure).
//! - [`tools`]: the CLI subcommands as library code; the `ironlog` binary only dispatches.
//!
//! # Dependency rule
//! This crate must not depend on any broker crate (`ironlog-protocol`, `ironlog-storage`,
//! `ironlog-server`): the operator links it and talks to brokers only over the Kafka
//! protocol. The pure, I/O-free crates the broker shares are fine: `ironlog-security`
//! (SCRAM's client side, salted passwords) and, through it, `ironlog-metadata`'s
//! `ScramMechanism`. Its wire types come from `kafka-protocol`, and those types stay out of the
//! public admin/data signatures. Bytes from a broker are checked with `ironlog-wire`
//! (sans-IO, shared with the broker) before they are decoded: every response against its
//! layout, fetched records with the bounded record decoder.
//!
//! # Version negotiation
//! On connect, each [`Connection`] sends ApiVersions v3; if the broker answers
//! UNSUPPORTED_VERSION it retries with v0. (ApiVersions responses always carry response
//! header v0.) For every later request the connection uses the highest version in the
//! intersection of the broker's advertised range and `kafka-protocol`'s `Message::VERSIONS`
//! for that request. An empty intersection or an API the broker does not list fails with
//! [`ClientError::UnsupportedApi`] before anything is sent — the operator relies on this to
//! refuse actions a cluster cannot perform safely.
//!
//! # Errors and retries
//! One error type, [`ClientError`]. Errors reported by brokers are
//! [`ClientError::Kafka`] with the code, its protocol name (see [`error_name`]) and context.
//! NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION, NOT_CONTROLLER
//! and failed connection attempts refresh metadata and retry a bounded number of times with
//! exponential backoff (see [`ClientConfig`]); every request has a timeout.

pub mod acl;
mod admin;
mod client;
pub mod connection;
mod data;
mod error;
pub mod groups;
pub mod member;
pub mod quorum;
pub mod quotas;
pub mod records;
mod scram_users;
pub mod security;
pub mod tools;

pub use admin::{
    ClusterDescription, ConfigEntry, ConfigSource, ItemResult, NewTopic, PartitionReassignment,
};
pub use bytes::Bytes;
pub use client::{
    parse_bootstrap, BrokerInfo, Client, ClientConfig, ClusterMetadata, PartitionMetadata,
    TopicMetadata,
};
pub use connection::{ApiVersionRange, Connection};
pub use data::{Acks, FetchedPartition, OffsetSpec};
pub use error::{error_name, ClientError};
/// SCRAM's hash choice, as the security crate names it.
pub use ironlog_security::ScramMechanism;
pub use member::GroupMembership;
pub use quorum::{QuorumDescription, QuorumReplica};
pub use quotas::QuotaEntity;
pub use records::{Compression, ConsumedRecord, ProduceRecord};
pub use scram_users::{ScramCredentialInfo, UserScramCredentials};
pub use security::{
    SaslCredentials, SaslMechanism, Security, SecurityConfig, SecurityProtocol, TlsSettings,
};

/// Compile-time check that the public request futures are `Send`: kube-rs reconcilers (the
/// operator) can only await `Send` futures. This fails to build, not to run, on regression.
#[cfg(test)]
mod send_check {
    use super::*;
    use std::collections::BTreeMap;

    fn assert_send<T: Send>(_: T) {}

    #[test]
    fn client_futures_are_send() {
        // Never awaited: only their types matter, and a `Client` is not needed to name them.
        let _ = |c: &'static Client| {
            assert_send(Client::bootstrap("127.0.0.1:9092"));
            assert_send(c.metadata(None));
            assert_send(c.create_topics(&[], false));
            assert_send(c.create_topic(
                &NewTopic {
                    name: String::new(),
                    num_partitions: 1,
                    replication_factor: 1,
                    configs: BTreeMap::new(),
                },
                false,
            ));
            assert_send(c.delete_topics(&[]));
            assert_send(c.create_partitions("t", 2));
            assert_send(c.describe_configs("t"));
            assert_send(c.incremental_alter_configs("t", &BTreeMap::new(), &[]));
            assert_send(c.describe_cluster());
            assert_send(c.describe_quorum());
            assert_send(c.list_partition_reassignments());
            assert_send(c.alter_partition_reassignments("t", &BTreeMap::new()));
            assert_send(c.delete_records("t", &BTreeMap::new()));
            assert_send(c.produce("t", 0, &[], Acks::All, Compression::None));
            assert_send(c.fetch("t", 0, 0, 100, 1024));
            assert_send(c.fetch_partitions("t", &[], 100, 1024));
            assert_send(c.list_offsets("t", 0, OffsetSpec::Latest));
            assert_send(c.describe_acls(&acl::AclBindingFilter::any()));
            assert_send(c.create_acls(&[]));
            assert_send(c.delete_acls(&[]));
            assert_send(c.describe_user_scram_credentials(None));
            assert_send(c.upsert_user_scram_credential("u", ScramMechanism::Sha512, 4096, "p"));
            assert_send(c.delete_user_scram_credential("u", ScramMechanism::Sha512));
            assert_send(c.describe_client_quotas(&[], true));
            assert_send(c.alter_client_quotas(&[], &BTreeMap::new(), &[]));
        };
    }
}
