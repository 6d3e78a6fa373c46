"""The kubelet's pod work for every pod bound to one of the stand-in's Nodes: run its container
in Docker, restart it per restartPolicy with a small backoff, probe it, report the pod's status,
and on deletion stop it within the grace period and delete the pod object.

One `PodRun` per pod UID holds what the API does not: the pod IP (allocated here, so the
downward API can give it before the container starts, and kept across container restarts, as
a pod sandbox keeps its IP), the restart count, the last termination, the probe threads.

Only single-container pods without init containers are supported (the broker pod is one);
another pod is reported as waiting with reason `Unsupported`.
"""

import datetime
import logging
import os
import shutil
import threading
import time

from kube import KubeError, core

from . import docker as d
from .podspec import ConfigError, resolve_env, run_args
from .probes import Prober
from .storage import lookup_data, prepare_mounts

MAX_BACKOFF_S = 10.0
# A run this long resets the restart backoff.
STABLE_RUN_S = 30.0
CONFIG_RETRY_S = 2.0
IP_FIRST, IP_LAST = 10, 250
LABEL_UID = "ironlog.dev/pod-uid"
LABEL_POD = "ironlog.dev/pod"
LABEL_NODE = "ironlog.dev/node"
LABEL_IP = "ironlog.dev/pod-ip"

log = logging.getLogger("pods")


def rfc3339(ts=None):
    t = datetime.datetime.now(datetime.timezone.utc) if ts is None else ts
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def docker_time(value):
    """Docker's RFC 3339 nanosecond time as Kubernetes' second-precision one."""
    return value.split(".")[0].rstrip("Z") + "Z"


def container_name(pod):
    m = pod["metadata"]
    return f"k8s_{m['namespace']}_{m['name']}_{m['uid'][:8]}"


class PodRun:
    def __init__(self, pod, ip):
        m = pod["metadata"]
        self.uid = m["uid"]
        self.key = f"{m['namespace']}/{m['name']}"
        self.node = pod["spec"]["nodeName"]
        self.container = container_name(pod)
        self.ip = ip
        self.start_time = rfc3339()
        self.restarts = 0
        self.crashes = 0             # exits in a row of short runs: the backoff exponent
        self.last_state = None       # lastState.terminated
        self.seen_exit = None        # FinishedAt of the exit already handled
        self.restart_at = None       # monotonic time of the next restart (None: no restart due)
        self.waiting = None          # (reason, message) while there is no container
        self.create_after = 0.0
        self.ever_started = False
        self.stopping = None         # the thread running `docker stop`
        self.run_id = None           # StartedAt of the container run the probers belong to
        self.probers = {}

    def ready(self):
        readiness = self.probers.get("readiness")
        return self.run_id is not None and (readiness is None or readiness.result)

    def stop_probers(self):
        for p in self.probers.values():
            p.stop()
        self.probers = {}
        self.run_id = None


