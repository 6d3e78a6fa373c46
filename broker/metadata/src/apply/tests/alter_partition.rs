//! AlterPartition: who may change the ISR, based on which state, to what.

use super::*;
use crate::image::PartitionState;

/// Brokers 1..=5 with 4 fenced; `t-0` on replicas [1, 2, 3, 4] led by 1 at leader epoch 0,
/// shrunk to ISR [1, 2] (partition epoch 1). So 3 is a live out-of-sync replica, 4 a fenced
/// one, 5 a live broker that is no replica, 9 no broker at all.
fn shrunk() -> MetadataImage {
    let mut image = cluster(&[1, 2, 3, 4, 5]);
    image.apply(&explicit("t", vec![vec![1, 2, 3, 4]]));
    assert_eq!(
        image.apply(&alter("t", 0, 1, 0, 0, &[1, 2])),
        CommandResult::Done
    );
    image.apply(&fence(4));
    let p = image.partition("t", 0).unwrap();
    assert_eq!(
        (p.leader, p.leader_epoch, p.partition_epoch, p.isr.clone()),
        (1, 0, 1, vec![1, 2]),
        "fencing an out-of-sync replica changes nothing"
    );
    image
}

fn not_leader(leader: i32, leader_epoch: i32) -> CommandError {
    CommandError::NotLeader {
        topic: "t".into(),
        partition: 0,
        leader,
        leader_epoch,
    }
}

fn stale(got: i32) -> CommandError {
    CommandError::StalePartitionEpoch {
        topic: "t".into(),
        partition: 0,
        current: 1,
        got,
    }
}

fn ineligible(replica: i32) -> CommandError {
    CommandError::IneligibleReplica {
        topic: "t".into(),
        partition: 0,
        replica,
    }
}

