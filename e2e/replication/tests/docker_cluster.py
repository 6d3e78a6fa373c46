"""Three combined broker+voter nodes from the broker image ($IRONLOG_IMAGE) on a private
Docker bridge network with fixed addresses, so a node can be cut off the network
(`docker network disconnect`) and put back on it with the same address.

    node   container               address       Kafka / controller / metrics
    1      ironlog-e2e-repl-1      172.29.0.11   9092 / 9093 / 9644
    2      ironlog-e2e-repl-2      172.29.0.12
    3      ironlog-e2e-repl-3      172.29.0.13

The host reaches the containers at these addresses (Linux bridge networking), and every
broker advertises its own, so clients on the host and the other brokers use the same one.
Everything this module creates carries the label ironlog-e2e=replication; `remove_all`
removes it (containers with their anonymous data volumes, then the network)."""

import json
import os
import subprocess
import time

import pytest

import kafka_wire
from cluster import wait_until

NETWORK = "ironlog-e2e-replication"
SUBNET = "172.29.0.0/24"
LABEL = "ironlog-e2e=replication"
KAFKA_PORT, CONTROLLER_PORT, METRICS_PORT = 9092, 9093, 9644
START_TIMEOUT_S = 60.0


def docker(*args, check=True, timeout=120):
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, \
            f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}"
    return result


def remove_all():
    """Removes every container and network labelled by this module (a run that was
    interrupted may have left some)."""
    ids = docker("ps", "-aq", "--filter", f"label={LABEL}").stdout.split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)
    nets = docker("network", "ls", "-q", "--filter", f"label={LABEL}").stdout.split()
    if nets:
        docker("network", "rm", *nets, check=False)


class DockerCluster:
    def __init__(self, image, env=None, nodes=3):
        self.image = image
        self.ids = list(range(1, nodes + 1))
        self.extra_env = dict(env or {})

    @staticmethod
    def ip(node_id):
        return f"172.29.0.{10 + node_id}"

    @staticmethod
    def container(node_id):
        return f"ironlog-e2e-repl-{node_id}"

    def addr(self, node_id):
        return f"{self.ip(node_id)}:{KAFKA_PORT}"

    def bootstrap(self, ids=None):
        return ",".join(self.addr(i) for i in (ids or self.ids))

    def start(self):
        docker("network", "create", "--driver", "bridge", "--subnet", SUBNET,
               "--label", LABEL, NETWORK)
        voters = ",".join(f"{i}@{self.ip(i)}:{CONTROLLER_PORT}" for i in self.ids)
        for i in self.ids:
            env = {
                "IRONLOG_NODE_ID": str(i),
                "IRONLOG_LISTEN": f"0.0.0.0:{KAFKA_PORT}",
                "IRONLOG_ADVERTISED_LISTENER": self.addr(i),
                "IRONLOG_CONTROLLER_LISTEN": f"0.0.0.0:{CONTROLLER_PORT}",
                "IRONLOG_CONTROLLER_ADVERTISED_LISTENER": f"{self.ip(i)}:{CONTROLLER_PORT}",
                "IRONLOG_METRICS_LISTEN": f"0.0.0.0:{METRICS_PORT}",
                "IRONLOG_DATA_DIR": "/var/lib/ironlog",
                "IRONLOG_VOTERS": voters,
                "IRONLOG_LOG_LEVEL": "info",
                **self.extra_env,
            }
            env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
            docker("run", "-d", "--name", self.container(i), "--label", LABEL,
                   "--network", NETWORK, "--ip", self.ip(i), *env_args, self.image, "broker")
        for i in self.ids:
            wait_until(lambda: sorted(self.metadata(i).brokers) == self.ids
                       and self.metadata(i).controller_id in self.ids,
                       f"container node {i} to see brokers {self.ids} and a controller",
                       timeout=START_TIMEOUT_S, interval=0.2)
        return self

    # ---- faults ----------------------------------------------------------------------------

    def disconnect(self, node_id):
        """Cuts the node off the network: no traffic to or from the other brokers or the host."""
        docker("network", "disconnect", NETWORK, self.container(node_id))

    def connect(self, node_id):
        """Puts the node back on the network at its fixed address."""
        docker("network", "connect", "--ip", self.ip(node_id), NETWORK, self.container(node_id))

    # ---- what nodes say --------------------------------------------------------------------

    def metadata(self, node_id, topics=None):
        return kafka_wire.metadata(self.addr(node_id), topics, timeout=2.0)

    def partition(self, node_id, topic, partition):
        t = self.metadata(node_id, [topic]).topics.get(topic)
        assert t is not None and partition in t.partitions, \
            f"node {node_id}'s Metadata has no {topic}-{partition}"
        return t.partitions[partition]

    def create_topic(self, node_id, name, **topic):
        return kafka_wire.create_topics(self.addr(node_id), [{"name": name, **topic}])[name]

    def running(self):
        """{node id: running?} per `docker inspect`."""
        out = docker("inspect", *[self.container(i) for i in self.ids]).stdout
        return {i: c["State"]["Running"] for i, c in zip(self.ids, json.loads(out))}

    def logs(self, tail=200):
        return "".join(
            f"\n===== container node {i} (last {tail} lines) =====\n"
            + docker("logs", "--tail", str(tail), self.container(i), check=False).stdout
            + docker("logs", "--tail", str(tail), self.container(i), check=False).stderr
            for i in self.ids)


@pytest.fixture
def docker_cluster(request):
    """`make(env=None)` starts the three containers (broker flags as IRONLOG_<FLAG>
    environment variables in `env`). Containers and network are removed at teardown, also
    on failure (their logs are printed then); a container that stopped during the test fails
    it."""
    image = os.environ.get("IRONLOG_IMAGE")
    if not image:
        pytest.exit("IRONLOG_IMAGE is not set: run e2e/replication/run.sh", returncode=2)
    if docker("image", "inspect", image, check=False).returncode != 0:
        pytest.exit(f"image {image} does not exist: run e2e/replication/run.sh", returncode=2)
    remove_all()
    clusters = []

    def make(env=None):
        c = DockerCluster(image, env)
        clusters.append(c)
        return c.start()

    try:
        yield make
        failed = any(getattr(request.node, f"rep_{w}", None) is not None
                     and getattr(request.node, f"rep_{w}").failed for w in ("setup", "call"))
        for c in clusters:
            stopped = [i for i, up in c.running().items() if not up]
            if failed or stopped:
                print(c.logs())
            if stopped:
                pytest.fail(f"containers of nodes {stopped} stopped during the test")
    finally:
        started = time.monotonic()
        remove_all()
        assert not docker("ps", "-aq", "--filter", f"label={LABEL}").stdout.split(), \
            f"containers labelled {LABEL} left after {time.monotonic() - started:.0f}s"
