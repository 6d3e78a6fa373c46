"""kafka-python: the admin client (topics, configs, partitions) and a producer/consumer
round trip without a consumer group."""

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import InvalidConfigurationError, TopicAlreadyExistsError

from helpers import wait_until


@pytest.fixture
def admin(broker):
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="e2e-admin",
                              request_timeout_ms=15000)
    yield client
    client.close()


def topic_configs(admin, name):
    result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)],
                                    config_filter="all")
    return result["topic"][name]


def partition_count(admin, name):
    [described] = admin.describe_topics([name])
    assert described["error_code"] == 0, described
    return len(described["partitions"])


def test_create_and_describe_configs(admin, topic):
    admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1,
                                 "configs": {"retention.ms": "3600000",
                                             "cleanup.policy": "delete"}}})
    assert topic in admin.list_topics()
    assert partition_count(admin, topic) == 2

    configs = topic_configs(admin, topic)
    assert configs["retention.ms"]["value"] == "3600000"
    assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    # Defaults are described too, as defaults.
    assert configs["segment.bytes"]["value"] == "1073741824"
    assert configs["segment.bytes"]["config_source"] == "DEFAULT_CONFIG"
    assert configs["max.message.bytes"]["value"] == "1048588"
    assert configs["message.timestamp.type"]["value"] == "CreateTime"

    # The default filter ("modified") shows exactly the overrides.
    modified = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    assert set(modified["topic"][topic]) == {"retention.ms", "cleanup.policy"}


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "full"])
def test_alter_configs(admin, topic, incremental):
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1,
                                 "configs": {"retention.ms": "3600000"}}})
    result = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic,
                        configs={"segment.bytes": "1048576", "max.message.bytes": "2000000"})],
        incremental=incremental)
    assert result == {"topic": {topic: "OK"}}
    configs = topic_configs(admin, topic)
    assert configs["segment.bytes"]["value"] == "1048576"
    assert configs["segment.bytes"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert configs["max.message.bytes"]["value"] == "2000000"
    # The earlier override survives: incremental leaves it, and kafka-python re-sends it with
    # the full AlterConfigs.
    assert configs["retention.ms"]["value"] == "3600000"

    # validate_only changes nothing.
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                        configs={"segment.bytes": "2097152"})],
                        validate_only=True, incremental=incremental)
    assert topic_configs(admin, topic)["segment.bytes"]["value"] == "1048576"


def test_alter_configs_rejects_invalid_value(admin, topic):
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    result = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "soon"})],
        incremental=True)
    assert "InvalidConfigurationError" in result["topic"][topic], result
    assert topic_configs(admin, topic)["retention.ms"]["value"] == "604800000"


def test_create_partitions(admin, broker, topic):
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    admin.create_partitions({topic: 4})
    assert partition_count(admin, topic) == 4
    [described] = admin.describe_topics([topic])
    assert sorted(p["partition_index"] for p in described["partitions"]) == [0, 1, 2, 3]
    assert all(p["leader_id"] == 1 for p in described["partitions"])
    # A producer can write to a new partition.
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    meta = prod.send(topic, b"to-3", partition=3).get(timeout=15)
    prod.close()
    assert (meta.partition, meta.offset) == (3, 0)


def test_delete_topic(admin, topic):
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    assert topic in admin.list_topics()
    admin.delete_topics([topic])
    assert topic not in admin.list_topics()


def test_validate_only_does_not_create(admin, topic):
    admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}},
                        validate_only=True)
    assert topic not in admin.list_topics()


def test_create_existing_topic_fails(admin, topic):
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
    assert partition_count(admin, topic) == 1


@pytest.mark.parametrize("configs", [{"no.such.config": "1"}, {"retention.ms": "forever"}],
                         ids=["unknown-name", "bad-value"])
def test_create_with_invalid_config_fails(admin, topic, configs):
    with pytest.raises(InvalidConfigurationError):
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1,
                                     "configs": configs}})
    assert topic not in admin.list_topics()


def test_producer_consumer_round_trip(admin, broker, topic):
    admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=10)
    sent = []
    for i in range(40):
        future = prod.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(),
                           headers=[("n", str(i).encode())], partition=i % 2,
                           timestamp_ms=1_700_000_000_000 + i)
        sent.append((i, future))
    acks = {i: f.get(timeout=15) for i, f in sent}
    prod.close()
    for p in (0, 1):
        assert [acks[i].offset for i in range(p, 40, 2)] == list(range(20))

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=1000)
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    got = {0: [], 1: []}
    deadline = time.monotonic() + 20
    while sum(len(v) for v in got.values()) < 40 and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            got[tp.partition].extend(records)
    consumer.close()
    for p in (0, 1):
        expected = list(range(p, 40, 2))
        assert [r.offset for r in got[p]] == list(range(20))
        assert [r.key for r in got[p]] == [f"k{i}".encode() for i in expected]
        assert [r.value for r in got[p]] == [f"v{i}".encode() for i in expected]
        assert [r.headers for r in got[p]] == [[("n", str(i).encode())] for i in expected]
        assert [r.timestamp for r in got[p]] == [1_700_000_000_000 + i for i in expected]


def test_describe_cluster(admin, broker):
    cluster = wait_until(admin.describe_cluster, 10, "describe_cluster")
    assert [b["node_id"] if "node_id" in b else b["broker_id"] for b in cluster["brokers"]] == [1]
