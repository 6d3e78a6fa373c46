//! The operator's view of a Kafka cluster's admin API: a small trait, the seam through which the
//! topic, user, roll and drain logic run. [`kafka::KafkaAdmin`] implements it over the Kafka
//! protocol (ironlog-client); tests use [`fake::FakeAdmin`]. [`AdminTarget`] says where a
//! cluster is and how the operator logs in to it.

pub mod fake;
pub mod kafka;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use futures::future::BoxFuture;
pub use ironlog_client::acl::{AclBinding, AclOperation, AclPermission, PatternType, ResourceType};

/// Where and how the operator reaches a cluster's admin API.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminTarget {
    /// `host:port[,host:port...]`
    pub bootstrap: String,
    /// SCRAM-SHA-512 login over SASL_PLAINTEXT; `None`: PLAINTEXT, no login.
    pub login: Option<ScramLogin>,
}

impl AdminTarget {
    /// A PLAINTEXT listener, no login.
    pub fn plaintext(bootstrap: impl Into<String>) -> AdminTarget {
        AdminTarget {
            bootstrap: bootstrap.into(),
            login: None,
        }
    }

    /// A SASL_PLAINTEXT listener, logging in as `username` with SCRAM-SHA-512.
    pub fn scram(
        bootstrap: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> AdminTarget {
        AdminTarget {
            bootstrap: bootstrap.into(),
            login: Some(ScramLogin {
                username: username.into(),
                password: password.into(),
            }),
        }
    }
}

/// Never shows the password.
impl fmt::Debug for AdminTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminTarget")
            .field("bootstrap", &self.bootstrap)
            .field("login", &self.login)
            .finish()
    }
}

/// `host:port`, or `host:port as admin` with a login: for logs and messages.
impl fmt::Display for AdminTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.bootstrap)?;
        if let Some(login) = &self.login {
            write!(f, " as {}", login.username)?;
        }
        Ok(())
    }
}

/// A SCRAM-SHA-512 login.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramLogin {
    pub username: String,
    pub password: String,
}

/// Never shows the password.
impl fmt::Debug for ScramLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramLogin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Broker node id (= pod ordinal in an operator-managed cluster).
pub type BrokerId = i32;

/// One partition as Metadata reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    pub leader: Option<BrokerId>,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
}

impl PartitionInfo {
    pub fn under_replicated(&self) -> bool {
        self.isr.len() < self.replicas.len()
    }
}

/// One topic as Metadata reports it, partitions by index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicInfo {
    pub partitions: BTreeMap<i32, PartitionInfo>,
}

impl TopicInfo {
    /// Replication factor (of partition 0; Kafka keeps it uniform per topic).
    pub fn replication_factor(&self) -> usize {
        self.partitions
            .values()
            .next()
            .map_or(0, |p| p.replicas.len())
    }
}

/// What Metadata tells about the whole cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// Registered brokers that are not fenced (Metadata lists only those).
    pub brokers: BTreeSet<BrokerId>,
    pub topics: BTreeMap<String, TopicInfo>,
    /// The active controller (in Ironlog, the metadata quorum's Raft leader), when known.
    pub controller: Option<BrokerId>,
}

impl ClusterMetadata {
    /// Every partition, as `(topic, index, info)`.
    pub fn partitions(&self) -> impl Iterator<Item = (&str, i32, &PartitionInfo)> {
        self.topics.iter().flat_map(|(t, info)| {
            info.partitions
                .iter()
                .map(move |(i, p)| (t.as_str(), *i, p))
        })
    }

    /// Partitions whose ISR is smaller than their replica list.
    pub fn under_replicated(&self) -> usize {
        self.partitions()
            .filter(|(_, _, p)| p.under_replicated())
            .count()
    }
}

/// A topic config entry as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    pub value: Option<String>,
    /// Set on the topic itself (not a broker or built-in default).
    pub is_topic_override: bool,
}

/// A new replica list for one partition.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<BrokerId>,
}

/// Admin failures, classified for the controllers' decisions.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The cluster does not offer the API: the operator refuses the action (NotSupported).
    #[error("the cluster does not support the {api} API")]
    Unsupported { api: String },
    /// The cluster answered with a Kafka error.
    #[error("{operation}: {name} (Kafka error {code}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        operation: String,
        code: i16,
        name: String,
        message: Option<String>,
    },
    /// No broker could be reached or the connection broke.
    #[error("cluster unreachable: {0}")]
    Unreachable(String),
    /// Anything else (protocol errors, invalid arguments).
    #[error("{0}")]
    Other(String),
}

/// Kafka error code UNKNOWN_TOPIC_OR_PARTITION.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// Kafka error code RESOURCE_NOT_FOUND (e.g. deleting a SCRAM credential a user lacks).
pub const RESOURCE_NOT_FOUND: i16 = 91;

