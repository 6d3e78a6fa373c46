//! Safe broker changes: rolling restarts, scale-up spreading and scale-down draining.
//!
//! Plans are pure functions over [`ClusterMetadata`]; the `*_step` functions perform one step
//! through the [`Admin`] seam and say what the reconcile should do next. Each reconcile takes at
//! most one step, so progress is driven by requeues and every step re-reads the cluster.

use std::collections::{BTreeMap, BTreeSet};

use crate::admin::{Admin, AdminError, BrokerId, ClusterMetadata, Reassignment};

/// Outcome of one scale or roll step, mapped by the reconcile onto StatefulSet replicas,
/// pod deletions and conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing left to do.
    Done,
    /// Work is under way (e.g. reassignments running); check again soon.
    InProgress {
        reason: &'static str,
        message: String,
    },
    /// Refused: acting would be unsafe or impossible. Reported as Degraded.
    Blocked {
        reason: &'static str,
        message: String,
    },
}

/// Why a broker restart must wait, or `None` when restarting `broker` now keeps every partition
/// at or above `min_isr` in-sync replicas and no partition is under-replicated.
///
/// Partitions whose replication factor is at most `min_isr` cannot survive any broker restart
/// for `acks=all` writes, so they do not block a roll (as in Kafka's own tooling).
pub fn restart_blocker(meta: &ClusterMetadata, broker: BrokerId, min_isr: usize) -> Option<String> {
    let urp: Vec<String> = meta
        .topics
        .iter()
        .flat_map(|(t, info)| {
            info.partitions
                .iter()
                .filter(|(_, p)| p.under_replicated())
                .map(move |(i, _)| format!("{t}-{i}"))
        })
        .collect();
    if !urp.is_empty() {
        return Some(format!(
            "{} under-replicated partitions (first: {})",
            urp.len(),
            urp[0]
        ));
    }
    for (topic, info) in &meta.topics {
        for (i, p) in &info.partitions {
            if p.replicas.len() > min_isr && p.isr.contains(&broker) && p.isr.len() - 1 < min_isr {
                return Some(format!(
                    "restarting broker {broker} would take {topic}-{i} below min.insync.replicas={min_isr}"
                ));
            }
        }
    }
    None
}

/// Replica count per broker (brokers holding none included).
fn load(meta: &ClusterMetadata, brokers: &[BrokerId]) -> BTreeMap<BrokerId, usize> {
    let mut load: BTreeMap<BrokerId, usize> = brokers.iter().map(|b| (*b, 0)).collect();
    for info in meta.topics.values() {
        for p in info.partitions.values() {
            for r in &p.replicas {
                if let Some(n) = load.get_mut(r) {
                    *n += 1;
                }
            }
        }
    }
    load
}

/// The most partitions one step sends to AlterPartitionReassignments: moves go in batches,
/// each waited for, so a drain or a node loss never starts a replication storm and every
/// admin call stays short.
pub const MAX_MOVES_PER_STEP: usize = 20;

/// Racks of brokers (from their Nodes' `rack.topologyKey` label); brokers without one share
/// the empty rack.
pub type Racks = BTreeMap<BrokerId, String>;

/// A new replica list for `replicas` without any broker of `leaving`: the staying replicas
/// first, in their order (so an in-sync one stays the preferred leader), then one replacement
/// per leaving replica. A replacement is a `candidates` broker not already holding the
/// partition, on a rack the partition doesn't use yet when there is one, else the least
/// loaded (lowest id on ties). `None` when too few candidates are left.
fn replace_replicas(
    replicas: &[BrokerId],
    leaving: &BTreeSet<BrokerId>,
    load: &mut BTreeMap<BrokerId, usize>,
    racks: &Racks,
) -> Option<Vec<BrokerId>> {
    let mut out: Vec<BrokerId> = replicas
        .iter()
        .copied()
        .filter(|r| !leaving.contains(r))
        .collect();
    let rack = |b: &BrokerId| racks.get(b).map(String::as_str).unwrap_or("");
    for _ in 0..replicas.len() - out.len() {
        let used: BTreeSet<&str> = out.iter().map(rack).collect();
        let target = load
            .iter()
            .filter(|(b, _)| !replicas.contains(b) && !out.contains(b) && !leaving.contains(b))
            .min_by_key(|(b, n)| (used.contains(rack(b)), **n, **b))
            .map(|(b, _)| *b)?;
        out.push(target);
        *load.entry(target).or_default() += 1;
    }
    Some(out)
}

