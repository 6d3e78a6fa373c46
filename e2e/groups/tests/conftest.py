"""Fixtures: an `ironlog broker` process per test (free loopback ports, own data dir).
The broker's log is printed when a test fails."""

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

START_TIMEOUT_S = 20.0


def free_ports(n):
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
    def __init__(self, binary, workdir, extra_args=()):
        self.binary = binary
        self.data_dir = workdir / "data"
        self.workdir = workdir
        self.extra_args = list(extra_args)
        self.port, self.metrics_port = free_ports(2)
        self.proc = None
        self.log_paths = []

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        log_path = self.workdir / f"broker-{len(self.log_paths)}.log"
        self.log_paths.append(log_path)
        cmd = [self.binary, "broker", "--listen", self.bootstrap,
               "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
               "--data-dir", str(self.data_dir), *self.extra_args]
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         env={**os.environ, "NO_COLOR": "1"})
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"broker exited while starting:\n{self.logs()}"
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.metrics_port}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"broker not healthy after {START_TIMEOUT_S}s:\n{self.logs()}")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            return self.proc.wait(timeout=30)
        return self.proc.returncode if self.proc else None

    def restart(self):
        assert self.stop() == 0, "broker did not stop cleanly"
        self.start()

    def metrics(self):
        with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def logs(self):
        return "".join(f"--- {p}\n{p.read_text(errors='replace')}" for p in self.log_paths)


def binary_path():
    path = os.environ.get("IRONLOG_BIN") or str(
        Path(__file__).resolve().parents[3] / "target" / "debug" / "ironlog")
    if not os.access(path, os.X_OK):
        pytest.exit(f"broker binary {path} not found (cargo build -p ironlog-server)",
                    returncode=2)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def broker(request, tmp_path):
    b = Broker(binary_path(), tmp_path)
    b.start()
    yield b
    code = b.stop()
    failed = any(getattr(request.node, f"rep_{w}", None) is not None
                 and getattr(request.node, f"rep_{w}").failed for w in ("setup", "call"))
    if failed or code != 0:
        print(f"\n===== broker log =====\n{b.logs()}")
    assert code == 0, f"broker exited with {code} on SIGTERM"


@pytest.fixture
def name(request):
    """A topic/group name unique to this test run."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    return f"{base}-{uuid.uuid4().hex[:6]}"