class Pods:
    def __init__(self, kube, nodes, state_dir, wake):
        self.kube = kube
        self.nodes = nodes
        self.state_dir = state_dir
        self.wake = wake
        self.runs = {}               # pod uid -> PodRun
        self.containers = {}         # the last `docker inspect` of ours, by name
        self._next_ip = IP_FIRST

    # ---- the loop's entry points -------------------------------------------------------------

    def sync(self, pods, containers):
        """One pass over every pod: `pods` as listed from the API, `containers` as inspected."""
        self.containers = containers
        lost = self.nodes.lost()
        mine = set(self.nodes.names())
        in_use = {r.ip for r in self.runs.values()}
        in_use |= {(p.get("status") or {}).get("podIP") for p in pods}
        in_use |= {c["Config"]["Labels"].get(LABEL_IP) for c in containers.values()}
        live = set()
        for pod in pods:
            uid, node = pod["metadata"]["uid"], pod["spec"].get("nodeName")
            if node not in mine:
                continue
            live.add(uid)
            if node in lost:
                continue  # a dead kubelet reports nothing
            try:
                run = self.runs.get(uid)
                if run is None:
                    run = self.runs[uid] = PodRun(pod, self._allocate_ip(in_use))
                    in_use.add(run.ip)
                    log.info("pod %s bound to %s: ip %s", run.key, node, run.ip)
                self._sync_pod(pod, run)
            except (KubeError, d.DockerError, OSError) as e:
                log.warning("pod %s/%s: %s (retrying)", pod["metadata"]["namespace"],
                            pod["metadata"]["name"], e)
        self._remove_orphans(live, lost)

    def lose_node(self, node):
        """The node died: its containers are killed, its pods left as they are."""
        for run in self.runs.values():
            if run.node == node:
                run.stop_probers()
        for name, info in d.containers().items():
            if info["Config"]["Labels"].get(LABEL_NODE) == node and d.running(info):
                d.docker("kill", name, check=False)
                log.info("killed %s (node %s lost)", name, node)

    def pod_ips(self):
        return {uid: run.ip for uid, run in self.runs.items()}

    def state(self):
        out = {}
        for run in self.runs.values():
            info = self.containers.get(run.container)
            out[run.key] = {"uid": run.uid, "node": run.node, "container": run.container,
                            "ip": run.ip, "running": bool(info and d.running(info)),
                            "ready": run.ready(), "restarts": run.restarts,
                            "waiting": run.waiting and list(run.waiting)}
        return out

    def shutdown(self):
        for run in self.runs.values():
            run.stop_probers()

    # ---- one pod -------------------------------------------------------------------------------

    def _sync_pod(self, pod, run):
        info = self.containers.get(run.container)
        if pod["metadata"].get("deletionTimestamp"):
            self._terminate(pod, run, info)
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        spec = pod["spec"]
        if len(spec["containers"]) != 1 or spec.get("initContainers"):
            run.waiting = ("Unsupported", "the kubelet stand-in runs single-container pods only")
        elif info is None:
            if time.monotonic() >= run.create_after:
                info = self._create(pod, run)
        elif not d.running(info):
            info = self._exited(pod, run, info)
        else:
            self._running(pod, run, info)
        self._report(pod, run, info)

    def _create(self, pod, run):
        container = pod["spec"]["containers"][0]
        image = container["image"]
        run.create_after = time.monotonic() + CONFIG_RETRY_S
        if not d.image_exists(image):
            run.waiting = ("ErrImageNeverPull",
                           f'Container image "{image}" is not present with pull policy of Never '
                           "(the stand-in runs local images only)")
            return None
        pod_dir = os.path.join(self.state_dir, "pods", run.uid)
        ns = pod["metadata"]["namespace"]
        try:
            env = resolve_env(pod, container, run.ip, d.GATEWAY,
                              lambda kind, _ns, name: lookup_data(self.kube, kind, ns, name))
        except ConfigError as e:
            run.waiting = ("CreateContainerConfigError", str(e))
            return None
        try:
            mounts = prepare_mounts(self.kube, pod, container, pod_dir)
        except ConfigError as e:
            run.waiting = ("ContainerCreating", str(e))
            return None
        labels = {"ironlog-e2e": "k8s", LABEL_UID: run.uid, LABEL_POD: run.key,
                  LABEL_NODE: run.node, LABEL_IP: run.ip}
        args = run_args(pod, container, name=run.container, network=d.NETWORK, ip=run.ip,
                        env=env, mounts=mounts, labels=labels)
        try:
            d.docker(*args)
        except d.DockerError as e:
            d.docker("rm", "-f", run.container, check=False)
            run.waiting = ("RunContainerError", str(e))
            return None
        run.waiting = None
        if run.ever_started:  # a container created anew counts as a restart
            run.restarts += 1
        run.ever_started = True
        log.info("started %s for %s on %s (%s)", run.container, run.key, run.node, run.ip)
        return self._inspect(run)

    def _inspect(self, run):
        found = d.containers()
        self.containers = found
        return found.get(run.container)

    def _exited(self, pod, run, info):
        state = info["State"]
        if state["FinishedAt"] != run.seen_exit:  # a new exit
            run.seen_exit = state["FinishedAt"]
            run.stop_probers()
            code = state["ExitCode"]
            run.last_state = {
                "exitCode": code,
                "reason": "OOMKilled" if state.get("OOMKilled") else
                ("Completed" if code == 0 else "Error"),
                "startedAt": docker_time(state["StartedAt"]),
                "finishedAt": docker_time(state["FinishedAt"]),
                "containerID": f"docker://{info['Id']}",
            }
            policy = pod["spec"].get("restartPolicy", "Always")
            ran = _seconds_between(state["StartedAt"], state["FinishedAt"])
            run.crashes = 0 if ran >= STABLE_RUN_S else run.crashes + 1
            if policy == "Always" or (policy == "OnFailure" and code != 0):
                delay = min(MAX_BACKOFF_S, 2.0 ** max(run.crashes - 1, 0))
                run.restart_at = time.monotonic() + delay
                log.info("%s exited with %s after %.0fs; restarting in %.0fs", run.container,
                         code, ran, delay)
            else:
                run.restart_at = None
                log.info("%s exited with %s; restartPolicy %s", run.container, code, policy)
        if run.restart_at is not None and time.monotonic() >= run.restart_at \
                and run.stopping is None:
            try:
                d.docker("start", run.container)
            except d.DockerError as e:
                # Say a volume directory is gone (a lost disk): create the container anew, which
                # reports why it cannot start.
                log.warning("restarting %s failed (creating it anew): %s", run.container, e)
                d.docker("rm", "-f", "-v", run.container, check=False)
                self.containers.pop(run.container, None)
                run.restart_at = None
                run.waiting = ("RunContainerError", str(e))
                return None
            run.restart_at = None
            run.restarts += 1
            log.info("restarted %s (restart %d)", run.container, run.restarts)
            return self._inspect(run)
        return info

    def _running(self, pod, run, info):
        started = info["State"]["StartedAt"]
        if run.run_id != started:
            run.stop_probers()
            run.run_id = started
            container = pod["spec"]["containers"][0]
            for kind in ("readiness", "liveness"):
                probe = container.get(f"{kind}Probe")
                if probe:
                    p = Prober(kind, probe, container, run.ip, run.container, run.key,
                               self.wake.set)
                    run.probers[kind] = p
                    p.start()
        liveness = run.probers.get("liveness")
        if liveness is not None and not liveness.result and run.stopping is None:
            log.info("liveness of %s failed (%s): killing %s", run.key, liveness.last,
                     run.container)
            run.stop_probers()
            self._stop(run, _grace(pod))

    def _stop(self, run, grace):
        def stop():
            d.docker("stop", "-t", str(grace), run.container, check=False, timeout=grace + 60)
            run.stopping = None
            self.wake.set()
        run.stopping = threading.Thread(target=stop, name=f"stop-{run.container}", daemon=True)
        run.stopping.start()

    def _terminate(self, pod, run, info):
        if info is not None and d.running(info):
            if run.stopping is None:
                grace = pod["metadata"].get("deletionGracePeriodSeconds", _grace(pod))
                log.info("pod %s deleted: stopping %s (grace %ss)", run.key, run.container, grace)
                run.stop_probers()
                self._stop(run, grace)
            return
        if run.stopping is not None:
            return
        exited = f"exit code {info['State']['ExitCode']}" if info is not None else "no container"
        d.docker("rm", "-f", "-v", run.container, check=False)
        self._forget(run)
        self.kube.delete(core("pods", pod["metadata"]["namespace"], pod["metadata"]["name"]),
                         grace_period=0, uid=run.uid)
        log.info("pod %s terminated (%s) and deleted", run.key, exited)

    def _forget(self, run):
        run.stop_probers()
        self.containers.pop(run.container, None)
        shutil.rmtree(os.path.join(self.state_dir, "pods", run.uid), ignore_errors=True)
        self.runs.pop(run.uid, None)

    def _remove_orphans(self, live, lost):
        """Containers and runs of pods that are gone (force-deleted, or deleted while their
        node was lost and since restored)."""
        for run in list(self.runs.values()):
            if run.uid not in live and run.node not in lost and run.stopping is None:
                log.info("pod %s is gone: removing %s", run.key, run.container)
                d.docker("rm", "-f", "-v", run.container, check=False)
                self._forget(run)
        for name, info in self.containers.items():
            labels = info["Config"]["Labels"]
            if labels.get(LABEL_UID) not in self.runs and labels.get(LABEL_NODE) not in lost:
                log.info("removing orphaned container %s", name)
                d.docker("rm", "-f", "-v", name, check=False)

    def _allocate_ip(self, in_use):
        prefix = d.SUBNET.rsplit(".", 1)[0]
        size = IP_LAST - IP_FIRST + 1
        for i in range(size):
            n = IP_FIRST + (self._next_ip - IP_FIRST + i) % size
            ip = f"{prefix}.{n}"
            if ip not in in_use:
                self._next_ip = n + 1
                return ip
        raise OSError(f"no free pod IP in {d.SUBNET}")

    # ---- status --------------------------------------------------------------------------------

    def _report(self, pod, run, info):
        current = pod.get("status") or {}
        status = pod_status(pod, run, info, current)
        if status_signature(status) != status_signature(current):
            m = pod["metadata"]
            self.kube.patch(core("pods", m["namespace"], m["name"], "status"), {"status": status})


