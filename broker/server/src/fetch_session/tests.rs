use super::*;

fn consumer() -> SessionOwner {
    SessionOwner {
        principal: "User:alice".into(),
        replica_id: -1,
    }
}

fn follower(id: i32) -> SessionOwner {
    SessionOwner {
        principal: "User:broker".into(),
        replica_id: id,
    }
}

fn tp(topic: &str, partition: i32) -> SessionPartition {
    SessionPartition {
        topic: TopicRef::Name(topic.into()),
        partition,
    }
}

fn at(offset: i64) -> FetchPosition {
    FetchPosition {
        fetch_offset: offset,
        partition_max_bytes: 1 << 20,
        log_start_offset: -1,
        current_leader_epoch: -1,
        last_fetched_epoch: -1,
    }
}

fn outcome(hw: i64, record_bytes: usize) -> PartitionOutcome {
    PartitionOutcome {
        high_watermark: hw,
        last_stable_offset: hw,
        log_start_offset: 0,
        preferred_read_replica: -1,
        has_error: false,
        record_bytes,
    }
}

/// Ids handed out in order: 7, 8, 9, ...
fn ids() -> impl FnMut() -> i32 {
    let mut next = 6;
    move || {
        next += 1;
        next
    }
}

/// A cache holding one session of `owner` over `partitions`, all with high watermark 10
/// and nothing new; its id.
fn open(
    cache: &mut FetchSessionCache,
    owner: &SessionOwner,
    partitions: &[SessionPartition],
    now: i64,
) -> i32 {
    let full: Vec<_> = partitions
        .iter()
        .map(|p| (p.clone(), at(10), outcome(10, 0)))
        .collect();
    match cache.create(owner, false, &full, now, ids()) {
        Admission::Created { id, .. } => id,
        Admission::NoSlot => panic!("no slot"),
    }
}

fn incremental(
    cache: &mut FetchSessionCache,
    owner: &SessionOwner,
    id: i32,
    epoch: i32,
    add: &[(SessionPartition, FetchPosition)],
    forget: &[SessionPartition],
) -> Result<(i32, Vec<(SessionPartition, FetchPosition)>), SessionError> {
    match cache.new_context(
        owner,
        &SessionRequest {
            session_id: id,
            epoch,
            uses_topic_ids: false,
            partitions: add,
            forgotten: forget,
        },
        1_000,
    )? {
        FetchContext::Incremental {
            id: got,
            epoch,
            partitions,
        } => {
            assert_eq!(got, id);
            Ok((epoch, partitions))
        }
        other => panic!("expected an incremental context, got {other:?}"),
    }
}

#[test]
fn epochs_count_up_from_one_and_wrap_to_one() {
    for (epoch, next) in [(0, 1), (1, 2), (41, 42), (i32::MAX, 1), (-1, -1)] {
        assert_eq!(next_epoch(epoch), next, "after {epoch}");
    }
}

#[test]
fn session_fields_choose_the_context() {
    // (session id, epoch, expected)
    let cases = [
        (0, FINAL_EPOCH, Ok(FetchContext::Sessionless)),
        (0, INITIAL_EPOCH, Ok(FetchContext::Full)),
        (12345, FINAL_EPOCH, Ok(FetchContext::Sessionless)), // closing an unknown id is fine
        (12345, INITIAL_EPOCH, Ok(FetchContext::Full)),
        (12345, 1, Err(SessionError::IdNotFound(12345))),
        (0, 1, Err(SessionError::IdNotFound(0))),
    ];
    for (id, epoch, expected) in cases {
        let mut cache = FetchSessionCache::new(10);
        let got = cache.new_context(
            &consumer(),
            &SessionRequest {
                session_id: id,
                epoch,
                uses_topic_ids: false,
                partitions: &[],
                forgotten: &[],
            },
            0,
        );
        assert_eq!(got, expected, "session {id} epoch {epoch}");
    }
}

