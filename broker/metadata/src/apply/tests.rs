use std::collections::BTreeMap;

use uuid::Uuid;

use crate::command::{CommandError, CommandResult, LegacyImport, MetadataCommand, NewTopic};
use crate::image::{BrokerRegistration, MetadataImage, TopicMeta, NO_LEADER};

mod acl;
mod alter_partition;
mod election;
mod quota;
mod scram;
mod serde_compat;

/// Broker `id`'s registration (unfenced), as the tests of this crate register brokers.
pub(crate) fn registration(id: i32) -> BrokerRegistration {
    BrokerRegistration {
        id,
        incarnation: Uuid::from_u128(id as u128),
        host: format!("b{id}"),
        port: 9092,
        rack: None,
        listeners: Vec::new(),
        fenced: false,
    }
}

fn cluster(brokers: &[i32]) -> MetadataImage {
    let mut image = MetadataImage::default();
    image.apply(&MetadataCommand::Bootstrap {
        cluster_id: "c".into(),
        legacy: None,
    });
    for id in brokers {
        image.apply(&MetadataCommand::RegisterBroker(registration(*id)));
    }
    image
}

fn new_topic(name: &str, partitions: i32, rf: i16) -> MetadataCommand {
    MetadataCommand::CreateTopic(NewTopic {
        name: name.into(),
        id: Uuid::from_u128(42),
        partitions,
        replication_factor: rf,
        configs: BTreeMap::new(),
        assignments: None,
    })
}

fn explicit(name: &str, lists: Vec<Vec<i32>>) -> MetadataCommand {
    MetadataCommand::CreateTopic(NewTopic {
        name: name.into(),
        id: Uuid::from_u128(7),
        partitions: -1,
        replication_factor: -1,
        configs: BTreeMap::new(),
        assignments: Some(lists),
    })
}

fn fence(id: i32) -> MetadataCommand {
    MetadataCommand::FenceBroker {
        id,
        incarnation: Uuid::from_u128(id as u128),
    }
}

/// `id` registers again after a restart (a new incarnation).
fn register_again(id: i32) -> MetadataCommand {
    let mut back = registration(id);
    back.incarnation = Uuid::from_u128(1000 + id as u128);
    MetadataCommand::RegisterBroker(back)
}

fn alter(
    topic: &str,
    partition: i32,
    leader: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    isr: &[i32],
) -> MetadataCommand {
    MetadataCommand::AlterPartition {
        topic: topic.into(),
        partition,
        leader,
        leader_epoch,
        isr: isr.to_vec(),
        partition_epoch: Some(partition_epoch),
    }
}

fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Like [`explicit`], with topic configs.
fn explicit_with(name: &str, lists: Vec<Vec<i32>>, pairs: &[(&str, &str)]) -> MetadataCommand {
    MetadataCommand::CreateTopic(NewTopic {
        name: name.into(),
        id: Uuid::from_u128(8),
        partitions: -1,
        replication_factor: -1,
        configs: configs(pairs),
        assignments: Some(lists),
    })
}

#[test]
fn the_second_create_of_a_name_is_answered_topic_exists() {
    let mut image = cluster(&[1, 2, 3]);
    let first = image.apply(&new_topic("t", 3, 2));
    let CommandResult::TopicCreated(meta) = first else {
        panic!("{first:?}")
    };
    assert_eq!(meta.partitions, 3);
    assert_eq!(meta.assignments.len(), 3);
    assert_eq!(
        image.apply(&new_topic("t", 5, 1)),
        CommandResult::Rejected(CommandError::TopicExists("t".into()))
    );
    assert_eq!(image.topic("t").unwrap().partitions, 3, "unchanged");
}

