"""The `ironlog` toolbox (topics, produce, consume) against the broker, as a user runs it."""

import json
import subprocess

from broker import binary_path


def ironlog(broker, *args, input=None, ok=True):
    result = subprocess.run([binary_path(), *args, "--bootstrap-server", broker.bootstrap],
                            input=input, capture_output=True, timeout=60)
    if ok:
        assert result.returncode == 0, (
            f"ironlog {' '.join(args)} exited {result.returncode}: {result.stderr.decode(errors='replace')}")
    return result


def test_topics_lifecycle(broker, topic):
    ironlog(broker, "topics", "create", "--topic", topic, "--partitions", "2",
            "--config", "retention.ms=60000")
    assert topic in ironlog(broker, "topics", "list").stdout.decode().splitlines()

    described = ironlog(broker, "topics", "describe", "--topic", topic).stdout.decode()
    assert "PartitionCount: 2" in described, described
    assert "retention.ms=60000" in described, described

    ironlog(broker, "topics", "alter", "--topic", topic, "--partitions", "3",
            "--config", "segment.bytes=1048576")
    described = ironlog(broker, "topics", "describe", "--topic", topic).stdout.decode()
    assert "PartitionCount: 3" in described, described
    assert "segment.bytes=1048576" in described and "retention.ms=60000" in described, described

    again = ironlog(broker, "topics", "create", "--topic", topic, "--partitions", "1", ok=False)
    assert again.returncode != 0 and b"TOPIC_ALREADY_EXISTS" in again.stderr, again.stderr

    ironlog(broker, "topics", "delete", "--topic", topic)
    assert topic not in ironlog(broker, "topics", "list").stdout.decode().splitlines()


def test_produce_then_consume_keys_values_in_order(broker, topic):
    ironlog(broker, "topics", "create", "--topic", topic, "--partitions", "1")
    lines = [f"k{i}:value {i}" for i in range(20)]
    ironlog(broker, "produce", "--topic", topic, "--key-separator", ":",
            input=("\n".join(lines) + "\n").encode())

    out = ironlog(broker, "consume", "--topic", topic, "--from-beginning",
                  "--max-messages", "20", "--timeout-ms", "10000").stdout.decode()
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows == [["0", str(i), f"k{i}", f"value {i}"] for i in range(20)]

    out = ironlog(broker, "consume", "--topic", topic, "--partition", "0", "--offset", "18",
                  "--max-messages", "2", "--timeout-ms", "10000", "--format", "json").stdout.decode()
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["offset"], r["key"], r["value"]) for r in records] == [(18, "k18", "value 18"),
                                                                      (19, "k19", "value 19")]