#[test]
fn a_new_session_expects_epoch_one_and_counts_its_partitions() {
    let mut cache = FetchSessionCache::new(10);
    let id = open(&mut cache, &consumer(), &[tp("a", 0), tp("a", 1)], 0);
    assert_ne!(id, INVALID_SESSION_ID);
    assert_eq!((cache.len(), cache.cached_partitions()), (1, 2));
    let (next, partitions) = incremental(&mut cache, &consumer(), id, 1, &[], &[]).unwrap();
    assert_eq!(next, 2);
    assert_eq!(partitions, vec![(tp("a", 0), at(10)), (tp("a", 1), at(10))]);
}

#[test]
fn incremental_requests_add_update_and_forget_partitions() {
    let mut cache = FetchSessionCache::new(10);
    let owner = consumer();
    let id = open(&mut cache, &owner, &[tp("a", 0), tp("a", 1), tp("b", 0)], 0);
    let (_, partitions) = incremental(
        &mut cache,
        &owner,
        id,
        1,
        &[(tp("a", 1), at(15)), (tp("c", 3), at(0))],
        &[tp("b", 0)],
    )
    .unwrap();
    assert_eq!(
        partitions,
        vec![
            (tp("a", 0), at(10)),
            (tp("a", 1), at(15)),
            (tp("c", 3), at(0))
        ]
    );
    assert_eq!(cache.cached_partitions(), 3);
    // What a request changed stays changed for the next one.
    let (_, partitions) = incremental(&mut cache, &owner, id, 2, &[], &[tp("a", 0)]).unwrap();
    assert_eq!(partitions, vec![(tp("a", 1), at(15)), (tp("c", 3), at(0))]);
    assert_eq!(cache.cached_partitions(), 2);
}

#[test]
fn a_wrong_epoch_is_refused_and_changes_nothing() {
    let mut cache = FetchSessionCache::new(10);
    let owner = consumer();
    let id = open(&mut cache, &owner, &[tp("a", 0)], 0);
    for epoch in [2, 5, -2] {
        let got = cache.new_context(
            &owner,
            &SessionRequest {
                session_id: id,
                epoch,
                uses_topic_ids: false,
                partitions: &[(tp("x", 0), at(0))],
                forgotten: &[],
            },
            1,
        );
        assert_eq!(
            got,
            Err(SessionError::InvalidEpoch {
                id,
                expected: 1,
                got: epoch
            })
        );
    }
    assert_eq!(cache.cached_partitions(), 1);
    // The right epoch still works, and the same epoch twice does not.
    incremental(&mut cache, &owner, id, 1, &[], &[]).unwrap();
    assert!(matches!(
        cache.new_context(
            &owner,
            &SessionRequest {
                session_id: id,
                epoch: 1,
                uses_topic_ids: false,
                partitions: &[],
                forgotten: &[]
            },
            1,
        ),
        Err(SessionError::InvalidEpoch { expected: 2, .. })
    ));
}

#[test]
fn mixing_topic_names_and_ids_is_refused() {
    let mut cache = FetchSessionCache::new(10);
    let id = open(&mut cache, &consumer(), &[tp("a", 0)], 0);
    let got = cache.new_context(
        &consumer(),
        &SessionRequest {
            session_id: id,
            epoch: 1,
            uses_topic_ids: true,
            partitions: &[],
            forgotten: &[],
        },
        1,
    );
    assert_eq!(got, Err(SessionError::TopicIdMismatch(id)));
}

#[test]
fn closing_removes_the_session_and_reopening_replaces_it() {
    let mut cache = FetchSessionCache::new(10);
    let owner = consumer();
    let id = open(&mut cache, &owner, &[tp("a", 0)], 0);
    assert_eq!(
        cache.new_context(
            &owner,
            &SessionRequest {
                session_id: id,
                epoch: FINAL_EPOCH,
                uses_topic_ids: false,
                partitions: &[],
                forgotten: &[]
            },
            1,
        ),
        Ok(FetchContext::Sessionless)
    );
    assert_eq!((cache.len(), cache.cached_partitions()), (0, 0));
    assert_eq!(
        cache.new_context(
            &owner,
            &SessionRequest {
                session_id: id,
                epoch: 1,
                uses_topic_ids: false,
                partitions: &[],
                forgotten: &[]
            },
            1,
        ),
        Err(SessionError::IdNotFound(id))
    );

    let id = open(&mut cache, &owner, &[tp("a", 0)], 0);
    assert_eq!(
        cache.new_context(
            &owner,
            &SessionRequest {
                session_id: id,
                epoch: INITIAL_EPOCH,
                uses_topic_ids: false,
                partitions: &[],
                forgotten: &[]
            },
            1,
        ),
        Ok(FetchContext::Full)
    );
    assert!(
        cache.is_empty(),
        "epoch 0 with an id closes that session first"
    );
}

