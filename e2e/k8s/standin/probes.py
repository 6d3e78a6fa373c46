"""Readiness and liveness probes, one thread per probe of one container run, as the kubelet's
probe workers: after initialDelaySeconds, every periodSeconds, with timeoutSeconds; the result
flips after successThreshold successes or failureThreshold failures in a row. Readiness starts
failed, liveness passed."""

import http.client
import logging
import socket
import subprocess
import threading

from .podspec import named_port

log = logging.getLogger("probes")


def probe_once(probe, container, ip, docker_name, timeout):
    """(ok, why) of one probe attempt."""
    try:
        if "httpGet" in probe:
            get = probe["httpGet"]
            host = get.get("host") or ip
            conn = http.client.HTTPConnection(host, named_port(container, get["port"]),
                                              timeout=timeout)
            try:
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
                conn.request("GET", get.get("path", "/"), headers=headers)
                status = conn.getresponse().status
            finally:
                conn.close()
            return 200 <= status < 400, f"HTTP {status}"
        if "tcpSocket" in probe:
            tcp = probe["tcpSocket"]
            port = named_port(container, tcp["port"])
            socket.create_connection((tcp.get("host") or ip, port), timeout=timeout).close()
            return True, "connected"
        if "exec" in probe:
            result = subprocess.run(["docker", "exec", docker_name, *probe["exec"]["command"]],
                                    capture_output=True, timeout=timeout + 5)
            return result.returncode == 0, f"exit code {result.returncode}"
        return False, f"unsupported probe {sorted(probe)}"
    except (OSError, http.client.HTTPException, subprocess.TimeoutExpired) as e:
        return False, str(e) or type(e).__name__


class Prober(threading.Thread):
    def __init__(self, kind, probe, container, ip, docker_name, what, on_change):
        super().__init__(name=f"{kind}-{what}", daemon=True)
        self.kind = kind
        self.probe = probe
        self.container = container
        self.ip = ip
        self.docker_name = docker_name
        self.what = what
        self.on_change = on_change
        self.result = kind == "liveness"
        self.last = None
        self._stop_event = threading.Event()

    def stop(self):
        self._stop_event.set()

    def run(self):
        p = self.probe
        period = p.get("periodSeconds", 10)
        timeout = p.get("timeoutSeconds", 1)
        failure_threshold = p.get("failureThreshold", 3)
        success_threshold = p.get("successThreshold", 1)
        if self._stop_event.wait(p.get("initialDelaySeconds", 0)):
            return
        successes = failures = 0
        while True:
            ok, why = probe_once(p, self.container, self.ip, self.docker_name, timeout)
            if self._stop_event.is_set():
                return
            self.last = why
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            result = self.result
            if ok and successes >= success_threshold:
                result = True
            elif not ok and failures >= failure_threshold:
                result = False
            if result != self.result:
                self.result = result
                log.info("%s of %s: %s (%s)", self.kind, self.what,
                         "success" if result else "failure", why)
                self.on_change()
            if self._stop_event.wait(period):
                return
