"""Failover and propagation times, printed as `MEASURE name value unit` at the end of the run
(conftest.py). The figures are not asserted (they depend on the machine); each test still
fails if the event it times never happens."""

import signal
import statistics
import time

from cluster import DEFAULT_WAIT_S, FENCE_TIMEOUT_S, wait_until

PROPAGATION_SAMPLES = 20


def ms_since(start):
    return (time.monotonic() - start) * 1000


def test_measure_topic_propagation(cluster_factory, name, measure):
    c = cluster_factory(3)
    samples = []
    for n in range(PROPAGATION_SAMPLES):
        via = n % 3 + 1
        topic = f"{name}-{n}"
        start = time.monotonic()
        code, message = c.create_topic(via, topic, partitions=3, replication_factor=1)
        assert code == 0, message
        c.wait_topic_everywhere(topic, 3, interval=0.002)
        samples.append(ms_since(start))
    measure("create_topic_visible_on_all_nodes_median", statistics.median(samples), "ms")
    measure("create_topic_visible_on_all_nodes_max", max(samples), "ms")


FAILOVER_ROUNDS = 3


def test_measure_raft_leader_kill_to_first_create_topics(cluster_factory, name, measure):
    """kill -9 of the Raft leader, then CreateTopics through the survivors until one is
    accepted; the killed node is started again before the next round."""
    c = cluster_factory(3)
    samples = []
    for round_ in range(FAILOVER_ROUNDS):
        leader = c.wait_raft_leader()
        survivors = [i for i in (1, 2, 3) if i != leader]
        attempt = 0

        def created():
            nonlocal attempt
            attempt += 1
            via = survivors[attempt % 2]
            code, _ = c.create_topic(via, f"{name}-{round_}-{attempt}", partitions=1,
                                     replication_factor=1, timeout_ms=2000)
            return code == 0

        start = time.monotonic()
        c.kill(leader)
        wait_until(created, "a CreateTopics accepted after the Raft leader died",
                   timeout=DEFAULT_WAIT_S, interval=0.01)
        samples.append(ms_since(start))
        new_leader = c.wait_raft_leader(among=survivors)
        assert new_leader in survivors
        c.start_node(leader)
        c.wait_until(lambda: sorted(c.metadata(new_leader).brokers) == [1, 2, 3],
                     f"node {leader} back in the cluster")
    measure("raft_leader_kill9_to_first_create_topics_median", statistics.median(samples), "ms")
    measure("raft_leader_kill9_to_first_create_topics_min", min(samples), "ms")
    measure("raft_leader_kill9_to_first_create_topics_max", max(samples), "ms")


def test_measure_sigterm_to_leaderships_gone(cluster_factory, name, measure):
    c = cluster_factory(3)
    leader = c.wait_raft_leader()
    victim = next(i for i in (1, 2, 3) if i != leader)
    observer = leader
    code, message = c.create_topic(observer, name, partitions=6, replication_factor=1)
    assert code == 0, message
    led = [p for p, l in c.wait_topic_everywhere(name, 6).leaders().items() if l == victim]
    assert led, "the victim must lead a partition"

    start = time.monotonic()
    c.signal(victim, signal.SIGTERM)
    wait_until(lambda: all(c.metadata(observer, [name]).topics[name].partitions[p].leader != victim
                           for p in led),
               f"node {victim}'s partitions {led} to move or go offline",
               timeout=FENCE_TIMEOUT_S, interval=0.005)
    measure("sigterm_broker_to_leaderships_moved_or_offline", ms_since(start), "ms")
    assert c.node(victim).proc.wait(timeout=30) == 0, "SIGTERM exit code"
    wait_until(lambda: victim not in c.metadata(observer).brokers,
               f"broker {victim} gone from Metadata after its clean shutdown",
               timeout=FENCE_TIMEOUT_S)
    measure("sigterm_broker_to_gone_from_metadata", ms_since(start), "ms")
