"""DeleteRecords (kafka-python's KafkaAdminClient.delete_records): the low watermark moves
and reads from the beginning start there."""

import pytest
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import OffsetOutOfRangeError

from helpers import consume_partitions, create_topic, produce_all, producer, watermarks

COUNT = 20


def test_delete_records_moves_low_watermark(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    prod = producer(broker.bootstrap, **{"linger.ms": 0})
    produce_all(prod, topic, [{"value": f"v{i}".encode(), "partition": i % 2}
                              for i in range(2 * COUNT)])

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        tp0, tp1 = KTopicPartition(topic, 0), KTopicPartition(topic, 1)
        result = admin.delete_records({tp0: 7})
        assert result[tp0]["low_watermark"] == 7
        assert result[tp0]["error_code"] == 0
        # Deleting below the current start is a no-op that reports the current start.
        assert admin.delete_records({tp0: 3})[tp0]["low_watermark"] == 7
        # Past the high watermark is refused.
        with pytest.raises(OffsetOutOfRangeError):
            admin.delete_records({tp1: COUNT + 1})
        # Up to the high watermark empties the partition.
        assert admin.delete_records({tp1: COUNT})[tp1]["low_watermark"] == COUNT
    finally:
        admin.close()

    assert watermarks(broker.bootstrap, topic, 0) == (7, COUNT)
    assert watermarks(broker.bootstrap, topic, 1) == (COUNT, COUNT)

    got = consume_partitions(broker.bootstrap, topic, [0, 1])
    assert [(r.offset(), r.value()) for r in got[0]] == [
        (o, f"v{2 * o}".encode()) for o in range(7, COUNT)]
    assert got[1] == []

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
    try:
        assert c.beginning_offsets([tp0, tp1]) == {tp0: 7, tp1: COUNT}
    finally:
        c.close()

    # The new start offset survives a restart.
    broker.restart()
    assert watermarks(broker.bootstrap, topic, 0) == (7, COUNT)
