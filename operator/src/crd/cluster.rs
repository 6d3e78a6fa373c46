use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Image used when `spec.image` is not set.
pub const DEFAULT_IMAGE: &str = "ironlog/ironlog:0.1.0";

/// A Kafka-compatible Ironlog cluster: a StatefulSet of brokers, their Services and config.
///
/// Broker ids are pod ordinals (`<name>-0` is node 0); the first `controllers` ordinals are the
/// Raft voters.
// Repeated `printcolumn(type_ = ...)` keys are separate columns, not duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "ironlog.dev",
    version = "v1alpha1",
    kind = "KafkaCluster",
    shortname = "kc",
    namespaced,
    status = "KafkaClusterStatus",
    derive = "PartialEq",
    doc = "An Ironlog (Kafka-compatible) broker cluster",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(
        name = "Under-Replicated",
        type_ = "integer",
        json_path = ".status.underReplicatedPartitions"
    ),
    printcolumn(
        name = "Reassigning",
        type_ = "integer",
        json_path = ".status.reassigningPartitions"
    ),
    printcolumn(
        name = "Lost",
        type_ = "string",
        json_path = ".status.brokers[?(@.state==\"Lost\")].nodeId"
    ),
    printcolumn(
        name = "Conditions",
        type_ = "string",
        json_path = ".status.conditions[?(@.status==\"True\")].type"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterSpec {
    /// Number of brokers.
    #[schemars(range(min = 1, max = 100))]
    pub replicas: i32,
    /// Broker container image.
    #[serde(default = "default_image")]
    pub image: String,
    /// Number of Raft voters (controllers): the first `controllers` ordinals. Defaults to
    /// min(3, replicas). Must not exceed `replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 9))]
    pub controllers: Option<i32>,
    /// Persistent storage for each broker's log directory.
    #[serde(default)]
    pub storage: StorageSpec,
    /// Compute resources of the broker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Broker configuration (`key: value`, Kafka property names). Keys the operator owns
    /// (node.id, listeners, advertised.listeners, log.dirs, controller.quorum.voters) are rejected.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Rack awareness: the node label whose value becomes each broker's rack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<RackSpec>,
    /// Overrides merged into the broker pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplateOverrides>,
    /// How long a broker's node may be unreachable before the operator treats it as lost.
    #[serde(default = "default_node_loss_timeout")]
    #[schemars(range(min = 30, max = 86400))]
    pub node_loss_timeout_seconds: i64,
    /// The listeners clients connect to. Defaults to one, `plain`: port 9092, no TLS, no
    /// authentication. As soon as a listener uses TLS or authentication, or `authorization`
    /// is set, brokers reach each other (and the operator reaches them) on an internal
    /// listener of their own, port 9091, authenticated with SCRAM-SHA-512.
    #[serde(default = "default_listeners")]
    #[schemars(length(min = 1, max = 8))]
    pub listeners: Vec<ListenerSpec>,
    /// The brokers' TLS certificate, for listeners with `tls: true`, and the CA of client
    /// certificates, for listeners with `authentication.type: tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClusterTlsSpec>,
    /// Turns Kafka's ACL authorizer on: deny by default, KafkaUsers' ACLs grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<AuthorizationSpec>,
}

fn default_listeners() -> Vec<ListenerSpec> {
    vec![ListenerSpec {
        name: "plain".to_string(),
        port: 9092,
        tls: false,
        authentication: None,
    }]
}

/// A Kafka listener clients connect to (Strimzi-style).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerSpec {
    /// Lowercase name; the Kafka listener name is its upper case (`secure` → `SECURE`).
    /// `controller` and `replication` are the operator's.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9]{0,14}$"))]
    pub name: String,
    /// Port on every broker and on the bootstrap Service. 9091, 9093 and 9644 are taken by
    /// the internal, controller and metrics listeners.
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
    /// Encrypt connections with TLS, presenting the certificate of `spec.tls.certificate`.
    #[serde(default)]
    pub tls: bool,
    /// How clients prove who they are; unset: they don't (principal `User:ANONYMOUS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<ListenerAuthentication>,
}

/// A listener's client authentication.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerAuthentication {
    #[serde(rename = "type")]
    pub type_: AuthenticationType,
}

/// How a client authenticates.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AuthenticationType {
    /// SASL SCRAM-SHA-512 with a KafkaUser's password (principal `User:<name>`).
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// A client certificate signed by `spec.tls.clientCa` (principal `User:<subject>`, e.g.
    /// `User:CN=alice`); needs `tls: true`.
    #[serde(rename = "tls")]
    Tls,
}

