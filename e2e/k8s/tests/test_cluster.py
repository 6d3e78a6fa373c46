"""A KafkaCluster on the test bed with running brokers: installed with the chart, it becomes
Ready, serves Metadata under its pods' DNS names, creates a topic from a KafkaTopic, and keeps
every acknowledged record of an idempotent acks=all workload.

The cluster is module-scoped: later scenarios in this module start from the running cluster.
"""

import json
import os
import socket
import time

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

import kafka_wire
from harness import apply, kubectl, table, wait_until
from operations import MinIsrSampler, Reader
from kube import api, condition, core
from workload import Workload, verify

NS = "e2e-events"
CLUSTER = "events"
BOOTSTRAP = f"{CLUSTER}-bootstrap.{NS}.svc:9092"
BROKERS = [0, 1, 2]
TOPIC = "orders"
PARTITIONS = 6
# Three brokers start, elect a controller and pass their readiness probes (5 s period).
READY_TIMEOUT_S = 300
WORKLOAD_S = 15

IRONLOG = "ironlog.dev/v1alpha1"


def broker_host(node_id):
    return f"{CLUSTER}-{node_id}.{CLUSTER}-brokers.{NS}.svc"


@pytest.fixture(scope="module")
def events(kube, operator):
    """The KafkaCluster `events` (3 brokers); yields when it was created (time.monotonic())."""
    kubectl("create", "namespace", NS)
    created_at = time.monotonic()
    apply({
        "apiVersion": IRONLOG, "kind": "KafkaCluster",
        "metadata": {"name": CLUSTER, "namespace": NS},
        "spec": {"replicas": len(BROKERS), "image": os.environ["IRONLOG_IMAGE"],
                 "storage": {"size": "1Gi"}},
    })
    yield created_at
    kubectl("delete", "kafkacluster", CLUSTER, "-n", NS, "--wait=false", check=False)


def kafka_cluster(kube):
    return kube.get(api(IRONLOG, "kafkaclusters", NS, CLUSTER))


def ready_column():
    """The READY column of `kubectl get kc events`."""
    return table("kc", CLUSTER, "-n", NS)[0]["READY"]


def ready_condition(obj):
    c = condition(obj, "Ready")
    observed = c is not None and c.get("observedGeneration", obj["status"].get(
        "observedGeneration")) == obj["metadata"]["generation"]
    return c is not None and c["status"] == "True" and observed


