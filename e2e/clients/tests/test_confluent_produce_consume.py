"""confluent-kafka (librdkafka) producer and consumer: every compression codec, acks=all,
keys, null/empty/binary/large values, repeated headers, explicit timestamps, per-partition
order on a 3-partition topic."""

import random

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME

from helpers import consume_partitions, create_topic, produce_all, producer

PARTITIONS = 3
COUNT = 60
BASE_TS = 1_600_000_000_000  # 2020-09-13: far from "now", so a broker-assigned time shows


def make_messages():
    rng = random.Random(42)
    big = bytes(rng.getrandbits(8) for _ in range(1000)) * 500  # ~500 KB, partly compressible
    messages = []
    for i in range(COUNT):
        if i == 0:
            value = b""
        elif i == 1:
            value = None  # a tombstone: null, distinct from empty
        elif i == 2:
            value = bytes(range(256)) * 4
        elif i == 3:
            value = big
        else:
            value = f"value-{i}-".encode() * (1 + i % 7)
        headers = [("trace", f"t-{i}".encode()), ("dup", b"first"), ("dup", b"second"),
                   ("bin", bytes([0, 255, i % 256]))]
        if i % 5 == 0:
            headers = []
        messages.append({
            "key": f"key-{i}".encode() if i != 4 else None,
            "value": value,
            "headers": headers,
            "timestamp": BASE_TS + i * 1000,
            "partition": i % PARTITIONS,
        })
    return messages


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_codec_round_trip(broker, topic, codec):
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    messages = make_messages()
    prod = producer(broker.bootstrap, **{"compression.type": codec, "linger.ms": 20,
                                         "message.max.bytes": 1_000_000})
    delivered = produce_all(prod, topic, messages)

    # Offsets from delivery reports: dense from 0 per partition, in produce order.
    for p in range(PARTITIONS):
        offsets = [d.offset() for d, m in zip(delivered, messages) if m["partition"] == p]
        assert offsets == list(range(len(offsets))), f"partition {p} offsets {offsets}"
        assert all(d.partition() == p for d, m in zip(delivered, messages) if m["partition"] == p)

    got = consume_partitions(broker.bootstrap, topic, range(PARTITIONS),
                             **{"fetch.message.max.bytes": 1_048_576})
    assert sum(len(v) for v in got.values()) == COUNT
    for p in range(PARTITIONS):
        expected = [m for m in messages if m["partition"] == p]
        received = got[p]
        assert [r.offset() for r in received] == list(range(len(expected)))
        for i, (r, m) in enumerate(zip(received, expected)):
            where = f"partition {p} offset {i}"
            assert r.key() == m["key"], where
            assert r.value() == m["value"], f"{where}: value differs (len {len(r.value() or b'')})"
            assert (r.headers() or []) == m["headers"], where
            assert r.timestamp() == (TIMESTAMP_CREATE_TIME, m["timestamp"]), where
