//! Table-driven tests of the group state machine: events in, replies/effects/state out.

use super::*;

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    }
}

fn join_req(
    member_id: &str,
    new_id: &str,
    instance: Option<&str>,
    protocols: &[&str],
) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        group_instance_id: instance.map(Into::into),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member_id: true,
        new_member_id: new_id.into(),
    }
}

fn completed_joins(effects: &[Effect]) -> Vec<(String, JoinResult)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::CompleteJoin { member_id, result } => Some((member_id.clone(), result.clone())),
            _ => None,
        })
        .collect()
}

fn completed_syncs(effects: &[Effect]) -> Vec<(String, SyncResult)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::CompleteSync { member_id, result } => Some((member_id.clone(), result.clone())),
            _ => None,
        })
        .collect()
}

/// Joins a dynamic member through the MEMBER_ID_REQUIRED round trip; returns its id and
/// the effects of the second join.
fn join_dynamic(g: &mut GroupMetadata, id: &str, now: i64) -> Vec<Effect> {
    let (reply, _) = g.join(&config(), join_req("", id, None, &["range"]), now);
    match reply {
        Reply::Now(r) => {
            assert_eq!(r.error, Some(GroupError::MemberIdRequired(id.into())));
            assert_eq!(r.member_id, id);
        }
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    }
    let (reply, effects) = g.join(&config(), join_req(id, "unused", None, &["range"]), now);
    assert_eq!(
        reply,
        Reply::Parked {
            member_id: id.into()
        }
    );
    effects
}

/// A stable group with members `ids` (the first is the leader), generation 1.
fn stable_group(ids: &[&str]) -> GroupMetadata {
    let mut g = GroupMetadata::new("g", 0);
    for id in ids {
        // Nobody has rejoined "yet" except those added: use the deadline to complete.
        let _ = join_dynamic(&mut g, id, 0);
    }
    let effects = g.tick(&config(), 0);
    let joins = completed_joins(&effects);
    assert_eq!(joins.len(), ids.len(), "{effects:?}");
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let leader = g.leader_id().unwrap().to_string();
    let assignments: Vec<(String, Bytes)> = ids
        .iter()
        .map(|id| (id.to_string(), Bytes::from(format!("assign-{id}"))))
        .collect();
    let (reply, effects) = g.sync(&leader, None, g.generation_id(), None, None, assignments, 1);
    assert_eq!(
        reply,
        Reply::Parked {
            member_id: leader.clone()
        }
    );
    assert!(effects.contains(&Effect::StoreGroup));
    assert_eq!(g.state(), GroupState::Stable);
    g
}

#[test]
fn first_rebalance_elects_a_leader_and_hands_out_assignments() {
    let mut g = GroupMetadata::new("g", 0);
    join_dynamic(&mut g, "a", 0);
    join_dynamic(&mut g, "b", 0);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let effects = g.tick(&config(), 0);
    let joins = completed_joins(&effects);
    assert_eq!(g.generation_id(), 1);
    assert_eq!(g.protocol_name(), Some("range"));
    let leader = g.leader_id().unwrap().to_string();
    for (id, r) in &joins {
        assert_eq!(r.error, None);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.leader, leader);
        // Only the leader sees the members and their subscriptions.
        assert_eq!(r.members.len(), if *id == leader { 2 } else { 0 });
    }
    let follower = if leader == "a" { "b" } else { "a" };
    let (reply, effects) = g.sync(follower, None, 1, None, None, vec![], 1);
    assert_eq!(
        reply,
        Reply::Parked {
            member_id: follower.into()
        }
    );
    assert!(effects.is_empty(), "followers wait for the leader");
    let (_, effects) = g.sync(
        &leader,
        None,
        1,
        Some("consumer"),
        Some("range"),
        vec![
            (follower.into(), Bytes::from_static(b"F")),
            (leader.clone(), Bytes::from_static(b"L")),
        ],
        1,
    );
    let syncs = completed_syncs(&effects);
    assert_eq!(syncs.len(), 2);
    for (id, r) in syncs {
        let want: &[u8] = if id == leader { b"L" } else { b"F" };
        assert_eq!(&r.assignment[..], want);
    }
    assert_eq!(g.state(), GroupState::Stable);
}

