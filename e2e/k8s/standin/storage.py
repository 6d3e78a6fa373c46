"""The test bed's storage: a local-volume provisioner and the kubelet's volume mounts.

StorageClass `ironlog-local` (the default class, provisioner `ironlog.dev/e2e-local`,
WaitForFirstConsumer, reclaim Delete). Once the scheduler has picked a node for a pod with an
unbound claim it annotates the claim with `volume.kubernetes.io/selected-node`; the provisioner
then creates a `local` PersistentVolume in a directory of that node,

    <state>/nodes/<node>/pv/<pv name>

with node affinity to the node and a claimRef to the claim, and the PV controller binds them.
A Released volume (its claim deleted) is deleted with its directory. A node's "disk" is its
directory: a lost disk is a deleted directory, and a pod whose volume directory is gone does
not start (MountVolume fails, as with a real local volume).

At mount time a pod's volumes become bind mounts: ConfigMaps and Secrets as files written into
the pod's directory (their content at that time), emptyDir as a directory there, claims as the
bound volume's directory; with an fsGroup, claim and emptyDir volumes get that group
(recursively, group-writable, setgid directories), as the kubelet does.
"""

import base64
import logging
import os
import shutil

from kube import api, core

from .podspec import ConfigError, decode_secret

STORAGE_CLASS = "ironlog-local"
PROVISIONER = "ironlog.dev/e2e-local"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"

log = logging.getLogger("storage")


def storage_class():
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Delete",
    }


def local_volume(pvc, name, node, path):
    """The PersistentVolume provisioned for `pvc` on `node`, pre-bound to the claim."""
    meta, spec = pvc["metadata"], pvc["spec"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {PROVISIONED_BY: PROVISIONER},
                     "labels": {"ironlog.dev/e2e-node": node}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "local": {"path": path},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "namespace": meta["namespace"], "name": meta["name"],
                         "uid": meta["uid"]},
        },
    }


class Provisioner:
    def __init__(self, kube, state_dir, node_names):
        self.kube = kube
        self.state_dir = state_dir
        self.node_names = set(node_names)

    def disk(self, node):
        return os.path.join(self.state_dir, "nodes", node, "pv")

    def ensure_class(self):
        if self.kube.get_opt(api("storage.k8s.io/v1", "storageclasses", name=STORAGE_CLASS)) is None:
            self.kube.create(api("storage.k8s.io/v1", "storageclasses"), storage_class())
            log.info("created StorageClass %s", STORAGE_CLASS)

    def sync(self, lost_nodes):
        """One pass: provision for claims waiting on us, delete released volumes. Nodes in
        `lost_nodes` get no new volumes (their provisioner is down with them)."""
        pvs = self.kube.list(core("persistentvolumes"))
        claimed = {pv["spec"].get("claimRef", {}).get("uid") for pv in pvs}
        for pvc in self.kube.list(core("persistentvolumeclaims")):
            node = (pvc["metadata"].get("annotations") or {}).get(SELECTED_NODE)
            if (pvc["status"].get("phase") == "Pending"
                    and pvc["spec"].get("storageClassName") == STORAGE_CLASS
                    and not pvc["spec"].get("volumeName")
                    and node in self.node_names and node not in lost_nodes
                    and pvc["metadata"]["uid"] not in claimed
                    and not pvc["metadata"].get("deletionTimestamp")):
                self.provision(pvc, node)
        for pv in pvs:
            mine = (pv["metadata"].get("annotations") or {}).get(PROVISIONED_BY) == PROVISIONER
            if mine and pv["status"].get("phase") in ("Released", "Failed") \
                    and not pv["metadata"].get("deletionTimestamp"):
                self.delete(pv)

    def provision(self, pvc, node):
        name = f"pvc-{pvc['metadata']['uid']}"
        path = os.path.join(self.disk(node), name)
        os.makedirs(path, mode=0o755, exist_ok=True)
        self.kube.create(core("persistentvolumes"), local_volume(pvc, name, node, path))
        log.info("provisioned %s on %s for claim %s/%s", name, node,
                 pvc["metadata"]["namespace"], pvc["metadata"]["name"])

    def delete(self, pv):
        path = pv["spec"].get("local", {}).get("path")
        if path and path.startswith(os.path.join(self.state_dir, "nodes") + os.sep):
            shutil.rmtree(path, ignore_errors=True)
        self.kube.delete(core("persistentvolumes", name=pv["metadata"]["name"]))
        log.info("deleted released volume %s (%s)", pv["metadata"]["name"], path)

    def lose_disk(self, node):
        """The node's disk is gone: every volume directory on it."""
        shutil.rmtree(self.disk(node), ignore_errors=True)
        log.info("deleted the volume directories of %s", node)