/// Moves every replica off `removed` onto the `remaining` brokers (see [`replace_replicas`]).
/// Errors with a human reason when a topic's replication factor exceeds the remaining broker
/// count.
pub fn plan_drain(
    meta: &ClusterMetadata,
    removed: &BTreeSet<BrokerId>,
    remaining: &[BrokerId],
    racks: &Racks,
) -> Result<Vec<Reassignment>, String> {
    let mut load = load(meta, remaining);
    let mut moves = Vec::new();
    for (topic, i, p) in meta.partitions() {
        if !p.replicas.iter().any(|r| removed.contains(r)) {
            continue;
        }
        if p.replicas.len() > remaining.len() {
            return Err(format!(
                "topic {topic} has replication factor {} but only {} brokers would remain",
                p.replicas.len(),
                remaining.len()
            ));
        }
        let replicas = replace_replicas(&p.replicas, removed, &mut load, racks)
            .ok_or_else(|| format!("no broker left to take a replica of {topic}-{i}"))?;
        moves.push(Reassignment {
            topic: topic.to_string(),
            partition: i,
            replicas,
        });
    }
    Ok(moves)
}

/// Node loss: moves the replicas of `lost` brokers to `healthy` ones, restoring each
/// partition's replication factor where enough healthy brokers are left. Partitions already
/// being reassigned are left alone. Returns the moves and the partitions that cannot be
/// restored (too few healthy brokers): those recover when the lost broker comes back.
pub fn plan_replace(
    meta: &ClusterMetadata,
    lost: &BTreeSet<BrokerId>,
    healthy: &[BrokerId],
    reassigning: &BTreeSet<(String, i32)>,
    racks: &Racks,
) -> (Vec<Reassignment>, Vec<String>) {
    let mut load = load(meta, healthy);
    let mut moves = Vec::new();
    let mut stuck = Vec::new();
    for (topic, i, p) in meta.partitions() {
        if !p.replicas.iter().any(|r| lost.contains(r))
            || reassigning.contains(&(topic.to_string(), i))
        {
            continue;
        }
        match replace_replicas(&p.replicas, lost, &mut load, racks) {
            Some(replicas) => moves.push(Reassignment {
                topic: topic.to_string(),
                partition: i,
                replicas,
            }),
            None => stuck.push(format!("{topic}-{i}")),
        }
    }
    (moves, stuck)
}

/// After a scale-up: when some broker holds no replica at all, moves replicas from the most to
/// the least loaded brokers until counts differ by at most one. Leaders (first replica) stay.
pub fn plan_spread(meta: &ClusterMetadata, brokers: &[BrokerId]) -> Vec<Reassignment> {
    let mut load = load(meta, brokers);
    if !load.values().any(|n| *n == 0) {
        return Vec::new();
    }
    let mut assignment: BTreeMap<(String, i32), Vec<BrokerId>> = meta
        .topics
        .iter()
        .flat_map(|(t, info)| {
            info.partitions
                .iter()
                .map(move |(i, p)| ((t.clone(), *i), p.replicas.clone()))
        })
        .collect();
    let mut changed = BTreeSet::new();
    loop {
        let (&max_b, &max_n) = load
            .iter()
            .max_by_key(|(b, n)| (**n, -**b))
            .expect("brokers non-empty");
        let (&min_b, &min_n) = load
            .iter()
            .min_by_key(|(b, n)| (**n, **b))
            .expect("brokers non-empty");
        if max_n <= min_n + 1 {
            break;
        }
        // A follower replica on the most loaded broker of a partition the least loaded lacks.
        let candidate = assignment
            .iter_mut()
            .find(|(_, r)| r.iter().skip(1).any(|b| *b == max_b) && !r.contains(&min_b));
        let Some((key, replicas)) = candidate else {
            break;
        };
        for b in replicas.iter_mut().skip(1) {
            if *b == max_b {
                *b = min_b;
                break;
            }
        }
        changed.insert(key.clone());
        *load.get_mut(&max_b).expect("present") -= 1;
        *load.get_mut(&min_b).expect("present") += 1;
    }
    changed
        .into_iter()
        .map(|(topic, partition)| {
            let replicas = assignment[&(topic.clone(), partition)].clone();
            Reassignment {
                topic,
                partition,
                replicas,
            }
        })
        .collect()
}