def test_install_and_ready(events, kube, kubelet, measure):
    wait_until(lambda: ready_column() == str(len(BROKERS)),
               "`kubectl get kc events` to show READY 3", timeout=READY_TIMEOUT_S, interval=2)
    measure("k8s_install_ready", time.monotonic() - events, "s")
    wait_until(lambda: ready_condition(kafka_cluster(kube)), "the KafkaCluster's Ready condition",
               timeout=60)

    # Every broker pod runs under the stand-in, and its DNS name resolves (through the hosts
    # file) to the IP its status reports.
    pods = {p["metadata"]["name"]: p for p in kube.list(core("pods", NS))}
    for i in BROKERS:
        pod = pods[f"{CLUSTER}-{i}"]
        ran = kubelet.pod(NS, pod["metadata"]["name"])
        assert ran is not None and ran["running"] and ran["ready"], ran
        assert socket.gethostbyname(broker_host(i)) == pod["status"]["podIP"] == ran["ip"]

    # Metadata through the bootstrap Service lists the three brokers at their pod names, and
    # each broker answers at the name it advertises.
    md = wait_until(lambda: kafka_wire.metadata(BOOTSTRAP), f"Metadata from {BOOTSTRAP}")
    assert {i: b[:2] for i, b in md.brokers.items()} == \
        {i: (broker_host(i), 9092) for i in BROKERS}
    for i in BROKERS:
        assert sorted(kafka_wire.metadata(f"{broker_host(i)}:9092").brokers) == BROKERS

    apply({
        "apiVersion": IRONLOG, "kind": "KafkaTopic",
        "metadata": {"name": TOPIC, "namespace": NS},
        "spec": {"cluster": CLUSTER, "partitions": PARTITIONS, "replicas": 3,
                 "config": {"min.insync.replicas": "2"}},
    })
    wait_until(lambda: ready_condition(kube.get(api(IRONLOG, "kafkatopics", NS, TOPIC))),
               "the KafkaTopic's Ready condition", timeout=120)

    def fully_replicated():
        topic = kafka_wire.metadata(BOOTSTRAP, [TOPIC]).topics[TOPIC]
        return (sorted(topic.partitions) == list(range(PARTITIONS))
                and all(sorted(p.replicas) == BROKERS and sorted(p.isr) == BROKERS
                        and p.leader in BROKERS for p in topic.partitions.values()))
    wait_until(fully_replicated, f"{TOPIC}: {PARTITIONS} partitions, all replicas in sync")
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})  # alive until the answer is in
    config = admin.describe_configs([ConfigResource("topic", TOPIC)])
    entries = next(iter(config.values())).result(timeout=30)
    assert entries["min.insync.replicas"].value == "2"

    with Workload(BOOTSTRAP, TOPIC, PARTITIONS) as w:
        started = time.monotonic()
        w.wait_acked(range(PARTITIONS), since=started, count=20, timeout=60)
        # The workload's length, not a wait for something: it keeps producing meanwhile.
        time.sleep(max(0.0, WORKLOAD_S - (time.monotonic() - started)))
    assert not w.errors, f"delivery errors: {w.errors[:5]}"
    report = verify(w, BOOTSTRAP)
    report.measures(measure, "k8s_install")
    assert report.acknowledged > 0
    report.assert_clean(min_acknowledged=PARTITIONS * 20)


# ---- the scenarios after install: each runs producers and a consumer throughout -----------

NODE_LOSS_TIMEOUT_S = 40
MIN_ISR = 2