#[test]
fn leaders_spread_over_brokers_and_every_replica_starts_in_sync() {
    let mut image = cluster(&[1, 2, 3]);
    image.apply(&new_topic("t", 6, 2));
    let t = image.topic("t").unwrap();
    let mut leaders: Vec<_> = t.assignments.iter().map(|p| p.leader).collect();
    leaders.sort();
    assert_eq!(leaders, vec![1, 1, 2, 2, 3, 3]);
    for p in &t.assignments {
        assert_eq!(p.replicas.len(), 2);
        assert_eq!(p.leader, p.replicas[0]);
        assert_eq!(p.isr, p.replicas, "empty logs: every replica is in sync");
        assert_eq!((p.leader_epoch, p.partition_epoch), (0, 0));
        assert!(!p.recovering);
    }
}

#[test]
fn replication_factor_above_live_brokers_is_refused() {
    let mut image = cluster(&[1, 2]);
    let r = image.apply(&new_topic("t", 1, 3));
    assert!(
        matches!(&r, CommandResult::Rejected(CommandError::InvalidReplicationFactor(m)) if m.contains("2 available brokers")),
        "{r:?}"
    );
    image.apply(&fence(2));
    let r = image.apply(&new_topic("t", 1, 2));
    assert!(
        matches!(
            r,
            CommandResult::Rejected(CommandError::InvalidReplicationFactor(_))
        ),
        "a fenced broker is not available: {r:?}"
    );
    assert!(image.topics.is_empty());
}

#[test]
fn explicit_assignments_are_honoured_and_checked() {
    let mut image = cluster(&[1, 2, 3]);
    let r = image.apply(&explicit("t", vec![vec![3, 1], vec![2, 3]]));
    assert!(matches!(r, CommandResult::TopicCreated(_)), "{r:?}");
    let t = image.topic("t").unwrap();
    assert_eq!(t.replication_factor, 2);
    assert_eq!(t.assignments[0].replicas, vec![3, 1]);
    assert_eq!(t.assignments[0].leader, 3);
    assert_eq!(t.assignments[1].leader, 2);
    for bad in [
        vec![vec![1, 1]],
        vec![vec![9]],
        vec![vec![1, 2], vec![3]],
        vec![vec![]],
    ] {
        let r = image.apply(&explicit("u", bad.clone()));
        assert!(
            matches!(
                r,
                CommandResult::Rejected(CommandError::InvalidReplicaAssignment(_))
            ),
            "{bad:?}: {r:?}"
        );
    }
}

#[test]
fn fencing_moves_leadership_to_a_live_in_sync_replica_or_takes_the_partition_offline() {
    let mut image = cluster(&[1, 2, 3]);
    image.apply(&explicit("t", vec![vec![1, 2], vec![1, 3]]));
    // Partition 0 has 2 in sync too; partition 1 only its leader (3 fell behind).
    assert_eq!(
        image.apply(&alter("t", 1, 1, 0, 0, &[1])),
        CommandResult::Done
    );
    image.apply(&fence(1));
    let t = image.topic("t").unwrap();
    assert_eq!(t.assignments[0].leader, 2);
    assert_eq!(t.assignments[0].isr, vec![2]);
    assert_eq!(t.assignments[0].leader_epoch, 1);
    assert_eq!(
        t.assignments[1].leader, NO_LEADER,
        "3 is live but out of sync, and unclean election is off"
    );
    assert_eq!(
        t.assignments[1].isr,
        vec![1],
        "the last in-sync replica is kept"
    );
    assert!(image.brokers[&1].fenced);
    assert_eq!(image.offline_partitions(), vec![("t".to_string(), 1)]);

    // Back with a new incarnation: it leads its offline partition again.
    let mut back = registration(1);
    back.incarnation = Uuid::from_u128(100);
    image.apply(&MetadataCommand::RegisterBroker(back));
    let t = image.topic("t").unwrap();
    assert!(!image.brokers[&1].fenced);
    assert_eq!(t.assignments[1].leader, 1);
    assert_eq!(t.assignments[1].leader_epoch, 2);
    assert_eq!(
        t.assignments[0].leader, 2,
        "a led partition stays where it is"
    );
    assert!(image.offline_partitions().is_empty());
}

