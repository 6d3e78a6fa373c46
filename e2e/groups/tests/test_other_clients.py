"""kafka-python and kcat group consumers; committed offsets and group state across broker
restarts; commit metadata round trip."""

import subprocess

from confluent_kafka import Consumer, TopicPartition
from kafka import KafkaConsumer, TopicPartition as KTP
from kafka.structs import OffsetAndMetadata

from helpers import LOG, committed, create_topic, end_offsets, producer, wait_until


def produce_n(bootstrap, topic, n, partitions):
    p = producer(bootstrap)
    for i in range(n):
        p.produce(topic, value=f"m{i}".encode(), partition=i % partitions)
    assert p.flush(30) == 0


def test_kafka_python_group_consumer_commits_and_resumes(broker, name):
    topic = group = name
    create_topic(broker.bootstrap, topic, 3)
    produce_n(broker.bootstrap, topic, 60, 3)
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                      enable_auto_commit=False, auto_offset_reset="earliest",
                      consumer_timeout_ms=10000)
    got = []
    for msg in c:
        got.append(msg.value.decode())
        if len(got) == 30:
            break
    c.commit()
    positions = {p: c.position(KTP(topic, p)) for p in range(3)}
    c.close()
    assert len(got) == 30
    assert committed(broker.bootstrap, group, topic, 3) == positions
    c2 = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                       enable_auto_commit=False, auto_offset_reset="earliest",
                       consumer_timeout_ms=5000)
    rest = [m.value.decode() for m in c2]
    c2.commit()
    c2.close()
    assert sorted(got + rest, key=lambda v: int(v[1:])) == [f"m{i}" for i in range(60)]
    assert committed(broker.bootstrap, group, topic, 3) == {0: 20, 1: 20, 2: 20}


def test_kcat_balanced_consumer(broker, name):
    topic = group = name
    create_topic(broker.bootstrap, topic, 4)
    produce_n(broker.bootstrap, topic, 40, 4)
    out = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-G", group, topic, "-o", "beginning", "-e", "-q",
         "-X", "session.timeout.ms=6000", "-f", "%p %o %s\n"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [l.split() for l in out.stdout.splitlines() if l]
    assert sorted(v for _, _, v in lines) == sorted(f"m{i}" for i in range(40))
    for p in range(4):
        offsets = [int(o) for pp, o, _ in lines if int(pp) == p]
        assert offsets == list(range(10)), f"partition {p}: {offsets}"
    # kcat commits on exit (auto commit + close).
    wait_until("kcat's commits", lambda: committed(broker.bootstrap, group, topic, 4)
               == {p: 10 for p in range(4)}, timeout=20)


def test_broker_restart_keeps_offsets_metadata_and_group(broker, name):
    topic = group = name
    create_topic(broker.bootstrap, topic, 2)
    produce_n(broker.bootstrap, topic, 100, 2)
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                      enable_auto_commit=False, auto_offset_reset="earliest",
                      consumer_timeout_ms=10000)
    # Make sure the group formed, then commit an exact position with metadata.
    wait_until("assignment", lambda: c.poll(timeout_ms=200) is not None and c.assignment())
    c.commit({KTP(topic, 0): OffsetAndMetadata(17, "ckpt-0 ü", -1),
              KTP(topic, 1): OffsetAndMetadata(33, "ckpt-1", -1)})
    c.close()

    broker.restart()

    # Group state survives: listed with its protocol type.
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "logger": LOG})
    listed = admin.list_consumer_groups().result(timeout=20)
    assert group in [g.group_id for g in listed.valid]
    # Offsets and their metadata survive.
    k = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                      enable_auto_commit=False)
    c0 = k.committed(KTP(topic, 0), metadata=True)
    assert (c0.offset, c0.metadata) == (17, "ckpt-0 ü")
    assert k.committed(KTP(topic, 1), metadata=True).metadata == "ckpt-1"
    assert k.committed(KTP(topic, 0)) == 17 and k.committed(KTP(topic, 1)) == 33
    k.close()
    # A member rejoining resumes exactly at the committed offsets.
    r = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "logger": LOG})
    r.subscribe([topic])
    first = {}
    def got_both():
        m = r.poll(0.2)
        if m is not None and m.error() is None:
            first.setdefault(m.partition(), m.offset())
        return len(first) == 2
    wait_until("records from both partitions", got_both, timeout=30, interval=0)
    r.close()
    assert first == {0: 17, 1: 33}
