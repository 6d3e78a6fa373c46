"""A network cut: the leader of a partition is disconnected from the Docker network (from the
other brokers and from the clients) while the workload runs. The others fence it and elect a
leader from the ISR; writes go on; reconnected at its address, the old leader follows the new
one, drops whatever it appended that the others never got, and rejoins the ISR. Nothing
acknowledged is lost, duplicated or reordered."""

import time

from cluster import wait_until
from helpers import (FENCE_TIMEOUT_S, REPLICA_LAG_MS, SESSION_TIMEOUT_MS, Fault, report_faults,
                     wait_isr_full)
from workload import Workload, verify

PARTITIONS = 3
# The brokers' flags, as the image takes them: IRONLOG_<FLAG>.
ENV = {
    "IRONLOG_REPLICA_LAG_TIME_MAX_MS": str(REPLICA_LAG_MS),
    "IRONLOG_BROKER_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
    "IRONLOG_BROKER_HEARTBEAT_INTERVAL_MS": "1000",
}
# How long the workload runs against the survivors before the node is reconnected.
CUT_OFF_S = 3.0
MIN_ACKNOWLEDGED = 5_000


def test_leader_cut_off_the_network_then_reconnected(docker_cluster, name, measure):
    c = docker_cluster(env=ENV)
    code, message = c.create_topic(1, name, partitions=PARTITIONS, replication_factor=3,
                                   configs={"min.insync.replicas": "2"})
    assert code == 0, message
    wait_isr_full(c, name, PARTITIONS, via=1)

    # A connection to the cut-off address gets no answer at all (no RST): give up on it
    # within seconds, not librdkafka's default 30 s, and look for the new leader.
    with Workload(c.bootstrap(), name, PARTITIONS, producers=2, interval_s=0.002,
                  **{"socket.connection.setup.timeout.ms": 3000,
                     "topic.metadata.refresh.interval.ms": 2000}) as w:
        w.wait_acked(range(PARTITIONS), since=w.started_at, count=200)
        before = c.metadata(1, [name]).topics[name].partitions
        victim = before[0].leader
        led = sorted(q for q, p in before.items() if p.leader == victim)
        others = [i for i in c.ids if i != victim]

        start = time.monotonic()
        c.disconnect(victim)

        def elected():
            now = c.metadata(others[0], [name]).topics[name].partitions
            return now if all(now[q].leader not in (-1, victim) for q in led) else None

        after = wait_until(elected, f"new leaders of {name} {led} once node {victim} is cut off",
                           timeout=FENCE_TIMEOUT_S, interval=0.1)
        for q in led:
            assert after[q].leader in before[q].isr, \
                f"{name}-{q}: leader {after[q].leader} was not in the ISR {before[q].isr}"
            assert after[q].leader_epoch > before[q].leader_epoch
            assert victim not in after[q].isr, f"{name}-{q}: cut-off node {victim} in the ISR"
        end = w.wait_acked(led, since=time.monotonic(), count=20)
        time.sleep(CUT_OFF_S)  # the survivors take the workload while the node is away

        c.connect(victim)
        rejoined = wait_isr_full(c, name, PARTITIONS, via=others[0])
        # The old leader knows it is one no more.
        wait_until(lambda: c.metadata(victim, [name]).topics[name].partitions[led[0]].leader
                   == rejoined[led[0]].leader,
                   f"node {victim} to see {name}-{led[0]} led by {rejoined[led[0]].leader}")
        w.wait_acked(range(PARTITIONS), since=time.monotonic(), count=50)

    report = verify(w, c.bootstrap())
    report.measures(measure, "partition")
    measure("partition_delivery_errors", len(w.errors), "records")
    report_faults(w, [Fault(f"disconnect_node{victim}", led, start, end)], measure, "partition")
    report.assert_clean(MIN_ACKNOWLEDGED)
