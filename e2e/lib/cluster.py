"""A multi-node `ironlog broker` cluster on loopback, for e2e/cluster (and any suite that
needs more than one broker).

`Cluster(n, voters=3)` starts nodes 1..n, each on its own free 127.0.0.1 ports (Kafka,
metrics, controller) with its own data directory and one log file per run. Nodes 1..voters
are combined broker+voters listed in every node's `--voters`; the others join as
broker-only learners. A node can be killed (SIGKILL), stopped (SIGTERM) and restarted on
the same ports and data. Every question a test asks a node goes to that node alone
(kafka_wire), so "node 3 sees the topic" means node 3 answered.

    from cluster import cluster_factory      # in a conftest.py, next to broker's fixtures

    def test_x(cluster_factory):
        c = cluster_factory(3)
        c.wait_until(lambda: ..., "what we wait for")
"""

import signal
import time

import pytest

import kafka_wire
from broker import Broker, binary_path, free_ports

# Every node of a fresh cluster is healthy and sees every broker within this.
FORM_TIMEOUT_S = 60.0
# The brief's "a few seconds" heartbeat session timeout, with room for a loaded CI machine.
FENCE_TIMEOUT_S = 45.0
DEFAULT_WAIT_S = 30.0
TOPIC_ALREADY_EXISTS = 36


RETRY_ON = (kafka_wire.WireError, OSError, AssertionError)


