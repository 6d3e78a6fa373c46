"""Time-based behaviour: retention.ms deleting old segments, LogAppendTime topics, and the
batch validation real clients see (timestamps out of range, keyless records in compacted
topics)."""

import time

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, KafkaError
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafka.errors import InvalidRecordError, InvalidTimestampError

from helpers import (consume_partitions, create_topic, produce_all, producer, wait_until,
                     watermarks)


def test_retention_ms_advances_low_watermark(broker, topic):
    create_topic(broker.bootstrap, topic, config={"segment.bytes": "10000",
                                                  "retention.ms": "1000"})
    # Small batches (one ~300-byte record each) so the log rolls into several segments.
    prod = producer(broker.bootstrap, **{"linger.ms": 0, "batch.size": 1000})
    count = 150
    for start in range(0, count, 10):
        produce_all(prod, topic, [{"value": f"{i:04}".encode() * 70}
                                  for i in range(start, start + 10)])
    assert watermarks(broker.bootstrap, topic) == (0, count)

    low, high = wait_until(lambda: (lambda w: w if w[0] > 0 else None)(
        watermarks(broker.bootstrap, topic)), 15, "retention to delete a segment")
    assert 0 < low <= count
    assert high == count
    got = consume_partitions(broker.bootstrap, topic, [0])
    if got[0]:
        assert got[0][0].offset() >= low
        assert got[0][-1].offset() == count - 1


def test_log_append_time_replaces_producer_timestamp(broker, topic):
    create_topic(broker.bootstrap, topic, config={"message.timestamp.type": "LogAppendTime"})
    old = 1_000_000_000_000  # 2001
    prod = producer(broker.bootstrap, **{"linger.ms": 20})
    before = int(time.time() * 1000)
    delivered = produce_all(prod, topic, [{"value": f"v{i}".encode(), "timestamp": old + i}
                                          for i in range(10)])
    after = int(time.time() * 1000)

    got = consume_partitions(broker.bootstrap, topic, [0])[0]
    assert [r.value() for r in got] == [f"v{i}".encode() for i in range(10)]
    for r in got:
        ts_type, ts = r.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME, r.timestamp()
        assert before - 1000 <= ts <= after + 1000, (ts, before, after)
    # The producer's delivery report carries the broker's time too.
    for d in delivered:
        assert d.timestamp()[1] != old + d.offset()

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp = KTopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning()
        records = wait_until(lambda: c.poll(timeout_ms=500).get(tp), 15, "kafka-python fetch")
        assert records[0].timestamp_type == 1
        assert before - 1000 <= records[0].timestamp <= after + 1000
    finally:
        c.close()


def test_create_time_topic_keeps_producer_timestamp(broker, topic):
    create_topic(broker.bootstrap, topic)
    prod = producer(broker.bootstrap)
    produce_all(prod, topic, [{"value": b"x", "timestamp": 1_000_000_000_000}])
    [r] = consume_partitions(broker.bootstrap, topic, [0])[0]
    assert r.timestamp() == (TIMESTAMP_CREATE_TIME, 1_000_000_000_000)


def _delivery_errors(prod, topic, messages, one_batch_each=True):
    """Produces `messages` (each in a batch of its own, or all at once) and returns each
    one's delivery error code (None if delivered)."""
    errors = [None] * len(messages)

    def report(i):
        def cb(err, _msg):
            errors[i] = err.code() if err is not None else None
        return cb

    for i, m in enumerate(messages):
        prod.produce(topic, on_delivery=report(i), **m)
        if one_batch_each:
            assert prod.flush(30) == 0
    assert prod.flush(30) == 0
    return errors


def test_out_of_range_timestamps_are_refused_with_invalid_timestamp(broker, topic):
    # A one-hour window into the past (message.timestamp.before.max.ms) and Kafka's default
    # one hour into the future (message.timestamp.after.max.ms).
    create_topic(broker.bootstrap, topic, config={"message.timestamp.before.max.ms": "3600000"})
    now = int(time.time() * 1000)
    hour = 3_600_000
    prod = producer(broker.bootstrap, **{"linger.ms": 0, "message.send.max.retries": 0})
    errors = _delivery_errors(prod, topic, [
        {"value": b"old", "timestamp": now - 2 * hour},
        {"value": b"now", "timestamp": now},
        {"value": b"future", "timestamp": now + 2 * hour},
    ])
    assert errors == [KafkaError.INVALID_TIMESTAMP, None, KafkaError.INVALID_TIMESTAMP]
    # In one batch the whole batch is refused, and librdkafka reads the response's
    # record_errors (Produce v8+): the records named there fail with INVALID_RECORD, the one
    # that only shared their batch with _INVALID_DIFFERENT_RECORD.
    batched = producer(broker.bootstrap, **{"linger.ms": 200, "message.send.max.retries": 0})
    errors = _delivery_errors(batched, topic, [
        {"value": b"old again", "timestamp": now - 2 * hour},
        {"value": b"now again", "timestamp": now},
        {"value": b"future again", "timestamp": now + 2 * hour},
    ], one_batch_each=False)
    assert errors == [KafkaError.INVALID_RECORD, KafkaError._INVALID_DIFFERENT_RECORD,
                      KafkaError.INVALID_RECORD]
    assert [r.value() for r in consume_partitions(broker.bootstrap, topic, [0])[0]] == [b"now"]

    # kafka-python, an independent implementation, gets the same answer.
    kp = KafkaProducer(bootstrap_servers=broker.bootstrap, retries=0)
    try:
        with pytest.raises(InvalidTimestampError):
            kp.send(topic, b"kp-old", timestamp_ms=now - 3 * hour).get(timeout=30)
        assert kp.send(topic, b"kp-now", timestamp_ms=now).get(timeout=30).offset == 1
    finally:
        kp.close()


def test_keyless_records_are_refused_by_compacted_topics(broker, topic):
    create_topic(broker.bootstrap, topic, config={"cleanup.policy": "compact"})
    prod = producer(broker.bootstrap, **{"linger.ms": 0, "message.send.max.retries": 0})
    errors = _delivery_errors(prod, topic, [
        {"key": b"k1", "value": b"a"},
        {"value": b"no key"},
        {"key": b"k2", "value": b"b"},
    ])
    assert errors == [None, KafkaError.INVALID_RECORD, None]
    got = consume_partitions(broker.bootstrap, topic, [0])[0]
    assert [(r.offset(), r.key()) for r in got] == [(0, b"k1"), (1, b"k2")]

    kp = KafkaProducer(bootstrap_servers=broker.bootstrap, retries=0)
    try:
        with pytest.raises(InvalidRecordError):
            kp.send(topic, b"no key either").get(timeout=30)
    finally:
        kp.close()