# ---- mounts ---------------------------------------------------------------------------------

def lookup_data(kube, kind, ns, name):
    """A ConfigMap's or Secret's data (str values), or None when it does not exist."""
    if kind == "configMap":
        cm = kube.get_opt(core("configmaps", ns, name))
        if cm is None:
            return None
        data = dict(cm.get("data") or {})
        for k, v in (cm.get("binaryData") or {}).items():
            data[k] = base64.b64decode(v).decode(errors="replace")
        return data
    secret = kube.get_opt(core("secrets", ns, name))
    return None if secret is None else decode_secret(secret)


def _write_files(directory, data, items, mode):
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    chosen = [(i["key"], i["path"], i.get("mode", mode)) for i in items] if items \
        else [(k, k, mode) for k in data]
    for key, rel, file_mode in chosen:
        if key not in data:
            raise ConfigError(f"key {key!r} not found")
        target = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as f:
            f.write(data[key])
        os.chmod(target, file_mode)


def _apply_fs_group(path, gid):
    for root, dirs, files in os.walk(path):
        os.chown(root, -1, gid)
        os.chmod(root, os.stat(root).st_mode | 0o2070)
        for f in files:
            p = os.path.join(root, f)
            os.chown(p, -1, gid, follow_symlinks=False)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | 0o060)


def prepare_mounts(kube, pod, container, pod_dir):
    """[(host path, container path, read only)] for the container's volumeMounts. ConfigError
    when a volume is not there (yet): a missing ConfigMap, an unbound claim, a lost disk."""
    ns = pod["metadata"]["namespace"]
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    mounts = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            raise ConfigError(f"volume {mount['name']!r} is not in the pod spec")
        read_only = bool(mount.get("readOnly"))
        own_dir = os.path.join(pod_dir, "volumes", mount["name"])
        if "configMap" in volume or "secret" in volume:
            kind = "configMap" if "configMap" in volume else "secret"
            source = volume[kind]
            name = source.get("name") or source.get("secretName")
            data = lookup_data(kube, kind, ns, name)
            if data is None:
                if not source.get("optional"):
                    raise ConfigError(f"MountVolume.SetUp failed for volume {mount['name']!r}: "
                                      f"{kind} {name!r} not found")
                data = {}
            shutil.rmtree(own_dir, ignore_errors=True)
            _write_files(own_dir, data, source.get("items"), source.get("defaultMode", 0o644))
            host, read_only = own_dir, True
        elif "emptyDir" in volume:
            os.makedirs(own_dir, exist_ok=True)
            os.chmod(own_dir, 0o777)
            host = own_dir
            if fs_group is not None:
                _apply_fs_group(host, fs_group)
        elif "persistentVolumeClaim" in volume:
            host = _claim_path(kube, ns, volume["persistentVolumeClaim"]["claimName"])
            read_only = read_only or volume["persistentVolumeClaim"].get("readOnly", False)
            if fs_group is not None:
                _apply_fs_group(host, fs_group)
        elif "hostPath" in volume:
            host = volume["hostPath"]["path"]
            if volume["hostPath"].get("type") == "DirectoryOrCreate":
                os.makedirs(host, exist_ok=True)
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise ConfigError(f"volume {mount['name']!r}: {kinds} not supported by the stand-in")
        if mount.get("subPath"):
            host = os.path.join(host, mount["subPath"])
        mounts.append((host, mount["mountPath"], read_only))
    return mounts


def _claim_path(kube, ns, claim):
    pvc = kube.get_opt(core("persistentvolumeclaims", ns, claim))
    if pvc is None:
        raise ConfigError(f"persistentvolumeclaim {claim!r} not found")
    if pvc["status"].get("phase") != "Bound":
        raise ConfigError(f"persistentvolumeclaim {claim!r} is not bound yet")
    pv = kube.get(core("persistentvolumes", name=pvc["spec"]["volumeName"]))
    spec = pv["spec"]
    path = (spec.get("local") or spec.get("hostPath") or {}).get("path")
    if path is None:
        raise ConfigError(f"volume {pv['metadata']['name']} is neither local nor hostPath")
    if not os.path.isdir(path):
        raise ConfigError(f"MountVolume.NewMounter initialization failed for volume "
                          f"{pv['metadata']['name']!r}: path {path!r} does not exist")
    return path

