"""Writes the content of the pre-cluster fixture into a running single-node broker and
records what was written (make-legacy-fixture.sh runs this against the old binary).

    legacy_fixture.py BOOTSTRAP OUT.json

Two topics of three partitions (`legacy-orders`: delete policy, infinite retention, one
partition produced gzip-compressed; `legacy-customers`: compacted, repeated keys), records with
fixed keys, values, timestamps and some headers on explicit partitions, and a consumer group
`legacy-group` that read everything and committed chosen offsets (with metadata) before
leaving. Everything is read back from the broker before the expectations are written, so the
JSON states what the old broker actually held."""

import json
import logging
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/lib")
import kafka_wire  # noqa: E402

LOG = logging.getLogger("librdkafka")
LOG.addHandler(logging.NullHandler())
BASE_TS = 1767225600000  # 2026-01-01T00:00:00Z: fixed, so the fixture is reproducible
GROUP = "legacy-group"
TOPICS = {
    "legacy-orders": {"retention.ms": "-1", "cleanup.policy": "delete"},
    "legacy-customers": {"cleanup.policy": "compact", "retention.ms": "-1"},
}
PARTITIONS = 3
COMMITTED = {  # what the group commits: (topic, partition) -> offset
    ("legacy-orders", 0): 10, ("legacy-orders", 1): 7, ("legacy-orders", 2): 4,
    ("legacy-customers", 0): 8, ("legacy-customers", 1): 3, ("legacy-customers", 2): 0,
}


def records():
    """[(topic, partition, key, value, timestamp, headers)] in produce order."""
    out = []
    for p in range(PARTITIONS):
        for j in range(10):
            headers = [("source", b"legacy"), ("n", str(j).encode())] if j % 3 == 0 else []
            out.append(("legacy-orders", p, f"order-{p}-{j}", f"order {p}/{j} amount={j * 7}",
                        BASE_TS + p * 100_000 + j * 1000, headers))
        for j in range(8):
            out.append(("legacy-customers", p, f"customer-{p}-{j % 4}", f"customer {p}/{j}",
                        BASE_TS + p * 100_000 + j * 1000, []))
    return out


def produce(bootstrap):
    plain = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                      "logger": LOG})
    gzip = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                     "compression.type": "gzip", "logger": LOG})
    failures = []

    def report(err, _msg):
        if err is not None:
            failures.append(err)

    for topic, p, key, value, ts, headers in records():
        prod = gzip if (topic, p) == ("legacy-orders", 2) else plain
        prod.produce(topic, key=key.encode(), value=value.encode(), partition=p, timestamp=ts,
                     headers=headers or None, on_delivery=report)
    for prod in (plain, gzip):
        assert prod.flush(30) == 0, "records not delivered"
    assert not failures, failures


def read_back(bootstrap):
    """Joins GROUP, reads every record, commits COMMITTED and leaves."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "enable.partition.eof": True,
                  "session.timeout.ms": 10000, "logger": LOG})
    c.subscribe(list(TOPICS))
    got, at_end = [], set()
    deadline = time.monotonic() + 60
    while len(at_end) < len(TOPICS) * PARTITIONS:
        assert time.monotonic() < deadline, f"read back {len(got)} records; at end {at_end}"
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
            at_end.add((msg.topic(), msg.partition()))
            continue
        _, ts = msg.timestamp()
        got.append({"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                    "key": msg.key().decode(), "value": msg.value().decode(), "timestamp": ts,
                    "headers": [[k, v.decode()] for k, v in (msg.headers() or [])]})
    c.commit(offsets=[TopicPartition(t, p, o, metadata=f"legacy {t}-{p}")
                      for (t, p), o in sorted(COMMITTED.items())], asynchronous=False)
    c.close()
    return sorted(got, key=lambda r: (r["topic"], r["partition"], r["offset"]))


def main(bootstrap, out_path):
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": LOG})
    futures = admin.create_topics([NewTopic(t, num_partitions=PARTITIONS, replication_factor=1,
                                            config=cfg) for t, cfg in TOPICS.items()])
    for f in futures.values():
        f.result(30)
    produce(bootstrap)
    got = read_back(bootstrap)
    want = sorted(({"topic": t, "partition": p, "key": k, "value": v, "timestamp": ts,
                    "headers": [[hk, hv.decode()] for hk, hv in h]}
                   for t, p, k, v, ts, h in records()),
                  key=lambda r: (r["topic"], r["partition"]))
    assert [{k: v for k, v in r.items() if k != "offset"} for r in got] == want, \
        "the old broker did not return what was produced"

    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "logger": LOG})
    committed = probe.committed([TopicPartition(t, p) for t, p in COMMITTED], timeout=15)
    probe.close()
    assert {(tp.topic, tp.partition): tp.offset for tp in committed} == COMMITTED

    md = kafka_wire.metadata(bootstrap, list(TOPICS))
    configs = {}
    for res, f in admin.describe_configs([ConfigResource("topic", t) for t in TOPICS]).items():
        entries = f.result(30)
        configs[res.name] = {k: e.value for k, e in entries.items()
                             if e.source == 1}  # DYNAMIC_TOPIC_CONFIG: the overrides
    assert configs == TOPICS, configs

    expected = {
        "made_by": "ironlog 988eff6 (single-node, pre-cluster), node id 1 (the default)",
        "cluster_id": md.cluster_id,
        "topics": {t: {"topic_id": md.topics[t].topic_id, "partitions": PARTITIONS,
                       "configs": TOPICS[t]} for t in TOPICS},
        "records": got,
        "group": GROUP,
        "committed": [{"topic": t, "partition": p, "offset": o, "metadata": f"legacy {t}-{p}"}
                      for (t, p), o in sorted(COMMITTED.items())],
    }
    with open(out_path, "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(got)} records, {len(COMMITTED)} committed offsets to {out_path}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
