"""Cluster DNS for processes on the host (the operator, pytest's clients, kcat): a hosts file
that they read through nss_wrapper (`LD_PRELOAD=libnss_wrapper.so NSS_WRAPPER_HOSTS=<file>`,
preceded by e2e/k8s/resolver/serialize_lookups.so: nss_wrapper crashes threads that look names
up while this file is replaced).

It holds what CoreDNS would answer:
- every pod with an IP and a subdomain: `<hostname>.<subdomain>.<ns>.svc[.cluster.local]`;
- every Service with a selector: `<svc>.<ns>.svc[.cluster.local]` -> the addresses of its
  Endpoints (which the endpoints controller keeps to the ready pods, or all of them with
  publishNotReadyAddresses). A ClusterIP Service resolves to its pods too: there is no
  kube-proxy to route a cluster IP.

The file is replaced atomically (write a temporary file, rename), so a reader sees the old or
the new one, never half of one. Inside the containers the same pod names resolve through
Docker's DNS (network aliases).
"""

import os
import tempfile

from .podspec import CLUSTER_DOMAIN, HOST_DOMAIN, dns_names


def hosts_entries(pods, endpoints, pod_ips):
    """[(ip, name)] sorted. `pod_ips`: {pod uid: ip} that the stand-in knows before the pod's
    status says it (a container it has just started); otherwise status.podIP counts."""
    entries = set()
    for pod in pods:
        ip = pod_ips.get(pod["metadata"]["uid"]) or (pod.get("status") or {}).get("podIP")
        if ip:
            for name in dns_names(pod):
                entries.add((ip, name))
    for ep in endpoints:
        name = f"{ep['metadata']['name']}.{ep['metadata']['namespace']}.{HOST_DOMAIN}"
        for subset in ep.get("subsets") or []:
            for address in subset.get("addresses") or []:
                entries.add((address["ip"], name))
                entries.add((address["ip"], f"{name}.{CLUSTER_DOMAIN}"))
    return sorted(entries, key=lambda e: (e[1], tuple(int(x) for x in e[0].split("."))))


def render(entries):
    lines = ["127.0.0.1 localhost"] + [f"{ip} {name}" for ip, name in entries]
    return "\n".join(lines) + "\n"


def write_atomically(path, text):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".hosts.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class HostsFile:
    def __init__(self, path):
        self.path = path
        self.text = None

    def update(self, pods, endpoints, pod_ips):
        """Rewrites the file when its content changes; returns True then."""
        text = render(hosts_entries(pods, endpoints, pod_ips))
        if text == self.text:
            return False
        write_atomically(self.path, text)
        self.text = text
        return True
