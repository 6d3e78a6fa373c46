//! An in-memory [`Admin`] for unit tests: a cluster of brokers and topics whose reassignments
//! complete when the test says so.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt};

use super::{
    Admin, AdminConnector, AdminError, AdminResult, BrokerId, ClusterMetadata, ConfigEntry,
    PartitionInfo, Reassignment, TopicInfo, UNKNOWN_TOPIC_OR_PARTITION,
};

/// State of the fake cluster; tests read and edit it directly.
#[derive(Debug, Default)]
pub struct FakeState {
    pub metadata: ClusterMetadata,
    pub configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Reassignments accepted but not yet completed.
    pub pending: Vec<Reassignment>,
    /// API names answered with [`AdminError::Unsupported`].
    pub unsupported: Vec<&'static str>,
    /// Every mutating call, in order, for assertions.
    pub calls: Vec<String>,
}

/// A fake cluster. Cloning shares the state (std Mutex: never held across an await).
#[derive(Clone, Debug, Default)]
pub struct FakeAdmin {
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeAdmin {
    pub fn with_brokers(ids: impl IntoIterator<Item = BrokerId>) -> Self {
        let fake = Self::default();
        fake.state.lock().unwrap().metadata.brokers = ids.into_iter().collect();
        fake
    }

    /// Adds a topic whose partition `p` has the given replicas, all in sync.
    pub fn add_topic(&self, name: &str, assignment: &[&[BrokerId]]) {
        let partitions = assignment
            .iter()
            .enumerate()
            .map(|(p, replicas)| {
                let info = PartitionInfo {
                    leader: replicas.first().copied(),
                    replicas: replicas.to_vec(),
                    isr: replicas.to_vec(),
                };
                (p as i32, info)
            })
            .collect();
        self.state
            .lock()
            .unwrap()
            .metadata
            .topics
            .insert(name.to_string(), TopicInfo { partitions });
    }

    /// Completes every pending reassignment.
    pub fn complete_reassignments(&self) {
        let mut s = self.state.lock().unwrap();
        for r in std::mem::take(&mut s.pending) {
            if let Some(p) = s
                .metadata
                .topics
                .get_mut(&r.topic)
                .and_then(|t| t.partitions.get_mut(&r.partition))
            {
                p.replicas = r.replicas.clone();
                p.isr = r.replicas.clone();
                p.leader = r.replicas.first().copied();
            }
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    fn check(&self, api: &'static str) -> AdminResult<()> {
        if self.state.lock().unwrap().unsupported.contains(&api) {
            return Err(AdminError::Unsupported {
                api: api.to_string(),
            });
        }
        Ok(())
    }
}

fn unknown(name: &str) -> AdminError {
    AdminError::Kafka {
        operation: format!("topic {name}"),
        code: UNKNOWN_TOPIC_OR_PARTITION,
        name: "UNKNOWN_TOPIC_OR_PARTITION".into(),
        message: None,
    }
}

impl Admin for FakeAdmin {
    fn metadata(&self) -> BoxFuture<'_, AdminResult<ClusterMetadata>> {
        async move {
            self.check("Metadata")?;
            Ok(self.state.lock().unwrap().metadata.clone())
        }
        .boxed()
    }

    fn create_topic<'a>(
        &'a self,
        name: &'a str,
        partitions: i32,
        replication_factor: i16,
        config: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, AdminResult<()>> {
        async move {
            self.check("CreateTopics")?;
            let brokers: Vec<_> = self
                .state
                .lock()
                .unwrap()
                .metadata
                .brokers
                .iter()
                .copied()
                .collect();
            let rf = replication_factor as usize;
            let assignment: Vec<Vec<BrokerId>> = (0..partitions as usize)
                .map(|p| (0..rf).map(|r| brokers[(p + r) % brokers.len()]).collect())
                .collect();
            let refs: Vec<&[BrokerId]> = assignment.iter().map(Vec::as_slice).collect();
            self.add_topic(name, &refs);
            let mut s = self.state.lock().unwrap();
            s.configs.insert(name.to_string(), config.clone());
            s.calls.push(format!(
                "create_topic {name} {partitions} {replication_factor}"
            ));
            Ok(())
        }
        .boxed()
    }

    fn delete_topic<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AdminResult<()>> {
        async move {
            self.check("DeleteTopics")?;
            let mut s = self.state.lock().unwrap();
            s.metadata
                .topics
                .remove(name)
                .ok_or_else(|| unknown(name))?;
            s.calls.push(format!("delete_topic {name}"));
            Ok(())
        }
        .boxed()
    }

    fn create_partitions<'a>(
        &'a self,
        name: &'a str,
        total: i32,
    ) -> BoxFuture<'a, AdminResult<()>> {
        async move {
            self.check("CreatePartitions")?;
            let mut s = self.state.lock().unwrap();
            let topic = s
                .metadata
                .topics
                .get_mut(name)
                .ok_or_else(|| unknown(name))?;
            let template = topic
                .partitions
                .values()
                .next()
                .cloned()
                .ok_or_else(|| unknown(name))?;
            for p in topic.partitions.len() as i32..total {
                topic.partitions.insert(p, template.clone());
            }
            s.calls.push(format!("create_partitions {name} {total}"));
            Ok(())
        }
        .boxed()
    }