#[test]
fn generation_fencing_table() {
    // (event on a stable group of [a, b] at generation 1, expected result)
    type Case = (
        &'static str,
        fn(&mut GroupMetadata) -> Result<(), GroupError>,
        Result<(), GroupError>,
    );
    let cases: Vec<Case> = vec![
        ("heartbeat ok", |g| g.heartbeat("a", None, 1, 10), Ok(())),
        (
            "heartbeat old generation",
            |g| g.heartbeat("a", None, 0, 10),
            Err(GroupError::IllegalGeneration { current: 1, got: 0 }),
        ),
        (
            "heartbeat unknown member",
            |g| g.heartbeat("zz", None, 1, 10),
            Err(GroupError::UnknownMemberId("zz".into())),
        ),
        (
            "commit old generation",
            |g| {
                g.validate_commit(
                    &CommitRequest {
                        member_id: "b",
                        group_instance_id: None,
                        generation_id: 7,
                    },
                    10,
                )
            },
            Err(GroupError::IllegalGeneration { current: 1, got: 7 }),
        ),
        (
            "admin commit refused while members are active",
            |g| {
                g.validate_commit(
                    &CommitRequest {
                        member_id: "",
                        group_instance_id: None,
                        generation_id: -1,
                    },
                    10,
                )
            },
            Err(GroupError::UnknownMemberId("".into())),
        ),
        (
            "commit ok",
            |g| {
                g.validate_commit(
                    &CommitRequest {
                        member_id: "b",
                        group_instance_id: None,
                        generation_id: 1,
                    },
                    10,
                )
            },
            Ok(()),
        ),
        (
            "heartbeat during rebalance",
            |g| {
                let _ = g.join(&config(), join_req("", "c", None, &["range"]), 10);
                let _ = g.join(&config(), join_req("c", "x", None, &["range"]), 10);
                g.heartbeat("a", None, 1, 11)
            },
            Err(GroupError::RebalanceInProgress),
        ),
        (
            "sync during rebalance",
            |g| {
                let _ = g.leave(&config(), &[("b".into(), None)], 10);
                match g.sync("a", None, 1, None, None, vec![], 11).0 {
                    Reply::Now(r) => r.error.map_or(Ok(()), Err),
                    Reply::Parked { .. } => Ok(()),
                }
            },
            Err(GroupError::RebalanceInProgress),
        ),
    ];
    for (name, event, want) in cases {
        let mut g = stable_group(&["a", "b"]);
        assert_eq!(event(&mut g), want, "{name}");
    }
}

#[test]
fn rejoin_of_a_follower_in_stable_does_not_rebalance_but_the_leader_does() {
    let mut g = stable_group(&["a", "b"]);
    let leader = g.leader_id().unwrap().to_string();
    let follower = if leader == "a" { "b" } else { "a" };
    let (reply, effects) = g.join(&config(), join_req(follower, "x", None, &["range"]), 5);
    assert!(matches!(
        reply,
        Reply::Now(JoinResult {
            error: None,
            generation_id: 1,
            ..
        })
    ));
    assert!(effects.is_empty());
    assert_eq!(g.state(), GroupState::Stable);
    let (reply, effects) = g.join(&config(), join_req(&leader, "x", None, &["range"]), 5);
    assert_eq!(
        reply,
        Reply::Parked {
            member_id: leader.clone()
        }
    );
    assert!(effects.contains(&Effect::RebalanceStarted));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn expired_session_removes_member_and_the_rest_rebalance_without_it() {
    let mut g = stable_group(&["a", "b"]);
    g.heartbeat("a", None, 1, 9_000).unwrap();
    // b never heartbeats again: expires after its 10 s session.
    let effects = g.tick(&config(), 10_002);
    assert!(effects.contains(&Effect::RebalanceStarted));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.member_count(), 1);
    assert_eq!(
        g.heartbeat("a", None, 1, 10_003),
        Err(GroupError::RebalanceInProgress)
    );
    let (_, effects) = g.join(&config(), join_req("a", "x", None, &["range"]), 10_004);
    let joins = completed_joins(&effects);
    assert_eq!(joins.len(), 1);
    assert_eq!(joins[0].1.generation_id, 2);
    assert_eq!(joins[0].1.leader, "a");
}