#[test]
fn another_principal_or_replica_cannot_use_or_close_a_session() {
    let mut cache = FetchSessionCache::new(10);
    let id = open(&mut cache, &consumer(), &[tp("a", 0)], 0);
    let others = [
        SessionOwner {
            principal: "User:mallory".into(),
            replica_id: -1,
        },
        SessionOwner {
            principal: "User:alice".into(),
            replica_id: 2,
        },
    ];
    for other in &others {
        assert_eq!(
            cache.new_context(
                other,
                &SessionRequest {
                    session_id: id,
                    epoch: 1,
                    uses_topic_ids: false,
                    partitions: &[],
                    forgotten: &[]
                },
                1,
            ),
            Err(SessionError::IdNotFound(id)),
            "{other:?}"
        );
        assert_eq!(
            cache.complete_incremental(other, id, 2, &[]),
            Err(SessionError::IdNotFound(id))
        );
        for epoch in [FINAL_EPOCH, INITIAL_EPOCH] {
            cache
                .new_context(
                    other,
                    &SessionRequest {
                        session_id: id,
                        epoch,
                        uses_topic_ids: false,
                        partitions: &[],
                        forgotten: &[],
                    },
                    1,
                )
                .unwrap();
        }
    }
    assert_eq!(
        cache.len(),
        1,
        "others' close requests left the session alone"
    );
    incremental(&mut cache, &consumer(), id, 1, &[], &[]).unwrap();
}

#[test]
fn an_incremental_response_holds_only_what_is_new() {
    let error = PartitionOutcome {
        has_error: true,
        high_watermark: -1,
        ..outcome(10, 0)
    };
    // (what was fetched for the partition, whether it is answered)
    let cases = [
        ("nothing new", outcome(10, 0), false),
        ("records", outcome(10, 100), true),
        ("high watermark moved", outcome(11, 0), true),
        (
            "last stable offset moved",
            PartitionOutcome {
                last_stable_offset: 9,
                ..outcome(10, 0)
            },
            true,
        ),
        (
            "log start offset moved",
            PartitionOutcome {
                log_start_offset: 4,
                ..outcome(10, 0)
            },
            true,
        ),
        (
            "preferred read replica",
            PartitionOutcome {
                preferred_read_replica: 2,
                ..outcome(10, 0)
            },
            true,
        ),
        ("error", error, true),
    ];
    for (what, fetched, answered) in cases {
        let mut cache = FetchSessionCache::new(10);
        let owner = consumer();
        let id = open(&mut cache, &owner, &[tp("a", 0)], 0);
        let (epoch, _) = incremental(&mut cache, &owner, id, 1, &[], &[]).unwrap();
        let send = cache
            .complete_incremental(&owner, id, epoch, &[(tp("a", 0), fetched)])
            .unwrap();
        assert_eq!(send, vec![answered], "{what}");
    }
}

#[test]
fn what_was_sent_is_remembered_and_errors_are_sent_again_when_they_clear() {
    let mut cache = FetchSessionCache::new(10);
    let owner = consumer();
    let id = open(&mut cache, &owner, &[tp("a", 0)], 0);
    let error = PartitionOutcome {
        has_error: true,
        high_watermark: -1,
        ..outcome(10, 0)
    };
    // (fetched, answered): each step is one incremental request.
    let steps = [
        (outcome(12, 0), true),  // the high watermark moved
        (outcome(12, 0), false), // and was sent: nothing new
        (error, true),
        (error, true),          // errors are answered every time
        (outcome(12, 0), true), // cleared: answered again, though the offsets are as before
        (outcome(12, 0), false),
    ];
    let mut epoch = 1;
    for (i, (fetched, answered)) in steps.into_iter().enumerate() {
        let (next, _) = incremental(&mut cache, &owner, id, epoch, &[], &[]).unwrap();
        let send = cache
            .complete_incremental(&owner, id, next, &[(tp("a", 0), fetched)])
            .unwrap();
        assert_eq!(send, vec![answered], "step {i}");
        epoch = next;
    }
}