/// Where the brokers' certificates come from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTlsSpec {
    /// The brokers' certificate and key (PEM), e.g. the Secret cert-manager writes for a
    /// Certificate. It must name every broker (`*.NAME-brokers.NAMESPACE.svc`) and the
    /// bootstrap Service (`NAME-bootstrap.NAMESPACE.svc`). A renewed Secret is picked up
    /// without a restart.
    pub certificate: CertificateSecret,
    /// CA certificates (PEM) that client certificates must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<CaSecret>,
}

/// A certificate and its key in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSecret {
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Key of the certificate chain in the Secret.
    #[serde(default = "default_certificate_key")]
    pub certificate: String,
    /// Key of the private key in the Secret.
    #[serde(default = "default_private_key")]
    pub key: String,
}

/// CA certificates in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaSecret {
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Key of the CA certificates in the Secret.
    #[serde(default = "default_ca_key")]
    pub certificate: String,
}

fn default_certificate_key() -> String {
    "tls.crt".to_string()
}

fn default_private_key() -> String {
    "tls.key".to_string()
}

fn default_ca_key() -> String {
    "ca.crt".to_string()
}

/// Kafka's ACL authorizer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationSpec {
    #[serde(rename = "type")]
    pub type_: AuthorizationType,
    /// Principals allowed everything, as `User:admin` or `User:CN=ops`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub super_users: Vec<String>,
}

/// The authorizer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AuthorizationType {
    /// ACLs in the cluster metadata (KafkaUser `authorization.acls`), deny by default.
    #[serde(rename = "simple")]
    Simple,
}

fn default_image() -> String {
    DEFAULT_IMAGE.to_string()
}

fn default_node_loss_timeout() -> i64 {
    300
}

fn default_storage_size() -> String {
    "10Gi".to_string()
}

/// Per-broker persistent volume.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Volume size, a Kubernetes quantity such as `10Gi`.
    #[serde(default = "default_storage_size")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))]
    pub size: String,
    /// Storage class of the claims; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Delete a broker's claim when it is scaled away or the cluster is deleted.
    #[serde(default)]
    pub delete_claim: bool,
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
            delete_claim: false,
        }
    }
}

/// Rack awareness settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RackSpec {
    /// Node label used as the broker's rack, e.g. `topology.kubernetes.io/zone`.
    #[schemars(length(min = 1))]
    pub topology_key: String,
}

/// Pod template overrides.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
}

/// Observed state of a KafkaCluster, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing and Degraded.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Brokers the StatefulSet currently runs (scale subresource).
    #[serde(default)]
    pub replicas: i32,
    /// Brokers passing their readiness check.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Label selector of the broker pods (scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// `host:port` of the bootstrap Service on the first listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
    /// One entry per broker the StatefulSet runs.
    #[serde(default)]
    pub brokers: Vec<BrokerStatus>,
    /// Partitions whose ISR is smaller than their replica list (unknown when the cluster
    /// cannot be reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under_replicated_partitions: Option<i32>,
    /// Partitions with a reassignment in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassigning_partitions: Option<i32>,
    /// Where clients bootstrap, per listener.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerStatus>,
}

/// One listener's bootstrap address.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    pub name: String,
    /// Kafka's security protocol of the listener (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL).
    pub security_protocol: String,
    /// `host:port` of the bootstrap Service on this listener.
    pub bootstrap: String,
}

/// What the operator sees of one broker.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum BrokerState {
    /// Pod ready and the broker registered (not fenced).
    Ready,
    /// Pod missing or not ready yet on a healthy Node.
    Starting,
    /// Pod running, but the cluster has fenced the broker (it stopped heartbeating, or it
    /// is shutting down).
    Fenced,
    /// The broker's Node is NotReady or gone; not yet for `nodeLossTimeoutSeconds`.
    Unreachable,
    /// Fenced or unreachable for longer than `nodeLossTimeoutSeconds`: its replicas are
    /// being moved to healthy brokers.
    Lost,
    /// Being emptied before a scale-down removes it.
    Draining,
}

/// One broker as the operator sees it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatus {
    pub node_id: i32,
    pub pod: String,
    /// Advertised `host:port` on the first listener.
    pub address: String,
    pub voter: bool,
    pub state: BrokerState,
    /// The Node the pod is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Since when the broker has been fenced or its Node unreachable: the node-loss clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_since: Option<Time>,
}

impl KafkaClusterSpec {
    /// The voter count actually used: `controllers`, or min(3, replicas).
    pub fn effective_controllers(&self) -> i32 {
        self.controllers
            .unwrap_or_else(|| self.replicas.clamp(1, 3))
    }

    /// Whether any listener uses TLS or authentication, or ACLs are on: brokers and the
    /// operator then talk on an internal listener of their own, with SCRAM logins.
    pub fn secured(&self) -> bool {
        self.authorization.is_some()
            || self
                .listeners
                .iter()
                .any(|l| l.tls || l.authentication.is_some())
    }
}
