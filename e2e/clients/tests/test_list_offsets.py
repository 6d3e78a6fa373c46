"""ListOffsets through both clients: by timestamp (inside a batch, between records, past
the end), earliest/latest, watermarks."""

import pytest
from confluent_kafka import TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

from helpers import consumer, create_topic, produce_all, producer

COUNT = 10
BASE_TS = 1_650_000_000_000
STEP = 1000


def produce_timestamped(broker, topic, one_batch):
    """Partition 0: COUNT records, STEP ms apart, either all in one batch (lookups land
    inside it) or one record per batch. Partition 1: 3 records, later in time."""
    create_topic(broker.bootstrap, topic, partitions=2)
    prod = producer(broker.bootstrap, **{"linger.ms": 100 if one_batch else 0})
    messages = [{"value": f"v{i}".encode(), "timestamp": BASE_TS + i * STEP, "partition": 0}
                for i in range(COUNT)]
    later = [{"value": f"w{i}".encode(), "timestamp": BASE_TS + 100_000 + i, "partition": 1}
             for i in range(3)]
    for batch in (messages, later):
        if one_batch:
            delivered = produce_all(prod, topic, batch)
        else:
            delivered = [produce_all(prod, topic, [m])[0] for m in batch]
        assert [d.offset() for d in delivered] == list(range(len(batch)))


@pytest.mark.parametrize("one_batch", [False, True], ids=["batch-per-record", "one-batch"])
def test_confluent_offsets_for_times_and_watermarks(broker, topic, one_batch):
    # Kafka answers a timestamp lookup with the first *record* whose timestamp is >= the
    # target, decoding the batch if needed (LogSegment.findOffsetByTimestamp), not the
    # batch's base offset.
    produce_timestamped(broker, topic, one_batch)
    c = consumer(broker.bootstrap)
    try:
        def lookup(p, ts):
            [result] = c.offsets_for_times([TopicPartition(topic, p, ts)], timeout=10)
            assert result.error is None, result.error
            return result.offset

        assert lookup(0, BASE_TS - 1) == 0                # before the first record
        assert lookup(0, BASE_TS) == 0
        assert lookup(0, BASE_TS + 4 * STEP) == 4         # exact match
        assert lookup(0, BASE_TS + 4 * STEP + 1) == 5     # first record with ts >= target
        assert lookup(0, BASE_TS + 9 * STEP) == 9         # the last record
        assert lookup(0, BASE_TS + 9 * STEP + 1) == -1    # after the last: end (-1)
        assert lookup(1, BASE_TS + 5 * STEP) == 0
        assert lookup(1, BASE_TS + 100_001) == 1

        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10,
                                       cached=False) == (0, COUNT)
        assert c.get_watermark_offsets(TopicPartition(topic, 1), timeout=10,
                                       cached=False) == (0, 3)
    finally:
        c.close()


@pytest.mark.parametrize("one_batch", [False, True], ids=["batch-per-record", "one-batch"])
def test_kafka_python_offsets(broker, topic, one_batch):
    produce_timestamped(broker, topic, one_batch)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                      enable_auto_commit=False)
    try:
        tp0, tp1 = KTopicPartition(topic, 0), KTopicPartition(topic, 1)
        assert c.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert c.end_offsets([tp0, tp1]) == {tp0: COUNT, tp1: 3}

        found = c.offsets_for_times({tp0: BASE_TS + 6 * STEP - 500, tp1: BASE_TS})
        assert found[tp0].offset == 6
        assert found[tp0].timestamp == BASE_TS + 6 * STEP
        assert found[tp1].offset == 0
        assert found[tp1].timestamp == BASE_TS + 100_000

        past_end = c.offsets_for_times({tp0: BASE_TS + COUNT * STEP})
        assert past_end[tp0] is None
    finally:
        c.close()