class Traffic:
    """Idempotent acks=all producers and a consumer running for the whole `with` block; on
    exit, the verifier (acknowledged, lost, duplicated, reordered) and the consumer's view."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        tag = "".join(c if c.isalnum() else "-" for c in self.name) + "-"
        self.workload = Workload(BOOTSTRAP, TOPIC, PARTITIONS, tag=tag).__enter__()
        self.reader = Reader(BOOTSTRAP, TOPIC, PARTITIONS)
        self.reader.start()
        self.started = time.monotonic()
        self.workload.wait_acked(range(PARTITIONS), since=self.started, count=5, timeout=60)
        return self

    def __exit__(self, exc_type, *rest):
        self.workload.__exit__(exc_type, *rest)
        if exc_type is not None:
            self.reader.stop()
            return False
        report = verify(self.workload, BOOTSTRAP)
        acks = self.workload.acks
        wait_until(lambda: not self.reader.missing(acks),
                   "the consumer to have read every acknowledged record", timeout=90)
        self.reader.stop()
        print(f"{self.name}: acknowledged {report.acknowledged}, lost {report.lost}, "
              f"duplicated {report.duplicated}, reordered {report.reordered}; consumer read "
              f"{len(self.reader.seen)} distinct values")
        assert not self.reader.errors, self.reader.errors[:5]
        report.assert_clean(min_acknowledged=PARTITIONS * 5)
        return False


def topic_metadata():
    return kafka_wire.metadata(BOOTSTRAP, [TOPIC]).topics[TOPIC]


def replicas_on(brokers):
    """Whether every partition of every topic is fully in sync on `brokers` only, the topic's
    with 3 replicas, and each of `brokers` holds at least one replica."""
    md = kafka_wire.metadata(BOOTSTRAP)
    parts = [p for t in md.topics.values() for p in t.partitions.values()]
    used = {r for p in parts for r in p.replicas}
    return (all(sorted(p.isr) == sorted(p.replicas) and set(p.replicas) <= set(brokers)
                for p in parts)
            and all(len(p.replicas) == 3 for p in md.topics[TOPIC].partitions.values())
            and used == set(brokers))


def cluster_status(kube):
    return kafka_cluster(kube)["status"]


def broker_states(kube):
    return {b["nodeId"]: b["state"] for b in cluster_status(kube).get("brokers", [])}


def events_of(kube, reason):
    items = kube.list(core("events", NS))
    return [e for e in items if e.get("reason") == reason
            and e.get("involvedObject", {}).get("name") == CLUSTER]


class NotYet:
    """A falsy answer to wait_until that says what it saw (its timeout message shows it)."""

    def __init__(self, why):
        self.why = why

    def __bool__(self):
        return False

    def __repr__(self):
        return self.why


def settled(kube, n):
    """Ready with n brokers, nothing moving, every broker Ready."""
    kc = kafka_cluster(kube)
    st = kc.get("status") or {}
    progressing = condition(kc, "Progressing") or {}
    states = {b["nodeId"]: b["state"] for b in st.get("brokers", [])}
    if (ready_condition(kc) and st.get("readyReplicas") == n
            and st.get("replicas") == n and st.get("reassigningPartitions") == 0
            and st.get("underReplicatedPartitions") == 0
            and list(states.values()) == ["Ready"] * n
            and progressing.get("status") != "True"):
        return True
    counts = {k: st.get(k) for k in ("replicas", "readyReplicas", "reassigningPartitions",
                                     "underReplicatedPartitions")}
    return NotYet(f"Ready {ready_condition(kc)}, {counts}, brokers {states}, Progressing "
                  f"{progressing.get('status')} {progressing.get('reason')}: "
                  f"{progressing.get('message')}")


def test_kafkatopic_replicas_change_becomes_reassignments(events, kube):
    topic = "audit"
    apply({
        "apiVersion": IRONLOG, "kind": "KafkaTopic",
        "metadata": {"name": topic, "namespace": NS},
        "spec": {"cluster": CLUSTER, "partitions": 3, "replicas": 2},
    })

    def rf_is(n):
        t = kafka_wire.metadata(BOOTSTRAP, [topic]).topics[topic]
        return len(t.partitions) == 3 and all(
            len(p.replicas) == n and sorted(p.isr) == sorted(p.replicas)
            for p in t.partitions.values())
    wait_until(lambda: rf_is(2), f"{topic} with 2 in-sync replicas per partition", timeout=120)
    for rf in (3, 1):
        kubectl("patch", "kt", topic, "-n", NS, "--type=merge",
                "-p", json.dumps({"spec": {"replicas": rf}}))
        wait_until(lambda: rf_is(rf) and ready_condition(
            kube.get(api(IRONLOG, "kafkatopics", NS, topic))),
            f"{topic} reassigned to {rf} in-sync replicas per partition", timeout=180)
    kubectl("delete", "kt", topic, "-n", NS)


def test_node_returning_before_the_timeout_moves_nothing(events, kube, kubelet, measure):
    kubectl("patch", "kc", CLUSTER, "-n", NS, "--type=merge",
            "-p", json.dumps({"spec": {"nodeLossTimeoutSeconds": NODE_LOSS_TIMEOUT_S}}))
    wait_until(lambda: settled(kube, 3), "the cluster settled", timeout=120)
    before = {i: p.replicas for i, p in topic_metadata().partitions.items()}
    victim = 1
    node = kubelet.pod(NS, f"{CLUSTER}-{victim}")["node"]
    with Traffic("node back in time"):
        lost_at = time.monotonic()
        kubelet.lose_node(node)
        wait_until(lambda: broker_states(kube).get(victim) == "Unreachable",
                   f"broker {victim} reported Unreachable (Node {node} NotReady)", timeout=60)
        unreachable_after = time.monotonic() - lost_at
        assert unreachable_after < NODE_LOSS_TIMEOUT_S, unreachable_after
        kubelet.restore_node(node)
        wait_until(lambda: settled(kube, 3), "the cluster settled again", timeout=180)
    measure("k8s.node_back.unreachable_after_s", round(unreachable_after, 1), "s")
    assert {i: p.replicas for i, p in topic_metadata().partitions.items()} == before
    assert not events_of(kube, "BrokerLost")
    assert kubelet.pod(NS, f"{CLUSTER}-{victim}")["node"] == node


def test_scale_up_spreads_and_scale_down_drains(events, kube, measure):
    with Traffic("scale up and down"):
        t0 = time.monotonic()
        kubectl("scale", "kc", CLUSTER, "-n", NS, "--replicas", "5")
        wait_until(lambda: replicas_on(range(5)),
                   "every partition fully in sync, spread over brokers 0-4", timeout=300, interval=2)
        measure("k8s.scale_up_3_to_5_s", round(time.monotonic() - t0, 1), "s")
        wait_until(lambda: settled(kube, 5), "5 brokers settled", timeout=120)

        # Refused: 2 brokers can't hold a topic with replication factor 3.
        kubectl("scale", "kc", CLUSTER, "-n", NS, "--replicas", "2")
        wait_until(lambda: condition(kafka_cluster(kube), "Degraded")["reason"] == "ScaleDownBlocked",
                   "Degraded/ScaleDownBlocked", timeout=60)
        assert "replication factor 3" in condition(kafka_cluster(kube), "Degraded")["message"]
        assert cluster_status(kube)["replicas"] == 5

        t0 = time.monotonic()
        kubectl("scale", "kc", CLUSTER, "-n", NS, "--replicas", "3")
        wait_until(lambda: cluster_status(kube)["replicas"] == 3,
                   "the StatefulSet shrunk to 3", timeout=300, interval=1)
        drained_after = time.monotonic() - t0
        # Shrunk only after the drain: at that moment nothing was left on brokers 3 and 4.
        assert replicas_on(range(3)), topic_metadata()
        measure("k8s.scale_down_5_to_3_drain_s", round(drained_after, 1), "s")
        wait_until(lambda: settled(kube, 3), "3 brokers settled", timeout=180)


def test_lost_node_restores_the_replication_factor(events, kube, kubelet, measure):
    """Brokers 0-3 on four Nodes; the Node of broker 3 is lost with its disk."""
    kubectl("scale", "kc", CLUSTER, "-n", NS, "--replicas", "4")
    wait_until(lambda: replicas_on(range(4)) and settled(kube, 4), "4 brokers settled",
               timeout=300, interval=2)
    victim = 3
    node = kubelet.pod(NS, f"{CLUSTER}-{victim}")["node"]
    with Traffic("node lost"):
        lost_at = time.monotonic()
        kubelet.lose_node(node, disks=True)
        wait_until(lambda: broker_states(kube).get(victim) == "Lost", f"broker {victim} Lost",
                   timeout=NODE_LOSS_TIMEOUT_S + 60, interval=1)

        def restored():
            md = kafka_wire.metadata(BOOTSTRAP)
            parts = [p for t in md.topics.values() for p in t.partitions.values()]
            return all(sorted(p.isr) == sorted(p.replicas) for p in parts) and all(
                len(p.isr) == 3 for p in md.topics[TOPIC].partitions.values())
        wait_until(restored, "every partition back to 3 in-sync replicas",
                   timeout=NODE_LOSS_TIMEOUT_S + 60, interval=1)
        restored_after = time.monotonic() - lost_at
        wait_until(lambda: (kubelet.pod(NS, f"{CLUSTER}-{victim}") or {}).get("node")
                   not in (None, node), f"broker {victim} running on another Node", timeout=120)
        wait_until(lambda: replicas_on(range(4)) and settled(kube, 4),
                   "the cluster rebalanced onto the returned broker", timeout=240, interval=2)
        rebalanced_after = time.monotonic() - lost_at
    measure("k8s.node_loss.rf_restored_s", round(restored_after, 1), "s")
    measure("k8s.node_loss.rebalanced_s", round(rebalanced_after, 1), "s")
    assert restored_after <= NODE_LOSS_TIMEOUT_S + 60
    assert events_of(kube, "BrokerLost") and events_of(kube, "BrokerSlotFreed")
    kubelet.restore_node(node)
    kubectl("scale", "kc", CLUSTER, "-n", NS, "--replicas", "3")
    wait_until(lambda: replicas_on(range(3)) and settled(kube, 3), "back to 3 brokers",
               timeout=300, interval=2)


def roll_to(kube, config):
    """Changes the broker config; returns the StatefulSet's new update revision."""
    before = kube.get(api("apps/v1", "statefulsets", NS, CLUSTER))["status"].get("updateRevision")
    kubectl("patch", "kc", CLUSTER, "-n", NS, "--type=merge",
            "-p", json.dumps({"spec": {"config": config}}))
    return wait_until(lambda: (lambda r: r if r and r != before else None)(
        kube.get(api("apps/v1", "statefulsets", NS, CLUSTER))["status"].get("updateRevision")),
        "a new StatefulSet revision", timeout=60, interval=0.5)


