//! Pure builders: KafkaCluster (+ decisions made elsewhere) in, Kubernetes objects out. No I/O.
//!
//! Naming, for a KafkaCluster `NAME` in namespace `NS`:
//! - StatefulSet `NAME`, pods `NAME-<ordinal>`; broker node id = ordinal.
//! - headless Service `NAME-brokers` (per-broker DNS `NAME-<ordinal>.NAME-brokers.NS.svc`).
//! - bootstrap Service `NAME-bootstrap` (`NAME-bootstrap.NS.svc:9092`).
//! - ConfigMap `NAME-config`, ServiceAccount `NAME-broker`, PodDisruptionBudget `NAME`.

mod config_map;
mod listeners;
mod pdb;
mod service_account;
mod services;
mod statefulset;

pub use config_map::{build_config_map, config_hash, BrokerConfig, PROPERTIES_FILE};
pub use listeners::{
    broker_listeners, inter_broker_listener, security_protocol, BrokerListener, BROKER_USER,
    INTERNAL_LISTENER, OPERATOR_USER, SCRAM_MECHANISM,
};
pub use pdb::build_pdb;
pub use service_account::build_service_account;
pub use services::{build_bootstrap_service, build_headless_service};
pub use statefulset::build_statefulset;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::crd::KafkaCluster;

pub const KAFKA_PORT: i32 = 9092;
/// The internal listener of a secured cluster (see [`listeners`]).
pub const INTERNAL_PORT: i32 = 9091;
pub const CONTROLLER_PORT: i32 = 9093;
pub const METRICS_PORT: i32 = 9644;
pub const DATA_DIR: &str = "/var/lib/ironlog";
pub const CONFIG_DIR: &str = "/etc/ironlog";
/// Where the brokers' certificate Secret is mounted.
pub const TLS_DIR: &str = "/var/run/ironlog/tls";
/// Where the client CA Secret is mounted.
pub const CLIENT_CA_DIR: &str = "/var/run/ironlog/client-ca";

/// What the API server offers, discovered at startup; builders adapt to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// `policy/v1` PodDisruptionBudget served (Kubernetes >= 1.21); otherwise `policy/v1beta1`.
    pub pdb_v1: bool,
    /// StatefulSet `persistentVolumeClaimRetentionPolicy` understood (Kubernetes >= 1.27).
    pub pvc_retention_policy: bool,
}

impl Capabilities {
    /// What any currently supported Kubernetes offers.
    pub const MODERN: Capabilities = Capabilities {
        pdb_v1: true,
        pvc_retention_policy: true,
    };
}

/// Resource names derived from the cluster name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub cluster: String,
    pub namespace: String,
}

impl Names {
    pub fn of(kc: &KafkaCluster) -> Self {
        Self {
            cluster: kc.name_any(),
            namespace: kc.namespace().unwrap_or_else(|| "default".into()),
        }
    }
    pub fn statefulset(&self) -> String {
        self.cluster.clone()
    }
    pub fn headless_service(&self) -> String {
        format!("{}-brokers", self.cluster)
    }
    pub fn bootstrap_service(&self) -> String {
        format!("{}-bootstrap", self.cluster)
    }
    pub fn config_map(&self) -> String {
        format!("{}-config", self.cluster)
    }
    pub fn service_account(&self) -> String {
        format!("{}-broker", self.cluster)
    }
    /// Secret with the passwords of the internal users ([`BROKER_USER`], [`OPERATOR_USER`]).
    pub fn internal_users_secret(&self) -> String {
        format!("{}-internal-users", self.cluster)
    }
    pub fn pdb(&self) -> String {
        self.cluster.clone()
    }
    pub fn pod(&self, ordinal: i32) -> String {
        format!("{}-{ordinal}", self.cluster)
    }
    /// Stable DNS name of one broker pod.
    pub fn broker_host(&self, ordinal: i32) -> String {
        format!(
            "{}.{}.{}.svc",
            self.pod(ordinal),
            self.headless_service(),
            self.namespace
        )
    }
    /// `host:port` of the bootstrap Service on `port`.
    pub fn bootstrap_on(&self, port: i32) -> String {
        format!("{}.{}.svc:{port}", self.bootstrap_service(), self.namespace)
    }
    /// `--voters` value: `0@NAME-0...:9093,1@...` for the first `controllers` ordinals.
    pub fn voters(&self, controllers: i32) -> String {
        (0..controllers)
            .map(|id| format!("{id}@{}:{CONTROLLER_PORT}", self.broker_host(id)))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Labels selecting one cluster's broker pods.
pub fn selector_labels(kc: &KafkaCluster) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "ironlog".to_string()),
        ("app.kubernetes.io/instance".to_string(), kc.name_any()),
        (
            "app.kubernetes.io/component".to_string(),
            "broker".to_string(),
        ),
    ])
}

