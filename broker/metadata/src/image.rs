//! The metadata image: everything the cluster agrees on, at one point of the metadata log.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acl::AclBinding;
use crate::quota::{ClientQuotaEntity, QuotaValue};
use crate::security::{ScramCredential, ScramMechanism};

/// A Kafka broker id (`--node-id`).
pub type BrokerId = i32;

/// "No leader" in a partition's `leader` field, as in Kafka's metadata.
pub const NO_LEADER: BrokerId = -1;

/// One advertised listener of a broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    /// Upper-case, as Kafka compares listener names.
    pub name: String,
    pub host: String,
    pub port: i32,
}

impl BrokerRegistration {
    /// Where clients of `listener` reach this broker; `None` when it has no such listener.
    pub fn endpoint(&self, listener: &str) -> Option<(&str, i32)> {
        if self.listeners.is_empty() {
            return Some((self.host.as_str(), self.port));
        }
        self.listeners
            .iter()
            .find(|l| l.name == listener)
            .map(|l| (l.host.as_str(), l.port))
    }
}

/// A broker that has registered with the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub id: BrokerId,
    /// New at every start of the broker process; tells a restart from a duplicate register.
    pub incarnation: Uuid,
    /// The advertised inter-broker listener: where followers fetch from.
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// Every Kafka listener's advertised address, by name: Metadata answers a client with
    /// the addresses of the listener it is connected to. Empty in registrations from before
    /// listeners were named; then `host:port` stands for every listener.
    #[serde(default)]
    pub listeners: Vec<BrokerEndpoint>,
    /// A fenced broker leads nothing and is left out of Metadata responses: it stopped
    /// heartbeating (crashed, partitioned away) or shut down.
    #[serde(default)]
    pub fenced: bool,
}

/// One partition's replicas, leader and in-sync replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Assigned replicas; the first is the preferred leader.
    pub replicas: Vec<BrokerId>,
    /// In-sync replicas, the leader first while there is one.
    pub isr: Vec<BrokerId>,
    /// The leader, or [`NO_LEADER`] when no in-sync replica is available.
    pub leader: BrokerId,
    /// Bumped at every leader change; fences requests from a stale leader.
    pub leader_epoch: i32,
    /// Bumped at every change of this partition's state.
    pub partition_epoch: i32,
    /// Replicas a reassignment is adding (they are also in `replicas`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding: Vec<BrokerId>,
    /// Replicas a reassignment will remove once every added replica is in sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<BrokerId>,
    /// The replicas, in order, from before the in-flight reassignment (a cancel restores them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub original: Vec<BrokerId>,
    /// The leader was elected uncleanly (from outside the ISR, see
    /// [`unclean_election_enabled`]) and may lack records that were acknowledged: KRaft's
    /// `LeaderRecoveryState::RECOVERING`. The ISR is the leader alone until its first
    /// AlterPartition, which clears this.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recovering: bool,
}

impl PartitionState {
    /// A new partition on `replicas`, led by the first one, with every replica in sync: their
    /// logs are all empty (Kafka puts all assigned replicas in a new partition's ISR).
    pub fn new(replicas: Vec<BrokerId>) -> Self {
        let leader = replicas.first().copied().unwrap_or(NO_LEADER);
        PartitionState {
            isr: replicas.clone(),
            replicas,
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
            original: Vec::new(),
            recovering: false,
        }
    }

    pub fn is_reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replicas before the in-flight reassignment (what a cancel goes back to).
    pub fn original_replicas(&self) -> Vec<BrokerId> {
        if self.is_reassigning() {
            self.original.clone()
        } else {
            self.replicas.clone()
        }
    }

    /// The replicas the in-flight reassignment goes to.
    pub fn target_replicas(&self) -> Vec<BrokerId> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing.contains(r))
            .collect()
    }
}

/// One topic as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    /// Always `assignments.len()` in an applied image.
    pub partitions: i32,
    pub replication_factor: i16,
    /// Topic-level config overrides (only keys set explicitly).
    pub configs: BTreeMap<String, String>,
    /// Per partition, its state. Missing in a single-node image written before clustering;
    /// the upgrade fills it in (see [`crate::MetadataCommand::Bootstrap`]).
    #[serde(default)]
    pub assignments: Vec<PartitionState>,
}

/// The topic config that allows electing a leader from outside the ISR.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// Whether `topic` allows unclean leader election (Kafka's `unclean.leader.election.enable`,
/// default `false`): when no in-sync replica is live, the first live replica leads and the
/// records it lacks are lost. Kafka parses booleans trimmed and case-insensitively.
pub fn unclean_election_enabled(topic: &TopicMeta) -> bool {
    topic
        .configs
        .get(UNCLEAN_LEADER_ELECTION_ENABLE)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

impl TopicMeta {
    pub fn partition(&self, partition: i32) -> Option<&PartitionState> {
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.assignments.get(p))
    }
}

/// The whole cluster metadata at one point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MetadataImage {
    /// Empty until the quorum's first leader bootstraps it.
    pub cluster_id: String,
    pub topics: BTreeMap<String, TopicMeta>,
    /// The next producer id that has not been handed out.
    pub next_producer_id: i64,
    #[serde(default)]
    pub brokers: BTreeMap<BrokerId, BrokerRegistration>,
    /// SCRAM credentials by user, then mechanism; every user listed has at least one.
    #[serde(default)]
    pub scram: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// ACL bindings, each valid ([`AclBinding::validate`]).
    #[serde(default)]
    pub acls: BTreeSet<AclBinding>,
    /// Client quotas by normalized entity ([`ClientQuotaEntity::normalize`]); every entity
    /// listed has at least one quota, each a key of its kind. Written as a list of
    /// `[entity, quotas]` pairs (JSON map keys are strings).
    #[serde(default, with = "crate::quota::entity_map")]
    pub client_quotas: BTreeMap<ClientQuotaEntity, BTreeMap<String, QuotaValue>>,
}

