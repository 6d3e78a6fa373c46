//! [`Admin`] over the Kafka protocol, through `ironlog-client`. Works against any
//! Kafka-compatible cluster; the operator never links broker code.
//!
use std::collections::BTreeMap;

use futures::future::{BoxFuture, FutureExt};
use ironlog_client::acl::AclBindingFilter;
use ironlog_client::quotas::USER;
use ironlog_client::{
    Client, ClientConfig, ClientError, ConfigSource, SaslCredentials, SaslMechanism,
    ScramMechanism, SecurityConfig, SecurityProtocol,
};

use super::{
    check_exact_binding, AclBinding, AclOperation, AclPermission, Admin, AdminConnector,
    AdminError, AdminResult, AdminTarget, ClusterMetadata, ConfigEntry, PartitionInfo, PatternType,
    Reassignment, ResourceType, TopicInfo, RESOURCE_NOT_FOUND, SCRAM_ITERATIONS,
};

/// Connects with [`ClientConfig`] tuned for an operator: admin calls only, so responses
/// are capped at [`ADMIN_MAX_RESPONSE_BYTES`] (a decoded response takes a few times its
/// size in memory; a broken or hostile broker must not get the operator OOM-killed), and a
/// silent broker holds up a reconcile for at most [`ADMIN_REQUEST_TIMEOUT`] per call.
#[derive(Clone, Copy, Debug, Default)]
pub struct KafkaConnector;

/// Largest admin response the operator reads (metadata of ~100,000 partitions fits).
pub const ADMIN_MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Per-request timeout of the operator's admin calls.
pub const ADMIN_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// An admin session on one cluster.
pub struct KafkaAdmin {
    client: Client,
}

impl From<ClientError> for AdminError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::UnsupportedApi { api, .. } => AdminError::Unsupported {
                api: api.to_string(),
            },
            ClientError::Kafka {
                code,
                name,
                message,
                context,
            } => AdminError::Kafka {
                operation: context,
                code,
                name: name.to_string(),
                message,
            },
            e @ (ClientError::Connect { .. }
            | ClientError::NoBrokerAvailable { .. }
            | ClientError::Io { .. }
            | ClientError::Timeout { .. }
            | ClientError::InvalidAddress { .. }) => AdminError::Unreachable(e.to_string()),
            other => AdminError::Other(other.to_string()),
        }
    }
}

impl KafkaAdmin {
    /// Runs `f` on the client as a boxed future, mapping client errors.
    fn call<'a, T, Fut>(
        &'a self,
        f: impl FnOnce(&'a Client) -> Fut,
    ) -> BoxFuture<'a, AdminResult<T>>
    where
        Fut: std::future::Future<Output = Result<T, AdminError>> + Send + 'a,
    {
        f(&self.client).boxed()
    }
}

/// The client configuration of an admin session on `target`: PLAINTEXT, or SASL_PLAINTEXT
/// with a SCRAM-SHA-512 login.
///
/// # Errors
/// [`AdminError::Unreachable`] for a bootstrap list that is not `host:port[,host:port...]`.
pub fn client_config(target: &AdminTarget) -> AdminResult<ClientConfig> {
    let mut config = ClientConfig::new(&target.bootstrap)?;
    config.max_response_bytes = ADMIN_MAX_RESPONSE_BYTES;
    config.request_timeout = ADMIN_REQUEST_TIMEOUT;
    if let Some(login) = &target.login {
        config.security = SecurityConfig {
            protocol: SecurityProtocol::SaslPlaintext,
            sasl: Some(SaslCredentials {
                mechanism: SaslMechanism::Scram(ScramMechanism::Sha512),
                username: login.username.clone(),
                password: login.password.clone(),
            }),
            tls: Default::default(),
        };
    }
    Ok(config)
}

impl AdminConnector for KafkaConnector {
    fn connect<'a>(
        &'a self,
        target: &'a AdminTarget,
    ) -> BoxFuture<'a, AdminResult<Box<dyn Admin>>> {
        async move {
            let client = Client::connect(client_config(target)?).await?;
            Ok(Box::new(KafkaAdmin { client }) as Box<dyn Admin>)
        }
        .boxed()
    }
}

