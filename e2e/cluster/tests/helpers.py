"""Client-side helpers of the cluster suite: the shared record helpers (e2e/lib/records.py)
and running the `ironlog` toolbox."""

import subprocess
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from broker import binary_path
from records import LOG, TIMEOUT_S, committed, consume_all, produce  # noqa: F401 (re-exported)


def ironlog(*args, input=None, ok=True, timeout=90):
    """Runs the `ironlog` toolbox; with `ok`, asserts exit 0. Returns the CompletedProcess
    with text stdout/stderr."""
    result = subprocess.run([binary_path(), *args], input=input, capture_output=True,
                            text=True, timeout=timeout)
    if ok:
        assert result.returncode == 0, (
            f"ironlog {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def by_partition(records):
    """{partition: [offset, ...]} of [(partition, offset, key, value)]."""
    out = {}
    for p, o, _, _ in records:
        out.setdefault(p, []).append(o)
    return out


def read_records(bootstrap, topic, partitions, timeout=TIMEOUT_S):
    """Every record of `topic` read from the beginning (no group) as dicts of topic,
    partition, offset, key, value (text), timestamp and headers ([[name, text]]), ordered by
    partition and offset."""
    settings = {"bootstrap.servers": bootstrap, "group.id": "e2e-cluster-reader",
                "enable.auto.commit": False, "enable.partition.eof": True, "logger": LOG}
    c = Consumer(settings)
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out, at_end = [], set()
        deadline = time.monotonic() + timeout
        while len(at_end) < partitions:
            assert time.monotonic() < deadline, f"reading {topic}: at end only {at_end}"
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                at_end.add(msg.partition())
                continue
            out.append({"topic": msg.topic(), "partition": msg.partition(),
                        "offset": msg.offset(), "key": msg.key().decode(),
                        "value": msg.value().decode(), "timestamp": msg.timestamp()[1],
                        "headers": [[k, v.decode()] for k, v in (msg.headers() or [])]})
            at_end.discard(msg.partition())
        return sorted(out, key=lambda r: (r["partition"], r["offset"]))
    finally:
        c.close()
