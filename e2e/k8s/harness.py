"""What the e2e/k8s scenarios drive: kubectl and helm, the kubelet stand-in's control API, the
operator as a host process that a test can kill and restart, and polling under a deadline.

run.sh provides the environment:
    KUBECONFIG, PATH           the test API server, kubectl and helm
    LD_PRELOAD, NSS_WRAPPER_HOSTS   cluster DNS names for this process and its children
    E2E_KUBELET_URL            the stand-in's control API (http://127.0.0.1:18081)
    E2E_OPERATOR_BIN, E2E_OPERATOR_ARGS   the operator binary and its arguments
    E2E_OPERATOR_METRICS       host:port of its /metrics and /healthz (also in the arguments)
    E2E_K8S_LOGS               where logs go (the operator's: operator-pytest.log)
    IRONLOG_IMAGE              the broker image the KafkaClusters run
"""

import json
import os
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import kafka_wire
from cluster import wait_until as _wait_until
from kube import KubeError

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "ironlog-operator"
RETRY_ON = (kafka_wire.WireError, OSError, AssertionError, KubeError, subprocess.SubprocessError)


def wait_until(predicate, what, timeout=60.0, interval=1.0):
    """Polls `predicate` (errors of the API, the network, kubectl count as "not yet") until it
    returns a truthy value, which is returned; AssertionError with the last value on timeout."""
    return _wait_until(predicate, what, timeout=timeout, interval=interval, retry_on=RETRY_ON)


def run(cmd, *args, input=None, check=True, timeout=120):
    """Runs a command; returns stdout. With `check`, a non-zero exit is an AssertionError with
    the output."""
    result = subprocess.run([cmd, *args], input=input, capture_output=True, text=True,
                            timeout=timeout, cwd=REPO_ROOT)
    if check:
        assert result.returncode == 0, (
            f"{cmd} {shlex.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result.stdout


def kubectl(*args, input=None, check=True, timeout=120):
    return run("kubectl", *args, input=input, check=check, timeout=timeout)


def helm(*args, check=True, timeout=300):
    return run("helm", *args, check=check, timeout=timeout)


def table(*args):
    """`kubectl get ARGS` (its table output) as [{column: value}], read by the header's column
    positions, so an empty cell stays empty instead of shifting the cells after it."""
    header, *rows = kubectl("get", *args).splitlines()
    starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
    bounds = list(zip(starts, starts[1:] + [None]))
    return [{header[a:b].strip(): row[a:b].strip() for a, b in bounds} for row in rows]


def apply(manifest, namespace=None):
    """`kubectl apply` of a manifest: YAML text, or an object (sent as JSON)."""
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    ns = ["-n", namespace] if namespace else []
    return kubectl("apply", *ns, "-f", "-", input=text)


class KubeletControl:
    """The kubelet stand-in's control API (see e2e/k8s/kubelet.py)."""

    def __init__(self, url=None):
        self.url = (url or os.environ["E2E_KUBELET_URL"]).rstrip("/")

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"kubelet stand-in {method} {path}: HTTP {e.code}: "
                                 f"{e.read().decode(errors='replace')}") from e

    def healthy(self):
        return self._call("GET", "/healthz")["ok"]

    def state(self):
        """{"nodes": {name: {zone, lost, disk_lost}}, "pods": {"ns/name": {uid, node,
        container, ip, running, ready, restarts, waiting}}}"""
        return self._call("GET", "/state")

    def pod(self, namespace, name):
        return self.state()["pods"].get(f"{namespace}/{name}")

    def lose_node(self, node, disks=False):
        return self._call("POST", "/lose_node", {"node": node, "disks": disks})

    def restore_node(self, node):
        return self._call("POST", "/restore_node", {"node": node})


class OperatorProcess:
    """`ironlog-operator` as a host process with the admin kubeconfig, its output appended to
    one log file across restarts. `restart()` starts it again with the same arguments."""

    def __init__(self, binary=None, args=None, log_path=None, metrics=None):
        self.binary = binary or os.environ["E2E_OPERATOR_BIN"]
        self.args = args if args is not None else shlex.split(os.environ["E2E_OPERATOR_ARGS"])
        logs = Path(os.environ.get("E2E_K8S_LOGS", "/tmp"))
        self.log_path = Path(log_path or logs / "operator-pytest.log")
        self.pid_path = self.log_path.with_suffix(".pid")
        self.metrics = metrics or os.environ["E2E_OPERATOR_METRICS"]
        self.proc = None
        self.starts = 0

    def start(self):
        assert not self.alive(), "the operator is running already"
        self.starts += 1
        with open(self.log_path, "a") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} start {self.starts}: "
                      f"{self.binary} {shlex.join(self.args)}\n")
            log.flush()
            self.proc = subprocess.Popen([self.binary, *self.args], stdout=log,
                                         stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        self.pid_path.write_text(str(self.proc.pid))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def healthy(self):
        try:
            with urllib.request.urlopen(f"http://{self.metrics}/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_healthy(self, timeout=60.0):
        wait_until(lambda: self.alive() and self.healthy(), "the operator's /healthz",
                   timeout=timeout, interval=0.5)
        assert self.alive(), f"the operator exited:\n{self.log_tail()}"

    def kill(self, sig=signal.SIGKILL, timeout=30.0):
        """Signals the operator and waits for it to exit; returns its exit status."""
        if not self.alive():
            return self.proc and self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout)

    def stop(self):
        return self.kill(signal.SIGTERM)

    def restart(self, sig=signal.SIGTERM):
        self.kill(sig)
        return self.start()

    def log_tail(self, lines=60):
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-lines:])
        except OSError:
            return ""


def docker_logs(container, tail=80):
    result = subprocess.run(["docker", "logs", "--tail", str(tail), container],
                            capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr
