//! ironlog-operator: the Kubernetes operator for Ironlog.
//!
//! # Layout
//! - [`crd`]: the KafkaCluster and KafkaTopic types, the single source of truth for `crds/`.
//! - [`controller`]: reconcile in named phases — `validate` (pure) → `build` (pure builders of the
//!   StatefulSet, Services, ConfigMap, PDB, ServiceAccount) → `apply` (server-side apply) →
//!   `status` (conditions with observedGeneration); `rollout` (safe roll / scale), `topic`.
//! - [`admin`]: the small Kafka admin trait the roll, drain and topic logic run through, its
//!   Kafka-protocol implementation and an in-memory fake for tests.
//! - [`metrics`], [`leader`]: the operator process — `/metrics`, `/healthz`, Lease election.
//!
//! # Dependency rule
//! The operator talks to brokers only over the Kafka protocol (via `ironlog-client`) and to
//! Kubernetes only through kube-rs; it never links broker crates (what brokers send is checked
//! by the sans-IO `ironlog-wire` crate, through the client, before it is decoded).
//!
//! # Invariants
//! - Builders do no I/O: everything they need (capabilities, decided replica count) is passed in.
//! - Every object the operator creates carries a controller owner reference to its KafkaCluster,
//!   so Kubernetes garbage-collects it with the cluster.
//! - A broker is only restarted, and a StatefulSet only shrunk, after the cluster says it is safe;
//!   a cluster that can't be asked (unreachable, API unsupported) blocks the change with a
//!   Degraded condition instead.

pub mod admin;
pub mod controller;
pub mod crd;
pub mod leader;
pub mod metrics;
