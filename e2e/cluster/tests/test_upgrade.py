"""Upgrade: a data directory written by the single-node broker from before the cluster work
(commit 988eff6; fixtures/, made by make-legacy-fixture.sh) starts under the new binary as a
single node (no --voters, node id 1 as the old broker defaulted to) with every topic, topic
id, config, record, committed offset and group intact, and keeps them across a restart."""

import json
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

import kafka_wire
from broker import Broker, binary_path
from helpers import LOG, ironlog, produce, read_records

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "single-node-pre-cluster"
# The fixture's commits are months old by the time this runs: an empty group's offsets would
# expire under the default 7-day offsets.retention.minutes.
RETENTION_MINUTES = str(100 * 365 * 24 * 60)


@pytest.fixture
def legacy(request, tmp_path):
    """(broker on the unpacked fixture, expectations from the fixture's JSON)."""
    expected = json.loads(FIXTURE.with_name(FIXTURE.name + ".json").read_text())
    workdir = tmp_path / "node1"
    (workdir / "data").mkdir(parents=True)
    subprocess.run(["tar", "-C", str(workdir / "data"), "-xzf",
                    str(FIXTURE.with_name(FIXTURE.name + ".tar.gz"))], check=True)
    b = Broker(binary_path(), workdir,
               ["--node-id", "1", "--offsets-retention-minutes", RETENTION_MINUTES])
    b.start()
    yield b, expected
    failed = any(getattr(request.node, f"rep_{w}", None) is not None
                 and getattr(request.node, f"rep_{w}").failed for w in ("setup", "call"))
    code = b.stop() if b.alive() else 0
    if failed or code != 0:
        print(f"\n===== broker {b.bootstrap} log =====\n{b.all_logs()}")
    assert code == 0, f"broker exited with {code} on SIGTERM"


def check_everything(b, expected, extra=()):
    """Asserts the broker holds the fixture's topics, ids, configs, records (and `extra`
    records written since), committed offsets and group."""
    topics = expected["topics"]
    md = kafka_wire.metadata(b.bootstrap)
    assert md.brokers == {1: ("127.0.0.1", b.port, None)}
    assert md.cluster_id == expected["cluster_id"], "cluster id changed"
    assert md.controller_id == 1
    assert sorted(n for n, t in md.topics.items() if not t.is_internal) == sorted(topics)
    for name, want in topics.items():
        t = md.topics[name]
        assert t.topic_id == want["topic_id"], f"{name}: topic id changed"
        assert t.assignment() == {p: (1, (1,)) for p in range(want["partitions"])}, name

    admin = AdminClient({"bootstrap.servers": b.bootstrap, "logger": LOG})
    for res, f in admin.describe_configs([ConfigResource("topic", n) for n in topics]).items():
        overrides = {k: e.value for k, e in f.result(30).items() if e.source == 1}
        assert overrides == topics[res.name]["configs"], f"{res.name} config overrides"

    records = expected["records"] + list(extra)
    for name, want in topics.items():
        got = read_records(b.bootstrap, name, want["partitions"])
        assert got == sorted((r for r in records if r["topic"] == name),
                             key=lambda r: (r["partition"], r["offset"])), f"records of {name}"

    group = expected["group"]
    committed = {(c["topic"], c["partition"]): c for c in expected["committed"]}
    probe = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "logger": LOG})
    try:
        got = probe.committed([TopicPartition(t, p) for t, p in committed], timeout=15)
    finally:
        probe.close()
    assert {(tp.topic, tp.partition): (tp.offset, tp.metadata) for tp in got} == \
        {k: (c["offset"], c["metadata"]) for k, c in committed.items()}

    log_end = {}
    for r in records:
        key = (r["topic"], r["partition"])
        log_end[key] = max(log_end.get(key, 0), r["offset"] + 1)
    assert group in [line.split("\t")[0]
                     for line in ironlog("groups", "list", "--bootstrap-server",
                                         b.bootstrap).stdout.splitlines()]
    out = ironlog("groups", "describe", "--group", group, "--bootstrap-server", b.bootstrap).stdout
    lines = out.splitlines()
    assert lines[0] == f"Group {group} is Empty.", out
    rows = {(cols[1], int(cols[2])): (int(cols[3]), int(cols[4]), int(cols[5]))
            for cols in (line.split() for line in lines[2:])}
    assert rows == {k: (c["offset"], log_end[k], log_end[k] - c["offset"])
                    for k, c in committed.items()}, out


def test_pre_cluster_data_dir_starts_intact_under_the_new_binary(legacy):
    b, expected = legacy
    check_everything(b, expected)

    # The group resumes exactly at its committed offsets (nothing is committed here).
    committed = {(c["topic"], c["partition"]): c["offset"] for c in expected["committed"]}
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": expected["group"],
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest", "logger": LOG})
    try:
        c.subscribe(list(expected["topics"]))
        got, at_end = [], set()
        deadline = time.monotonic() + 60
        while len(at_end) < len(committed):
            assert time.monotonic() < deadline, f"group read {len(got)}, at end of {at_end}"
            msg = c.poll(1.0)
            assert len(got) <= len(expected["records"]), "read more than the fixture holds"
            if msg is None:
                continue
            if msg.error():
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                at_end.add((msg.topic(), msg.partition()))
                continue
            got.append((msg.topic(), msg.partition(), msg.offset()))
    finally:
        c.close()
    assert sorted(got) == sorted((r["topic"], r["partition"], r["offset"])
                                 for r in expected["records"]
                                 if r["offset"] >= committed[(r["topic"], r["partition"])])

    # New records continue the old logs; all of it survives a restart of the new binary.
    delivered = produce(b.bootstrap, "legacy-orders",
                        [{"partition": 0, "key": b"after-upgrade", "value": b"new",
                          "timestamp": 1767225600000}])
    assert [(p, o) for p, o, _, _ in delivered] == [(0, 10)]
    extra = [{"topic": "legacy-orders", "partition": 0, "offset": 10, "key": "after-upgrade",
              "value": "new", "timestamp": 1767225600000, "headers": []}]
    b.restart()
    check_everything(b, expected, extra)
