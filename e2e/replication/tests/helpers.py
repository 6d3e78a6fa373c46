"""What the replication tests share: the broker flags, ISR waits, faults and their
unavailability windows, the admin client and the `ironlog` toolbox."""

import subprocess
from dataclasses import dataclass

from confluent_kafka import KafkaError, Producer
from kafka import KafkaAdminClient

from broker import binary_path
from cluster import wait_until
from records import LOG

# A follower that fetches nothing for this long leaves the ISR.
REPLICA_LAG_MS = 3000
# A broker without heartbeats for this long is fenced (Kafka's default is 9000): longer than a
# SIGSTOP pause (PAUSE_S), so a paused follower leaves the ISR by lag alone.
SESSION_TIMEOUT_MS = 8000
REPLICATION_ARGS = [
    "--replica-lag-time-max-ms", str(REPLICA_LAG_MS),
    "--broker-session-timeout-ms", str(SESSION_TIMEOUT_MS),
    "--broker-heartbeat-interval-ms", "1000",
]
# Fencing, electing and telling every node, with room for a loaded 2-core machine.
FENCE_TIMEOUT_S = SESSION_TIMEOUT_MS / 1000 + 20
# A restarted or resumed replica fetches what it missed and rejoins the ISR within this.
CATCH_UP_TIMEOUT_S = 45.0

NOT_ENOUGH_REPLICAS = 19
ELECTION_PREFERRED = 0


@dataclass
class Fault:
    """One fault of a run: which partitions it hit and when it began and was over (writes
    to those partitions acknowledged again), time.monotonic()."""
    label: str
    partitions: list
    start: float
    end: float


def report_faults(workload, faults, measure, prefix):
    """`MEASURE <prefix>_<fault>_unavailable_ms`: per fault, the longest time without an
    acknowledgement of its partitions; then the worst."""
    gaps = []
    for f in faults:
        gap = workload.longest_gap_ms(f.partitions, f.start, f.end)
        gaps.append(gap)
        measure(f"{prefix}_{f.label}_unavailable", gap, "ms")
    if gaps:
        measure(f"{prefix}_longest_unavailable", max(gaps), "ms")


def out_of_sync(c, via, topic, partitions):
    """The partitions of `topic` without a leader or with a replica outside the ISR, as node
    `via` sees it: {partition: (leader, replicas, isr)}, empty when all are in sync, and
    the partitions themselves (kafka_wire.Partition by index)."""
    t = c.metadata(via, [topic]).topics.get(topic)
    assert t is not None and len(t.partitions) == partitions, \
        f"node {via}'s Metadata: {topic} {t and t.partitions}"
    bad = {q: (p.leader, p.replicas, p.isr) for q, p in t.partitions.items()
           if p.leader < 0 or sorted(p.isr) != sorted(p.replicas)}
    return bad, t.partitions


def wait_isr_full(c, topic, partitions, via=None, timeout=CATCH_UP_TIMEOUT_S):
    """Waits until every partition of `topic` has a leader and all its replicas in the ISR
    (as node `via` sees it); returns the partitions."""
    via = via or c.live_ids()[0]

    def in_sync():
        bad, parts = out_of_sync(c, via, topic, partitions)
        assert not bad, f"(leader, replicas, isr) out of sync: {bad}"
        return parts

    return wait_until(in_sync, f"every replica of {topic} in the ISR (as node {via} sees it)",
                      timeout=timeout, interval=0.1)


def metric_sum(c, metric, nodes=None):
    """`metric` summed over the nodes (default: the live ones)."""
    return sum(c.metric(i, metric) for i in (nodes or c.live_ids()))


def admin(bootstrap):
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000,
                            client_id="e2e-replication-admin")


def elect_preferred(bootstrap, topic, partitions):
    """ElectLeaders (preferred) for the partitions; {partition: error code}."""
    a = admin(bootstrap)
    try:
        got = a.elect_leaders(ELECTION_PREFERRED, {topic: list(partitions)}, raise_errors=False)
        return {p.partition_id: p.error_code
                for r in got.replica_election_results for p in r.partition_result}
    finally:
        a.close()


def probe_acks_all(bootstrap, topic, partitions, timeout_s=8.0):
    """One record to each partition with acks=all and no retries (a separate producer,
    not idempotent): {partition: None if acknowledged, else the KafkaError code}."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False,
                  "retries": 0, "message.timeout.ms": int(timeout_s * 1000),
                  "request.timeout.ms": int(timeout_s * 1000) - 1000, "logger": LOG})
    outcome = {}

    def report(err, msg):
        outcome[msg.partition()] = None if err is None else err.code()

    for q in partitions:  # in the workload's format, so the verifier reads it like the rest
        p.produce(topic, value=f"probe:{q}:".encode(), partition=q, on_delivery=report)
    remaining = p.flush(timeout_s + 5)
    assert remaining == 0, f"probe: {remaining} records without a delivery report"
    return outcome


def error_name(code):
    return "ok" if code is None else KafkaError(code).name()


def ironlog(*args, ok=True, timeout=60):
    """Runs the `ironlog` toolbox; with `ok`, asserts exit 0."""
    result = subprocess.run([binary_path(), *args], capture_output=True, text=True,
                            timeout=timeout)
    if ok:
        assert result.returncode == 0, (
            f"ironlog {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result