fn unsupported_or(e: AdminError, what: &str) -> Result<Step, AdminError> {
    match e {
        AdminError::Unsupported { api } => Ok(Step::Blocked {
            reason: "NotSupported",
            message: format!("cannot {what}: the cluster does not support the {api} API"),
        }),
        other => Err(other),
    }
}

/// One step of scaling down to `desired` brokers. `Done` means no replica is left on the
/// brokers being removed and the StatefulSet may shrink.
pub async fn scale_down_step(
    admin: &dyn Admin,
    desired: i32,
    racks: &Racks,
) -> Result<Step, AdminError> {
    match scale_down_inner(admin, desired, racks).await {
        Ok(step) => Ok(step),
        Err(e) => unsupported_or(e, "drain brokers for scale-down"),
    }
}

async fn scale_down_inner(
    admin: &dyn Admin,
    desired: i32,
    racks: &Racks,
) -> Result<Step, AdminError> {
    let running = admin.list_reassignments().await?;
    if !running.is_empty() {
        return Ok(Step::InProgress {
            reason: "Draining",
            message: format!(
                "waiting for {} partition reassignments to finish",
                running.len()
            ),
        });
    }
    let meta = admin.metadata().await?;
    let removed: BTreeSet<BrokerId> = meta
        .brokers
        .iter()
        .copied()
        .filter(|b| *b >= desired)
        .collect();
    let remaining: Vec<BrokerId> = meta
        .brokers
        .iter()
        .copied()
        .filter(|b| *b < desired)
        .collect();
    match plan_drain(&meta, &removed, &remaining, racks) {
        Err(message) => Ok(Step::Blocked {
            reason: "ScaleDownBlocked",
            message,
        }),
        Ok(moves) if moves.is_empty() => Ok(Step::Done),
        Ok(moves) => {
            let batch = &moves[..moves.len().min(MAX_MOVES_PER_STEP)];
            admin.alter_reassignments(batch).await?;
            Ok(Step::InProgress {
                reason: "Draining",
                message: format!(
                    "moving {} of {} partitions off brokers {:?} before scaling down",
                    batch.len(),
                    moves.len(),
                    removed
                ),
            })
        }
    }
}

/// One step of spreading partitions onto brokers that hold none: after a scale-up, or when a
/// lost broker came back with an empty disk.
pub async fn spread_step(admin: &dyn Admin, replicas: i32) -> Result<Step, AdminError> {
    let inner = async {
        let meta = admin.metadata().await?;
        let brokers: Vec<BrokerId> = (0..replicas).collect();
        if brokers.iter().any(|b| !meta.brokers.contains(b)) {
            return Ok(Step::InProgress {
                reason: "ScalingUp",
                message: "waiting for brokers to register".to_string(),
            });
        }
        if !admin.list_reassignments().await?.is_empty() {
            return Ok(Step::InProgress {
                reason: "Rebalancing",
                message: "waiting for partition reassignments to finish".to_string(),
            });
        }
        let moves = plan_spread(&meta, &brokers);
        if moves.is_empty() {
            return Ok(Step::Done);
        }
        let batch = &moves[..moves.len().min(MAX_MOVES_PER_STEP)];
        admin.alter_reassignments(batch).await?;
        Ok(Step::InProgress {
            reason: "Rebalancing",
            message: format!(
                "moving {} of {} partitions onto empty brokers",
                batch.len(),
                moves.len()
            ),
        })
    };
    match inner.await {
        Ok(step) => Ok(step),
        Err(e) => unsupported_or(e, "move partitions onto new brokers"),
    }
}

