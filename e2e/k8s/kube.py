"""A small Kubernetes API client for the e2e/k8s test bed: the kubelet stand-in and the
pytest suite. Plain JSON over one keep-alive HTTPS connection (standard library only), with
the bearer token of the kubeconfig that e2e/k8s/control-plane.sh writes (JSON, the server's
self-signed certificate is not verified, as the kubeconfig says).

    kube = Kube()                                   # $KUBECONFIG
    kube.get(core("pods", "ns", "events-0"))
    kube.list(core("pods"), fieldSelector="spec.nodeName=node-a")
    kube.patch(core("nodes", name="node-a", sub="status"), {"status": {...}})

Errors are `KubeError` with the HTTP status; `get_opt` and `delete` return None on 404.
A Kube may be shared by threads (requests are serialized on its one connection).
"""

import http.client
import json
import os
import ssl
import threading
import urllib.parse


class KubeError(Exception):
    def __init__(self, method, path, status, body):
        self.status = status
        self.body = body
        try:
            message = json.loads(body).get("message", body)
        except ValueError:
            message = body
        super().__init__(f"{method} {path}: HTTP {status}: {message}")


def core(resource, ns=None, name=None, sub=None):
    """Path of a core/v1 resource: core("pods", "default", "x", "status")."""
    return _path("api/v1", resource, ns, name, sub)


def api(group_version, resource, ns=None, name=None, sub=None):
    """Path of a resource in an API group: api("apps/v1", "statefulsets", "ns", "x")."""
    return _path(f"apis/{group_version}", resource, ns, name, sub)


def _path(prefix, resource, ns, name, sub):
    parts = [prefix]
    if ns is not None:
        parts += ["namespaces", ns]
    parts.append(resource)
    if name is not None:
        parts.append(name)
    if sub is not None:
        parts.append(sub)
    return "/" + "/".join(parts)


PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


class Kube:
    def __init__(self, kubeconfig=None, timeout=15.0):
        path = kubeconfig or os.environ["KUBECONFIG"]
        with open(path) as f:
            config = json.load(f)
        context = _named(config["contexts"], config["current-context"])["context"]
        cluster = _named(config["clusters"], context["cluster"])["cluster"]
        user = _named(config["users"], context["user"])["user"]
        url = urllib.parse.urlsplit(cluster["server"])
        self.host, self.port = url.hostname, url.port or 443
        self.token = user["token"]
        self.namespace = context.get("namespace", "default")
        self.timeout = timeout
        self._ssl = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            self._ssl.check_hostname = False
            self._ssl.verify_mode = ssl.CERT_NONE
        self._conn = None
        self._lock = threading.Lock()

    def request(self, method, path, body=None, params=None, content_type="application/json"):
        """The decoded JSON answer (None for an empty one); KubeError for a status >= 400."""
        if params:
            path += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        with self._lock:
            status, raw = self._send(method, path, data, headers)
        if status >= 400:
            raise KubeError(method, path, status, raw.decode(errors="replace"))
        return json.loads(raw) if raw else None

    def _send(self, method, path, data, headers):
        # One retry on a fresh connection: the server may have closed an idle keep-alive one.
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                         context=self._ssl)
            try:
                self._conn.request(method, path, body=data, headers=headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise

    def get(self, path, **params):
        return self.request("GET", path, params=params)

    def get_opt(self, path, **params):
        """The object, or None if it does not exist."""
        try:
            return self.get(path, **params)
        except KubeError as e:
            if e.status == 404:
                return None
            raise

    def list(self, path, **params):
        return self.get(path, **params)["items"]

    def create(self, path, obj):
        return self.request("POST", path, obj)

    def replace(self, path, obj):
        return self.request("PUT", path, obj)

    def patch(self, path, patch, kind="merge"):
        return self.request("PATCH", path, patch, content_type=PATCH_TYPES[kind])

    def delete(self, path, grace_period=None, uid=None, propagation=None):
        """Deletes the object (None if it was gone already); `uid` makes it a precondition."""
        options = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        if propagation is not None:
            options["propagationPolicy"] = propagation
        try:
            return self.request("DELETE", path, options)
        except KubeError as e:
            if e.status == 404:
                return None
            raise


def _named(items, name):
    for item in items:
        if item["name"] == name:
            return item
    raise KeyError(f"kubeconfig has no entry named {name!r}")


def condition(obj, type_):
    """The status condition of that type (a dict), or None."""
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None