def pods_revisions(kube):
    pods = kube.list(core("pods", NS))
    return {p["metadata"]["name"]: p["metadata"]["labels"].get("controller-revision-hash")
            for p in pods if p["metadata"]["name"].startswith(f"{CLUSTER}-")}


def restarts(kube, revision):
    """The operator's RestartingBroker events for `revision`, oldest first."""
    found = [e for e in events_of(kube, "RestartingBroker") if revision in e.get("message", "")]
    return sorted(found, key=lambda e: e.get("eventTime") or e.get("firstTimestamp") or "")


def rolled(kube, revision):
    revs = pods_revisions(kube)
    if len(revs) != 3 or set(revs.values()) != {revision}:
        return NotYet(f"pod revisions {revs}, want {revision}")
    return settled(kube, 3)


def test_config_change_rolls_without_going_under_min_isr(events, kube, measure):
    controller = kafka_wire.metadata(BOOTSTRAP).controller_id
    sampler = MinIsrSampler(BOOTSTRAP, TOPIC, MIN_ISR)
    with Traffic("roll"):
        sampler.start()
        t0 = time.monotonic()
        revision = roll_to(kube, {"log.retention.ms": "86400000"})
        wait_until(lambda: rolled(kube, revision), "all 3 brokers restarted with the new config",
                   timeout=400, interval=2)
        measure("k8s.roll_3_brokers_s", round(time.monotonic() - t0, 1), "s")
        sampler.stop()
    assert sampler.samples > 20, sampler.samples
    assert not sampler.violations, sampler.violations[:10]
    restarted = [e["message"] for e in restarts(kube, revision)]
    assert len(restarted) == 3, restarted
    # The Raft leader goes last, so the controller moves once.
    assert f"restarting {CLUSTER}-{controller} " in restarted[-1], (controller, restarted)
    # The brokers read the new file: it is the topic's default retention now.
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    described = admin.describe_configs([ConfigResource("topic", TOPIC)])
    entries = next(iter(described.values())).result(timeout=30)
    assert entries["retention.ms"].value == "86400000"


def test_operator_killed_mid_roll_finishes_it(events, kube, operator, measure):
    sampler = MinIsrSampler(BOOTSTRAP, TOPIC, MIN_ISR)
    with Traffic("operator killed mid-roll"):
        sampler.start()
        t0 = time.monotonic()
        revision = roll_to(kube, {"log.retention.ms": "172800000"})
        wait_until(lambda: restarts(kube, revision), "the first restart of the roll",
                   timeout=120, interval=0.5)
        operator.kill()
        # The operator's outage: brokers and clients go on without it.
        time.sleep(10)
        assert set(pods_revisions(kube).values()) != {revision}, \
            "the roll finished without the operator"
        operator.start()
        operator.wait_healthy()
        wait_until(lambda: rolled(kube, revision), "the roll finished by the restarted operator",
                   timeout=400, interval=2)
        measure("k8s.roll_with_operator_restart_s", round(time.monotonic() - t0, 1), "s")
        sampler.stop()
    assert not sampler.violations, sampler.violations[:10]
    restarted = [e["message"] for e in restarts(kube, revision)]
    assert len(restarted) == 3, restarted
