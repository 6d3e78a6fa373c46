"""Producing with delivery reports and reading partitions back with confluent-kafka
(librdkafka), shared by the cluster and compose suites."""

import logging
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

TIMEOUT_S = 30.0

# librdkafka's log lines go to Python logging (shown with a failing test), not to stderr.
LOG = logging.getLogger("librdkafka")
LOG.addHandler(logging.NullHandler())


def produce(bootstrap, topic, records, **conf):
    """Produces `records` (dicts of Producer.produce kwargs: key, value, partition, headers,
    timestamp) with acks=all through `bootstrap` and waits for every delivery report. Returns
    [(partition, offset, key, value)] in produce order; fails on any delivery error. The
    producer retries through leader changes, as applications do."""
    settings = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                "message.timeout.ms": int(TIMEOUT_S * 1000), "logger": LOG}
    settings.update(conf)
    delivered = deliver(Producer(settings), topic, records, timeout=TIMEOUT_S + 5,
                        what=f"{topic} via {bootstrap}")
    return [(m.partition(), m.offset(), m.key(), m.value()) for m in delivered]


def deliver(producer, topic, records, timeout=TIMEOUT_S, what=None):
    """Produces `records` (dicts of Producer.produce kwargs) with `producer` and waits for
    every delivery report. Returns the delivered messages (confluent Message) in produce
    order; fails on any delivery error."""
    what = what or topic
    results = [None] * len(records)

    def report(i):
        def cb(err, msg):
            results[i] = (err, msg)
        return cb

    for i, r in enumerate(records):
        while True:
            try:
                producer.produce(topic, on_delivery=report(i), **r)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(timeout)
    assert remaining == 0, f"{remaining} of {len(records)} records to {what} not delivered"
    errors = [(i, r and r[0]) for i, r in enumerate(results) if r is None or r[0] is not None]
    assert not errors, f"delivery to {what} failed: {errors[:5]}"
    return [m for _, m in results]


def consume_all(bootstrap, topic, partitions, timeout=TIMEOUT_S, **conf):
    """Reads every partition of `topic` from the beginning through `bootstrap` (no group)
    until each reports its end. Returns [(partition, offset, key, value)] ordered by
    partition, then in the order received (which must be offset order)."""
    settings = {"bootstrap.servers": bootstrap, "group.id": "e2e-cluster-reader",
                "enable.auto.commit": False, "enable.partition.eof": True, "logger": LOG}
    settings.update(conf)
    c = Consumer(settings)
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out = {p: [] for p in range(partitions)}
        at_end = set()
        deadline = time.monotonic() + timeout
        while at_end != set(out):
            assert time.monotonic() < deadline, (
                f"reading {topic} via {bootstrap}: partitions {sorted(set(out) - at_end)} not at "
                f"end after {timeout}s; got {[(p, len(v)) for p, v in out.items()]}")
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                    continue
                # Leader moves and not-yet-known partitions surface as transient errors.
                if msg.error().retriable() or msg.error().code() in (
                        KafkaError.NOT_LEADER_OR_FOLLOWER, KafkaError.UNKNOWN_TOPIC_OR_PART,
                        KafkaError._TRANSPORT):
                    continue
                raise AssertionError(f"reading {topic} via {bootstrap}: {msg.error()}")
            out[msg.partition()].append((msg.partition(), msg.offset(), msg.key(), msg.value()))
            at_end.discard(msg.partition())
        return [r for p in sorted(out) for r in out[p]]
    finally:
        c.close()


def committed(bootstrap, group, tps):
    """The group's committed offsets of [(topic, partition)] via OffsetFetch (a consumer
    that never joins): {(topic, partition): offset}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "logger": LOG})
    try:
        got = c.committed([TopicPartition(t, p) for t, p in tps], timeout=15)
        return {(tp.topic, tp.partition): tp.offset for tp in got}
    finally:
        c.close()
