"""Fetch sessions (KIP-227) with real clients: consumers of a 24-partition topic read it while
it is produced to, and every record arrives, in order, per partition. kafka-python fetches
through an incremental fetch session; librdkafka (confluent-kafka) sends only sessionless full
fetches (session id 0, epoch -1, as of 2.16), so it covers the sessionless path alongside.
The broker's /metrics must show the session opened and incremental fetches served, so the test
fails if the broker stops keeping sessions."""

import time

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition

from helpers import consumer, create_topic, metric, parse_metrics, producer, wait_until

PARTITIONS = 24
PRODUCE_SECONDS = 6


def fetch_metric(broker, name, **labels):
    return metric(parse_metrics(broker.metrics_text()), name, **labels) or 0


def test_consumers_read_many_partitions_in_order_while_produced(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    prod = producer(broker.bootstrap, **{"linger.ms": 5})
    delivered = {p: [] for p in range(PARTITIONS)}  # partition -> [(offset, value)]
    failures = []

    def on_delivery(err, msg):
        if err is not None:
            failures.append(err)
        else:
            delivered[msg.partition()].append((msg.offset(), msg.value()))

    sessions = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=100,
                             enable_incremental_fetch_sessions=True)
    sessions.assign([KafkaTopicPartition(topic, p) for p in range(PARTITIONS)])
    sessions.seek_to_beginning()
    sessionless = consumer(broker.bootstrap, **{"enable.partition.eof": False,
                                                "fetch.wait.max.ms": 100})
    sessionless.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got = {"kafka-python": {p: [] for p in range(PARTITIONS)},
           "confluent-kafka": {p: [] for p in range(PARTITIONS)}}

    def poll_both():
        for tp, records in sessions.poll(timeout_ms=50).items():
            got["kafka-python"][tp.partition].extend((r.offset, r.value) for r in records)
        for msg in sessionless.consume(num_messages=1000, timeout=0.05):
            assert msg.error() is None, f"confluent-kafka: {msg.error()}"
            got["confluent-kafka"][msg.partition()].append((msg.offset(), msg.value()))

    try:
        # Each round produces to a third of the partitions, so most partitions of an
        # incremental fetch have nothing new.
        seq = [0] * PARTITIONS
        end = time.monotonic() + PRODUCE_SECONDS
        rounds = 0
        while time.monotonic() < end:
            for p in range(rounds % 3, PARTITIONS, 3):
                prod.produce(topic, value=f"{p}:{seq[p]}".encode(), partition=p,
                             on_delivery=on_delivery)
                seq[p] += 1
            prod.poll(0)
            poll_both()
            rounds += 1
        assert prod.flush(20) == 0, "undelivered records"
        assert not failures, failures
        total = sum(seq)

        def caught_up():
            poll_both()
            return all(sum(len(v) for v in c.values()) >= total for c in got.values())

        wait_until(caught_up, 30, f"both consumers reading all {total} records", interval=0)
        for client, partitions in got.items():
            for p in range(PARTITIONS):
                expected = sorted(delivered[p])
                assert [v for _, v in expected] == [f"{p}:{i}".encode() for i in range(seq[p])]
                assert partitions[p] == expected, f"{client}: partition {p}"

        # Caught up, kafka-python's session holds every partition.
        wait_until(lambda: (sessions.poll(timeout_ms=50), fetch_metric(
            broker, "ironlog_incremental_fetch_partitions_cached"))[1] == PARTITIONS,
            10, "the session's partitions in ironlog_incremental_fetch_partitions_cached")
        assert fetch_metric(broker, "ironlog_incremental_fetch_sessions") >= 1
        assert fetch_metric(broker, "ironlog_incremental_fetch_sessions_created_total") >= 1
        assert fetch_metric(broker, "ironlog_incremental_fetches_total") > 0
        for error in ("FETCH_SESSION_ID_NOT_FOUND", "INVALID_FETCH_SESSION_EPOCH"):
            assert fetch_metric(broker, "ironlog_errors_total", api="Fetch", error=error) == 0
    finally:
        sessions.close()
        sessionless.close()