#[test]
fn alter_partition_checks_leader_then_partition_epoch_then_joining_members_then_the_isr() {
    enum Want {
        Isr(&'static [i32]),
        Rejected(CommandError),
        InvalidRequest,
    }
    use Want::*;
    let cases: Vec<(&str, MetadataCommand, Want)> = vec![
        (
            "add a live replica",
            alter("t", 0, 1, 0, 1, &[1, 2, 3]),
            Isr(&[1, 2, 3]),
        ),
        (
            "shrink to the leader",
            alter("t", 0, 1, 0, 1, &[1]),
            Isr(&[1]),
        ),
        ("reorder", alter("t", 0, 1, 0, 1, &[2, 1]), Isr(&[2, 1])),
        (
            "no partition epoch (an older version's command): not checked",
            MetadataCommand::AlterPartition {
                topic: "t".into(),
                partition: 0,
                leader: 1,
                leader_epoch: 0,
                isr: vec![1, 2, 3],
                partition_epoch: None,
            },
            Isr(&[1, 2, 3]),
        ),
        (
            "stale partition epoch",
            alter("t", 0, 1, 0, 0, &[1, 2, 3]),
            Rejected(stale(0)),
        ),
        (
            "partition epoch from the future",
            alter("t", 0, 1, 0, 2, &[1]),
            Rejected(stale(2)),
        ),
        (
            "stale leader epoch",
            alter("t", 0, 1, 1, 1, &[1]),
            Rejected(not_leader(1, 1)),
        ),
        (
            "not the leader",
            alter("t", 0, 2, 0, 1, &[2]),
            Rejected(not_leader(2, 0)),
        ),
        (
            "a stale leader epoch is reported before a stale partition epoch",
            alter("t", 0, 1, 3, 0, &[1]),
            Rejected(not_leader(1, 3)),
        ),
        (
            "add a fenced replica",
            alter("t", 0, 1, 0, 1, &[1, 2, 4]),
            Rejected(ineligible(4)),
        ),
        (
            "add an unregistered broker",
            alter("t", 0, 1, 0, 1, &[1, 9]),
            Rejected(ineligible(9)),
        ),
        (
            "a stale partition epoch is reported before an ineligible replica",
            alter("t", 0, 1, 0, 0, &[1, 4]),
            Rejected(stale(0)),
        ),
        (
            "add a live broker that is no replica",
            alter("t", 0, 1, 0, 1, &[1, 5]),
            InvalidRequest,
        ),
        (
            "an ISR without the leader",
            alter("t", 0, 1, 0, 1, &[2]),
            InvalidRequest,
        ),
        (
            "a member twice",
            alter("t", 0, 1, 0, 1, &[1, 2, 2]),
            InvalidRequest,
        ),
        (
            "unknown partition",
            alter("t", 1, 1, 0, 1, &[1]),
            Rejected(CommandError::UnknownPartition {
                topic: "t".into(),
                partition: 1,
            }),
        ),
        (
            "unknown topic",
            alter("u", 0, 1, 0, 1, &[1]),
            Rejected(CommandError::UnknownTopic("u".into())),
        ),
    ];
    for (name, command, want) in cases {
        let mut image = shrunk();
        let before = image.partition("t", 0).unwrap().clone();
        let got = image.apply(&command);
        let after = image.partition("t", 0).unwrap().clone();
        match want {
            Isr(isr) => {
                assert_eq!(got, CommandResult::Done, "{name}");
                let want = PartitionState {
                    isr: isr.to_vec(),
                    partition_epoch: before.partition_epoch + 1,
                    ..before
                };
                assert_eq!(
                    after, want,
                    "{name}: only the ISR and partition epoch change"
                );
            }
            Rejected(error) => {
                assert_eq!(got, CommandResult::Rejected(error), "{name}");
                assert_eq!(after, before, "{name}: a refused change changes nothing");
            }
            InvalidRequest => {
                assert!(
                    matches!(
                        &got,
                        CommandResult::Rejected(CommandError::InvalidRequest(m))
                            if m.contains("must hold the leader and only replicas")
                    ),
                    "{name}: {got:?}"
                );
                assert_eq!(after, before, "{name}: a refused change changes nothing");
            }
        }
    }
}

#[test]
fn a_proposal_from_before_another_change_is_refused_not_merged() {
    // The leader proposes adding 3; meanwhile the controller removed 2 (fenced). Applying
    // the proposal as written would put the fenced 2 back: it is stale instead.
    let mut image = shrunk();
    let proposal = alter("t", 0, 1, 0, 1, &[1, 2, 3]);
    image.apply(&fence(2));
    let p = image.partition("t", 0).unwrap().clone();
    assert_eq!((p.isr.clone(), p.partition_epoch), (vec![1], 2));
    assert_eq!(
        image.apply(&proposal),
        CommandResult::Rejected(CommandError::StalePartitionEpoch {
            topic: "t".into(),
            partition: 0,
            current: 2,
            got: 1,
        })
    );
    assert_eq!(image.partition("t", 0).unwrap(), &p);
    // Retried from the current state, 2 (fenced, so joining) is ineligible; 3 alone is fine.
    assert_eq!(
        image.apply(&alter("t", 0, 1, 0, 2, &[1, 2, 3])),
        CommandResult::Rejected(CommandError::IneligibleReplica {
            topic: "t".into(),
            partition: 0,
            replica: 2,
        })
    );
    assert_eq!(
        image.apply(&alter("t", 0, 1, 0, 2, &[1, 3])),
        CommandResult::Done
    );
    assert_eq!(image.partition("t", 0).unwrap().isr, vec![1, 3]);
}

#[test]
fn the_first_isr_change_of_an_unclean_leader_ends_its_recovery() {
    let mut image = cluster(&[1, 2]);
    image.apply(&explicit_with(
        "t",
        vec![vec![1, 2]],
        &[("unclean.leader.election.enable", "true")],
    ));
    image.apply(&alter("t", 0, 1, 0, 0, &[1]));
    image.apply(&fence(1));
    let p = image.partition("t", 0).unwrap().clone();
    assert_eq!((p.leader, p.isr.clone(), p.recovering), (2, vec![2], true));

    // Refused changes leave it recovering.
    let stale = alter("t", 0, 2, p.leader_epoch, p.partition_epoch - 1, &[2]);
    assert!(matches!(
        image.apply(&stale),
        CommandResult::Rejected(CommandError::StalePartitionEpoch { .. })
    ));
    assert!(image.partition("t", 0).unwrap().recovering);

    let same_isr = alter("t", 0, 2, p.leader_epoch, p.partition_epoch, &[2]);
    assert_eq!(image.apply(&same_isr), CommandResult::Done);
    let p = image.partition("t", 0).unwrap();
    assert!(!p.recovering);
    assert_eq!((p.leader, p.isr.clone()), (2, vec![2]));
}

#[test]
fn a_reassignment_completes_when_the_last_added_replica_joins_the_isr() {
    let mut image = cluster(&[1, 2, 3, 4]);
    image.apply(&explicit("t", vec![vec![1, 2]]));
    image.apply(&MetadataCommand::Reassign {
        topic: "t".into(),
        partition: 0,
        target: Some(vec![3, 4]),
    });
    let p = image.partition("t", 0).unwrap().clone();
    assert_eq!(p.replicas, vec![3, 4, 1, 2]);
    assert_eq!((p.isr.clone(), p.leader), (vec![1, 2], 1));

    let r = image.apply(&alter(
        "t",
        0,
        1,
        p.leader_epoch,
        p.partition_epoch,
        &[1, 2, 3],
    ));
    assert_eq!(r, CommandResult::Done);
    let p = image.partition("t", 0).unwrap().clone();
    assert!(p.is_reassigning(), "4 is not in sync yet");
    assert_eq!(p.replicas, vec![3, 4, 1, 2]);

    let r = image.apply(&alter(
        "t",
        0,
        1,
        p.leader_epoch,
        p.partition_epoch,
        &[1, 2, 3, 4],
    ));
    assert_eq!(r, CommandResult::Done);
    let q = image.partition("t", 0).unwrap();
    assert!(!q.is_reassigning());
    assert_eq!(q.replicas, vec![3, 4]);
    assert_eq!(q.isr, vec![3, 4]);
    assert_eq!(q.leader, 3, "leadership moves off a removed replica");
    assert_eq!(q.leader_epoch, p.leader_epoch + 1);
    assert_eq!(
        q.partition_epoch,
        p.partition_epoch + 2,
        "the ISR change and the completion"
    );
}

#[test]
fn commands_and_partitions_written_by_older_versions_still_read() {
    let old = r#"{"AlterPartition":{"topic":"t","partition":0,"leader":1,
        "leader_epoch":2,"isr":[1,2]}}"#;
    let command: MetadataCommand = serde_json::from_str(old).unwrap();
    assert_eq!(
        command,
        MetadataCommand::AlterPartition {
            topic: "t".into(),
            partition: 0,
            leader: 1,
            leader_epoch: 2,
            isr: vec![1, 2],
            partition_epoch: None,
        }
    );

    let old = r#"{"replicas":[1,2],"isr":[1],"leader":1,"leader_epoch":0,"partition_epoch":0}"#;
    let state: PartitionState = serde_json::from_str(old).unwrap();
    assert!(!state.recovering);
    let json = serde_json::to_string(&state).unwrap();
    assert!(!json.contains("recovering"), "{json}");

    let recovering = PartitionState {
        recovering: true,
        ..state
    };
    let json = serde_json::to_string(&recovering).unwrap();
    assert!(json.contains(r#""recovering":true"#), "{json}");
    assert_eq!(
        serde_json::from_str::<PartitionState>(&json).unwrap(),
        recovering
    );
}