def _grace(pod):
    return pod["spec"].get("terminationGracePeriodSeconds", 30)


def _seconds_between(start, end):
    def parse(v):
        return datetime.datetime.strptime(docker_time(v), "%Y-%m-%dT%H:%M:%SZ")
    try:
        return (parse(end) - parse(start)).total_seconds()
    except ValueError:
        return 0.0


def container_status(pod, run, info):
    container = pod["spec"]["containers"][0]
    running = info is not None and d.running(info)
    ready = running and run.ready()
    status = {"name": container["name"], "image": container["image"], "imageID": "",
              "restartCount": run.restarts, "ready": ready, "started": running}
    if info is not None:
        status["containerID"] = f"docker://{info['Id']}"
        status["imageID"] = f"docker://{info['Image']}"
    if info is None:
        reason, message = run.waiting or ("ContainerCreating", "")
        status["state"] = {"waiting": {"reason": reason, "message": message}}
    elif running:
        status["state"] = {"running": {"startedAt": docker_time(info["State"]["StartedAt"])}}
    elif run.restart_at is not None:
        status["state"] = {"waiting": {
            "reason": "CrashLoopBackOff",
            "message": f"back-off restarting failed container {container['name']}"}}
    else:
        status["state"] = {"terminated": run.last_state}
    status["lastState"] = {"terminated": run.last_state} if run.last_state else {}
    return status