#[test]
fn added_partitions_are_answered_at_once() {
    let mut cache = FetchSessionCache::new(10);
    let owner = consumer();
    let id = open(&mut cache, &owner, &[tp("a", 0)], 0);
    let (epoch, partitions) =
        incremental(&mut cache, &owner, id, 1, &[(tp("b", 0), at(0))], &[]).unwrap();
    let fetched: Vec<_> = partitions
        .into_iter()
        .map(|(p, _)| (p, outcome(10, 0)))
        .collect();
    let send = cache
        .complete_incremental(&owner, id, epoch, &fetched)
        .unwrap();
    assert_eq!(send, vec![false, true]);
}

#[test]
fn partitions_that_returned_records_go_to_the_back() {
    let mut cache = FetchSessionCache::new(10);
    let owner = consumer();
    let id = open(&mut cache, &owner, &[tp("a", 0), tp("a", 1), tp("a", 2)], 0);
    let (epoch, _) = incremental(&mut cache, &owner, id, 1, &[], &[]).unwrap();
    let fetched = [
        (tp("a", 0), outcome(20, 100)),
        (tp("a", 1), outcome(11, 0)),
        (tp("a", 2), outcome(10, 0)),
    ];
    let send = cache
        .complete_incremental(&owner, id, epoch, &fetched)
        .unwrap();
    assert_eq!(send, vec![true, true, false]);
    let (_, order) = incremental(&mut cache, &owner, id, epoch, &[], &[]).unwrap();
    let order: Vec<_> = order.into_iter().map(|(p, _)| p.partition).collect();
    assert_eq!(order, vec![1, 2, 0]);
}

#[test]
fn a_response_overtaken_by_a_later_request_is_refused() {
    let mut cache = FetchSessionCache::new(10);
    let owner = consumer();
    let id = open(&mut cache, &owner, &[tp("a", 0)], 0);
    let (first, _) = incremental(&mut cache, &owner, id, 1, &[], &[]).unwrap();
    incremental(&mut cache, &owner, id, first, &[], &[]).unwrap();
    assert_eq!(
        cache.complete_incremental(&owner, id, first, &[(tp("a", 0), outcome(10, 0))]),
        Err(SessionError::InvalidEpoch {
            id,
            expected: 3,
            got: 2
        })
    );
}

#[test]
fn topics_by_id_are_their_own_partitions() {
    let mut cache = FetchSessionCache::new(10);
    let owner = consumer();
    let topic = Uuid::from_u128(42);
    let by_id = SessionPartition {
        topic: TopicRef::Id(topic),
        partition: 0,
    };
    let Admission::Created { id, .. } = cache.create(
        &owner,
        true,
        &[(by_id.clone(), at(0), outcome(0, 0))],
        0,
        ids(),
    ) else {
        panic!("no slot")
    };
    let context = cache.new_context(
        &owner,
        &SessionRequest {
            session_id: id,
            epoch: 1,
            uses_topic_ids: true,
            partitions: &[],
            forgotten: &[by_id],
        },
        1,
    );
    assert!(
        matches!(context, Ok(FetchContext::Incremental { ref partitions, .. }) if partitions.is_empty())
    );
    assert_eq!(cache.cached_partitions(), 0);
}

#[test]
fn zero_slots_never_create_sessions() {
    let mut cache = FetchSessionCache::new(0);
    let got = cache.create(&consumer(), false, &[], 0, ids());
    assert_eq!(got, Admission::NoSlot);
}