#[test]
fn members_that_do_not_rejoin_before_the_deadline_are_dropped() {
    let mut g = stable_group(&["a", "b"]);
    let _ = g.join(&config(), join_req("", "c", None, &["range"]), 100);
    let _ = g.join(&config(), join_req("c", "x", None, &["range"]), 100);
    let _ = g.join(&config(), join_req("a", "x", None, &["range"]), 100);
    // b keeps heartbeating but never rejoins; the rebalance timeout is 30 s.
    g.heartbeat("b", None, 1, 20_000).unwrap_err();
    assert!(completed_joins(&g.tick(&config(), 29_000)).is_empty());
    let joins = completed_joins(&g.tick(&config(), 30_100));
    let mut ids: Vec<_> = joins.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(g.member_count(), 2);
}

#[test]
fn leave_group_batch_reports_each_member() {
    let mut g = stable_group(&["a", "b", "c"]);
    let (results, effects) = g.leave(
        &config(),
        &[
            ("a".into(), None),
            ("nobody".into(), None),
            ("b".into(), None),
        ],
        5,
    );
    assert_eq!(
        results,
        vec![
            Ok(()),
            Err(GroupError::UnknownMemberId("nobody".into())),
            Ok(())
        ]
    );
    assert!(effects.contains(&Effect::RebalanceStarted));
    assert_eq!(g.member_count(), 1);
}

#[test]
fn last_member_leaving_makes_the_group_empty_and_admin_commits_possible() {
    let mut g = stable_group(&["a"]);
    let (_, effects) = g.leave(&config(), &[("a".into(), None)], 5);
    assert!(effects.contains(&Effect::StoreGroup));
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.generation_id(), 2);
    let admin = CommitRequest {
        member_id: "",
        group_instance_id: None,
        generation_id: -1,
    };
    assert_eq!(g.validate_commit(&admin, 6), Ok(()));
}

#[test]
fn static_member_restart_gets_old_assignment_without_rebalance() {
    let mut g = GroupMetadata::new("g", 0);
    for (id, inst) in [("a1", "ia"), ("b1", "ib")] {
        let (reply, _) = g.join(&config(), join_req("", id, Some(inst), &["range"]), 0);
        assert_eq!(
            reply,
            Reply::Parked {
                member_id: id.into()
            },
            "static members skip MEMBER_ID_REQUIRED"
        );
    }
    g.tick(&config(), 0);
    let leader = g.leader_id().unwrap().to_string();
    let assignments = vec![
        ("a1".to_string(), Bytes::from_static(b"A")),
        ("b1".to_string(), Bytes::from_static(b"B")),
    ];
    g.sync(&leader, None, 1, None, None, assignments, 1);
    assert_eq!(g.state(), GroupState::Stable);

    // b restarts: same instance id, no member id.
    let (reply, effects) = g.join(&config(), join_req("", "b2", Some("ib"), &["range"]), 50);
    let Reply::Now(r) = reply else {
        panic!("expected an immediate answer")
    };
    assert_eq!(
        (r.error, r.generation_id, r.member_id.as_str()),
        (None, 1, "b2")
    );
    assert!(!effects.contains(&Effect::RebalanceStarted));
    assert!(
        effects.contains(&Effect::StoreGroup),
        "the new member id is persisted"
    );
    let (reply, _) = g.sync("b2", Some("ib"), 1, None, None, vec![], 51);
    let Reply::Now(s) = reply else { panic!() };
    assert_eq!(&s.assignment[..], b"B");
    assert_eq!(g.state(), GroupState::Stable);

    // The old incarnation is fenced.
    assert_eq!(
        g.heartbeat("b1", Some("ib"), 1, 52),
        Err(GroupError::FencedInstanceId("ib".into()))
    );
    let (reply, _) = g.join(&config(), join_req("b1", "x", Some("ib"), &["range"]), 52);
    assert!(matches!(
        reply,
        Reply::Now(JoinResult {
            error: Some(GroupError::FencedInstanceId(_)),
            ..
        })
    ));
}

