"""Metadata as librdkafka's list_topics sees it, for all topics and for one topic."""

import socket
import struct

import pytest
from helpers import admin_client, create_topic, producer


@pytest.mark.parametrize("client", ["producer", "admin"])
def test_list_all_topics(broker, topic, client):
    # librdkafka 2.16 encodes "all topics" (a null array) in Metadata v12 with 3 bytes more
    # than the schema reads; Kafka ignores bytes after the body, so the broker must too.
    create_topic(broker.bootstrap, topic, partitions=3)
    create_topic(broker.bootstrap, topic + "-b")
    c = producer(broker.bootstrap) if client == "producer" else admin_client(broker.bootstrap)
    md = c.list_topics(timeout=10)
    assert {topic, topic + "-b"} <= set(md.topics)
    assert sorted(md.topics[topic].partitions) == [0, 1, 2]
    assert sorted(md.topics[topic + "-b"].partitions) == [0]
    assert [(b.id, f"{b.host}:{b.port}") for b in md.brokers.values()] == [(1, broker.bootstrap)]


def test_list_one_topic(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    md = producer(broker.bootstrap).list_topics(topic=topic, timeout=10)
    t = md.topics[topic]
    assert t.error is None
    assert {p: (v.leader, v.replicas, v.isrs) for p, v in t.partitions.items()} == {
        0: (1, [1], [1]), 1: (1, [1], [1])}


def test_metadata_v12_with_trailing_bytes_is_answered(broker):
    """The exact "all topics" Metadata v12 request librdkafka 2.16 sends (its null topic
    array is followed by 3 stray bytes, librdkafka issue 5049). Kafka's parser ignores
    bytes after the body and answers; the connection must not be closed."""
    frame = bytes.fromhex("0003000c00000003000772646b61666b610000000000010000")
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        header = s.recv(8)
        assert len(header) == 8, "connection closed instead of a Metadata response"
        _size, correlation_id = struct.unpack(">ii", header)
        assert correlation_id == 3
