"""Produce and fetch edge cases real clients hit: idempotent producers, starting mid-batch,
records larger than the fetch size (KIP-74), max.message.bytes, auto-creation, and a
kafka-python consumer reading what librdkafka compressed."""

import subprocess

import pytest
from confluent_kafka import KafkaError
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

from helpers import consume_partitions, create_topic, produce_all, producer, wait_until


def test_idempotent_producer_keeps_order_without_duplicates(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    prod = producer(broker.bootstrap, **{"enable.idempotence": True, "linger.ms": 2,
                                         "max.in.flight.requests.per.connection": 5,
                                         "batch.num.messages": 50})
    messages = [{"key": str(i).encode(), "value": f"v{i}".encode(), "partition": i % 2}
                for i in range(2000)]
    delivered = produce_all(prod, topic, messages)
    got = consume_partitions(broker.bootstrap, topic, [0, 1])
    for p in (0, 1):
        expected = [m["value"] for m in messages if m["partition"] == p]
        assert [r.value() for r in got[p]] == expected
        assert [r.offset() for r in got[p]] == list(range(len(expected)))
        assert [d.offset() for d, m in zip(delivered, messages) if m["partition"] == p] == \
            list(range(len(expected)))


def test_consume_from_offset_inside_a_batch(broker, topic):
    create_topic(broker.bootstrap, topic)
    prod = producer(broker.bootstrap, **{"linger.ms": 100, "compression.type": "lz4"})
    produce_all(prod, topic, [{"value": f"v{i}".encode()} for i in range(10)])
    got = consume_partitions(broker.bootstrap, topic, [0], offset=6)[0]
    assert [(r.offset(), r.value()) for r in got] == [(i, f"v{i}".encode()) for i in range(6, 10)]


def test_record_larger_than_fetch_sizes_is_still_returned(broker, topic):
    # KIP-74: the first batch is returned even when it exceeds max.partition.fetch.bytes
    # and fetch.max.bytes, so a consumer never gets stuck.
    create_topic(broker.bootstrap, topic)
    big = bytes(range(256)) * 1200  # ~300 KB
    prod = producer(broker.bootstrap, **{"linger.ms": 0})
    produce_all(prod, topic, [{"value": b"small"}, {"value": big}, {"value": b"after"}])
    got = consume_partitions(broker.bootstrap, topic, [0], **{
        "fetch.message.max.bytes": 1024, "fetch.max.bytes": 4096, "message.max.bytes": 1000,
        "receive.message.max.bytes": 2_000_000})[0]
    assert [r.value() for r in got] == [b"small", big, b"after"]


def test_record_over_max_message_bytes_is_refused(broker, topic):
    create_topic(broker.bootstrap, topic, config={"max.message.bytes": "2000"})
    prod = producer(broker.bootstrap, **{"linger.ms": 0})
    result = []
    prod.produce(topic, value=b"x" * 5000, on_delivery=lambda err, msg: result.append(err))
    prod.flush(20)
    assert len(result) == 1 and result[0] is not None
    assert result[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, result[0]
    # Small records still go in, at offset 0: the refused one took no offset.
    [ok] = produce_all(prod, topic, [{"value": b"fits"}])
    assert ok.offset() == 0


def test_auto_create_on_produce(broker, topic):
    result = subprocess.run(["kcat", "-b", broker.bootstrap, "-P", "-t", topic],
                            input=b"a\nb\n", capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    got = consume_partitions(broker.bootstrap, topic, [0])[0]
    assert [r.value() for r in got] == [b"a", b"b"]


def test_no_auto_create_when_disabled(broker_factory, topic):
    broker = broker_factory("--auto-create-topics", "false")
    prod = producer(broker.bootstrap, **{"message.timeout.ms": 3000})
    result = []
    prod.produce(topic, value=b"x", on_delivery=lambda err, msg: result.append(err))
    prod.flush(15)
    assert len(result) == 1 and result[0] is not None
    assert result[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
                                KafkaError._MSG_TIMED_OUT), result[0]
    md = prod.list_topics(topic=topic, timeout=10)
    assert md.topics[topic].error is not None
    assert md.topics[topic].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


@pytest.mark.parametrize("codec", ["none", "gzip"])
def test_kafka_python_reads_librdkafka_batches(broker, topic, codec):
    # kafka-python decodes gzip natively; snappy/lz4/zstd need optional packages.
    create_topic(broker.bootstrap, topic)
    prod = producer(broker.bootstrap, **{"linger.ms": 20, "compression.type": codec})
    produce_all(prod, topic, [{"key": f"k{i}".encode(), "value": f"v{i}".encode() * 20,
                               "headers": [("i", str(i).encode())]} for i in range(100)])
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                      enable_auto_commit=False)
    try:
        tp = KTopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning()
        records = []

        def poll():
            records.extend(c.poll(timeout_ms=500).get(tp, []))
            return len(records) >= 100
        wait_until(poll, 20, "100 records")
    finally:
        c.close()
    assert [r.offset for r in records] == list(range(100))
    assert [(r.key, r.value, r.headers) for r in records] == [
        (f"k{i}".encode(), f"v{i}".encode() * 20, [("i", str(i).encode())]) for i in range(100)]
