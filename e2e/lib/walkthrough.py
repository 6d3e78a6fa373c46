"""The toolbox walkthrough against a running cluster, as a user types it, shared by
e2e/cluster (loopback processes) and e2e/compose (docker-compose): cluster describe, topics
create --replication-factor 2 --partitions 3, topics describe, produce from stdin, consume
--from-beginning --group, groups list/describe, perf produce. Each step's output is checked
against what the cluster says on the wire (kafka_wire) and what was produced.

    walkthrough(["127.0.0.1:19092", ...], topic="...", group="...")
"""

import json
import logging
import re
import subprocess

from confluent_kafka import Consumer, TopicPartition

import kafka_wire
from broker import binary_path

LINES = 30
LOG = logging.getLogger("librdkafka")
LOG.addHandler(logging.NullHandler())
PERF_RECORDS = 1000


def ironlog(*args, input=None, timeout=90):
    result = subprocess.run([binary_path(), *args], input=input, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, (
        f"ironlog {' '.join(args)} exited {result.returncode}:\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result.stdout


def describe_rows(text, topic):
    """{partition: (leader, replicas, isr)} of `ironlog topics describe` output."""
    rows = {}
    for line in text.splitlines():
        m = re.match(rf"\s+Topic: {re.escape(topic)}\tPartition: (\d+)\tLeader: (\S+)\t"
                     r"Replicas: ([\d,]*)\tIsr: ([\d,]*)", line)
        if m:
            ids = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
            leader = -1 if m.group(2) == "none" else int(m.group(2))
            rows[int(m.group(1))] = (leader, ids(m.group(3)), ids(m.group(4)))
    return rows


def walkthrough(bootstraps, topic, group, perf_topic=None):
    """Runs the walkthrough with the toolbox pointed at a different node for each step;
    `bootstraps` are the nodes' advertised host:port, node 1 first; nodes 1-3 are the
    voters."""
    at = lambda i: bootstraps[i % len(bootstraps)]  # noqa: E731
    md = kafka_wire.metadata(bootstraps[0])
    assert len(md.brokers) == len(bootstraps), f"brokers: {md.brokers}"

    # 1. cluster describe: the cluster id, the controller, every broker unfenced at its
    # address, the quorum's leader and voters, no partition without a leader.
    out = ironlog("cluster", "describe", "--bootstrap-server", at(0))
    lines = out.splitlines()
    assert f"ClusterId: {md.cluster_id}" in lines, out
    assert f"ControllerId: {md.controller_id}" in lines, out
    assert f"Brokers: {len(md.brokers)}" in lines, out
    for node_id, (host, port, _) in md.brokers.items():
        assert any(re.fullmatch(rf"\tBroker: {node_id}\tAddress: {re.escape(host)}:{port}\t"
                                r"Rack: \S+\tFenced: false\tListedBy: DescribeCluster,Metadata",
                                line) for line in lines), f"broker {node_id} in:\n{out}"
    quorum = [line for line in lines if line.startswith("Quorum: ")]
    assert len(quorum) == 1 and f"\tLeaderId: {md.controller_id}\t" in quorum[0], out
    assert "\tVoters: " + ",".join(str(i) for i in sorted(md.brokers)[:3]) + "\t" in quorum[0], out
    assert "PartitionsWithoutLeader: 0" in lines, out

    # 2. topics create through another node (forwarded to the controller).
    out = ironlog("topics", "create", "--topic", topic, "--replication-factor", "2",
                  "--partitions", "3", "--bootstrap-server", at(1))
    assert out.strip() == f"Created topic {topic}.", out

    # 3. topics describe: leaders, two replicas each, ISR holding the leader; as on the wire.
    wire = kafka_wire.metadata(at(2), [topic]).topics[topic]
    out = ironlog("topics", "describe", "--topic", topic, "--bootstrap-server", at(2))
    assert f"Topic: {topic}\tTopicId: " in out and "PartitionCount: 3\tReplicationFactor: 2" in out, out
    rows = describe_rows(out, topic)
    assert sorted(rows) == [0, 1, 2], out
    for p, (leader, replicas, isr) in rows.items():
        assert len(set(replicas)) == 2 and leader in replicas, f"partition {p}: {out}"
        assert leader in isr and set(isr) <= set(replicas), f"partition {p}: {out}"
        assert (leader, replicas) == (wire.partitions[p].leader, wire.partitions[p].replicas), out
    if len(bootstraps) >= 2:
        assert len({leader for leader, _, _ in rows.values()}) >= 2, \
            f"3 partitions all led by one broker: {rows}"

    # 4. produce lines from stdin, key:value.
    lines = [f"k{i}:line {i}" for i in range(LINES)]
    ironlog("produce", "--topic", topic, "--key-separator", ":", "--bootstrap-server", at(0),
            input="\n".join(lines) + "\n")

    # 5. consume them all back in a group, which commits what it read.
    out = ironlog("consume", "--topic", topic, "--from-beginning", "--group", group,
                  "--max-messages", str(LINES), "--timeout-ms", "20000", "--format", "json",
                  "--bootstrap-server", at(1))
    rows = [json.loads(line) for line in out.splitlines()]
    assert sorted((r["key"], r["value"]) for r in rows) == \
        sorted(tuple(line.split(":", 1)) for line in lines), out
    per_partition = {p: [] for p in range(3)}
    for r in rows:
        per_partition[r["partition"]].append(r["offset"])
    for p, offsets in per_partition.items():
        assert offsets == list(range(len(offsets))), f"partition {p} offsets {offsets}"
    ends = {p: len(o) for p, o in per_partition.items()}

    # 6. groups list and describe: the group, its committed offsets at the log end.
    out = ironlog("groups", "list", "--bootstrap-server", at(2))
    assert [group, "consumer", "Empty"] in [line.split("\t") for line in out.splitlines()], out
    out = ironlog("groups", "describe", "--group", group, "--bootstrap-server", at(0))
    assert out.splitlines()[0] == f"Group {group} is Empty.", out
    described = {}
    for line in out.splitlines()[2:]:
        cols = line.split()
        assert cols[0] == group and cols[1] == topic, out
        described[int(cols[2])] = (cols[3], cols[4], cols[5])
    # A partition that got no line may have no committed offset at all.
    want = {p: (str(n), str(n), "0") for p, n in ends.items()}
    assert described == {p: w for p, w in want.items() if p in described or ends[p] > 0}, out

    # 7. perf produce at a fixed rate.
    perf_topic = perf_topic or f"{topic}-perf"
    out = ironlog("perf", "produce", "--topic", perf_topic, "--num-records", str(PERF_RECORDS),
                  "--throughput", "100", "--record-size", "100", "--acks", "all", "--json",
                  "--reporting-interval-ms", "0", "--bootstrap-server", at(2), timeout=120)
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["records"], summary["errors"], summary["bytes"]) == \
        (PERF_RECORDS, 0, PERF_RECORDS * 100), summary
    # 1000 records at 100/s: about 10 s, not much less.
    assert summary["elapsed_s"] >= 8.0, summary
    assert log_end_total(at(0), perf_topic) == PERF_RECORDS
    return summary


def log_end_total(bootstrap, topic):
    """The sum of the topic's high watermarks, read with librdkafka."""
    parts = kafka_wire.metadata(bootstrap, [topic]).topics[topic].partitions
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-walkthrough-probe",
                  "logger": LOG})
    try:
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=15, cached=False)[1]
                   for p in parts)
    finally:
        c.close()
