"""The `ironlog broker` process fixture shared by the Python e2e suites (e2e/clients, e2e/groups,
e2e/cluster).

Each test gets its own broker on free loopback ports with its own data directory, so tests are
independent and may kill, signal and restart their broker. On a failed test, or a broker that
does not exit cleanly on SIGTERM, the broker's logs are printed. The binary comes from
$IRONLOG_BIN (run.sh sets it; default <repo>/target/debug/ironlog).

A suite's pytest.ini puts this directory on the path (`pythonpath = ../lib`); its conftest.py
imports the fixtures and the report hook from here, which is how pytest finds them:

    from broker import broker, broker_factory, pytest_runtest_makereport, unique_name
"""

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_ports(n):
    """`n` distinct ports the kernel considers free right now (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Broker:
    """One `ironlog broker` process; `restart()` reuses its ports and data directory."""

    def __init__(self, binary, workdir, extra_args=(), ports=None):
        """`ports`: (Kafka port, metrics port), when the caller picked them (a cluster picks
        every node's ports at once); by default two free ports."""
        self.binary = binary
        self.data_dir = workdir / "data"
        self.log_dir = workdir
        self.extra_args = list(extra_args)
        self.port, self.metrics_port = ports or free_ports(2)
        self.proc = None
        self.stopped_by_test = False
        self.log_paths = []

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self):
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def health_url(self):
        return f"http://127.0.0.1:{self.metrics_port}/health"

    def start(self, wait=True):
        """Starts the process and, with `wait`, waits for GET /health to answer 200 (a cluster
        starts all its nodes first, then waits: a voter may need its peers to be healthy)."""
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        log_path = self.log_dir / f"broker-{len(self.log_paths)}.log"
        self.log_paths.append(log_path)
        self.stopped_by_test = False
        cmd = [
            self.binary, "broker",
            "--listen", self.bootstrap,
            "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
            "--data-dir", str(self.data_dir),
            "--log-level", "info",
            *self.extra_args,
        ]
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "NO_COLOR": "1"},
            )
        if wait:
            self.wait_healthy()

    def wait_healthy(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        last_error = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"broker exited with {self.proc.returncode} while starting:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=1) as resp:
                    if resp.status == 200:
                        return
                    last_error = f"status {resp.status}"
            except (urllib.error.URLError, OSError) as e:
                last_error = e
            time.sleep(0.05)
        raise RuntimeError(f"broker not healthy after {START_TIMEOUT_S}s ({last_error}):\n{self.log()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT_S):
        """Sends `sig` and waits for the process to exit; returns its exit code."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.stopped_by_test = True
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"broker did not exit within {timeout}s of {sig!r}")

    def kill(self):
        return self.stop(signal.SIGKILL)

    def restart(self):
        """Stops a running broker with SIGTERM (it must exit cleanly), then starts it again;
        a broker that is already stopped (say, killed by the test) is only started."""
        if self.alive():
            code = self.stop()
            assert code == 0, f"broker did not stop cleanly (exit {code}):\n{self.log()}"
        self.start()

    def log(self, run=-1):
        """The log of one run (default: the current one)."""
        if not self.log_paths:
            return ""
        return self.log_paths[run].read_text(errors="replace")

    def all_logs(self):
        return "".join(
            f"--- broker run {i} ({p})\n{p.read_text(errors='replace')}"
            for i, p in enumerate(self.log_paths))

    def metrics_text(self):
        with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
            assert resp.status == 200
            return resp.read().decode()


def binary_path():
    path = os.environ.get("IRONLOG_BIN") or str(REPO_ROOT / "target" / "debug" / "ironlog")
    if not os.access(path, os.X_OK):
        pytest.exit(f"broker binary {path} not found: build it with `cargo build -p ironlog`"
                    " or set IRONLOG_BIN", returncode=2)
    return path


def unique_name(base):
    """`base` (say, a test's name) made a valid topic/group name and unique to this run."""
    base = re.sub(r"[^a-zA-Z0-9._-]", "-", base)[:60].strip("-")
    return f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test item, so fixtures can tell a failed test."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def broker_factory(request, tmp_path):
    """`make(*extra_args)` starts a broker with extra `ironlog broker` flags. At teardown every
    broker still running must exit 0 on SIGTERM, and none may have exited on its own."""
    binary = binary_path()
    brokers = []

    def make(*extra_args):
        workdir = tmp_path / f"broker{len(brokers)}"
        workdir.mkdir()
        b = Broker(binary, workdir, extra_args)
        brokers.append(b)
        b.start()
        return b

    yield make
    failed = any(getattr(request.node, f"rep_{w}", None) is not None
                 and getattr(request.node, f"rep_{w}").failed for w in ("setup", "call"))
    problems = []
    for b in brokers:
        if b.alive():
            code = b.stop()
            if code != 0:
                problems.append(f"broker on {b.bootstrap} exited with {code} on SIGTERM")
        elif b.proc is not None and not b.stopped_by_test:
            problems.append(f"broker on {b.bootstrap} exited with {b.proc.returncode} during the test")
        if failed or problems:
            print(f"\n===== broker {b.bootstrap} log =====\n{b.all_logs()}")
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def broker(broker_factory):
    return broker_factory()