#[test]
fn join_validation_table() {
    let cases: Vec<(&str, JoinRequest, GroupError)> = vec![
        (
            "no protocols",
            join_req("", "n", None, &[]),
            GroupError::InconsistentGroupProtocol,
        ),
        (
            "session timeout too small",
            JoinRequest {
                session_timeout_ms: 10,
                ..join_req("", "n", None, &["range"])
            },
            GroupError::InvalidSessionTimeout {
                got: 10,
                min: 6000,
                max: 1_800_000,
            },
        ),
        (
            "no common protocol with the group",
            join_req("", "n", None, &["roundrobin"]),
            GroupError::InconsistentGroupProtocol,
        ),
        (
            "unknown member id",
            join_req("ghost", "n", None, &["range"]),
            GroupError::UnknownMemberId("ghost".into()),
        ),
    ];
    for (name, req, want) in cases {
        let mut g = stable_group(&["a"]);
        match g.join(&config(), req, 5).0 {
            Reply::Now(r) => assert_eq!(r.error, Some(want), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn protocol_selection_takes_the_most_preferred_common_protocol() {
    let mut g = GroupMetadata::new("g", 0);
    let _ = g.join(
        &config(),
        join_req("", "a", Some("ia"), &["cooperative-sticky", "range"]),
        0,
    );
    let _ = g.join(
        &config(),
        join_req("", "b", Some("ib"), &["range", "cooperative-sticky"]),
        0,
    );
    let _ = g.join(
        &config(),
        join_req("", "c", Some("ic"), &["cooperative-sticky", "range"]),
        0,
    );
    g.tick(&config(), 0);
    assert_eq!(g.protocol_name(), Some("cooperative-sticky"));
}

#[test]
fn initial_delay_waits_for_more_members() {
    let cfg = GroupConfig {
        initial_rebalance_delay_ms: 3_000,
        ..GroupConfig::default()
    };
    let mut g = GroupMetadata::new("g", 0);
    let _ = g.join(&cfg, join_req("", "a", Some("ia"), &["range"]), 0);
    assert!(completed_joins(&g.tick(&cfg, 2_000)).is_empty());
    let _ = g.join(&cfg, join_req("", "b", Some("ib"), &["range"]), 2_500);
    assert!(
        completed_joins(&g.tick(&cfg, 3_100)).is_empty(),
        "extended by the new member"
    );
    assert_eq!(completed_joins(&g.tick(&cfg, 5_500)).len(), 2);
}

#[test]
fn offsets_of_an_empty_consumer_group_expire_after_retention() {
    let cfg = GroupConfig {
        offsets_retention_ms: 1_000,
        ..config()
    };
    let mut g = stable_group(&["a"]);
    g.apply_commit(vec![(
        ("t".into(), 0),
        CommittedOffset {
            offset: 5,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_timestamp_ms: 1,
        },
    )]);
    g.leave(&cfg, &[("a".into(), None)], 10);
    assert!(g
        .tick(&cfg, 500)
        .iter()
        .all(|e| !matches!(e, Effect::DeleteOffsets(_))));
    let effects = g.tick(&cfg, 1_011);
    assert!(effects.contains(&Effect::DeleteOffsets(vec![("t".into(), 0)])));
    assert!(effects.contains(&Effect::DeleteGroup));
    assert_eq!(g.state(), GroupState::Dead);
}

#[test]
fn delete_only_when_empty_and_snapshot_restore_round_trip() {
    let mut g = stable_group(&["a", "b"]);
    assert_eq!(g.delete(5), Err(GroupError::NonEmptyGroup));
    let snap = g.snapshot();
    let mut restored = GroupMetadata::new("g", 0);
    restored.restore(snap.clone(), 100);
    assert_eq!(restored.state(), GroupState::Stable);
    assert_eq!(restored.generation_id(), 1);
    assert_eq!(restored.snapshot().members, snap.members);
    // Restored members keep heartbeating with their generation: no rebalance needed.
    assert_eq!(restored.heartbeat("a", None, 1, 200), Ok(()));
}
