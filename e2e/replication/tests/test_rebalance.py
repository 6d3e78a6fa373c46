"""Automatic preferred-leader rebalancing (auto.leader.rebalance.enable): a partition's
preferred replica (the first in its replica list) that went away and came back is made
leader again by the controller once it is back in the ISR, with every record kept. With the
rebalance turned off, leadership stays where the failover put it."""

import time

from cluster import wait_until
from helpers import CATCH_UP_TIMEOUT_S, FENCE_TIMEOUT_S, REPLICATION_ARGS, wait_isr_full
from records import consume_all, produce

CHECK_INTERVAL_MS = 1000
# With the rebalance off, this long without a move back (several check intervals' worth).
OFF_OBSERVATION_S = 5.0


def fail_over_and_return(c, topic):
    """Stops partition 0's preferred leader (SIGTERM: controlled shutdown), writes while it
    is away, restarts it and waits until it is back in the ISR. Returns (preferred, the
    records written before and during)."""
    wait_isr_full(c, topic, 1)
    preferred = c.partition(1, topic, 0).replicas[0]
    before = produce(c.bootstrap(), topic, [{"value": f"before-{i}".encode(), "partition": 0}
                                            for i in range(100)])
    c.terminate(preferred)
    other = next(i for i in c.live_ids() if i != preferred)
    wait_until(lambda: c.partition(other, topic, 0).leader not in (-1, preferred),
               f"{topic}-0 led by another replica after node {preferred} stopped",
               timeout=FENCE_TIMEOUT_S)
    during = produce(c.bootstrap(c.live_ids()), topic,
                     [{"value": f"during-{i}".encode(), "partition": 0} for i in range(100)])
    c.start_node(preferred)
    wait_until(lambda: preferred in c.partition(other, topic, 0).isr,
               f"node {preferred} back in {topic}-0's ISR", timeout=CATCH_UP_TIMEOUT_S)
    return preferred, before + during


def test_preferred_leader_is_restored_after_it_returns(cluster_factory, name):
    c = cluster_factory(3, extra_args=REPLICATION_ARGS + [
        "--leader-imbalance-check-interval-ms", str(CHECK_INTERVAL_MS)])
    code, message = c.create_topic(1, name, partitions=1, replication_factor=3,
                                   configs={"min.insync.replicas": "2"})
    assert code == 0, message
    preferred, written = fail_over_and_return(c, name)

    # Every node agrees the preferred replica leads again, at a new leader epoch.
    def restored():
        parts = [c.partition(i, name, 0) for i in c.live_ids()]
        return parts if all(p.leader == preferred for p in parts) else None
    parts = wait_until(restored, f"node {preferred} leading {name}-0 again on every node",
                       timeout=10 * CHECK_INTERVAL_MS / 1000 + 20)
    assert sorted(parts[0].isr) == sorted(parts[0].replicas), parts[0]
    # Logged by the controller once its proposal returns, just after the change applied.
    wait_until(lambda: "leadership moved back to the preferred replica" in c.logs(),
               "the controller's log line for the preferred election")

    # Nothing written before or during the failover is lost, and order is kept.
    read = consume_all(c.bootstrap(), name, 1)
    assert [v for _, _, _, v in read] == [v for _, _, _, v in written]
    assert [o for _, o, _, _ in read] == list(range(len(written)))


def test_no_rebalance_when_turned_off(cluster_factory, name):
    c = cluster_factory(3, extra_args=REPLICATION_ARGS + [
        "--auto-leader-rebalance-enable", "false",
        "--leader-imbalance-check-interval-ms", str(CHECK_INTERVAL_MS)])
    code, message = c.create_topic(1, name, partitions=1, replication_factor=3)
    assert code == 0, message
    preferred, _ = fail_over_and_return(c, name)
    deadline = time.monotonic() + OFF_OBSERVATION_S
    while time.monotonic() < deadline:
        leader = c.partition(preferred, name, 0).leader
        assert leader != preferred, "leadership moved back although the rebalance is off"
        time.sleep(0.2)