def wait_until(predicate, what, timeout=DEFAULT_WAIT_S, interval=0.05, retry_on=RETRY_ON):
    """Polls `predicate` until it returns a truthy value, which is returned. A predicate that
    raises one of `retry_on` (a node not answering yet) counts as not yet; on timeout the last
    value or error is in the assertion message."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except retry_on as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


class ClusterNode(Broker):
    """One node: a Broker with a node id and a controller listener."""

    def __init__(self, binary, workdir, node_id, ports, voters_arg, extra_args=()):
        self.node_id = node_id
        self.controller_port = ports[2]
        self.paused = False  # SIGSTOPped by Cluster.pause
        args = [
            "--node-id", str(node_id),
            "--controller-listen", f"127.0.0.1:{self.controller_port}",
            "--voters", voters_arg,
            *extra_args,
        ]
        super().__init__(binary, workdir, args, ports=ports[:2])

    def __repr__(self):
        state = "up" if self.alive() else "down"
        return f"node {self.node_id} ({self.bootstrap}, {state})"


class Cluster:
    def __init__(self, binary, workdir, n, voters=3, extra_args=(), node_args=None):
        """`node_args`: {node id: [extra flags]} for single nodes (say, `--rack`)."""
        assert 1 <= voters <= n
        ports = free_ports(3 * n)
        self.voter_ids = list(range(1, voters + 1))
        voters_arg = ",".join(f"{i}@127.0.0.1:{ports[3 * (i - 1) + 2]}" for i in self.voter_ids)
        self.nodes = {}
        for i in range(1, n + 1):
            d = workdir / f"node{i}"
            d.mkdir()
            extra = [*extra_args, *((node_args or {}).get(i, []))]
            self.nodes[i] = ClusterNode(binary, d, i, ports[3 * (i - 1):3 * i], voters_arg, extra)

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self):
        """Starts every node, then waits until each is healthy and sees all of them."""
        for node in self.nodes.values():
            node.start(wait=False)
        for node in self.nodes.values():
            node.wait_healthy()
        self.wait_formed()
        return self

    def wait_formed(self, timeout=FORM_TIMEOUT_S):
        """Every live node answers Metadata with every live node as a broker and a controller."""
        live = set(self.live_ids())
        for node_id in live:
            wait_until(lambda: (set(self.metadata(node_id).brokers) == live
                                and self.metadata(node_id).controller_id in self.voter_ids),
                       f"node {node_id} to see brokers {sorted(live)} and a controller",
                       timeout=timeout)

    def kill(self, node_id):
        """SIGKILL; returns once the process is gone."""
        return self.nodes[node_id].kill()

    def terminate(self, node_id):
        """SIGTERM and wait for the exit; returns the exit code."""
        return self.nodes[node_id].stop()

    def signal(self, node_id, sig=signal.SIGTERM):
        """Sends `sig` without waiting (the caller measures what happens meanwhile)."""
        node = self.nodes[node_id]
        node.stopped_by_test = True
        node.proc.send_signal(sig)

    def pause(self, node_id):
        """SIGSTOP: the process stays alive but does nothing (no fetches, no heartbeats) until
        `resume`. A node still paused at teardown is resumed before it is stopped."""
        node = self.nodes[node_id]
        node.proc.send_signal(signal.SIGSTOP)
        node.paused = True

    def resume(self, node_id):
        """SIGCONT to a node `pause` stopped."""
        node = self.nodes[node_id]
        node.proc.send_signal(signal.SIGCONT)
        node.paused = False

    def start_node(self, node_id, wait=True):
        """Starts a stopped node on its ports and data directory."""
        node = self.nodes[node_id]
        assert not node.alive(), f"{node} is already running"
        node.start(wait=wait)

    def stop_all(self, timeout=30.0):
        """SIGTERM to every live node at once; returns {node id: exit code}."""
        live = [n for n in self.nodes.values() if n.alive()]
        for n in live:
            n.stopped_by_test = True
            if n.paused:  # a SIGSTOPped process would not act on SIGTERM
                n.proc.send_signal(signal.SIGCONT)
                n.paused = False
            n.proc.send_signal(signal.SIGTERM)
        codes = {}
        deadline = time.monotonic() + timeout
        for n in live:
            try:
                codes[n.node_id] = n.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired; kill and report
                n.proc.kill()
                n.proc.wait()
                codes[n.node_id] = f"no exit within {timeout}s of SIGTERM"
        return codes

    # ---- what nodes say ------------------------------------------------------------------

    def node(self, node_id):
        return self.nodes[node_id]

    def live_ids(self):
        return [i for i, n in self.nodes.items() if n.alive()]

    def addr(self, node_id):
        return self.nodes[node_id].bootstrap

    def bootstrap(self, ids=None):
        """A bootstrap.servers list of the given nodes (default: all live ones)."""
        return ",".join(self.addr(i) for i in (ids or self.live_ids()))

    def metadata(self, node_id, topics=None):
        return kafka_wire.metadata(self.addr(node_id), topics)

    def partition(self, node_id, topic, partition):
        """The partition as `node_id` sees it in Metadata (kafka_wire.Partition: leader,
        leader_epoch, replicas, isr, offline); AssertionError if the node doesn't list it."""
        t = self.metadata(node_id, [topic]).topics.get(topic)
        assert t is not None and partition in t.partitions, \
            f"node {node_id}'s Metadata has no {topic}-{partition}"
        return t.partitions[partition]

    def describe_cluster(self, node_id):
        return kafka_wire.describe_cluster(self.addr(node_id))

    def create_topic(self, node_id, name, partitions=None, replication_factor=None,
                     assignment=None, configs=None, timeout_ms=10_000):
        """CreateTopics sent to `node_id` itself; returns (error code, message)."""
        t = {"name": name, "configs": configs or {}}
        if partitions is not None:
            t["partitions"] = partitions
        if replication_factor is not None:
            t["replication_factor"] = replication_factor
        if assignment is not None:
            t["assignment"] = assignment
        return kafka_wire.create_topics(self.addr(node_id), [t], timeout_ms=timeout_ms)[name]

    def create_topic_retrying(self, node_id, name, timeout=DEFAULT_WAIT_S, **kwargs):
        """CreateTopics to `node_id` until it succeeds (an election may be under way), as an
        admin client retries. TOPIC_ALREADY_EXISTS after an earlier attempt counts as success:
        that attempt got through but its answer was lost. Returns the attempts' outcomes."""
        outcomes = []

        def attempt():
            try:
                code, message = self.create_topic(node_id, name, timeout_ms=5000, **kwargs)
            except kafka_wire.WireError as e:
                outcomes.append(str(e))
                raise
            outcomes.append((code, message))
            return code == 0 or (code == TOPIC_ALREADY_EXISTS and len(outcomes) > 1)

        try:
            wait_until(attempt, f"CreateTopics {name} through node {node_id}", timeout=timeout,
                       interval=0.1)
        except AssertionError as e:
            raise AssertionError(f"{e}; {len(outcomes)} attempts, the last: {outcomes[-5:]}") \
                from None
        return outcomes

    def raft_leader(self, among=None):
        """The controller id every node in `among` (default: live nodes) reports in
        DescribeCluster, if it is one of them; None while they disagree, report none, or
        still name a node that is gone."""
        among = among or self.live_ids()
        ids = {self.describe_cluster(i).controller_id for i in among}
        return ids.pop() if len(ids) == 1 and ids <= set(among) else None

    def wait_raft_leader(self, among=None, timeout=DEFAULT_WAIT_S):
        return wait_until(lambda: self.raft_leader(among), "a Raft leader all nodes agree on",
                          timeout=timeout)

    def topic_everywhere(self, name, partitions, among=None, online=True):
        """The topic as every node in `among` sees it, if all see it with `partitions`
        partitions, identical assignments (leaders and replicas) and the same topic id (and,
        with `online`, a leader for every partition); None otherwise."""
        views = {}
        for i in among or self.live_ids():
            t = self.metadata(i, [name]).topics.get(name)
            if t is None or t.error_code != 0 or len(t.partitions) != partitions:
                return None
            if online and any(p.leader < 0 for p in t.partitions.values()):
                return None
            views[i] = t
        shapes = {(t.topic_id, tuple(sorted(t.assignment().items()))) for t in views.values()}
        return next(iter(views.values())) if len(shapes) == 1 else None

    def wait_topic_everywhere(self, name, partitions, among=None, online=True,
                              timeout=DEFAULT_WAIT_S, interval=0.05):
        return wait_until(lambda: self.topic_everywhere(name, partitions, among, online),
                          f"every node of {among or self.live_ids()} to see {name} with "
                          f"{partitions} partitions and one assignment", timeout=timeout,
                          interval=interval)

    def metric(self, node_id, name):
        """The label-less sample `name` on the node's /metrics (AssertionError if absent)."""
        for line in self.nodes[node_id].metrics_text().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"node {node_id}'s /metrics has no sample {name}")

    def wait_until(self, predicate, what, timeout=DEFAULT_WAIT_S, interval=0.05):
        return wait_until(predicate, what, timeout=timeout, interval=interval)

    def logs(self):
        return "".join(f"\n===== node {i} ({n.bootstrap}) log =====\n{n.all_logs()}"
                       for i, n in self.nodes.items())