/// Node loss: one step of moving the lost brokers' replicas to healthy brokers.
pub async fn replace_step(
    admin: &dyn Admin,
    lost: &BTreeSet<BrokerId>,
    healthy: &[BrokerId],
    racks: &Racks,
) -> Result<Step, AdminError> {
    let inner = async {
        let reassigning: BTreeSet<(String, i32)> =
            admin.list_reassignments().await?.into_iter().collect();
        let meta = admin.metadata().await?;
        let (moves, stuck) = plan_replace(&meta, lost, healthy, &reassigning, racks);
        let room = MAX_MOVES_PER_STEP.saturating_sub(reassigning.len());
        let batch = &moves[..moves.len().min(room)];
        if !batch.is_empty() {
            admin.alter_reassignments(batch).await?;
        }
        let mut message = format!(
            "brokers {lost:?} lost: {} partitions moving to healthy brokers, {} to go",
            batch.len() + reassigning.len(),
            moves.len() - batch.len()
        );
        if !stuck.is_empty() {
            message.push_str(&format!(
                "; {} partitions (first: {}) wait for the lost brokers to come back: too few healthy brokers",
                stuck.len(),
                stuck[0]
            ));
        }
        Ok(Step::InProgress {
            reason: "ReplacingLostBrokers",
            message,
        })
    };
    match inner.await {
        Ok(step) => Ok(step),
        Err(e) => unsupported_or(e, "move replicas off lost brokers"),
    }
}

/// What a roll step may do: every broker pod the StatefulSet runs is ready and up, none is
/// terminating, and every broker is registered unfenced. A restart in flight shows up here
/// (its pod terminating or not ready yet), so the next one waits for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollGate {
    Open,
    Wait(String),
}

/// Which broker of `outdated` (ordinals running an old pod revision, with readiness) to
/// restart now, if any. Unready brokers go first (they serve nothing). A ready one only when
/// the `gate` is open, no reassignment is running (never roll while moving) and
/// [`restart_blocker`] finds nothing: each restart must keep every partition at or above
/// `min_isr`, and the last restarted broker must be back in every ISR. Highest ordinal first,
/// and the active controller (the Raft leader) last, so its leadership moves only once.
pub async fn roll_step(
    admin: Option<&dyn Admin>,
    outdated: &[(BrokerId, bool)],
    min_isr: usize,
    gate: RollGate,
) -> Result<(Option<BrokerId>, Step), AdminError> {
    if outdated.is_empty() {
        return Ok((None, Step::Done));
    }
    if let Some((b, _)) = outdated
        .iter()
        .filter(|(_, ready)| !ready)
        .max_by_key(|(b, _)| *b)
    {
        return Ok((Some(*b), in_progress_roll(outdated.len())));
    }
    let waiting = |message: String| {
        Ok((
            None,
            Step::InProgress {
                reason: "RollWaiting",
                message,
            },
        ))
    };
    if let RollGate::Wait(why) = gate {
        return waiting(why);
    }
    let Some(admin) = admin else {
        return waiting(
            "cannot reach the cluster to check partition health before a restart".into(),
        );
    };
    let checked = async {
        let meta = admin.metadata().await?;
        Ok::<_, AdminError>((admin.list_reassignments().await?, meta))
    };
    let (running, meta) = match checked.await {
        Ok(r) => r,
        Err(e) => return unsupported_or(e, "roll brokers").map(|s| (None, s)),
    };
    if !running.is_empty() {
        return waiting(format!(
            "{} partition reassignments running; restarts wait for them",
            running.len()
        ));
    }
    let broker = outdated
        .iter()
        .map(|(b, _)| *b)
        .max_by_key(|b| (Some(*b) != meta.controller, *b))
        .expect("non-empty");
    match restart_blocker(&meta, broker, min_isr) {
        Some(message) => waiting(message),
        None => Ok((Some(broker), in_progress_roll(outdated.len()))),
    }
}

