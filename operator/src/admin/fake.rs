//! An in-memory [`Admin`] for unit tests: a cluster of brokers and topics whose reassignments
//! complete when the test says so, with SCRAM users, ACLs and user quotas.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt};
use ironlog_client::acl::describe_binding;

use super::{
    check_exact_binding, AclBinding, Admin, AdminConnector, AdminError, AdminResult, AdminTarget,
    BrokerId, ClusterMetadata, ConfigEntry, PartitionInfo, Reassignment, TopicInfo,
    UNKNOWN_TOPIC_OR_PARTITION,
};

/// Kafka error code INVALID_REQUEST.
const INVALID_REQUEST: i16 = 42;

/// State of the fake cluster; tests read and edit it directly.
#[derive(Debug, Default)]
pub struct FakeState {
    pub metadata: ClusterMetadata,
    pub configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Reassignments accepted but not yet completed.
    pub pending: Vec<Reassignment>,
    /// API names answered with [`AdminError::Unsupported`].
    pub unsupported: Vec<&'static str>,
    /// Every mutating call, in order, for assertions (never a password).
    pub calls: Vec<String>,
    /// SCRAM-SHA-512 credentials: user → password.
    pub scram_users: BTreeMap<String, String>,
    pub acls: BTreeSet<AclBinding>,
    /// Quotas of the entities `{user: name}`: user → key → value.
    pub quotas: BTreeMap<String, BTreeMap<String, f64>>,
    /// Every target the connector was asked for, in order.
    pub targets: Vec<AdminTarget>,
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

fn invalid(operation: String, message: String) -> AdminError {
    AdminError::Kafka {
        operation,
        code: INVALID_REQUEST,
        name: "INVALID_REQUEST".into(),
        message: Some(message),
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

    fn has_scram_user<'a>(&'a self, user: &'a str) -> BoxFuture<'a, AdminResult<bool>> {
        async move {
            self.check("DescribeUserScramCredentials")?;
            Ok(self.state.lock().unwrap().scram_users.contains_key(user))
        }
        .boxed()
    }

    fn upsert_scram_user<'a>(
        &'a self,
        user: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, AdminResult<()>> {
        async move {
            self.check("AlterUserScramCredentials")?;
            if user.is_empty() || password.is_empty() {
                return Err(AdminError::Other(
                    "invalid argument: empty user name or password".into(),
                ));
            }
            let mut s = self.state.lock().unwrap();
            s.scram_users.insert(user.to_string(), password.to_string());
            s.calls.push(format!("upsert_scram_user {user}"));
            Ok(())
        }
        .boxed()
    }

    fn delete_scram_user<'a>(&'a self, user: &'a str) -> BoxFuture<'a, AdminResult<()>> {
        async move {
            self.check("AlterUserScramCredentials")?;
            let mut s = self.state.lock().unwrap();
            s.scram_users.remove(user);
            s.calls.push(format!("delete_scram_user {user}"));
            Ok(())
        }
        .boxed()
    }

    fn describe_acls<'a>(
        &'a self,
        principal: &'a str,
    ) -> BoxFuture<'a, AdminResult<Vec<AclBinding>>> {
        async move {
            self.check("DescribeAcls")?;
            let s = self.state.lock().unwrap();
            Ok(s.acls
                .iter()
                .filter(|b| b.principal == principal)
                .cloned()
                .collect())
        }
        .boxed()
    }

    fn create_acls<'a>(&'a self, bindings: &'a [AclBinding]) -> BoxFuture<'a, AdminResult<()>> {
        async move {
            self.check("CreateAcls")?;
            let mut s = self.state.lock().unwrap();
            for b in bindings {
                check_exact_binding(b).map_err(|e| {
                    invalid(format!("create ACL {}", describe_binding(b)), e.to_string())
                })?;
                s.acls.insert(b.clone());
                s.calls.push(format!("create_acl {}", describe_binding(b)));
            }
            Ok(())
        }
        .boxed()
    }

    fn delete_acls<'a>(&'a self, bindings: &'a [AclBinding]) -> BoxFuture<'a, AdminResult<()>> {
        async move {
            self.check("DeleteAcls")?;
            bindings.iter().try_for_each(check_exact_binding)?;
            let mut s = self.state.lock().unwrap();
            for b in bindings {
                s.acls.remove(b);
                s.calls.push(format!("delete_acl {}", describe_binding(b)));
            }
            Ok(())
        }
        .boxed()
    }

