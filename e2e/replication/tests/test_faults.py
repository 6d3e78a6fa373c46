"""Faults under a continuous idempotent acks=all workload on a loopback cluster: leaders
killed (kill -9) in turn, a follower paused (SIGSTOP) past --replica-lag-time-max-ms, and two
of a partition's three replicas killed (min.insync.replicas=2 refuses acks=all). Afterwards
every acknowledged record is in the log exactly once, at its offset, in producer order.

The cluster has four nodes: voters 1-3 and broker-only node 4. With three nodes that are all
voters, killing two replicas would also take the metadata quorum, and nothing (fencing, the
ISR) could change; here the two killed replicas of fault (d) are node 4 and one voter.
"""

import time

from cluster import wait_until
from helpers import (FENCE_TIMEOUT_S, NOT_ENOUGH_REPLICAS, REPLICA_LAG_MS, REPLICATION_ARGS,
                     SESSION_TIMEOUT_MS, Fault, elect_preferred, error_name,
                     metric_sum, probe_acks_all, report_faults, wait_isr_full)
from workload import Workload, verify

PARTITIONS = 3
# Preferred leaders 1, 2, 3; node 4 follows partitions 1 and 2.
ASSIGNMENT = {0: [1, 2, 3], 1: [2, 3, 4], 2: [3, 4, 1]}
VOTERS = (1, 2, 3)
KILL_ROUNDS = 2
# Longer than REPLICA_LAG_MS (and its check), shorter than the session timeout.
PAUSE_S = 5.5
# How long two replicas stay down once the ISR has shrunk to the leader.
OUTAGE_HOLD_S = 3.0
MIN_ACKNOWLEDGED = 20_000
ELECTION_NOT_NEEDED = 84


def observer_for(c, avoid):
    """A live node other than those in `avoid`, to ask Metadata."""
    return next(i for i in c.live_ids() if i not in avoid)


def kill_leader(c, w, topic, p, label):
    """kill -9 the leader of partition `p`; a replica from its ISR takes over every
    partition it led and writes flow again; then the node comes back into the ISR."""
    observer = observer_for(c, ())
    before = wait_until(lambda: c.metadata(observer, [topic]).topics[topic].partitions,
                        f"{topic} in node {observer}'s Metadata")
    leader = before[p].leader
    assert leader > 0, f"{topic}-{p} has no leader before the kill: {before[p]}"
    led = sorted(q for q, part in before.items() if part.leader == leader)
    observer = observer_for(c, (leader,))

    start = time.monotonic()
    c.kill(leader)

    def elected():
        now = c.metadata(observer, [topic]).topics[topic].partitions
        return now if all(now[q].leader not in (-1, leader) for q in led) else None

    after = wait_until(elected, f"new leaders for {topic} {led} after node {leader} was killed",
                       timeout=FENCE_TIMEOUT_S, interval=0.05)
    for q in led:
        assert after[q].leader in before[q].isr, (
            f"{topic}-{q}: leader {after[q].leader} was not in the ISR {before[q].isr} "
            "(an unclean election, with unclean.leader.election.enable off)")
        assert after[q].leader_epoch > before[q].leader_epoch, \
            f"{topic}-{q}: leader epoch {before[q].leader_epoch} -> {after[q].leader_epoch}"
        assert leader not in after[q].isr, f"{topic}-{q}: killed node {leader} still in ISR"
    end = w.wait_acked(led, since=time.monotonic(), count=20)

    c.start_node(leader)
    wait_isr_full(c, topic, PARTITIONS, via=observer)
    return Fault(f"{label}_kill9_node{leader}", led, start, end)


def pause_follower(c, w, topic):
    """SIGSTOP a replica that leads nothing: the leaders drop it from the ISR after
    replica.lag.time.max.ms (it is not fenced yet: its session outlasts the pause) and
    acks=all writes continue; after SIGCONT it catches up and rejoins."""
    parts = c.metadata(1, [topic]).topics[topic].partitions
    leaders = {part.leader for part in parts.values()}
    controller = c.raft_leader()
    candidates = sorted(i for i in c.live_ids() if i not in leaders)
    # Prefer a node that is not the Raft leader, so the pause is only a replica's.
    follower = sorted(candidates, key=lambda i: (i == controller, -i))[0]
    followed = sorted(q for q, part in parts.items() if follower in part.replicas)
    assert followed, f"node {follower} replicates nothing: {parts}"
    observer = parts[followed[0]].leader
    shrinks = metric_sum(c, "ironlog_isr_shrinks_total")
    expands = metric_sum(c, "ironlog_isr_expands_total")

    start = time.monotonic()
    fenced_at = start + SESSION_TIMEOUT_MS / 1000
    c.pause(follower)
    wait_until(lambda: all(follower not in c.partition(observer, topic, q).isr for q in followed),
               f"the ISRs of {topic} {followed} without paused node {follower}",
               timeout=fenced_at - 1.5 - start, interval=0.05)
    shrunk = time.monotonic()
    assert (shrunk - start) * 1000 >= REPLICA_LAG_MS * 0.9, (
        f"node {follower} left the ISR {shrunk - start:.1f}s after the pause, before "
        f"replica.lag.time.max.ms ({REPLICA_LAG_MS} ms)")
    assert follower in c.metadata(observer).brokers, \
        f"node {follower} was fenced; it should leave the ISR by lag alone"
    # Acks=all writes go on without it while it is still stopped.
    w.wait_acked(followed, since=shrunk, count=20, timeout=max(0.5, fenced_at - 1 - shrunk))
    time.sleep(max(0.0, start + PAUSE_S - time.monotonic()))
    assert time.monotonic() < fenced_at, "paused for longer than the session timeout"
    c.resume(follower)
    wait_isr_full(c, topic, PARTITIONS, via=observer)
    end = time.monotonic()
    assert metric_sum(c, "ironlog_isr_shrinks_total") >= shrinks + len(followed)
    assert metric_sum(c, "ironlog_isr_expands_total") >= expands + len(followed)
    return Fault(f"sigstop_follower_node{follower}", followed, start, end)


