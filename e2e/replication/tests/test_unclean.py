"""Unclean leader election. The partition's in-sync replicas all die and only an out-of-sync
one comes back: with unclean.leader.election.enable=false (the default) the partition stays
offline; enabled for the topic, that replica becomes leader with the log it had, and the
records it never got are lost (the documented cost). The old replicas, restarted, truncate
their divergent tails and follow it.

Node 1 is the only voter (the controller) and holds no replica, so killing all three
replicas (nodes 2, 3, 4) leaves the metadata quorum up."""

import time

from cluster import wait_until
from helpers import (FENCE_TIMEOUT_S, REPLICATION_ARGS, elect_preferred, ironlog,
                     wait_isr_full)
from records import consume_all, produce

CONTROLLER = 1
REPLICAS = [2, 3, 4]
STALE = 4
IN_SYNC = [2, 3]
LEADER_NOT_AVAILABLE = 5
# How long the partition must stay offline with the stale replica live.
OBSERVE_S = 6.0
FIRST, SECOND, THIRD = 300, 200, 100


def records(tag, n):
    return [{"partition": 0, "key": f"{tag}{j}".encode(), "value": f"{tag}:{j}".encode()}
            for j in range(n)]


def isr(c, topic):
    p = c.partition(CONTROLLER, topic, 0)
    assert p.isr, p
    return p.isr


def values(delivered):
    return [(o, v) for _, o, _, v in delivered]


def test_unclean_election_only_when_enabled_and_loses_what_the_replica_missed(
        cluster_factory, name):
    c = cluster_factory(4, voters=1, extra_args=REPLICATION_ARGS)
    c.create_topic_retrying(CONTROLLER, name, assignment={0: REPLICAS},
                            configs={"min.insync.replicas": "1"})
    c.wait_topic_everywhere(name, 1)
    wait_isr_full(c, name, 1, via=CONTROLLER)

    # Acknowledged with all three in the ISR: the stale replica has these.
    first = produce(c.bootstrap(), name, records("first", FIRST))
    assert [o for _, o, _, _ in first] == list(range(FIRST))

    c.kill(STALE)
    wait_until(lambda: sorted(isr(c, name)) == IN_SYNC,
               f"ISR {IN_SYNC} once node {STALE} is fenced", timeout=FENCE_TIMEOUT_S)
    # Acknowledged by the ISR [2, 3] only.
    second = produce(c.bootstrap(), name, records("second", SECOND))
    assert [o for _, o, _, _ in second] == list(range(FIRST, FIRST + SECOND))

    for i in IN_SYNC:
        c.kill(i)
    wait_until(lambda: c.partition(CONTROLLER, name, 0).leader == -1,
               f"{name}-0 offline once nodes {IN_SYNC} are fenced", timeout=FENCE_TIMEOUT_S)
    c.start_node(STALE)
    wait_until(lambda: sorted(c.metadata(CONTROLLER).brokers) == [CONTROLLER, STALE],
               f"brokers [{CONTROLLER}, {STALE}] registered")

    wait_until(lambda: c.partition(STALE, name, 0).leader == -1,
               f"restarted node {STALE} to see {name}-0 offline")
    # Clean elections only: the live replica is out of sync, so no leader.
    deadline = time.monotonic() + OBSERVE_S
    while time.monotonic() < deadline:
        for via in (CONTROLLER, STALE):
            p = c.partition(via, name, 0)
            assert (p.leader, p.error_code) == (-1, LEADER_NOT_AVAILABLE), (
                f"node {via}: {name}-0 led by {p.leader} (error {p.error_code}) with "
                "unclean.leader.election.enable=false and only out-of-sync node "
                f"{STALE} alive")
        time.sleep(0.2)
    assert c.metric(CONTROLLER, "ironlog_offline_partitions") == 1

    ironlog("topics", "--bootstrap-server", c.addr(CONTROLLER), "alter", "--topic", name,
            "--config", "unclean.leader.election.enable=true")
    wait_until(lambda: c.partition(CONTROLLER, name, 0).leader == STALE,
               f"node {STALE} elected uncleanly once the topic allows it")
    # The controller's metadata shows the election before node STALE has applied it (and
    # logged it): wait for the line.
    wait_until(lambda: [line for i in c.live_ids() for line in c.node(i).all_logs().splitlines()
                        if "unclean leader election" in line and "WARN" in line],
               "a WARN line with 'unclean leader election' in the live nodes' logs")
    wait_until(lambda: c.metric(CONTROLLER, "ironlog_offline_partitions") == 0,
               "ironlog_offline_partitions 0 after the election")

    # Its log is what it had: the first records; the second ones are gone.
    assert values(consume_all(c.addr(STALE), name, 1)) == values(first)
    third = produce(c.bootstrap(), name, records("third", THIRD))
    assert [o for _, o, _, _ in third] == list(range(FIRST, FIRST + THIRD))

    # The old in-sync replicas come back with the second records at offsets the new leader
    # has given to the third: they truncate to where the logs diverged and follow.
    for i in IN_SYNC:
        c.start_node(i)
    wait_isr_full(c, name, 1, via=CONTROLLER)
    assert elect_preferred(c.bootstrap(), name, [0]) == {0: 0}
    wait_until(lambda: c.partition(CONTROLLER, name, 0).leader == REPLICAS[0],
               f"preferred leader {REPLICAS[0]} leads again")
    assert values(consume_all(c.addr(REPLICAS[0]), name, 1)) == values(first + third), \
        f"node {REPLICAS[0]}'s log after rejoining the unclean leader's"