impl AdminError {
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            AdminError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// The Kafka admin operations the operator needs. Object-safe so controllers can hold
/// `Arc<dyn Admin>`.
pub trait Admin: Send + Sync {
    /// Brokers and every topic with leader, replicas and ISR.
    fn metadata(&self) -> BoxFuture<'_, AdminResult<ClusterMetadata>>;
    fn create_topic<'a>(
        &'a self,
        name: &'a str,
        partitions: i32,
        replication_factor: i16,
        config: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, AdminResult<()>>;
    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AdminResult<()>>;
    /// Grows the topic to `total` partitions.
    fn create_partitions<'a>(&'a self, name: &'a str, total: i32)
        -> BoxFuture<'a, AdminResult<()>>;
    fn describe_topic_config<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, AdminResult<BTreeMap<String, ConfigEntry>>>;
    /// Sets `set` and removes the overrides named in `delete` (IncrementalAlterConfigs).
    fn alter_topic_config<'a>(
        &'a self,
        name: &'a str,
        set: &'a BTreeMap<String, String>,
        delete: &'a [String],
    ) -> BoxFuture<'a, AdminResult<()>>;
    /// Partitions with a reassignment in progress.
    fn list_reassignments(&self) -> BoxFuture<'_, AdminResult<Vec<(String, i32)>>>;
    fn alter_reassignments<'a>(
        &'a self,
        moves: &'a [Reassignment],
    ) -> BoxFuture<'a, AdminResult<()>>;

    /// Whether `user` has a SCRAM-SHA-512 credential.
    fn has_scram_user<'a>(&'a self, user: &'a str) -> BoxFuture<'a, AdminResult<bool>>;
    /// Creates or replaces `user`'s SCRAM-SHA-512 credential from `password`
    /// ([`SCRAM_ITERATIONS`] rounds).
    fn upsert_scram_user<'a>(
        &'a self,
        user: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, AdminResult<()>>;
    /// Deletes `user`'s SCRAM-SHA-512 credential; `Ok(())` when it had none.
    fn delete_scram_user<'a>(&'a self, user: &'a str) -> BoxFuture<'a, AdminResult<()>>;
    /// Every ACL binding whose principal is exactly `principal` (e.g. `User:alice`), sorted.
    fn describe_acls<'a>(
        &'a self,
        principal: &'a str,
    ) -> BoxFuture<'a, AdminResult<Vec<AclBinding>>>;
    /// Creates the bindings; the first binding the cluster refuses is the error.
    fn create_acls<'a>(&'a self, bindings: &'a [AclBinding]) -> BoxFuture<'a, AdminResult<()>>;
    /// Deletes exactly these bindings (one exact filter per binding, never a wildcard); a
    /// binding that does not exist is no error. Bindings holding an ANY, MATCH or UNKNOWN
    /// value are refused ([`AdminError::Other`]) before anything is sent.
    fn delete_acls<'a>(&'a self, bindings: &'a [AclBinding]) -> BoxFuture<'a, AdminResult<()>>;
    /// The quotas set on exactly the entity `{user: user}` (not on `user` + a client id, nor
    /// the defaults that may apply to it), by key; empty when none.
    fn describe_user_quotas<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, AdminResult<BTreeMap<String, f64>>>;
    /// Sets `set` and removes the keys in `remove` on the entity `{user: user}`.
    fn alter_user_quotas<'a>(
        &'a self,
        user: &'a str,
        set: &'a BTreeMap<String, f64>,
        remove: &'a [String],
    ) -> BoxFuture<'a, AdminResult<()>>;
}

/// PBKDF2 rounds of the SCRAM credentials the operator creates: the `ironlog users create`
/// default (Kafka's minimum).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// Whether `binding` names one binding: no ANY, MATCH or UNKNOWN value, which a delete
/// filter would widen to many. `Err` says which value.
pub fn check_exact_binding(binding: &AclBinding) -> AdminResult<()> {
    let wildcard = if matches!(
        binding.resource_type,
        ResourceType::Any | ResourceType::Unknown
    ) {
        Some(binding.resource_type.name())
    } else if !matches!(
        binding.pattern_type,
        PatternType::Literal | PatternType::Prefixed
    ) {
        Some(binding.pattern_type.name())
    } else if matches!(binding.operation, AclOperation::Any | AclOperation::Unknown) {
        Some(binding.operation.name())
    } else if matches!(
        binding.permission,
        AclPermission::Any | AclPermission::Unknown
    ) {
        Some(binding.permission.name())
    } else {
        None
    };
    match wildcard {
        None => Ok(()),
        Some(value) => Err(AdminError::Other(format!(
            "cannot delete ACL {}: {value} is a filter value, not a binding's",
            ironlog_client::acl::describe_binding(binding)
        ))),
    }
}

/// Opens admin connections; the controllers call it once per reconcile.
pub trait AdminConnector: Send + Sync {
    fn connect<'a>(&'a self, target: &'a AdminTarget)
        -> BoxFuture<'a, AdminResult<Box<dyn Admin>>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_print_the_user_but_never_the_password() {
        let plain = AdminTarget::plaintext("kafka-0:9092,kafka-1:9092");
        assert_eq!(plain.to_string(), "kafka-0:9092,kafka-1:9092");
        assert_eq!(plain.login, None);

        let secured = AdminTarget::scram("kafka:9094", "ironlog-operator", "s3cret-pw");
        assert_eq!(secured.to_string(), "kafka:9094 as ironlog-operator");
        let debug = format!("{secured:?} {:?}", secured.login);
        assert!(debug.contains("ironlog-operator"), "{debug}");
        assert!(debug.contains("kafka:9094"), "{debug}");
        assert!(!debug.contains("s3cret-pw"), "{debug}");
        assert_ne!(
            secured,
            AdminTarget::scram("kafka:9094", "ironlog-operator", "other")
        );
    }

    #[test]
    fn only_bindings_without_filter_values_are_exact() {
        let exact = AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: PatternType::Prefixed,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        };
        assert!(check_exact_binding(&exact).is_ok());
        let widened = [
            AclBinding {
                resource_type: ResourceType::Any,
                ..exact.clone()
            },
            AclBinding {
                pattern_type: PatternType::Match,
                ..exact.clone()
            },
            AclBinding {
                pattern_type: PatternType::Any,
                ..exact.clone()
            },
            AclBinding {
                operation: AclOperation::Any,
                ..exact.clone()
            },
            AclBinding {
                permission: AclPermission::Unknown,
                ..exact.clone()
            },
        ];
        for b in widened {
            let err = check_exact_binding(&b).unwrap_err();
            assert!(matches!(err, AdminError::Other(_)), "{err}");
        }
    }
}