def min_isr_outage(c, w, topic):
    """kill -9 two replicas of partitions 1 and 2 (nodes 3 and 4; 1 and 2 keep the metadata
    quorum). Once they are fenced the ISRs shrink to the leaders, below
    min.insync.replicas=2: acks=all is refused with NOT_ENOUGH_REPLICAS and nothing is
    acknowledged there, while partition 0 (ISR 1, 2) goes on. Restarted, they catch up and
    writes to 1 and 2 are acknowledged again."""
    got = elect_preferred(c.bootstrap(), topic, range(PARTITIONS))
    assert set(got.values()) <= {0, ELECTION_NOT_NEEDED}, f"preferred election: {got}"
    wait_until(lambda: {q: part.leader for q, part in
                        c.metadata(1, [topic]).topics[topic].partitions.items()}
               == {0: 1, 1: 2, 2: 3}, f"{topic}'s preferred leaders 1, 2, 3")
    victims = (3, 4)
    hit = [1, 2]
    # Partition 2's preferred leader is a victim: after the kill, 1 leads it.
    survivors_isr = {0: [1, 2], 1: [2], 2: [1]}
    under_min_isr = metric_sum(c, "ironlog_under_min_isr_partitions")
    assert under_min_isr == 0, f"ironlog_under_min_isr_partitions {under_min_isr} before"

    start = time.monotonic()
    for v in victims:
        c.kill(v)
    wait_until(lambda: {q: sorted(part.isr) for q, part in
                        c.metadata(1, [topic]).topics[topic].partitions.items()}
               == survivors_isr, f"ISRs {survivors_isr} once nodes {victims} are fenced",
               timeout=FENCE_TIMEOUT_S)
    shrunk = time.monotonic()
    outcome = probe_acks_all(c.bootstrap(), topic, range(PARTITIONS))
    assert outcome == {0: None, 1: NOT_ENOUGH_REPLICAS, 2: NOT_ENOUGH_REPLICAS}, (
        "acks=all with the ISR below min.insync.replicas=2: "
        f"{ {q: error_name(e) for q, e in outcome.items()} }")
    wait_until(lambda: metric_sum(c, "ironlog_under_min_isr_partitions") == len(hit)
               and metric_sum(c, "ironlog_under_replicated_partitions") == PARTITIONS,
               "ironlog_under_min_isr_partitions 2 and ironlog_under_replicated_partitions 3")
    controller = c.wait_raft_leader()
    assert c.metric(controller, "ironlog_offline_partitions") == 0
    time.sleep(OUTAGE_HOLD_S)  # the workload runs into the refusal for a while

    restart = time.monotonic()
    # Requests answered before the ISR shrank may still be reported just after it.
    settle = shrunk + 1.0
    late = [(a.partition, a.offset) for a in w.acks
            if a.partition in hit and settle < a.at < restart]
    assert not late, f"acknowledged with the ISR below min.insync.replicas: {late[:5]}"
    assert w.acked_since(settle, [0]) - w.acked_since(restart, [0]) >= 20, \
        "partition 0 (ISR 1, 2) should have gone on taking writes"
    for v in victims:
        c.start_node(v, wait=False)
    for v in victims:
        c.node(v).wait_healthy()
    wait_isr_full(c, topic, PARTITIONS, via=1)
    end = w.wait_acked(hit, since=time.monotonic(), count=20)
    wait_until(lambda: metric_sum(c, "ironlog_under_min_isr_partitions") == 0
               and metric_sum(c, "ironlog_under_replicated_partitions") == 0,
               "ironlog_under_min_isr_partitions and _under_replicated_partitions back to 0")
    return Fault("two_of_three_replicas_kill9", hit, start, end)


def test_leader_kills_follower_pause_and_min_isr_outage_lose_nothing(
        cluster_factory, name, measure):
    c = cluster_factory(4, voters=len(VOTERS), extra_args=REPLICATION_ARGS)
    c.create_topic_retrying(1, name, assignment=ASSIGNMENT,
                            configs={"min.insync.replicas": "2"})
    c.wait_topic_everywhere(name, PARTITIONS)
    wait_isr_full(c, name, PARTITIONS)

    faults = []
    with Workload(c.bootstrap(), name, PARTITIONS, producers=3, interval_s=0.002) as w:
        w.wait_acked(range(PARTITIONS), since=w.started_at, count=200)
        for round_ in range(1, KILL_ROUNDS + 1):
            for p in range(PARTITIONS):
                faults.append(kill_leader(c, w, name, p, f"round{round_}_p{p}"))
        faults.append(pause_follower(c, w, name))
        faults.append(min_isr_outage(c, w, name))
        w.wait_acked(range(PARTITIONS), since=time.monotonic(), count=100)

    report = verify(w, c.bootstrap())
    report.measures(measure, "faults")
    measure("faults_delivery_errors", len(w.errors), "records")
    report_faults(w, faults, measure, "faults")
    report.assert_clean(MIN_ACKNOWLEDGED)
