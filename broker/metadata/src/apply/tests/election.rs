//! Who leads a new partition, and who leads one whose in-sync replicas are all gone.

use super::*;
use crate::image::{unclean_election_enabled, PartitionState};

#[test]
fn a_new_partition_starts_with_every_live_replica_in_sync_led_by_the_first() {
    struct Case {
        fenced_before: &'static [i32],
        replicas: &'static [i32],
        leader: i32,
        isr: &'static [i32],
    }
    let case = |fenced_before, replicas, leader, isr| Case {
        fenced_before,
        replicas,
        leader,
        isr,
    };
    let cases = [
        case(&[], &[3, 1, 2], 3, &[3, 1, 2]),
        case(&[3], &[3, 1, 2], 1, &[1, 2]),
        case(&[1], &[3, 1, 2], 3, &[3, 2]),
        case(&[3, 1], &[3, 1, 2], 2, &[2]),
        // Offline until one returns; any of them may lead then, their logs are all empty.
        case(&[1, 2, 3], &[3, 1, 2], NO_LEADER, &[3, 1, 2]),
    ];
    for c in cases {
        let mut image = cluster(&[1, 2, 3]);
        for id in c.fenced_before {
            image.apply(&fence(*id));
        }
        let r = image.apply(&explicit("t", vec![c.replicas.to_vec()]));
        assert!(matches!(r, CommandResult::TopicCreated(_)), "{r:?}");
        let p = image.partition("t", 0).unwrap();
        assert_eq!(
            (p.leader, p.isr.as_slice()),
            (c.leader, c.isr),
            "fenced {:?}",
            c.fenced_before
        );
        assert_eq!((p.leader_epoch, p.partition_epoch), (0, 0));
        assert!(!p.recovering);
    }

    // Grown partitions too.
    let mut image = cluster(&[1, 2, 3]);
    image.apply(&explicit("t", vec![vec![1, 2, 3]]));
    image.apply(&fence(3));
    image.apply(&MetadataCommand::CreatePartitions {
        topic: "t".into(),
        total: 2,
        assignments: Some(vec![vec![3, 2, 1]]),
    });
    let p = image.partition("t", 1).expect("partition 1 created");
    assert_eq!((p.leader, p.isr.clone()), (2, vec![2, 1]));
}

#[test]
fn partition_state_new_puts_every_replica_in_sync() {
    let p = PartitionState::new(vec![2, 1, 3]);
    assert_eq!((p.leader, p.isr), (2, vec![2, 1, 3]));
    let p = PartitionState::new(vec![]);
    assert_eq!((p.leader, p.isr), (NO_LEADER, vec![]));
}

#[test]
fn an_offline_partition_whose_creation_replicas_were_all_fenced_is_led_by_the_first_back() {
    let mut image = cluster(&[1, 2]);
    image.apply(&fence(1));
    image.apply(&fence(2));
    image.apply(&explicit("t", vec![vec![1, 2]]));
    image.apply(&register_again(2));
    let p = image.partition("t", 0).unwrap();
    assert_eq!(
        (p.leader, p.isr.clone()),
        (2, vec![2]),
        "clean: 2 was in sync"
    );
    assert_eq!((p.leader_epoch, p.partition_epoch), (1, 1));
    assert!(!p.recovering);
}

#[test]
fn unclean_election_is_read_from_the_topic_config() {
    let cases = [
        (None, false),
        (Some("true"), true),
        (Some("TRUE"), true),
        (Some(" True "), true),
        (Some("false"), false),
        (Some("yes"), false),
        (Some(""), false),
    ];
    for (value, want) in cases {
        let mut topic = TopicMeta {
            name: "t".into(),
            id: Uuid::from_u128(1),
            partitions: 0,
            replication_factor: 1,
            configs: BTreeMap::new(),
            assignments: vec![],
        };
        if let Some(v) = value {
            topic
                .configs
                .insert("unclean.leader.election.enable".into(), v.into());
        }
        assert_eq!(unclean_election_enabled(&topic), want, "{value:?}");
    }
}

