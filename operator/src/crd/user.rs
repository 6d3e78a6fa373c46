use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Kafka user of a KafkaCluster: its credential, its ACLs and its quotas. The operator
/// reconciles one way, Kubernetes → cluster; a finalizer removes all three when the resource
/// goes away.
// Repeated `printcolumn(type_ = ...)` keys are separate columns, not duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "ironlog.dev",
    version = "v1alpha1",
    kind = "KafkaUser",
    shortname = "ku",
    namespaced,
    status = "KafkaUserStatus",
    derive = "PartialEq",
    doc = "A user of an Ironlog KafkaCluster: credential, ACLs and quotas",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster"),
    printcolumn(
        name = "Authentication",
        type_ = "string",
        json_path = ".spec.authentication.type"
    ),
    printcolumn(name = "Principal", type_ = "string", json_path = ".status.principal"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserSpec {
    /// Name of the KafkaCluster in the same namespace.
    #[schemars(length(min = 1, max = 63))]
    pub cluster: String,
    /// How the user logs in. The user name is `metadata.name`.
    pub authentication: UserAuthentication,
    /// What the user may do, when the cluster has `authorization` on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<UserAuthorization>,
    /// Kafka client quotas on the user (all its client ids together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<UserQuotas>,
}

/// How the user authenticates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserAuthentication {
    #[serde(rename = "type")]
    pub type_: UserAuthenticationType,
}

/// A user's credential.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum UserAuthenticationType {
    /// A SCRAM-SHA-512 credential. The operator generates the password into a Secret named
    /// like the user (keys `username`, `password`, `sasl.mechanism`, `sasl.jaas.config`),
    /// unless that Secret exists already, whose `password` is then used (change it to rotate).
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// A client certificate whose subject is `CN=<user name>`, issued by the CA of the
    /// cluster's `spec.tls.clientCa` (e.g. by cert-manager). The operator creates no Secret.
    #[serde(rename = "tls")]
    Tls,
}

/// The user's ACLs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserAuthorization {
    /// Kafka ACLs of this user's principal. The operator owns every ACL of the principal:
    /// ACLs not listed here are removed.
    #[serde(default)]
    pub acls: Vec<AclRule>,
}

/// One ACL rule: `operations` on `resource`, allowed or denied, from `host`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclRule {
    pub resource: AclResource,
    #[schemars(length(min = 1))]
    pub operations: Vec<AclOperationName>,
    /// `allow` (the default) or `deny`; a deny beats any allow.
    #[serde(default, rename = "type")]
    pub type_: AclRuleType,
    /// Client address the rule applies to; `*` (the default) for every host.
    #[serde(default = "any_host")]
    pub host: String,
}

fn any_host() -> String {
    "*".to_string()
}

/// What an ACL rule is about.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclResource {
    #[serde(rename = "type")]
    pub type_: AclResourceType,
    /// Resource name, or `*` for all; not used for `cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `literal` (the default): the name itself; `prefix`: every name starting with it.
    #[serde(default)]
    pub pattern_type: AclPatternType,
}

/// Kafka resource types an ACL can name.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AclResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

/// How an ACL's resource name matches.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AclPatternType {
    #[default]
    Literal,
    Prefix,
}

/// Allow or deny.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AclRuleType {
    #[default]
    Allow,
    Deny,
}

/// Kafka ACL operations.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum AclOperationName {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

/// Client quotas (Kafka's `producer_byte_rate`, `consumer_byte_rate`, `request_percentage`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserQuotas {
    /// Bytes per second the user may produce, per broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub producer_byte_rate: Option<i64>,
    /// Bytes per second the user may fetch, per broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub consumer_byte_rate: Option<i64>,
    /// Percentage of one broker thread's time the user's requests may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub request_percentage: Option<i64>,
}

/// Observed state of a KafkaUser.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The Kafka principal ACLs and quotas apply to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The Secret holding the SCRAM password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `resourceVersion` of the Secret whose password the cluster has; another version is
    /// a new password to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_version: Option<String>,
}

impl KafkaUser {
    /// The Kafka user name: `metadata.name`.
    pub fn user_name(&self) -> String {
        self.name_any()
    }

    /// The principal the brokers see: `User:<name>` for SCRAM, `User:CN=<name>` for a
    /// client certificate.
    pub fn principal(&self) -> String {
        match self.spec.authentication.type_ {
            UserAuthenticationType::ScramSha512 => format!("User:{}", self.user_name()),
            UserAuthenticationType::Tls => format!("User:CN={}", self.user_name()),
        }
    }
}
