#!/usr/bin/env python3
"""A kubelet stand-in for the e2e/k8s test bed: registers Nodes and runs the pods bound to them
as Docker containers on a private bridge network, so the operator's brokers really run.

    kubelet.py --state-dir /tmp/ironlog-e2e-k8s --nodes 5 --listen 127.0.0.1:18081

What it does (modules in standin/):
- nodes.py     Nodes node-a.. (zones zone-a/b/c round robin) kept Ready: status heartbeats
               and Leases in kube-node-lease every 4 s, from their own thread.
- pods.py      for each pod on one of its Nodes: the container on network `ironlog-k8s`
               (172.28.0.0/24) with the pod's DNS names as aliases, volumes, user, env;
               restarts, readiness/liveness probes, status; graceful deletion.
- storage.py   StorageClass `ironlog-local` and its local-volume provisioner, one directory
               per node as its disk.
- dns.py       a hosts file of pod and Service names for host processes (nss_wrapper).
- control API  on --listen, for tests to inject faults:
                 GET  /healthz                  200 once the Nodes are registered
                 GET  /state                    {"nodes": {...}, "pods": {"ns/name": {...}}}
                 POST /lose_node     {"node": "node-b", "disks": true}
                 POST /restore_node  {"node": "node-b"}
  lose_node stops the node's heartbeats (the node-lifecycle controller marks it Unknown),
  kills its containers and, with disks, deletes its volume directories; its pods are reported
  no more. restore_node resumes heartbeats; its pods' containers start again (or, for pods
  deleted meanwhile, their deletion completes).

Every pass of the loop is independent: a failed API or Docker call is logged and retried in the
next pass. SIGTERM/SIGINT remove the containers and the network before exiting.
"""

import argparse
import json
import logging
import os
import signal
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kube import Kube, core  # noqa: E402
from standin import docker as d  # noqa: E402
from standin.dns import HostsFile  # noqa: E402
from standin.nodes import HEARTBEAT_S, Nodes  # noqa: E402
from standin.pods import Pods  # noqa: E402
from standin.storage import Provisioner  # noqa: E402

PASS_S = 1.0

log = logging.getLogger("kubelet")


class Kubelet:
    def __init__(self, state_dir, node_count, kubeconfig=None):
        self.state_dir = state_dir
        self.kube = Kube(kubeconfig)
        self.nodes = Nodes(Kube(kubeconfig), node_count)  # used by the heartbeat thread
        self.wake = threading.Event()
        self.heartbeat_now = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()  # one pass of the loop, or one fault, at a time
        self.pods = Pods(self.kube, self.nodes, state_dir, self.wake)
        self.provisioner = Provisioner(self.kube, state_dir, self.nodes.names())
        self.hosts = HostsFile(os.path.join(state_dir, "hosts"))
        self.registered = False
        self._pods = []  # the last pass's pod list, for the hosts file

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self):
        os.makedirs(os.path.join(self.state_dir, "pods"), exist_ok=True)
        d.remove_containers()
        d.create_network()
        self.hosts.update([], [], {})
        self._retry("registering nodes", self.nodes.register)
        self._retry("creating the StorageClass", self.provisioner.ensure_class)
        self.registered = True
        threading.Thread(target=self._heartbeats, name="heartbeats", daemon=True).start()
        log.info("nodes %s registered; running pods", ", ".join(self.nodes.names()))

    def _retry(self, what, fn):
        while not self.stopping.is_set():
            try:
                return fn()
            except Exception as e:  # noqa: BLE001 - logged, retried
                log.warning("%s failed (retrying): %s", what, e)
                self.stopping.wait(2)

    def run(self):
        while not self.stopping.is_set():
            self.wake.clear()
            with self.lock:
                self._pass()
            self.wake.wait(PASS_S)

    def _pass(self):
        steps = (("pods", self._sync_pods), ("storage", self._sync_storage),
                 ("dns", self._sync_dns))
        for what, step in steps:
            try:
                step()
            except Exception:  # noqa: BLE001 - one failed step must not stop the loop
                log.warning("%s pass failed (retrying):\n%s", what, traceback.format_exc())

    def _sync_pods(self):
        self._pods = self.kube.list(core("pods"))
        self.pods.sync(self._pods, d.containers())

    def _sync_storage(self):
        self.provisioner.sync(self.nodes.lost())

    def _sync_dns(self):
        endpoints = self.kube.list(core("endpoints"))
        if self.hosts.update(self._pods, endpoints, self.pods.pod_ips()):
            log.info("hosts file updated (%d entries)", self.hosts.text.count("\n") - 1)

    def _heartbeats(self):
        while not self.stopping.is_set():
            self.heartbeat_now.clear()
            self.nodes.heartbeat_all()
            self.heartbeat_now.wait(HEARTBEAT_S)

    def shutdown(self):
        self.stopping.set()
        self.wake.set()
        with self.lock:
            self.pods.shutdown()
            d.remove_containers()
            d.remove_network()
        log.info("containers and network removed")

    # ---- faults --------------------------------------------------------------------------------

    def lose_node(self, node, disks):
        with self.lock:
            self.nodes.lose(node)
            self.pods.lose_node(node)
            if disks:
                self.provisioner.lose_disk(node)
                self.nodes.by_name[node].disk_lost = True
        log.info("node %s lost%s", node, " with its disks" if disks else "")

    def restore_node(self, node):
        with self.lock:
            self.nodes.restore(node)
        self.heartbeat_now.set()
        self.wake.set()
        log.info("node %s restored", node)

    def state(self):
        with self.lock:
            nodes = {n: {"zone": x.zone, "lost": x.lost, "disk_lost": x.disk_lost}
                     for n, x in self.nodes.by_name.items()}
            return {"nodes": nodes, "pods": self.pods.state()}


def control_server(kubelet, host, port):
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/healthz":
                self._reply(200 if kubelet.registered else 503, {"ok": kubelet.registered})
            elif self.path == "/state":
                self._reply(200, kubelet.state())
            else:
                self._reply(404, {"error": f"no {self.path}"})

        def do_POST(self):
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                node = body.get("node")
                if node not in kubelet.nodes.by_name:
                    self._reply(404, {"error": f"no node {node!r}"})
                elif self.path == "/lose_node":
                    kubelet.lose_node(node, bool(body.get("disks")))
                    self._reply(200, {"ok": True})
                elif self.path == "/restore_node":
                    kubelet.restore_node(node)
                    self._reply(200, {"ok": True})
                else:
                    self._reply(404, {"error": f"no {self.path}"})
            except Exception as e:  # noqa: BLE001 - the caller gets the error
                log.warning("control %s failed:\n%s", self.path, traceback.format_exc())
                self._reply(500, {"error": str(e)})

        def log_message(self, fmt, *args):
            log.info("control: " + fmt, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", default="/tmp/ironlog-e2e-k8s")
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--listen", default="127.0.0.1:18081")
    parser.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    kubelet = Kubelet(args.state_dir, args.nodes, args.kubeconfig)
    host, port = args.listen.rsplit(":", 1)
    control_server(kubelet, host, int(port))

    def on_signal(signum, _frame):
        log.info("signal %d: shutting down", signum)
        kubelet.stopping.set()
        kubelet.wake.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        kubelet.start()
        kubelet.run()
    finally:
        kubelet.shutdown()


if __name__ == "__main__":
    main()