/// A partition's leader, ISR, leader epoch, partition epoch and recovery flag.
type Outcome = (i32, Vec<i32>, i32, i32, bool);

fn outcome(image: &MetadataImage, topic: &str) -> Outcome {
    let p = image.partition(topic, 0).unwrap();
    (
        p.leader,
        p.isr.clone(),
        p.leader_epoch,
        p.partition_epoch,
        p.recovering,
    )
}

const UNCLEAN: (&str, &str) = ("unclean.leader.election.enable", "true");

fn set_unclean(topic: &str, enabled: bool) -> MetadataCommand {
    MetadataCommand::ReplaceTopicConfigs {
        topic: topic.into(),
        configs: if enabled {
            configs(&[UNCLEAN])
        } else {
            BTreeMap::new()
        },
    }
}

#[test]
fn a_partition_out_of_in_sync_replicas_goes_offline_or_elects_a_live_replica_if_unclean() {
    // Brokers 1, 2, 3; `t-0` on [1, 2, 3] led by 1 and shrunk to ISR [1] (leader epoch 0,
    // partition epoch 1), with unclean election as given; then `events`.
    let cases: Vec<(&str, bool, Vec<MetadataCommand>, Outcome)> = vec![
        (
            "disabled: the leader's fence takes it offline, the ISR kept",
            false,
            vec![fence(1)],
            (NO_LEADER, vec![1], 1, 2, false),
        ),
        (
            "enabled: the leader's fence elects the first live replica",
            true,
            vec![fence(1)],
            (2, vec![2], 1, 2, true),
        ),
        (
            "enabled: never a fenced broker",
            true,
            vec![fence(2), fence(1)],
            (3, vec![3], 1, 2, true),
        ),
        (
            "enabled: no live replica, offline",
            true,
            vec![fence(2), fence(3), fence(1)],
            (NO_LEADER, vec![1], 1, 2, false),
        ),
        (
            "disabled: an out-of-sync replica returning changes nothing",
            false,
            vec![fence(2), fence(3), fence(1), register_again(3)],
            (NO_LEADER, vec![1], 1, 2, false),
        ),
        (
            "disabled: the in-sync replica returning leads cleanly",
            false,
            vec![fence(1), register_again(1)],
            (1, vec![1], 2, 3, false),
        ),
        (
            "enabled: an out-of-sync replica returning leads uncleanly",
            true,
            vec![fence(2), fence(3), fence(1), register_again(3)],
            (3, vec![3], 2, 3, true),
        ),
        (
            "enabled: the in-sync replica returning leads cleanly",
            true,
            vec![fence(2), fence(3), fence(1), register_again(1)],
            (1, vec![1], 2, 3, false),
        ),
        (
            "enabling it elects an offline partition's first live replica",
            false,
            vec![fence(1), set_unclean("t", true)],
            (2, vec![2], 2, 3, true),
        ),
        (
            "enabling it with no live replica waits for one",
            false,
            vec![fence(3), fence(2), fence(1), set_unclean("t", true)],
            (NO_LEADER, vec![1], 1, 2, false),
        ),
        (
            "enabled, then disabled before the fence: offline",
            true,
            vec![set_unclean("t", false), fence(1)],
            (NO_LEADER, vec![1], 1, 2, false),
        ),
        (
            "enabled: an unclean leader fenced in turn hands over to the next live replica",
            true,
            vec![fence(1), fence(2)],
            (3, vec![3], 2, 3, true),
        ),
        (
            "the leader's fence with another live in-sync replica is a clean election",
            true,
            vec![alter("t", 0, 1, 0, 1, &[1, 3]), fence(1)],
            (3, vec![3], 1, 3, false),
        ),
    ];
    for (name, unclean, events, want) in cases {
        let mut image = cluster(&[1, 2, 3]);
        let topic_configs: &[(&str, &str)] = if unclean { &[UNCLEAN] } else { &[] };
        image.apply(&explicit_with("t", vec![vec![1, 2, 3]], topic_configs));
        assert_eq!(
            image.apply(&alter("t", 0, 1, 0, 0, &[1])),
            CommandResult::Done
        );
        for event in &events {
            let r = image.apply(event);
            assert_eq!(r, CommandResult::Done, "{name}: {event:?}");
        }
        assert_eq!(outcome(&image, "t"), want, "{name}");
        let p = image.partition("t", 0).unwrap();
        assert!(
            p.leader == NO_LEADER || image.is_live(p.leader),
            "{name}: a fenced broker leads"
        );
    }
}