fn in_progress_roll(n: usize) -> Step {
    Step::InProgress {
        reason: "Rolling",
        message: format!("{n} brokers to restart with new configuration"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::fake::FakeAdmin;

    #[test]
    fn restart_blocked_by_under_replication_and_min_isr() {
        let fake = FakeAdmin::with_brokers([0, 1, 2]);
        fake.add_topic("a", &[&[0, 1, 2], &[1, 2, 0]]);
        let meta = fake.state.lock().unwrap().metadata.clone();
        assert_eq!(restart_blocker(&meta, 2, 2), None);

        let mut lagging = meta.clone();
        lagging
            .topics
            .get_mut("a")
            .unwrap()
            .partitions
            .get_mut(&1)
            .unwrap()
            .isr = vec![1, 2];
        let why = restart_blocker(&lagging, 2, 1).unwrap();
        assert!(
            why.contains("1 under-replicated partitions (first: a-1)"),
            "{why}"
        );

        // RF 3, min ISR 3: would go below, but such partitions never survive a restart anyway.
        assert_eq!(restart_blocker(&meta, 2, 3), None);
        let rf2 = FakeAdmin::with_brokers([0, 1, 2]);
        rf2.add_topic("b", &[&[0, 1]]);
        let meta = rf2.state.lock().unwrap().metadata.clone();
        assert_eq!(restart_blocker(&meta, 1, 1), None);
    }

    #[test]
    fn drain_moves_replicas_to_least_loaded_remaining_brokers() {
        let fake = FakeAdmin::with_brokers([0, 1, 2, 3]);
        fake.add_topic("a", &[&[3, 0], &[2, 3], &[0, 1]]);
        let meta = fake.state.lock().unwrap().metadata.clone();
        let moves = plan_drain(&meta, &BTreeSet::from([3]), &[0, 1, 2], &Racks::new()).unwrap();
        assert_eq!(
            moves,
            vec![
                // Broker 0 holds 2 replicas, 1 and 2 one each: a-0 gets 1 (lowest id of the
                // least loaded), then 0 and 1 tie at 2 for a-1 and 0 wins. Staying replicas
                // keep the lead.
                Reassignment {
                    topic: "a".into(),
                    partition: 0,
                    replicas: vec![0, 1]
                },
                Reassignment {
                    topic: "a".into(),
                    partition: 1,
                    replicas: vec![2, 0]
                },
            ]
        );
    }

    #[test]
    fn drain_refuses_when_replication_factor_exceeds_remaining() {
        let fake = FakeAdmin::with_brokers([0, 1, 2]);
        fake.add_topic("wide", &[&[0, 1, 2]]);
        let meta = fake.state.lock().unwrap().metadata.clone();
        let err = plan_drain(&meta, &BTreeSet::from([2]), &[0, 1], &Racks::new()).unwrap_err();
        assert_eq!(
            err,
            "topic wide has replication factor 3 but only 2 brokers would remain"
        );
    }

    #[test]
    fn spread_fills_empty_brokers_and_keeps_leaders() {
        let fake = FakeAdmin::with_brokers([0, 1, 2, 3]);
        fake.add_topic("a", &[&[0, 1], &[1, 0], &[0, 1], &[1, 0]]);
        let meta = fake.state.lock().unwrap().metadata.clone();
        let moves = plan_spread(&meta, &[0, 1, 2, 3]);
        let mut after = meta.clone();
        for m in &moves {
            let p = after
                .topics
                .get_mut(&m.topic)
                .unwrap()
                .partitions
                .get_mut(&m.partition)
                .unwrap();
            assert_eq!(p.replicas[0], m.replicas[0], "leader moved");
            p.replicas = m.replicas.clone();
        }
        let counts = load(&after, &[0, 1, 2, 3]);
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), [2, 2, 2, 2]);
        // Balanced clusters are left alone.
        assert!(plan_spread(&after, &[0, 1, 2, 3]).is_empty());
    }

    #[tokio::test]
    async fn scale_down_drains_then_reports_done() {
        let fake = FakeAdmin::with_brokers([0, 1, 2]);
        fake.add_topic("a", &[&[2, 0], &[0, 1]]);
        let step = scale_down_step(&fake, 2, &Racks::new()).await.unwrap();
        assert!(
            matches!(
                step,
                Step::InProgress {
                    reason: "Draining",
                    ..
                }
            ),
            "{step:?}"
        );
        assert_eq!(fake.calls(), ["reassign a-0 [0, 1]"]);
        // Still running: wait, don't submit again.
        let step = scale_down_step(&fake, 2, &Racks::new()).await.unwrap();
        assert!(matches!(step, Step::InProgress { .. }));
        assert_eq!(fake.calls().len(), 1);
        fake.complete_reassignments();
        assert_eq!(
            scale_down_step(&fake, 2, &Racks::new()).await.unwrap(),
            Step::Done
        );
    }

    #[tokio::test]
    async fn scale_down_blocked_when_rf_too_high() {
        let fake = FakeAdmin::with_brokers([0, 1, 2]);
        fake.add_topic("wide", &[&[0, 1, 2]]);
        let step = scale_down_step(&fake, 2, &Racks::new()).await.unwrap();
        match step {
            Step::Blocked { reason, message } => {
                assert_eq!(reason, "ScaleDownBlocked");
                assert!(message.contains("replication factor 3"));
            }
            other => panic!("{other:?}"),
        }
        assert!(fake.calls().is_empty());
    }

    #[tokio::test]
    async fn unsupported_reassignment_api_refuses_instead_of_acting() {
        let fake = FakeAdmin::with_brokers([0, 1, 2]);
        fake.add_topic("a", &[&[2, 0]]);
        fake.state
            .lock()
            .unwrap()
            .unsupported
            .push("ListPartitionReassignments");
        let step = scale_down_step(&fake, 2, &Racks::new()).await.unwrap();
        assert!(
            matches!(&step, Step::Blocked { reason: "NotSupported", message } if message.contains("ListPartitionReassignments")),
            "{step:?}"
        );
        assert!(fake.calls().is_empty());
    }

    #[tokio::test]
    async fn spread_waits_for_registration_then_moves() {
        let fake = FakeAdmin::with_brokers([0, 1]);
        fake.add_topic("a", &[&[0, 1], &[1, 0]]);
        let step = spread_step(&fake, 3).await.unwrap();
        assert!(matches!(
            step,
            Step::InProgress {
                reason: "ScalingUp",
                ..
            }
        ));
        fake.state.lock().unwrap().metadata.brokers.insert(2);
        let step = spread_step(&fake, 3).await.unwrap();
        assert!(
            matches!(
                step,
                Step::InProgress {
                    reason: "Rebalancing",
                    ..
                }
            ),
            "{step:?}"
        );
        assert_eq!(fake.calls().len(), 1);
        fake.complete_reassignments();
        assert_eq!(spread_step(&fake, 3).await.unwrap(), Step::Done);
    }

    #[test]
    fn replacing_a_lost_broker_restores_the_replication_factor_across_racks() {
        let fake = FakeAdmin::with_brokers([0, 1, 2, 3, 4]);
        fake.add_topic("a", &[&[0, 1, 2], &[1, 2, 3], &[3, 4, 0]]);
        let meta = fake.state.lock().unwrap().metadata.clone();
        let racks: Racks = [(0, "x"), (1, "y"), (2, "z"), (3, "x"), (4, "y")]
            .into_iter()
            .map(|(b, r)| (b, r.to_string()))
            .collect();
        let (moves, stuck) = plan_replace(
            &meta,
            &BTreeSet::from([2]),
            &[0, 1, 3, 4],
            &BTreeSet::new(),
            &racks,
        );
        assert!(stuck.is_empty());
        // a-0 keeps 0 (x) and 1 (y): the replacement must not be on x or y if possible, and
        // none of 3 (x) and 4 (y) is on z, so the least loaded wins (4 holds 1, 3 holds 2).
        // a-1 keeps 1 (y) and 3 (x): same, 4 is on y, 0 on x; 0 holds 2 and 4 holds 2 now.
        assert_eq!(
            moves,
            vec![
                Reassignment {
                    topic: "a".into(),
                    partition: 0,
                    replicas: vec![0, 1, 4]
                },
                Reassignment {
                    topic: "a".into(),
                    partition: 1,
                    replicas: vec![1, 3, 0]
                },
            ]
        );
        // With a broker on a free rack, the rack wins over load.
        let mut racks = racks;
        racks.insert(4, "w".into());
        let (moves, _) = plan_replace(
            &meta,
            &BTreeSet::from([2]),
            &[0, 1, 3, 4],
            &BTreeSet::new(),
            &racks,
        );
        assert_eq!(moves[1].replicas, vec![1, 3, 4]);
    }

    #[test]
    fn replacing_skips_partitions_already_moving_and_reports_those_without_room() {
        let fake = FakeAdmin::with_brokers([0, 1, 2]);
        fake.add_topic("a", &[&[0, 1, 2], &[2, 0]]);
        let meta = fake.state.lock().unwrap().metadata.clone();
        let (moves, stuck) = plan_replace(
            &meta,
            &BTreeSet::from([2]),
            &[0, 1],
            &BTreeSet::from([("a".to_string(), 1)]),
            &Racks::new(),
        );
        assert!(moves.is_empty());
        assert_eq!(stuck, ["a-0"]);
    }

    #[tokio::test]
    async fn replace_step_submits_once_and_reports_progress() {
        let fake = FakeAdmin::with_brokers([0, 1, 2, 3]);
        fake.add_topic("a", &[&[0, 1, 2], &[1, 2, 3]]);
        let lost = BTreeSet::from([2]);
        let step = replace_step(&fake, &lost, &[0, 1, 3], &Racks::new())
            .await
            .unwrap();
        assert!(
            matches!(&step, Step::InProgress { reason: "ReplacingLostBrokers", message } if message.contains("2 partitions moving to healthy brokers, 0 to go")),
            "{step:?}"
        );
        assert_eq!(
            fake.calls(),
            ["reassign a-0 [0, 1, 3]", "reassign a-1 [1, 3, 0]"]
        );
        replace_step(&fake, &lost, &[0, 1, 3], &Racks::new())
            .await
            .unwrap();
        assert_eq!(fake.calls().len(), 2, "resubmitted a running reassignment");
    }

    #[tokio::test]
    async fn roll_waits_for_reassignments_and_the_gate_and_restarts_the_controller_last() {
        let fake = FakeAdmin::with_brokers([0, 1, 2]);
        fake.add_topic("a", &[&[0, 1, 2]]);
        fake.state.lock().unwrap().metadata.controller = Some(2);
        let outdated = [(0, true), (1, true), (2, true)];
        let (b, _) = roll_step(Some(&fake), &outdated, 2, RollGate::Open)
            .await
            .unwrap();
        assert_eq!(b, Some(1), "the controller (2) goes last");
        let (b, _) = roll_step(Some(&fake), &[(2, true)], 2, RollGate::Open)
            .await
            .unwrap();
        assert_eq!(b, Some(2));
        let (b, step) = roll_step(
            Some(&fake),
            &outdated,
            2,
            RollGate::Wait("broker 1 not ready".into()),
        )
        .await
        .unwrap();
        assert_eq!(b, None);
        assert!(
            matches!(&step, Step::InProgress { reason: "RollWaiting", message } if message == "broker 1 not ready")
        );
        fake.alter_reassignments(&[Reassignment {
            topic: "a".into(),
            partition: 0,
            replicas: vec![1, 2, 0],
        }])
        .await
        .unwrap();
        let (b, step) = roll_step(Some(&fake), &outdated, 2, RollGate::Open)
            .await
            .unwrap();
        assert_eq!(b, None);
        assert!(
            matches!(&step, Step::InProgress { message, .. } if message.contains("reassignments running"))
        );
    }

    #[tokio::test]
    async fn roll_restarts_unready_first_then_one_healthy_broker_at_a_time() {
        let fake = FakeAdmin::with_brokers([0, 1, 2]);
        fake.add_topic("a", &[&[0, 1, 2]]);
        let (b, _) = roll_step(Some(&fake), &[(0, true), (1, false)], 2, RollGate::Open)
            .await
            .unwrap();
        assert_eq!(b, Some(1));
        let (b, _) = roll_step(Some(&fake), &[(0, true), (2, true)], 2, RollGate::Open)
            .await
            .unwrap();
        assert_eq!(b, Some(2));
        // Broker 2 just restarted and is catching up: nothing else may go down.
        fake.state
            .lock()
            .unwrap()
            .metadata
            .topics
            .get_mut("a")
            .unwrap()
            .partitions
            .get_mut(&0)
            .unwrap()
            .isr = vec![0, 1];
        let (b, step) = roll_step(Some(&fake), &[(0, true)], 2, RollGate::Open)
            .await
            .unwrap();
        assert_eq!(b, None);
        assert!(matches!(
            step,
            Step::InProgress {
                reason: "RollWaiting",
                ..
            }
        ));
        let (b, step) = roll_step(None, &[(0, true)], 2, RollGate::Open)
            .await
            .unwrap();
        assert_eq!((b, matches!(step, Step::InProgress { .. })), (None, true));
        assert_eq!(
            roll_step(None, &[], 2, RollGate::Open).await.unwrap(),
            (None, Step::Done)
        );
    }
}