#[test]
fn ids_are_non_zero_and_unused() {
    let mut cache = FetchSessionCache::new(10);
    let mut candidates = [0, 5, 5, 9].into_iter();
    let mut next = || candidates.next().expect("enough candidates");
    let first = cache.create(&consumer(), false, &[], 0, &mut next);
    let second = cache.create(&consumer(), false, &[], 0, &mut next);
    assert_eq!(
        first,
        Admission::Created {
            id: 5,
            evicted: None
        }
    );
    assert_eq!(
        second,
        Admission::Created {
            id: 9,
            evicted: None
        }
    );
}

#[test]
fn eviction_when_the_cache_is_full() {
    const OLD: i64 = MIN_EVICTION_MS + 1;
    let parts = |n: i32| (0..n).map(|i| tp("a", i)).collect::<Vec<_>>();
    struct Case {
        what: &'static str,
        /// (owner, partitions, created at, last used at) of the two sessions in the cache
        existing: [(SessionOwner, i32, i64, i64); 2],
        new: (SessionOwner, i32),
        /// index into `existing` of the evicted one; None: no slot
        evicted: Option<usize>,
    }
    let now = 10 * MIN_EVICTION_MS;
    let cases = [
        Case {
            what: "an idle session goes first, whatever its size",
            existing: [
                (consumer(), 50, 0, now - 10),
                (consumer(), 50, 0, now - OLD),
            ],
            new: (consumer(), 1),
            evicted: Some(1),
        },
        Case {
            what: "young sessions in use are safe from consumers",
            existing: [
                (consumer(), 1, now - 10, now),
                (consumer(), 1, now - 10, now),
            ],
            new: (consumer(), 100),
            evicted: None,
        },
        Case {
            what: "an old session in use with fewer partitions makes room for more",
            existing: [(consumer(), 5, 0, now), (consumer(), 3, 0, now)],
            new: (consumer(), 4),
            evicted: Some(1),
        },
        Case {
            what: "but not for as many or fewer",
            existing: [(consumer(), 5, 0, now), (consumer(), 3, 0, now)],
            new: (consumer(), 3),
            evicted: None,
        },
        Case {
            what: "a follower evicts a young consumer session",
            existing: [
                (follower(2), 1, now - 10, now),
                (consumer(), 50, now - 10, now),
            ],
            new: (follower(3), 1),
            evicted: Some(1),
        },
        Case {
            what: "but not a young follower session",
            existing: [
                (follower(2), 1, now - 10, now),
                (follower(4), 1, now - 10, now),
            ],
            new: (follower(3), 100),
            evicted: None,
        },
        Case {
            what: "a consumer does not evict an old follower session with fewer partitions",
            existing: [(follower(2), 1, 0, now), (follower(4), 1, 0, now)],
            new: (consumer(), 100),
            evicted: None,
        },
    ];
    for case in cases {
        let mut cache = FetchSessionCache::new(2);
        let mut ids = Vec::new();
        for (owner, n, created, used) in &case.existing {
            let id = open(&mut cache, owner, &parts(*n), *created);
            cache.sessions.get_mut(&id).unwrap().last_used_ms = *used;
            ids.push(id);
        }
        let before = cache.cached_partitions();
        let (owner, n) = &case.new;
        let full: Vec<_> = parts(*n)
            .into_iter()
            .map(|p| (p, at(0), outcome(0, 0)))
            .collect();
        let got = cache.create(owner, false, &full, now, || 1000);
        match case.evicted {
            Some(i) => {
                assert_eq!(
                    got,
                    Admission::Created {
                        id: 1000,
                        evicted: Some(ids[i])
                    },
                    "{}",
                    case.what
                );
                assert_eq!(cache.len(), 2, "{}", case.what);
                let gone = case.existing[i].1 as usize;
                assert_eq!(
                    cache.cached_partitions(),
                    before - gone + *n as usize,
                    "{}",
                    case.what
                );
            }
            None => {
                assert_eq!(got, Admission::NoSlot, "{}", case.what);
                assert_eq!(cache.cached_partitions(), before, "{}", case.what);
            }
        }
    }
}