    fn describe_topic_config<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, AdminResult<BTreeMap<String, ConfigEntry>>> {
        async move {
            self.check("DescribeConfigs")?;
            let s = self.state.lock().unwrap();
            let config = s.configs.get(name).ok_or_else(|| unknown(name))?;
            let mut out: BTreeMap<String, ConfigEntry> = config
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        ConfigEntry {
                            value: Some(v.clone()),
                            is_topic_override: true,
                        },
                    )
                })
                .collect();
            out.entry("cleanup.policy".into()).or_insert(ConfigEntry {
                value: Some("delete".into()),
                is_topic_override: false,
            });
            Ok(out)
        }
        .boxed()
    }

    fn alter_topic_config<'a>(
        &'a self,
        name: &'a str,
        set: &'a BTreeMap<String, String>,
        delete: &'a [String],
    ) -> BoxFuture<'a, AdminResult<()>> {
        async move {
            self.check("IncrementalAlterConfigs")?;
            let mut s = self.state.lock().unwrap();
            let config = s.configs.get_mut(name).ok_or_else(|| unknown(name))?;
            config.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
            for k in delete {
                config.remove(k);
            }
            s.calls.push(format!(
                "alter_topic_config {name} set={set:?} delete={delete:?}"
            ));
            Ok(())
        }
        .boxed()
    }

    fn list_reassignments(&self) -> BoxFuture<'_, AdminResult<Vec<(String, i32)>>> {
        async move {
            self.check("ListPartitionReassignments")?;
            Ok(self
                .state
                .lock()
                .unwrap()
                .pending
                .iter()
                .map(|r| (r.topic.clone(), r.partition))
                .collect())
        }
        .boxed()
    }

    fn alter_reassignments<'a>(
        &'a self,
        moves: &'a [Reassignment],
    ) -> BoxFuture<'a, AdminResult<()>> {
        async move {
            self.check("AlterPartitionReassignments")?;
            let mut s = self.state.lock().unwrap();
            for m in moves {
                s.calls.push(format!(
                    "reassign {}-{} {:?}",
                    m.topic, m.partition, m.replicas
                ));
            }
            s.pending.extend(moves.iter().cloned());
            Ok(())
        }
        .boxed()
    }
}

impl AdminConnector for FakeAdmin {
    fn connect<'a>(&'a self, _bootstrap: &'a str) -> BoxFuture<'a, AdminResult<Box<dyn Admin>>> {
        async move { Ok(Box::new(self.clone()) as Box<dyn Admin>) }.boxed()
    }
}
