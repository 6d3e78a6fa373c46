"""kcat (librdkafka's command-line client): metadata, keyed produce/consume, headers."""

import subprocess

from helpers import create_topic

N = 50


def kcat(broker, *args, input=None):
    result = subprocess.run(["kcat", "-b", broker.bootstrap, *args], input=input,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, (
        f"kcat {' '.join(args)} exited {result.returncode}: {result.stderr.decode(errors='replace')}")
    return result.stdout.decode()


def test_metadata_lists_broker(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    out = kcat(broker, "-L", "-m", "10")
    assert "1 brokers:" in out, out
    assert f"broker 1 at {broker.bootstrap}" in out, out
    assert f'topic "{topic}" with 2 partitions:' in out, out
    assert "partition 0, leader 1, replicas: 1, isrs: 1" in out, out
    assert "partition 1, leader 1, replicas: 1, isrs: 1" in out, out


def test_keyed_produce_consume_in_order(broker, topic):
    create_topic(broker.bootstrap, topic)
    lines = [f"key-{i:03}:value {i} with spaces and 'quotes' ü" for i in range(N)]
    kcat(broker, "-P", "-t", topic, "-p", "0", "-K:", input=("\n".join(lines) + "\n").encode())

    out = kcat(broker, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
               "-f", "%o|%k|%s\n")
    got = [line.split("|", 2) for line in out.splitlines()]
    expected = [[str(i), f"key-{i:03}", f"value {i} with spaces and 'quotes' ü"] for i in range(N)]
    assert got == expected


def test_headers_round_trip(broker, topic):
    create_topic(broker.bootstrap, topic)
    kcat(broker, "-P", "-t", topic, "-p", "0", "-K:", "-H", "trace=abc123", "-H", "dup=one",
         "-H", "dup=two", input=b"k1:v1\nk2:v2\n")
    # A message without headers after ones with headers.
    kcat(broker, "-P", "-t", topic, "-p", "0", "-K:", input=b"k3:v3\n")

    out = kcat(broker, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
               "-f", "%o|%k|%s|%h\n")
    got = [line.split("|", 3) for line in out.splitlines()]
    assert got == [
        ["0", "k1", "v1", "trace=abc123,dup=one,dup=two"],
        ["1", "k2", "v2", "trace=abc123,dup=one,dup=two"],
        ["2", "k3", "v3", ""],
    ]