def pod_status(pod, run, info, current):
    """The status to report; condition transition times are kept while a status holds."""
    cs = container_status(pod, run, info)
    terminated = cs["state"].get("terminated")
    if terminated is not None and pod["spec"].get("restartPolicy", "Always") != "Always":
        phase = "Succeeded" if terminated["exitCode"] == 0 else "Failed"
    elif run.ever_started:
        phase = "Running"
    else:
        phase = "Pending"
    ready = "True" if cs["ready"] else "False"
    existing = {c["type"]: c for c in current.get("conditions") or []}

    def cond(type_, status_, reason=None):
        old = existing.get(type_)
        since = old["lastTransitionTime"] if old and old.get("status") == status_ \
            and old.get("lastTransitionTime") else rfc3339()
        c = {"type": type_, "status": status_, "lastTransitionTime": since}
        if reason and status_ != "True":
            c["reason"] = reason
        return c

    scheduled = existing.get("PodScheduled") or cond("PodScheduled", "True")
    status = {
        "phase": phase,
        "hostIP": d.GATEWAY,
        "podIP": run.ip,
        "podIPs": [{"ip": run.ip}],
        "startTime": run.start_time,
        "conditions": [
            cond("Initialized", "True"),
            cond("Ready", ready, "ContainersNotReady"),
            cond("ContainersReady", ready, "ContainersNotReady"),
            scheduled,
        ],
        "containerStatuses": [cs],
    }
    return status


def status_signature(status):
    """What a status says, without its formatting: compared to decide whether to patch."""
    def state(s):
        kind = next(iter(s or {}), None)
        body = (s or {}).get(kind) or {}
        return (kind, body.get("reason"), body.get("message"), body.get("exitCode"),
                body.get("startedAt"))
    conditions = sorted((c["type"], c["status"]) for c in status.get("conditions") or [])
    containers = tuple(
        (c.get("name"), c.get("ready"), c.get("restartCount"), c.get("started"),
         c.get("containerID"), state(c.get("state")), state(c.get("lastState")))
        for c in status.get("containerStatuses") or [])
    return (status.get("phase"), status.get("podIP"), status.get("hostIP"),
            status.get("startTime"), tuple(conditions), containers)
