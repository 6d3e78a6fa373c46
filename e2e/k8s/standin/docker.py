"""The Docker CLI, as the kubelet stand-in uses it: one private bridge network and the
containers it runs there, all labelled `ironlog-e2e=k8s` so that anything left over from an
interrupted run can be found and removed."""

import json
import subprocess

LABEL = "ironlog-e2e=k8s"
NETWORK = "ironlog-k8s"
SUBNET = "172.28.0.0/24"
GATEWAY = "172.28.0.1"


class DockerError(Exception):
    pass


def docker(*args, check=True, timeout=120):
    """Runs `docker args...`; returns stdout. DockerError (with stderr) when it fails."""
    try:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise DockerError(f"docker {args[0]} timed out after {timeout}s") from e
    if check and result.returncode != 0:
        raise DockerError(f"docker {' '.join(args[:2])}: {result.stderr.strip()}")
    return result.stdout


def create_network():
    """(Re)creates the network with a fresh state."""
    remove_network()
    docker("network", "create", "--driver", "bridge", "--subnet", SUBNET, "--gateway", GATEWAY,
           "--label", LABEL, NETWORK)


def remove_network():
    for net in docker("network", "ls", "-q", "--filter", f"label={LABEL}").split():
        docker("network", "rm", net, check=False)


def containers():
    """`docker inspect` of every container with our label, by name."""
    ids = docker("ps", "-aq", "--no-trunc", "--filter", f"label={LABEL}").split()
    if not ids:
        return {}
    found = json.loads(docker("inspect", *ids, check=False) or "[]")
    return {c["Name"].lstrip("/"): c for c in found}


def remove_containers():
    ids = docker("ps", "-aq", "--filter", f"label={LABEL}").split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)


def image_exists(image):
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def running(info):
    return info["State"]["Status"] in ("running", "paused")