#[test]
fn a_fence_for_an_older_incarnation_is_ignored() {
    let mut image = cluster(&[1, 2]);
    let mut restarted = registration(1);
    restarted.incarnation = Uuid::from_u128(99);
    image.apply(&MetadataCommand::RegisterBroker(restarted));
    image.apply(&fence(1));
    assert!(!image.brokers[&1].fenced);
}

#[test]
fn producer_ids_are_handed_out_once() {
    let mut image = cluster(&[1]);
    let a = image.apply(&MetadataCommand::AllocateProducerIds { count: 1000 });
    let b = image.apply(&MetadataCommand::AllocateProducerIds { count: 1000 });
    assert_eq!(
        a,
        CommandResult::ProducerIds {
            first: 0,
            count: 1000
        }
    );
    assert_eq!(
        b,
        CommandResult::ProducerIds {
            first: 1000,
            count: 1000
        }
    );
    assert_eq!(image.next_producer_id, 2000);
}

#[test]
fn bootstrap_imports_a_single_node_image_once() {
    let legacy_topic = TopicMeta {
        name: "old".into(),
        id: Uuid::from_u128(5),
        partitions: 2,
        replication_factor: 1,
        configs: [("cleanup.policy".to_string(), "compact".to_string())].into(),
        assignments: vec![],
    };
    let mut image = MetadataImage::default();
    let bootstrap = MetadataCommand::Bootstrap {
        cluster_id: "legacy-id".into(),
        legacy: Some(LegacyImport {
            node: 4,
            topics: vec![legacy_topic.clone()],
            next_producer_id: 3000,
        }),
    };
    image.apply(&bootstrap);
    let t = image.topic("old").unwrap();
    assert_eq!(t.id, legacy_topic.id);
    assert_eq!(t.configs, legacy_topic.configs);
    assert_eq!(t.assignments.len(), 2);
    assert!(t
        .assignments
        .iter()
        .all(|p| p.replicas == vec![4] && p.leader == 4 && p.isr == vec![4]));
    assert_eq!(image.next_producer_id, 3000);
    image.apply(&MetadataCommand::DeleteTopic {
        topic: "old".into(),
    });
    image.apply(&bootstrap);
    assert!(
        image.topic("old").is_none(),
        "a second bootstrap changes nothing"
    );
    assert_eq!(image.cluster_id, "legacy-id");
}

#[test]
fn an_idle_reassignment_completes_when_the_new_replica_is_in_sync() {
    let mut image = cluster(&[1, 2]);
    image.apply(&explicit("t", vec![vec![1]]));
    let r = image.apply(&MetadataCommand::Reassign {
        topic: "t".into(),
        partition: 0,
        target: Some(vec![2]),
    });
    assert_eq!(r, CommandResult::Done);
    let p = image.partition("t", 0).unwrap().clone();
    assert_eq!(p.replicas, vec![2, 1]);
    assert_eq!((p.adding.clone(), p.removing.clone()), (vec![2], vec![1]));
    assert_eq!(
        p.leader, 1,
        "the old replica leads until the new one is in sync"
    );
    assert_eq!(p.target_replicas(), vec![2]);
    assert_eq!(p.original_replicas(), vec![1]);

    // A stale leader epoch is refused.
    let stale = image.apply(&alter(
        "t",
        0,
        1,
        p.leader_epoch + 1,
        p.partition_epoch,
        &[1, 2],
    ));
    assert!(matches!(
        stale,
        CommandResult::Rejected(CommandError::NotLeader { .. })
    ));

    let r = image.apply(&alter(
        "t",
        0,
        1,
        p.leader_epoch,
        p.partition_epoch,
        &[1, 2],
    ));
    assert_eq!(r, CommandResult::Done);
    let p = image.partition("t", 0).unwrap();
    assert_eq!(p.replicas, vec![2]);
    assert_eq!(p.isr, vec![2]);
    assert_eq!(p.leader, 2);
    assert_eq!(p.leader_epoch, 1);
    assert!(!p.is_reassigning());
}

