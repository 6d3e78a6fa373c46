"""The workload and verifier of the replication and Kubernetes suites (e2e/replication,
e2e/k8s).

`Workload` runs a few idempotent acks=all producers (confluent-kafka), each in its own
thread, sending `"<producer>:<seq>:"` + random padding every few milliseconds to every
partition in turn, and keeps each acknowledgement: (partition, offset, value, when).
`verify` reads the topic back from the beginning to the high watermark (records.consume_all)
and counts what the acknowledgements promise and the log breaks:

    lost        an acknowledged value missing, or not at the offset it was acknowledged at
    duplicated  a value in the log more than once
    reordered   one producer's records in one partition not in increasing seq order

`longest_gap_ms` is the unavailability of partitions around a fault: the longest time between
two consecutive acknowledgements of those partitions while the fault lasted.
"""

import os
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import Producer

from records import LOG, consume_all

# Room for retries through a leader change (fencing takes --broker-session-timeout-ms) and a
# min.insync.replicas outage, inside the producer, as applications run it.
MESSAGE_TIMEOUT_MS = 30_000
PADDING_BYTES = 100


@dataclass
class Ack:
    partition: int
    offset: int
    value: bytes
    at: float  # time.monotonic() of the delivery report


def parse(value):
    """(producer, seq) of a workload value."""
    producer, seq, _ = value.split(b":", 2)
    return producer.decode(), int(seq)


class _ProducerThread(threading.Thread):
    def __init__(self, workload, index, settings):
        super().__init__(name=f"producer-p{index}", daemon=True)
        self.workload = workload
        self.tag = f"{workload.tag}p{index}"
        self.producer = Producer(settings)
        self.sent = 0
        self.acks = []
        self.errors = []
        self.unflushed = None

    def report(self, err, msg):
        if err is not None:
            self.errors.append(err)
        else:
            self.acks.append(Ack(msg.partition(), msg.offset(), msg.value(), time.monotonic()))

    def run(self):
        w = self.workload
        next_at = time.monotonic()
        seq = 0
        while not w.stopping.is_set():
            value = f"{self.tag}:{seq}:".encode() + os.urandom(PADDING_BYTES)
            try:
                self.producer.produce(w.topic, value=value, key=f"{self.tag}-{seq % 64}".encode(),
                                      partition=seq % w.partitions, on_delivery=self.report)
                seq += 1
                self.sent += 1
            except BufferError:  # the queue is full while a partition is unavailable
                self.producer.poll(0.05)
                continue
            self.producer.poll(0)
            next_at += w.interval_s
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                next_at = time.monotonic()
        self.unflushed = self.producer.flush(w.flush_timeout_s)
        # Freed here, in the thread that used it. Left to the cycle collector (the producer
        # holds this thread's bound method as a callback), librdkafka's handle would be
        # destroyed in whichever thread happened to run a collection: confluent-kafka can
        # crash the interpreter then (confluent-kafka-python#1761).
        self.producer = None


class Workload:
    """`producers` threads each sending a record every `interval_s` to `topic`'s partitions
    in turn. Use as a context manager, or `start()` / `stop()`."""

    def __init__(self, bootstrap, topic, partitions, producers=2, interval_s=0.002, tag="",
                 **conf):
        # Producers are named `<tag>p0`, `<tag>p1`...: workloads sharing a topic need distinct
        # tags (no ':'), or the order check mixes their sequences.
        assert ":" not in tag, tag
        self.tag = tag
        self.topic = topic
        self.partitions = partitions
        self.interval_s = interval_s
        self.flush_timeout_s = MESSAGE_TIMEOUT_MS / 1000 + 15
        self.stopping = threading.Event()
        settings = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                    "linger.ms": 5, "message.timeout.ms": MESSAGE_TIMEOUT_MS,
                    "request.timeout.ms": 5000, "logger": LOG}
        settings.update(conf)
        self.threads = [_ProducerThread(self, i, settings) for i in range(producers)]
        self.started_at = self.stopped_at = None

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.stop()
        else:  # the test failed already: don't wait long, don't hide its error
            self.stop(flush_timeout_s=2, check=False)

    def start(self):
        self.started_at = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def stop(self, flush_timeout_s=None, check=True):
        """Stops sending and waits for every outstanding delivery report (flush; by default
        as long as a record may be retried)."""
        if self.stopping.is_set():
            return
        if flush_timeout_s is not None:
            self.flush_timeout_s = flush_timeout_s
        self.stopping.set()
        for t in self.threads:
            t.join(self.flush_timeout_s + 10)
        self.stopped_at = time.monotonic()
        stuck = [t.tag for t in self.threads if t.is_alive() or t.unflushed]
        assert not check or not stuck, \
            f"producers {stuck} still had records in flight after flushing"

    @property
    def acks(self):
        return [a for t in self.threads for a in t.acks]

    @property
    def errors(self):
        return [e for t in self.threads for e in t.errors]

    @property
    def sent(self):
        return sum(t.sent for t in self.threads)

    def acked_since(self, since, partitions=None):
        """How many acknowledgements (of `partitions`, default all) arrived after `since`."""
        return sum(1 for t in self.threads for a in list(t.acks)
                   if a.at > since and (partitions is None or a.partition in partitions))

    def wait_acked(self, partitions, since, count=20, timeout=45.0):
        """Waits until every partition in `partitions` has `count` acknowledgements after
        `since` (writes to it are flowing again); returns the time of the last one seen."""
        deadline = time.monotonic() + timeout
        while True:
            got = {p: self.acked_since(since, [p]) for p in partitions}
            if all(n >= count for n in got.values()):
                return time.monotonic()
            assert time.monotonic() < deadline, (
                f"acknowledgements per partition since the fault: {got}, want {count} each "
                f"within {timeout}s ({len(self.errors)} delivery errors so far: "
                f"{self.errors[-3:]})")
            time.sleep(0.05)

    def longest_gap_ms(self, partitions, start, end):
        """The longest time without an acknowledgement of any of `partitions` within
        [start, end] (the last acknowledgement before `start` and the first after `end`
        bound the gaps at the edges), in ms."""
        times = sorted(a.at for a in self.acks if a.partition in partitions)
        before = [t for t in times if t <= start]
        inside = [t for t in times if start < t < end]
        after = [t for t in times if t >= end]
        points = before[-1:] + inside + after[:1]
        if len(points) < 2:
            return (end - start) * 1000
        return max(b - a for a, b in zip(points, points[1:])) * 1000


