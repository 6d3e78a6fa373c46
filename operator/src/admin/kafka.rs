//! [`Admin`] over the Kafka protocol, through `ironlog-client`. Works against any
//! Kafka-compatible cluster; the operator never links broker code.
//!
use std::collections::BTreeMap;

use futures::future::{BoxFuture, FutureExt};
use ironlog_client::{Client, ClientConfig, ClientError, ConfigSource};

use super::{
    Admin, AdminConnector, AdminError, AdminResult, ClusterMetadata, ConfigEntry, PartitionInfo,
    Reassignment, TopicInfo,
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

impl AdminConnector for KafkaConnector {
    fn connect<'a>(&'a self, bootstrap: &'a str) -> BoxFuture<'a, AdminResult<Box<dyn Admin>>> {
        let bootstrap = bootstrap.to_string();
        async move {
            let mut config = ClientConfig::new(&bootstrap)?;
            config.max_response_bytes = ADMIN_MAX_RESPONSE_BYTES;
            config.request_timeout = ADMIN_REQUEST_TIMEOUT;
            let client = Client::connect(config).await?;
            Ok(Box::new(KafkaAdmin { client }) as Box<dyn Admin>)
        }
        .boxed()
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
}