#[test]
fn a_cancelled_reassignment_goes_back_to_the_original_replicas() {
    let mut image = cluster(&[1, 2, 3]);
    image.apply(&explicit("t", vec![vec![1, 2]]));
    image.apply(&MetadataCommand::Reassign {
        topic: "t".into(),
        partition: 0,
        target: Some(vec![3, 2]),
    });
    assert!(image.partition("t", 0).unwrap().is_reassigning());
    let r = image.apply(&MetadataCommand::Reassign {
        topic: "t".into(),
        partition: 0,
        target: None,
    });
    assert_eq!(r, CommandResult::Done);
    let p = image.partition("t", 0).unwrap();
    assert_eq!(p.replicas, vec![1, 2]);
    assert_eq!(p.leader, 1);
    assert!(!p.is_reassigning());
    let again = image.apply(&MetadataCommand::Reassign {
        topic: "t".into(),
        partition: 0,
        target: None,
    });
    assert!(matches!(
        again,
        CommandResult::Rejected(CommandError::NoReassignmentInProgress { .. })
    ));
}

#[test]
fn preferred_election_needs_the_preferred_replica_live_and_in_sync() {
    let mut image = cluster(&[1, 2]);
    image.apply(&explicit("t", vec![vec![1, 2]]));
    assert_eq!(image.partition("t", 0).unwrap().isr, vec![1, 2]);
    assert!(image.preferred_leader_imbalance().is_empty());
    let elect = MetadataCommand::ElectPreferred {
        topic: "t".into(),
        partition: 0,
    };
    assert!(matches!(
        image.apply(&elect),
        CommandResult::Rejected(CommandError::ElectionNotNeeded { .. })
    ));
    image.apply(&MetadataCommand::ControlledShutdown {
        id: 1,
        incarnation: Uuid::from_u128(1),
    });
    assert_eq!(image.partition("t", 0).unwrap().leader, 2);
    assert!(matches!(
        image.apply(&elect),
        CommandResult::Rejected(CommandError::PreferredLeaderNotAvailable { .. })
    ));
    assert!(image.preferred_leader_imbalance().is_empty(), "1 is fenced");
    let mut back = registration(1);
    back.incarnation = Uuid::from_u128(11);
    image.apply(&MetadataCommand::RegisterBroker(back));
    // Back, but not in sync (ISR is [2]): still not available.
    assert!(matches!(
        image.apply(&elect),
        CommandResult::Rejected(CommandError::PreferredLeaderNotAvailable { .. })
    ));
    assert!(
        image.preferred_leader_imbalance().is_empty(),
        "1 is not in sync"
    );
    let p = image.partition("t", 0).unwrap().clone();
    let r = image.apply(&alter(
        "t",
        0,
        2,
        p.leader_epoch,
        p.partition_epoch,
        &[2, 1],
    ));
    assert_eq!(r, CommandResult::Done);
    assert_eq!(
        image.preferred_leader_imbalance(),
        vec![("t".to_string(), 0)]
    );
    assert_eq!(image.apply(&elect), CommandResult::Done);
    assert_eq!(image.partition("t", 0).unwrap().leader, 1);
    assert!(image.preferred_leader_imbalance().is_empty());
}

#[test]
fn partitions_grow_with_placement_and_never_shrink() {
    let mut image = cluster(&[1, 2, 3]);
    image.apply(&new_topic("t", 2, 2));
    assert_eq!(
        image.apply(&MetadataCommand::CreatePartitions {
            topic: "t".into(),
            total: 5,
            assignments: None
        }),
        CommandResult::Done
    );
    let t = image.topic("t").unwrap();
    assert_eq!((t.partitions, t.assignments.len()), (5, 5));
    assert!(t.assignments.iter().all(|p| p.replicas.len() == 2));
    assert!(matches!(
        image.apply(&MetadataCommand::CreatePartitions {
            topic: "t".into(),
            total: 3,
            assignments: None
        }),
        CommandResult::Rejected(CommandError::InvalidPartitions(_))
    ));
}
