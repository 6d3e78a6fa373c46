"""Metadata as librdkafka's list_topics sees it, for all topics and for one topic."""

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
