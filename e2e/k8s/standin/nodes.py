"""The stand-in's Nodes: registration, and the heartbeats that keep them Ready (the Ready
condition's lastHeartbeatTime in nodes/status, and the Lease in kube-node-lease, renewed every
HEARTBEAT_S). A lost node gets neither; the node-lifecycle controller then marks it Unknown
after its grace period (16 s with e2e/k8s/control-plane.sh)."""

import datetime
import logging

from kube import KubeError, api, core

from .docker import GATEWAY

HEARTBEAT_S = 4.0
LEASE_DURATION_S = 40
ZONES = ("zone-a", "zone-b", "zone-c")
CAPACITY = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}
KUBELET_VERSION = "v1.20.2"

log = logging.getLogger("nodes")


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_names(count):
    """node-a, node-b, ... (then node-27, ... past the alphabet)."""
    return [f"node-{chr(ord('a') + i)}" if i < 26 else f"node-{i + 1}" for i in range(count)]


def zone_of(index):
    return ZONES[index % len(ZONES)]


def node_object(name, zone):
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "topology.kubernetes.io/zone": zone,
            "failure-domain.beta.kubernetes.io/zone": zone,
            "ironlog.dev/e2e-kubelet": "standin",
        }},
    }


def node_status(name, since, now):
    """The status a healthy node reports; `since` is when it last became Ready."""
    def cond(type_, status, reason, message, transition):
        return {"type": type_, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": transition}
    return {
        "capacity": CAPACITY,
        "allocatable": CAPACITY,
        "addresses": [{"type": "InternalIP", "address": GATEWAY},
                      {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                     "operatingSystem": "linux", "architecture": "amd64",
                     "containerRuntimeVersion": "docker://e2e-standin", "osImage": "e2e stand-in",
                     "kernelVersion": "", "machineID": name, "systemUUID": name, "bootID": name},
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "", since),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "", since),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "", since),
            cond("Ready", "True", "KubeletReady", "kubelet stand-in is posting ready status",
                 since),
        ],
    }


class Node:
    def __init__(self, name, zone):
        self.name = name
        self.zone = zone
        self.lost = False          # lose_node: no heartbeats, no pods run
        self.disk_lost = False     # lose_node(disks=True): its volume directories are gone
        self.ready_since = None    # when the current run of heartbeats began


class Nodes:
    def __init__(self, kube, count):
        self.kube = kube
        self.by_name = {n: Node(n, zone_of(i)) for i, n in enumerate(node_names(count))}

    def names(self):
        return list(self.by_name)

    def lost(self):
        return {n for n, node in self.by_name.items() if node.lost}

    def register(self):
        for node in self.by_name.values():
            self._ensure_node(node)
            self.heartbeat(node)

    def _ensure_node(self, node):
        obj = node_object(node.name, node.zone)
        if self.kube.get_opt(core("nodes", name=node.name)) is None:
            self.kube.create(core("nodes"), obj)
            log.info("registered %s (%s)", node.name, node.zone)
        else:
            self.kube.patch(core("nodes", name=node.name), {"metadata": obj["metadata"]})

    def heartbeat_all(self):
        """One round of heartbeats for the nodes that are not lost; an error is logged and
        the next round retries."""
        for node in list(self.by_name.values()):
            if node.lost:
                continue
            try:
                self.heartbeat(node)
            except (KubeError, OSError) as e:
                log.warning("heartbeat of %s failed (retrying): %s", node.name, e)

    def heartbeat(self, node):
        now = now_rfc3339()
        if node.ready_since is None:
            node.ready_since = now
        path = core("nodes", name=node.name, sub="status")
        try:
            self.kube.patch(path, {"status": node_status(node.name, node.ready_since, now)})
        except KubeError as e:
            if e.status != 404:
                raise
            self._ensure_node(node)  # deleted meanwhile: register again, as a kubelet restart would
            self.kube.patch(path, {"status": node_status(node.name, node.ready_since, now)})
        self._renew_lease(node.name, now)

    def _renew_lease(self, name, now):
        micro = now.replace("Z", ".000000Z")
        spec = {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION_S,
                "renewTime": micro}
        path = api("coordination.k8s.io/v1", "leases", "kube-node-lease", name)
        try:
            self.kube.patch(path, {"spec": spec})
        except KubeError as e:
            if e.status != 404:
                raise
            self.kube.create(api("coordination.k8s.io/v1", "leases", "kube-node-lease"), {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"}, "spec": spec})

    def lose(self, name):
        node = self.by_name[name]
        node.lost = True
        node.ready_since = None

    def restore(self, name):
        node = self.by_name[name]
        node.lost = False