/// Selector labels as the string form the scale subresource reports.
pub fn selector_string(kc: &KafkaCluster) -> String {
    selector_labels(kc)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Labels on every object the operator creates.
pub fn labels(kc: &KafkaCluster) -> BTreeMap<String, String> {
    let mut l = selector_labels(kc);
    l.insert(
        "app.kubernetes.io/managed-by".to_string(),
        "ironlog-operator".to_string(),
    );
    l
}

/// Metadata for an owned object: name, namespace, labels, controller owner reference.
pub(crate) fn owned_meta(kc: &KafkaCluster, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: kc.namespace(),
        labels: Some(labels(kc)),
        owner_references: Some(vec![owner_ref(kc)]),
        ..ObjectMeta::default()
    }
}

fn owner_ref(kc: &KafkaCluster) -> OwnerReference {
    OwnerReference {
        api_version: KafkaCluster::api_version(&()).into_owned(),
        kind: KafkaCluster::kind(&()).into_owned(),
        name: kc.name_any(),
        uid: kc.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::crd::KafkaClusterSpec;

    pub fn cluster(replicas: i32) -> KafkaCluster {
        let spec: KafkaClusterSpec =
            serde_json::from_value(serde_json::json!({ "replicas": replicas })).unwrap();
        let mut kc = KafkaCluster::new("events", spec);
        kc.metadata.namespace = Some("prod".into());
        kc.metadata.uid = Some("uid-1".into());
        kc.metadata.generation = Some(3);
        kc
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::cluster;
    use super::*;

    #[test]
    fn names_and_voters() {
        let n = Names::of(&cluster(3));
        assert_eq!(n.broker_host(1), "events-1.events-brokers.prod.svc");
        assert_eq!(n.bootstrap_on(9092), "events-bootstrap.prod.svc:9092");
        assert_eq!(
            n.voters(2),
            "0@events-0.events-brokers.prod.svc:9093,1@events-1.events-brokers.prod.svc:9093"
        );
    }

    #[test]
    fn owned_meta_points_at_the_cluster_as_controller() {
        let meta = owned_meta(&cluster(1), "x".into());
        let owner = &meta.owner_references.unwrap()[0];
        assert_eq!(owner.kind, "KafkaCluster");
        assert_eq!(owner.api_version, "ironlog.dev/v1alpha1");
        assert_eq!(owner.uid, "uid-1");
        assert_eq!(owner.controller, Some(true));
        assert_eq!(meta.namespace.as_deref(), Some("prod"));
        assert_eq!(
            meta.labels.unwrap()["app.kubernetes.io/managed-by"],
            "ironlog-operator"
        );
    }

    #[test]
    fn selector_string_is_sorted_and_complete() {
        assert_eq!(
            selector_string(&cluster(1)),
            "app.kubernetes.io/component=broker,app.kubernetes.io/instance=events,app.kubernetes.io/name=ironlog"
        );
    }
}