    fn describe_user_quotas<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, AdminResult<BTreeMap<String, f64>>> {
        async move {
            self.check("DescribeClientQuotas")?;
            let s = self.state.lock().unwrap();
            Ok(s.quotas.get(user).cloned().unwrap_or_default())
        }
        .boxed()
    }

    fn alter_user_quotas<'a>(
        &'a self,
        user: &'a str,
        set: &'a BTreeMap<String, f64>,
        remove: &'a [String],
    ) -> BoxFuture<'a, AdminResult<()>> {
        async move {
            self.check("AlterClientQuotas")?;
            if let Some(key) = remove.iter().find(|k| set.contains_key(*k)) {
                return Err(AdminError::Other(format!(
                    "invalid argument: quota {key} of user={user} is both set and removed"
                )));
            }
            if let Some((key, value)) = set.iter().find(|(_, v)| !(v.is_finite() && **v > 0.0)) {
                return Err(invalid(
                    format!("alter client quotas of user={user}"),
                    format!("quota {key} must be a number above 0, got {value}"),
                ));
            }
            let mut s = self.state.lock().unwrap();
            let quotas = s.quotas.entry(user.to_string()).or_default();
            quotas.extend(set.iter().map(|(k, v)| (k.clone(), *v)));
            for k in remove {
                quotas.remove(k);
            }
            if quotas.is_empty() {
                s.quotas.remove(user);
            }
            s.calls.push(format!(
                "alter_user_quotas {user} set={set:?} remove={remove:?}"
            ));
            Ok(())
        }
        .boxed()
    }
}

impl AdminConnector for FakeAdmin {
    fn connect<'a>(
        &'a self,
        target: &'a AdminTarget,
    ) -> BoxFuture<'a, AdminResult<Box<dyn Admin>>> {
        async move {
            self.state.lock().unwrap().targets.push(target.clone());
            Ok(Box::new(self.clone()) as Box<dyn Admin>)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{AclOperation, AclPermission, PatternType, ResourceType};

    #[tokio::test]
    async fn users_acls_and_quotas_are_kept_and_recorded() {
        let fake = FakeAdmin::default();
        let target = AdminTarget::scram("kafka:9094", "op", "pw");
        let admin = fake.connect(&target).await.unwrap();
        assert_eq!(fake.state.lock().unwrap().targets, vec![target]);

        admin.upsert_scram_user("alice", "pw1").await.unwrap();
        assert!(admin.has_scram_user("alice").await.unwrap());
        admin.delete_scram_user("alice").await.unwrap();
        admin.delete_scram_user("alice").await.unwrap();
        assert!(!admin.has_scram_user("alice").await.unwrap());

        let read = AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        };
        let bobs = AclBinding {
            principal: "User:bob".into(),
            ..read.clone()
        };
        admin
            .create_acls(&[read.clone(), bobs.clone()])
            .await
            .unwrap();
        assert_eq!(
            admin.describe_acls("User:alice").await.unwrap(),
            std::slice::from_ref(&read)
        );
        admin
            .delete_acls(std::slice::from_ref(&read))
            .await
            .unwrap();
        assert_eq!(admin.describe_acls("User:alice").await.unwrap(), []);
        assert_eq!(admin.describe_acls("User:bob").await.unwrap(), [bobs]);

        let set = BTreeMap::from([("producer_byte_rate".to_string(), 1024.0)]);
        admin.alter_user_quotas("alice", &set, &[]).await.unwrap();
        assert_eq!(admin.describe_user_quotas("alice").await.unwrap(), set);
        admin
            .alter_user_quotas("alice", &BTreeMap::new(), &["producer_byte_rate".into()])
            .await
            .unwrap();
        assert!(fake.state.lock().unwrap().quotas.is_empty());

        assert_eq!(
            fake.calls(),
            [
                "upsert_scram_user alice",
                "delete_scram_user alice",
                "delete_scram_user alice",
                "create_acl ALLOW User:alice READ on TOPIC orders (LITERAL) from *",
                "create_acl ALLOW User:bob READ on TOPIC orders (LITERAL) from *",
                "delete_acl ALLOW User:alice READ on TOPIC orders (LITERAL) from *",
                "alter_user_quotas alice set={\"producer_byte_rate\": 1024.0} remove=[]",
                "alter_user_quotas alice set={} remove=[\"producer_byte_rate\"]",
            ]
        );
        assert!(
            !fake.calls().iter().any(|c| c.contains("pw1")),
            "passwords stay out of the call log"
        );
    }
}
