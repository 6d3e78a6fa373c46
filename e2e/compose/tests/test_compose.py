"""docker-compose.yml's three-node cluster, seen from the host: kcat's broker list, the
toolbox walkthrough, and a node killed and started again with `docker-compose`."""

import logging
import re
import subprocess
import time

from confluent_kafka import Producer

import kafka_wire
from records import consume_all
from walkthrough import walkthrough

LOG = logging.getLogger("librdkafka")
LOG.addHandler(logging.NullHandler())
# A killed broker is fenced after its heartbeat session times out (a few seconds).
FENCE_TIMEOUT_S = 45


def wait_until(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (kafka_wire.WireError, OSError) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def compose(*args):
    result = subprocess.run(["docker-compose", *args], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"docker-compose {' '.join(args)}: {result.stderr}"
    return result.stdout


def test_kcat_lists_three_brokers_from_each_node(bootstraps):
    expected = {i + 1: addr for i, addr in enumerate(bootstraps)}
    controllers = set()
    for addr in bootstraps:
        out = subprocess.run(["kcat", "-L", "-b", addr, "-m", "10"], capture_output=True,
                             text=True, timeout=30).stdout
        assert re.search(r"^ 3 brokers:$", out, re.M), out
        listed = {int(m.group(1)): m.group(2)
                  for m in re.finditer(r"^  broker (\d+) at (\S+)", out, re.M)}
        assert listed == expected, out
        controllers |= {int(m) for m in re.findall(r"^  broker (\d+) at \S+ \(controller\)",
                                                    out, re.M)}
    assert len(controllers) == 1 and controllers <= set(expected), \
        f"every node must name the same controller: {controllers}"


def test_toolbox_walkthrough(bootstraps, name):
    summary = walkthrough(bootstraps, topic=name, group=f"{name}-group")
    assert summary["records"] == 1000


def test_killed_node_is_fenced_and_rejoins_with_its_data(bootstraps, name):
    code, message = kafka_wire.create_topics(
        bootstraps[0], [{"name": name, "assignment": {0: [1], 1: [2], 2: [3]}}])[name]
    assert code == 0, message
    wait_until(lambda: all(len(kafka_wire.metadata(a, [name]).topics[name].partitions) == 3
                           for a in bootstraps), f"{name} on every node")
    producer = Producer({"bootstrap.servers": ",".join(bootstraps), "acks": "all",
                         "logger": LOG})
    for j in range(30):
        producer.produce(name, key=f"k{j}".encode(), value=f"v{j}".encode(), partition=j % 3)
    assert producer.flush(30) == 0

    compose("kill", "-s", "SIGKILL", "node3")
    wait_until(lambda: 3 not in kafka_wire.metadata(bootstraps[0]).brokers,
               "node 3 fenced and gone from Metadata", timeout=FENCE_TIMEOUT_S)
    assert kafka_wire.metadata(bootstraps[1], [name]).topics[name].partitions[2].leader == -1

    compose("start", "node3")
    wait_until(lambda: all(sorted(kafka_wire.metadata(a).brokers) == [1, 2, 3]
                           for a in bootstraps), "node 3 back on every node", timeout=60)
    wait_until(lambda: kafka_wire.metadata(bootstraps[0], [name]).topics[name]
               .partitions[2].leader == 3, f"{name}-2 led by node 3 again")

    got = [(p, o, k.decode(), v.decode())
           for p, o, k, v in consume_all(",".join(bootstraps), name, 3)]
    assert sorted(got) == sorted((j % 3, j // 3, f"k{j}", f"v{j}") for j in range(30))