@pytest.fixture
def cluster_factory(request, tmp_path):
    """`make(n, voters=3, extra_args=(), node_args=None)` starts a cluster and waits until it
    has formed. At teardown every node still running must exit 0 on SIGTERM (all are
    signalled at once), and no node may have exited on its own; logs are printed for a failed
    test."""
    binary = binary_path()
    clusters = []

    def make(n=3, voters=3, extra_args=(), node_args=None, start=True):
        workdir = tmp_path / f"cluster{len(clusters)}"
        workdir.mkdir()
        c = Cluster(binary, workdir, n, voters, extra_args, node_args)
        clusters.append(c)
        if start:
            c.start()
        return c

    yield make
    failed = any(getattr(request.node, f"rep_{w}", None) is not None
                 and getattr(request.node, f"rep_{w}").failed for w in ("setup", "call"))
    problems = []
    for c in clusters:
        died = [n for n in c.nodes.values()
                if n.proc is not None and not n.alive() and not n.stopped_by_test]
        problems += [f"{n} exited with {n.proc.returncode} during the test" for n in died]
        problems += [f"node {i} exited with {code} on SIGTERM"
                     for i, code in c.stop_all().items() if code != 0]
        if failed or problems:
            print(c.logs())
    if problems:
        pytest.fail("; ".join(problems))
