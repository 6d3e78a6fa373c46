"""Pure translation of a pod's container into a `docker run` command line, with the kubelet's
semantics: `command` replaces the image's ENTRYPOINT and `args` its CMD; environment variables
in order with `$(VAR)` expansion and the downward API; the user and groups from the security
contexts; the pod's DNS names as network aliases.

No I/O here: ConfigMaps and Secrets come in through a `lookup(kind, namespace, name)` callable.
"""

import base64
import re

HOST_DOMAIN = "svc"
CLUSTER_DOMAIN = "cluster.local"


class ConfigError(Exception):
    """The container cannot be configured yet (the kubelet's CreateContainerConfigError)."""


def expand(text, values):
    """Kubernetes `$(VAR)` expansion: `$(NAME)` becomes the value of NAME when it is defined
    and stays as it is otherwise; `$$` is a literal `$`."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "$" or i + 1 == len(text):
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:  # an incomplete reference stays as written
                out.append("$(")
                i += 2
                continue
            name = text[i + 2:end]
            out.append(values[name] if name in values else f"$({name})")
            i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


_MAP_KEY = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_ref(pod, path, pod_ip, host_ip):
    """The value of a downward-API fieldRef."""
    meta, spec = pod["metadata"], pod["spec"]
    simple = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta["uid"],
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
    }
    if path in simple:
        return simple[path]
    m = _MAP_KEY.match(path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    raise ConfigError(f"fieldRef {path!r} is not supported by the kubelet stand-in")


def _ref_data(lookup, kind, ns, ref):
    data = lookup(kind, ns, ref["name"])
    if data is None and not ref.get("optional"):
        raise ConfigError(f"{kind} {ns}/{ref['name']} not found")
    return data


def resolve_env(pod, container, pod_ip, host_ip, lookup):
    """[(name, value)] of the container's environment, as the kubelet computes it: envFrom
    first, then env in order, each value expanded against the variables defined before it."""
    ns = pod["metadata"]["namespace"]
    values = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind in ("configMap", "secret"):
            ref = source.get(f"{kind}Ref")
            if ref is not None:
                for k, v in (_ref_data(lookup, kind, ns, ref) or {}).items():
                    values[prefix + k] = v
    for var in container.get("env") or []:
        name = var["name"]
        source = var.get("valueFrom")
        if source is None:
            values[name] = expand(var.get("value", ""), values)
        elif "fieldRef" in source:
            values[name] = field_ref(pod, source["fieldRef"]["fieldPath"], pod_ip, host_ip)
        elif "configMapKeyRef" in source or "secretKeyRef" in source:
            kind = "configMap" if "configMapKeyRef" in source else "secret"
            ref = source[f"{kind}KeyRef"]
            data = _ref_data(lookup, kind, ns, ref)
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    continue
                raise ConfigError(f"key {ref['key']!r} not found in {kind} {ns}/{ref['name']}")
            values[name] = data[ref["key"]]
        else:
            raise ConfigError(f"env {name}: {sorted(source)} is not supported by the stand-in")
    return list(values.items())


def decode_secret(secret):
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def hostname(pod):
    return pod["spec"].get("hostname") or pod["metadata"]["name"]


def dns_names(pod):
    """The names a pod answers to in cluster DNS: `<hostname>.<subdomain>.<ns>.svc[.cluster.local]`
    when it has a subdomain (a StatefulSet pod: its headless Service)."""
    sub = pod["spec"].get("subdomain")
    if not sub:
        return []
    name = f"{hostname(pod)}.{sub}.{pod['metadata']['namespace']}.{HOST_DOMAIN}"
    return [name, f"{name}.{CLUSTER_DOMAIN}"]


def user_args(pod, container):
    """`--user` and `--group-add` from the pod's and the container's securityContext."""
    pod_sc = pod["spec"].get("securityContext") or {}
    sc = {**pod_sc, **(container.get("securityContext") or {})}
    args = []
    uid, gid = sc.get("runAsUser"), sc.get("runAsGroup")
    if uid is not None:
        args += ["--user", f"{uid}:{gid}" if gid is not None else str(uid)]
    groups = list(pod_sc.get("supplementalGroups") or [])
    if pod_sc.get("fsGroup") is not None:
        groups.append(pod_sc["fsGroup"])
    for g in sorted(set(groups)):
        args += ["--group-add", str(g)]
    return args


def run_args(pod, container, *, name, network, ip, env, mounts, labels):
    """The `docker run` arguments (after `docker`). `mounts`: [(host path, container path,
    read only)]; `env`: [(name, value)] (already resolved)."""
    values = dict(env)
    args = ["run", "-d", "--name", name, "--network", network, "--ip", ip,
            "--hostname", hostname(pod)]
    for alias in dns_names(pod):
        args += ["--network-alias", alias]
    for k, v in sorted(labels.items()):
        args += ["--label", f"{k}={v}"]
    args += user_args(pod, container)
    for k, v in env:
        args += ["-e", f"{k}={v}"]
    for source, target, read_only in mounts:
        spec = f"type=bind,source={source},target={target}"
        args += ["--mount", spec + (",readonly" if read_only else "")]
    if container.get("workingDir"):
        args += ["--workdir", container["workingDir"]]
    command = [expand(c, values) for c in container.get("command") or []]
    cargs = [expand(a, values) for a in container.get("args") or []]
    if command:
        # An explicit ENTRYPOINT also drops the image's CMD, as Kubernetes does.
        args += ["--entrypoint", command[0], container["image"], *command[1:], *cargs]
    else:
        args += [container["image"], *cargs]
    return args


def named_port(container, port):
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p["containerPort"]
    raise ConfigError(f"container {container['name']} has no port named {port!r}")
