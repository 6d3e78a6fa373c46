"""Time-based behaviour: retention.ms deleting old segments, and LogAppendTime topics."""

import time

from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

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