/// The DescribeClientQuotas / AlterClientQuotas entity `{user: user}`.
fn user_entity(user: &str) -> Vec<(String, Option<String>)> {
    vec![(USER.to_string(), Some(user.to_string()))]
}

/// The DeleteAcls filter that matches exactly `binding`.
fn exact_filter(binding: &AclBinding) -> AclBindingFilter {
    AclBindingFilter {
        resource_type: binding.resource_type,
        resource_name: Some(binding.resource_name.clone()),
        pattern_type: binding.pattern_type,
        principal: Some(binding.principal.clone()),
        host: Some(binding.host.clone()),
        operation: binding.operation,
        permission: binding.permission,
    }
}

impl Admin for KafkaAdmin {
    fn metadata(&self) -> BoxFuture<'_, AdminResult<ClusterMetadata>> {
        self.call(|c| async move {
            let meta = c.metadata(None).await?;
            let topics = meta
                .topics
                .into_iter()
                .filter(|t| t.error.is_none())
                .map(|t| {
                    let partitions = t
                        .partitions
                        .into_iter()
                        .map(|p| {
                            (
                                p.partition,
                                PartitionInfo {
                                    leader: p.leader,
                                    replicas: p.replicas,
                                    isr: p.isr,
                                },
                            )
                        })
                        .collect();
                    (t.name, TopicInfo { partitions })
                })
                .collect();
            Ok(ClusterMetadata {
                brokers: meta.brokers.iter().map(|b| b.id).collect(),
                topics,
                controller: meta.controller_id,
            })
        })
    }

    fn create_topic<'a>(
        &'a self,
        name: &'a str,
        partitions: i32,
        replication_factor: i16,
        config: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, AdminResult<()>> {
        let topic = ironlog_client::NewTopic {
            name: name.to_string(),
            num_partitions: partitions,
            replication_factor,
            configs: config.clone(),
        };
        self.call(move |c| async move { Ok(c.create_topic(&topic, false).await?) })
    }

    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AdminResult<()>> {
        let name = name.to_string();
        self.call(move |c| async move { Ok(c.delete_topic(&name).await?) })
    }

    fn create_partitions<'a>(
        &'a self,
        name: &'a str,
        total: i32,
    ) -> BoxFuture<'a, AdminResult<()>> {
        let name = name.to_string();
        self.call(move |c| async move { Ok(c.create_partitions(&name, total).await?) })
    }

    fn describe_topic_config<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, AdminResult<BTreeMap<String, ConfigEntry>>> {
        let name = name.to_string();
        self.call(move |c| async move {
            let entries = c.describe_configs(&name).await?;
            Ok(entries
                .into_iter()
                .map(|e| {
                    let is_topic_override = e.source == ConfigSource::DynamicTopicConfig;
                    (
                        e.name,
                        ConfigEntry {
                            value: e.value,
                            is_topic_override,
                        },
                    )
                })
                .collect())
        })
    }

    fn alter_topic_config<'a>(
        &'a self,
        name: &'a str,
        set: &'a BTreeMap<String, String>,
        delete: &'a [String],
    ) -> BoxFuture<'a, AdminResult<()>> {
        let (name, set, delete) = (name.to_string(), set.clone(), delete.to_vec());
        self.call(
            move |c| async move { Ok(c.incremental_alter_configs(&name, &set, &delete).await?) },
        )
    }

    fn list_reassignments(&self) -> BoxFuture<'_, AdminResult<Vec<(String, i32)>>> {
        self.call(|c| async move {
            Ok(c.list_partition_reassignments()
                .await?
                .into_iter()
                .map(|r| (r.topic, r.partition))
                .collect())
        })
    }

    fn alter_reassignments<'a>(
        &'a self,
        moves: &'a [Reassignment],
    ) -> BoxFuture<'a, AdminResult<()>> {
        let mut by_topic: BTreeMap<String, BTreeMap<i32, Option<Vec<i32>>>> = BTreeMap::new();
        for m in moves {
            by_topic
                .entry(m.topic.clone())
                .or_default()
                .insert(m.partition, Some(m.replicas.clone()));
        }
        self.call(move |c| async move {
            for (topic, partitions) in by_topic {
                for (_, result) in c.alter_partition_reassignments(&topic, &partitions).await? {
                    result?;
                }
            }
            Ok(())
        })
    }

    fn has_scram_user<'a>(&'a self, user: &'a str) -> BoxFuture<'a, AdminResult<bool>> {
        let users = vec![user.to_string()];
        self.call(move |c| async move {
            match c.describe_user_scram_credentials(Some(&users)).await {
                Ok(found) => Ok(found.iter().any(|u| {
                    u.user == users[0]
                        && u.credentials
                            .iter()
                            .any(|cred| cred.mechanism == Some(ScramMechanism::Sha512))
                })),
                Err(e) if e.code() == Some(RESOURCE_NOT_FOUND) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn upsert_scram_user<'a>(
        &'a self,
        user: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, AdminResult<()>> {
        self.call(move |c| async move {
            Ok(c.upsert_user_scram_credential(
                user,
                ScramMechanism::Sha512,
                SCRAM_ITERATIONS,
                password,
            )
            .await?)
        })
    }

    fn delete_scram_user<'a>(&'a self, user: &'a str) -> BoxFuture<'a, AdminResult<()>> {
        self.call(move |c| async move {
            match c
                .delete_user_scram_credential(user, ScramMechanism::Sha512)
                .await
            {
                Err(e) if e.code() == Some(RESOURCE_NOT_FOUND) => Ok(()),
                result => Ok(result?),
            }
        })
    }

    fn describe_acls<'a>(
        &'a self,
        principal: &'a str,
    ) -> BoxFuture<'a, AdminResult<Vec<AclBinding>>> {
        let filter = AclBindingFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: Some(principal.to_string()),
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        };
        self.call(move |c| async move {
            let mut bindings = c.describe_acls(&filter).await?;
            // The filter already says so; a broker that ignored it must not hand the
            // operator another principal's bindings to delete.
            bindings.retain(|b| b.principal == principal);
            bindings.sort();
            Ok(bindings)
        })
    }

    fn create_acls<'a>(&'a self, bindings: &'a [AclBinding]) -> BoxFuture<'a, AdminResult<()>> {
        self.call(move |c| async move {
            if bindings.is_empty() {
                return Ok(());
            }
            for (_, result) in c.create_acls(bindings).await? {
                result?;
            }
            Ok(())
        })
    }

    fn delete_acls<'a>(&'a self, bindings: &'a [AclBinding]) -> BoxFuture<'a, AdminResult<()>> {
        self.call(move |c| async move {
            if bindings.is_empty() {
                return Ok(());
            }
            let filters = bindings
                .iter()
                .map(|b| check_exact_binding(b).map(|()| exact_filter(b)))
                .collect::<AdminResult<Vec<_>>>()?;
            for result in c.delete_acls(&filters).await? {
                result?;
            }
            Ok(())
        })
    }

    fn describe_user_quotas<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, AdminResult<BTreeMap<String, f64>>> {
        self.call(move |c| async move {
            let entity = user_entity(user);
            Ok(c.describe_client_quotas(&entity, true)
                .await?
                .into_iter()
                .find(|(e, _)| e.parts == entity)
                .map(|(_, quotas)| quotas)
                .unwrap_or_default())
        })
    }

    fn alter_user_quotas<'a>(
        &'a self,
        user: &'a str,
        set: &'a BTreeMap<String, f64>,
        remove: &'a [String],
    ) -> BoxFuture<'a, AdminResult<()>> {
        self.call(move |c| async move {
            Ok(c.alter_client_quotas(&user_entity(user), set, remove)
                .await?)
        })
    }
}
