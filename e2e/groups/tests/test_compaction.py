"""cleanup.policy=compact: the latest value per key survives across segments and restarts."""

from collections import defaultdict

from confluent_kafka import Consumer, TopicPartition

from helpers import LOG, create_topic, producer, wait_until

KEYS = 10
ROUNDS = 30


def read_all(bootstrap, topic):
    """(key, value) of every record from the log start, in offset order (no group)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "logger": LOG,
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        c.assign([TopicPartition(topic, 0, lo)])
        out = []
        while True:
            m = c.poll(5)
            assert m is not None, "no EOF from the reader"
            if m.error():
                break  # partition EOF
            out.append((m.offset(), m.key().decode(), m.value().decode() if m.value() else None))
        return out, hi
    finally:
        c.close()


def check_latest(records):
    per_key = defaultdict(list)
    for _, k, v in records:
        per_key[k].append(int(v.split("-")[1]))
    assert sorted(per_key) == [f"k{i}" for i in range(KEYS)]
    for k, rounds in per_key.items():
        assert rounds == sorted(rounds), f"{k} out of order: {rounds}"
        assert rounds[-1] == ROUNDS - 1, f"{k}: latest value lost ({rounds})"


def test_compacted_topic_keeps_latest_value_per_key(broker, name):
    topic = name
    create_topic(broker.bootstrap, topic, 1,
                 {"cleanup.policy": "compact", "segment.bytes": "1024"})
    p = producer(broker.bootstrap)
    for r in range(ROUNDS):
        for k in range(KEYS):
            p.produce(topic, key=f"k{k}".encode(), value=f"v-{r}".encode(), partition=0)
        p.flush(10)  # one batch per round: many small segments
    assert p.flush(30) == 0

    def compacted():
        records, end = read_all(broker.bootstrap, topic)
        assert end == KEYS * ROUNDS, "offsets never change"
        return records if len(records) < KEYS * ROUNDS // 2 else None

    records = wait_until("the cleaner to compact the inactive segments", compacted, timeout=30,
                         interval=0.5)
    check_latest(records)
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(offsets) and offsets[-1] == KEYS * ROUNDS - 1

    broker.restart()
    after, end = read_all(broker.bootstrap, topic)
    assert end == KEYS * ROUNDS
    assert after == records, "a restart must neither resurrect nor lose records"
    check_latest(after)
