//! The controllers. A KafkaCluster reconcile reads as named phases:
//! [`validate`] (pure) → [`build`] (pure) → [`apply`] (server-side apply, ConfigMap and
//! Services before the StatefulSet) → [`status`] (conditions with observedGeneration).
//! Safe broker changes (roll, scale) live in [`rollout`]; topics in [`topic`].

pub mod access;
pub mod apply;
pub mod build;
pub mod cluster;
pub mod health;
pub mod rollout;
pub mod status;
pub mod topic;
pub mod user;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource};

use crate::admin::{Admin, AdminConnector, AdminError, AdminTarget};
use crate::crd::BOOTSTRAP_OVERRIDE_ANNOTATION;
use crate::metrics::Metrics;
use build::Capabilities;

/// The single field manager for every server-side apply and status patch.
pub const FIELD_MANAGER: &str = "ironlog-operator";

/// Shared state of both controllers.
pub struct Context {
    pub client: Client,
    pub caps: Capabilities,
    pub admin: Arc<dyn AdminConnector>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// Honour [`BOOTSTRAP_OVERRIDE_ANNOTATION`] (tests only).
    pub allow_bootstrap_override: bool,
}

impl Context {
    /// The override address from the object's annotation, when overrides are allowed.
    pub fn bootstrap_override<K: Resource>(&self, obj: &K) -> Option<String> {
        if !self.allow_bootstrap_override {
            return None;
        }
        obj.meta()
            .annotations
            .as_ref()?
            .get(BOOTSTRAP_OVERRIDE_ANNOTATION)
            .cloned()
    }

    /// Connects to a cluster's admin API, bounded in time.
    pub async fn connect_admin(&self, target: &AdminTarget) -> Result<Box<dyn Admin>, AdminError> {
        match tokio::time::timeout(Duration::from_secs(10), self.admin.connect(target)).await {
            Ok(r) => r,
            Err(_) => Err(AdminError::Unreachable(format!(
                "connecting to {target} timed out after 10s"
            ))),
        }
    }

    /// Publishes a Kubernetes Event on `obj`; failures are logged, never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        self.event_about(obj, type_, reason, note, None).await
    }

    /// An Event on `obj` about a `related` object (e.g. the broker pod restarted). The recorder
    /// folds repeated Events with the same type, reason and objects into one series (keeping
    /// the first note), so per-broker Events name their pod to stay apart.
    pub async fn event_about<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        note: String,
        related: Option<ObjectReference>,
    ) {
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: reason.to_string(),
            secondary: related,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }
}

/// Reconcile failures. Each carries what was being done.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: {source}")]
    Kube {
        op: String,
        #[source]
        source: kube::Error,
    },
    #[error("Kafka admin: {0}")]
    Admin(#[from] AdminError),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("object has no namespace")]
    MissingNamespace,
    #[error("the operating system's random source failed")]
    Random,
    #[error("{0}")]
    Invalid(String),
    #[error("serializing {what}: {source}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Low-cardinality label for the failures metric.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Admin(_) => "kafka_admin",
            Error::Finalizer(_) => "finalizer",
            Error::MissingNamespace => "no_namespace",
            Error::Random => "random",
            Error::Invalid(_) => "invalid",
            Error::Serialize { .. } => "serialize",
        }
    }
}

/// Shorthand for wrapping a kube error with the operation it failed.
pub(crate) fn kube_err(op: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let op = op.into();
    move |source| Error::Kube { op, source }
}