#[test]
fn enabling_unclean_election_on_one_topic_leaves_the_others_offline() {
    let mut image = cluster(&[1, 2]);
    image.apply(&explicit_with("t", vec![vec![1, 2]], &[]));
    image.apply(&explicit_with("u", vec![vec![1, 2]], &[]));
    image.apply(&alter("t", 0, 1, 0, 0, &[1]));
    image.apply(&alter("u", 0, 1, 0, 0, &[1]));
    image.apply(&fence(1));
    assert_eq!(
        image.offline_partitions(),
        vec![("t".to_string(), 0), ("u".to_string(), 0)]
    );
    assert_eq!(image.apply(&set_unclean("t", true)), CommandResult::Done);
    assert_eq!(outcome(&image, "t"), (2, vec![2], 2, 3, true));
    assert_eq!(outcome(&image, "u"), (NO_LEADER, vec![1], 1, 2, false));
    assert_eq!(image.offline_partitions(), vec![("u".to_string(), 0)]);
}

#[test]
fn fencing_a_follower_drops_it_from_the_isr_unless_it_is_the_last() {
    let mut image = cluster(&[1, 2, 3]);
    image.apply(&explicit("t", vec![vec![1, 2, 3]]));
    image.apply(&fence(2));
    assert_eq!(outcome(&image, "t"), (1, vec![1, 3], 0, 1, false));
    image.apply(&fence(3));
    assert_eq!(outcome(&image, "t"), (1, vec![1], 0, 2, false));
    // Followers returning don't rejoin by themselves: the leader adds them once caught up.
    image.apply(&register_again(2));
    assert_eq!(outcome(&image, "t"), (1, vec![1], 0, 2, false));
}

#[test]
fn cancelling_a_reassignment_that_leaves_no_in_sync_replica_needs_unclean_election() {
    // `t-0` on [1] moving to [3, 4, 1]: 3 joins the ISR, 1 is fenced (3 leads) and
    // returns. Cancelling drops the added 3 and 4, and with them every in-sync replica.
    for unclean in [false, true] {
        let mut image = cluster(&[1, 2, 3, 4]);
        let topic_configs: &[(&str, &str)] = if unclean { &[UNCLEAN] } else { &[] };
        image.apply(&explicit_with("t", vec![vec![1]], topic_configs));
        image.apply(&MetadataCommand::Reassign {
            topic: "t".into(),
            partition: 0,
            target: Some(vec![3, 4, 1]),
        });
        assert_eq!(
            image.apply(&alter("t", 0, 1, 0, 1, &[1, 3])),
            CommandResult::Done
        );
        image.apply(&fence(1));
        image.apply(&register_again(1));
        assert_eq!(outcome(&image, "t"), (3, vec![3], 1, 3, false));
        let before = image.clone();

        let cancel = image.apply(&MetadataCommand::Reassign {
            topic: "t".into(),
            partition: 0,
            target: None,
        });
        let p = image.partition("t", 0).unwrap();
        if unclean {
            assert_eq!(cancel, CommandResult::Done);
            assert_eq!(p.replicas, vec![1]);
            assert!(!p.is_reassigning());
            // The cancel's leader change to none, then the unclean election.
            assert_eq!(outcome(&image, "t"), (1, vec![1], 3, 5, true));
        } else {
            assert!(
                matches!(
                    &cancel,
                    CommandResult::Rejected(CommandError::InvalidReplicaAssignment(m))
                        if m.contains("no in-sync replica")
                ),
                "{cancel:?}"
            );
            assert_eq!(image, before, "refused: nothing changes");
        }
    }
}
