"""confluent-kafka (librdkafka) consumer groups under churn: members join and are SIGKILLed
while messages flow; static membership restarts without a rebalance."""

import threading
import time
from collections import defaultdict

import pytest

from helpers import (ConsumerProc, committed, create_topic, end_offsets, metric, producer,
                     wait_until)

PARTITIONS = 6


def produce_stream(bootstrap, topic, per_partition, stop_after_s):
    """Produces `per_partition` messages to each partition, spread over ~stop_after_s.
    Values are "<partition>:<seq>" so order within a partition can be checked."""
    p = producer(bootstrap)
    pause = stop_after_s / per_partition
    for seq in range(per_partition):
        for part in range(PARTITIONS):
            p.produce(topic, value=f"{part}:{seq}".encode(), partition=part)
        p.poll(0)
        time.sleep(pause)
    assert p.flush(30) == 0


def check_consumption(consumers, ends):
    """Every message seen at least once; per partition, offsets map to producer order; each
    consumer's stream per partition only moves forward between assignment changes."""
    seen = defaultdict(dict)  # partition -> offset -> seq
    for c in consumers:
        last = {}
        for e in c.events():
            if e["ev"] in ("assign", "revoke", "lost"):
                for part in e["parts"]:
                    last.pop(part, None)
                continue
            if e["ev"] != "rec":
                continue
            part, off = e["p"], e["o"]
            vpart, seq = map(int, e["v"].split(":"))
            assert vpart == part, e
            assert off > last.get(part, -1), f"{c.label}: partition {part} went back to {off}"
            last[part] = off
            seen[part][off] = seq
    for part in range(PARTITIONS):
        offsets = sorted(seen[part])
        assert offsets == list(range(ends[part])), (
            f"partition {part}: consumed {len(offsets)} distinct offsets, log end {ends[part]}")
        seqs = [seen[part][o] for o in offsets]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"order broken in {part}"


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_three_consumers_member_added_and_killed(broker, name, tmp_path, strategy):
    topic = group = name
    create_topic(broker.bootstrap, topic, PARTITIONS)
    cs = [ConsumerProc(tmp_path, broker.bootstrap, group, topic, strategy, f"c{i}")
          for i in range(3)]
    try:
        wait_until("3 consumers sharing 6 partitions",
                   lambda: all(len(c.assigned()) == 2 for c in cs)
                   and set().union(*(c.assigned() for c in cs)) == set(range(6)))
        feeder = threading.Thread(target=produce_stream,
                                  args=(broker.bootstrap, topic, 400, 12.0))
        feeder.start()
        wait_until("records flowing", lambda: sum(len(c.records()) for c in cs) > 200)
        newcomer = ConsumerProc(tmp_path, broker.bootstrap, group, topic, strategy, "c3")
        cs.append(newcomer)
        wait_until("the new member gets partitions", lambda: newcomer.assigned(), timeout=60)
        victim = cs[1]
        victim.kill()
        alive = [c for c in cs if c is not victim]
        wait_until("the killed member's partitions move to the others",
                   lambda: set().union(*(c.assigned() for c in alive)) == set(range(6)),
                   timeout=60)
        feeder.join(timeout=60)
        ends = end_offsets(broker.bootstrap, topic, PARTITIONS)
        assert sum(ends.values()) == 400 * PARTITIONS
        wait_until("committed offsets reach the log end",
                   lambda: committed(broker.bootstrap, group, topic, PARTITIONS) == ends,
                   timeout=60, interval=0.5)
    finally:
        for c in cs:
            if c.proc.poll() is None:
                c.stop()
    check_consumption(cs, ends)
    assert committed(broker.bootstrap, group, topic, PARTITIONS) == ends


def test_static_member_restart_keeps_assignment_without_rebalance(broker, name, tmp_path):
    topic = group = name
    create_topic(broker.bootstrap, topic, PARTITIONS)
    a = ConsumerProc(tmp_path, broker.bootstrap, group, topic, "range", "a", instance="inst-a")
    b = ConsumerProc(tmp_path, broker.bootstrap, group, topic, "range", "b", instance="inst-b")
    try:
        wait_until("both static members assigned",
                   lambda: len(a.assigned()) == 3 and len(b.assigned()) == 3)
        a_parts = a.assigned()
        b_events = len(b.events())
        rebalances = metric(broker.metrics_text(), "ironlog_consumergroup_rebalances_total",
                            group=group)
        assert rebalances is not None and rebalances >= 1
        a.kill()  # a static member's crash: no LeaveGroup
        a2 = ConsumerProc(tmp_path, broker.bootstrap, group, topic, "range", "a2",
                          instance="inst-a")
        wait_until("the restarted member gets its partitions back", lambda: a2.assigned())
        assert a2.assigned() == a_parts
        # The counter is bumped synchronously when a rebalance starts, and a rebalance
        # would have had to finish before a2 got an assignment: this read is exact.
        after = metric(broker.metrics_text(), "ironlog_consumergroup_rebalances_total", group=group)
        assert after == rebalances, "restart of a static member caused a rebalance"
        assert [e for e in b.events()[b_events:] if e["ev"] != "rec"] == [], \
            "the other member saw a rebalance"
        a2.stop()
        b.stop()
    finally:
        for c in (a, b):
            if c.proc.poll() is None:
                c.kill()
