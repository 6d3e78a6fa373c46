"""Reassignment moves data: an RF=1 partition on broker 1 holding thousands of records is
reassigned to [2, 3] while an idempotent acks=all producer keeps writing. The new replicas
copy the log, join the ISR, and broker 1 is dropped; read back from the new leader, every
acknowledged record is there once, in order."""

import os
import time

from kafka.structs import TopicPartition

from cluster import wait_until
from helpers import CATCH_UP_TIMEOUT_S, REPLICATION_ARGS, admin
from records import consume_all, produce
from workload import PADDING_BYTES, Ack, Workload, check

SEEDED = 5_000
TARGET = [2, 3]


def test_reassign_rf1_partition_to_two_new_brokers_under_load(cluster_factory, name, measure):
    c = cluster_factory(3, extra_args=REPLICATION_ARGS)
    c.create_topic_retrying(1, name, assignment={0: [1]})
    c.wait_topic_everywhere(name, 1)
    seeded = produce(c.bootstrap(), name, [
        {"partition": 0, "key": f"seed-{j}".encode(),
         "value": f"seed:{j}:".encode() + os.urandom(PADDING_BYTES)} for j in range(SEEDED)])
    seed_acks = [Ack(p, o, v, 0.0) for p, o, _, v in seeded]

    with Workload(c.bootstrap(), name, 1, producers=1, interval_s=0.002) as w:
        w.wait_acked([0], since=w.started_at, count=200)
        tp = TopicPartition(name, 0)
        a = admin(c.bootstrap())
        try:
            start = time.monotonic()
            assert a.alter_partition_reassignments({tp: TARGET}) == {tp: None}

            def moved():
                p = c.partition(1, name, 0)
                listed = a.list_partition_reassignments({name: [0]})
                assert (p.replicas, sorted(p.isr), p.leader in TARGET, listed) == \
                    (TARGET, TARGET, True, {}), f"{p}, reassignments {listed}"
                return p

            wait_until(moved, f"{name}-0 on replicas {TARGET}, both in sync, reassignment done",
                       timeout=CATCH_UP_TIMEOUT_S, interval=0.1)
            measure("reassign_rf1_to_2_replicas_under_load", (time.monotonic() - start) * 1000,
                    "ms")
        finally:
            a.close()
        c.wait_topic_everywhere(name, 1)
        leader = c.partition(1, name, 0).leader
        w.wait_acked([0], since=time.monotonic(), count=200)

    records = consume_all(c.addr(leader), name, 1)
    report = check(seed_acks + w.acks, records)
    report.measures(measure, "reassign")
    report.assert_clean(SEEDED + 400)
    # Broker 1 is no replica any more: its copy of the log goes.
    wait_until(lambda: not (c.node(1).data_dir / f"{name}-0").exists(),
               f"node 1's log directory {name}-0 removed")