@dataclass
class Report:
    acknowledged: int
    in_log: int
    lost: list = field(default_factory=list)        # [(partition, offset, value prefix, why)]
    duplicated: list = field(default_factory=list)  # [(value prefix, [(partition, offset)])]
    # [(producer, partition, offset, seq, previous seq)]
    reordered: list = field(default_factory=list)

    def measures(self, measure, prefix):
        measure(f"{prefix}_acknowledged", self.acknowledged, "records")
        measure(f"{prefix}_in_log", self.in_log, "records")
        measure(f"{prefix}_lost", len(self.lost), "records")
        measure(f"{prefix}_duplicated", len(self.duplicated), "records")
        measure(f"{prefix}_reordered", len(self.reordered), "records")

    def assert_clean(self, min_acknowledged):
        assert (len(self.lost), len(self.duplicated), len(self.reordered)) == (0, 0, 0), (
            f"{self.acknowledged} acknowledged, {self.in_log} in the log: {len(self.lost)} lost "
            f"{self.lost[:5]}, {len(self.duplicated)} duplicated {self.duplicated[:5]}, "
            f"{len(self.reordered)} reordered {self.reordered[:5]}")
        assert self.acknowledged >= min_acknowledged, (
            f"only {self.acknowledged} records acknowledged (want at least {min_acknowledged}): "
            "the workload hardly ran")


def check(acks, records):
    """Compares acknowledgements ([Ack]) with the log ([(partition, offset, key, value)] in
    offset order per partition, as records.consume_all returns it)."""
    at = {}
    where = {}
    for p, o, _, v in records:
        at[(p, o)] = v
        where.setdefault(v, []).append((p, o))
    report = Report(acknowledged=len(acks), in_log=len(records))
    for a in acks:
        if a.value not in where:
            report.lost.append((a.partition, a.offset, a.value[:12], "not in the log"))
        elif a.offset is None:
            # Acknowledged without an offset: librdkafka's idempotent producer does that for a
            # batch whose response it lost when a later batch's success proves it persisted.
            # It must then be in the log of its partition.
            if not any(p == a.partition for p, _ in where[a.value]):
                report.lost.append((a.partition, a.offset, a.value[:12],
                                    f"in the log at {where[a.value]}"))
        elif at.get((a.partition, a.offset)) != a.value:
            report.lost.append((a.partition, a.offset, a.value[:12],
                                f"in the log at {where[a.value]}"))
    report.duplicated = [(v[:12], places) for v, places in where.items() if len(places) > 1]
    last = {}
    for p, o, _, v in records:
        producer, seq = parse(v)
        prev = last.get((producer, p))
        if prev is not None and seq <= prev:
            report.reordered.append((producer, p, o, seq, prev))
        last[(producer, p)] = seq
    return report


def verify(workload, bootstrap, timeout=60.0):
    """Reads `workload`'s topic back through `bootstrap` and checks it (see `check`)."""
    records = consume_all(bootstrap, workload.topic, workload.partitions, timeout=timeout)
    return check(workload.acks, records)