impl MetadataImage {
    pub fn new(cluster_id: String) -> Self {
        MetadataImage {
            cluster_id,
            ..MetadataImage::default()
        }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<&TopicMeta> {
        self.topics.values().find(|t| t.id == id)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        self.topic(topic)?.partition(partition)
    }

    /// Registered brokers that are not fenced, by id.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    pub fn is_live(&self, id: BrokerId) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    /// Partitions without a leader, as `(topic, partition)`.
    pub fn offline_partitions(&self) -> Vec<(String, i32)> {
        let mut offline = Vec::new();
        for topic in self.topics.values() {
            for (p, state) in topic.assignments.iter().enumerate() {
                if state.leader == NO_LEADER {
                    offline.push((topic.name.clone(), p as i32));
                }
            }
        }
        offline
    }

    /// Partitions, as `(topic, partition)` sorted by topic then partition, that a preferred
    /// leader election would move back to their preferred replica (`replicas[0]`): it is
    /// live and in sync but does not lead, and no reassignment is in flight. Kafka's
    /// `auto.leader.rebalance.enable` proposes [`crate::MetadataCommand::ElectPreferred`]
    /// for each.
    pub fn preferred_leader_imbalance(&self) -> Vec<(String, i32)> {
        let mut imbalanced = Vec::new();
        for topic in self.topics.values() {
            for (p, state) in topic.assignments.iter().enumerate() {
                let Some(&preferred) = state.replicas.first() else {
                    continue;
                };
                if state.leader != preferred
                    && state.isr.contains(&preferred)
                    && self.is_live(preferred)
                    && !state.is_reassigning()
                {
                    imbalanced.push((topic.name.clone(), p as i32));
                }
            }
        }
        imbalanced
    }
}

/// Kafka's topic name rule: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name {name:?} is not allowed"));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters long, the limit is 249",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("topic name {name:?} contains {c:?}; legal characters are ASCII alphanumerics, '.', '_' and '-'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }

    fn broker(id: BrokerId, fenced: bool) -> BrokerRegistration {
        BrokerRegistration {
            fenced,
            ..crate::apply::tests::registration(id)
        }
    }

    /// Brokers 1, 2, 3 with 3 fenced, and topics of the given partitions.
    fn image_with(topics: &[(&str, Vec<PartitionState>)]) -> MetadataImage {
        let mut image = MetadataImage::new("c".into());
        for (id, fenced) in [(1, false), (2, false), (3, true)] {
            image.brokers.insert(id, broker(id, fenced));
        }
        for (name, assignments) in topics {
            image.topics.insert(
                name.to_string(),
                TopicMeta {
                    name: name.to_string(),
                    id: Uuid::from_u128(1),
                    partitions: assignments.len() as i32,
                    replication_factor: 2,
                    configs: BTreeMap::new(),
                    assignments: assignments.clone(),
                },
            );
        }
        image
    }

    fn partition(replicas: &[BrokerId], leader: BrokerId, isr: &[BrokerId]) -> PartitionState {
        PartitionState {
            leader,
            isr: isr.to_vec(),
            ..PartitionState::new(replicas.to_vec())
        }
    }

    #[test]
    fn preferred_leader_imbalance_lists_partitions_a_preferred_election_would_move() {
        let reassigning = PartitionState {
            adding: vec![2],
            removing: vec![1],
            original: vec![1],
            ..partition(&[2, 1], 1, &[1, 2])
        };
        let cases = [
            (
                "the preferred replica leads",
                partition(&[1, 2], 1, &[1, 2]),
                false,
            ),
            (
                "live, in sync, not leading",
                partition(&[1, 2], 2, &[2, 1]),
                true,
            ),
            ("not in sync", partition(&[1, 2], 2, &[2]), false),
            ("fenced", partition(&[3, 2], 2, &[2, 3]), false),
            ("offline", partition(&[3, 1], NO_LEADER, &[3]), false),
            ("reassigning", reassigning, false),
            ("no replicas", partition(&[], NO_LEADER, &[]), false),
        ];
        for (name, state, want) in cases {
            let image = image_with(&[("t", vec![state])]);
            let expected = if want {
                vec![("t".to_string(), 0)]
            } else {
                vec![]
            };
            assert_eq!(image.preferred_leader_imbalance(), expected, "{name}");
        }

        let moved = || partition(&[1, 2], 2, &[2, 1]);
        let image = image_with(&[
            ("b", vec![moved(), partition(&[1, 2], 1, &[1, 2]), moved()]),
            ("a", vec![partition(&[2, 1], 2, &[2]), moved()]),
        ]);
        assert_eq!(
            image.preferred_leader_imbalance(),
            vec![
                ("a".to_string(), 1),
                ("b".to_string(), 0),
                ("b".to_string(), 2)
            ],
            "sorted by topic, then partition"
        );
    }

    #[test]
    fn a_single_node_image_from_before_clustering_still_reads() {
        let json = r#"{"cluster_id":"abc","topics":{"t":{"name":"t",
            "id":"6f1c1a52-8a3e-4a44-9a55-0d3c2b1f0e11","partitions":2,"replication_factor":1,
            "configs":{}}},"next_producer_id":2000}"#;
        let image: MetadataImage = serde_json::from_str(json).unwrap();
        assert_eq!(image.cluster_id, "abc");
        assert_eq!(image.topic("t").unwrap().partitions, 2);
        assert!(image.topic("t").unwrap().assignments.is_empty());
        assert!(image.brokers.is_empty());
        assert_eq!(image.next_producer_id, 2000);
    }
}
