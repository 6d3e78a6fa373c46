"""The kubelet stand-in's pure parts: what a broker pod becomes as a `docker run`, the hosts
file, the provisioned volume. No API server or Docker needed."""

import pytest

from standin.dns import hosts_entries, render
from standin.podspec import ConfigError, expand, resolve_env, run_args
from standin.storage import local_volume

BROKER_POD = {
    "metadata": {"name": "events-2", "namespace": "prod", "uid": "u-1234-5678",
                 "labels": {"app": "ironlog"}},
    "spec": {
        "nodeName": "node-b", "hostname": "events-2", "subdomain": "events-brokers",
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
        "containers": [{
            "name": "broker", "image": "ironlog/ironlog:e2e-compose",
            "command": ["/bin/sh", "-c",
                        'export IRONLOG_NODE_ID="${POD_NAME##*-}"; exec ironlog broker'],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE",
                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "IRONLOG_ADVERTISED_LISTENER",
                 "value": "$(POD_NAME).events-brokers.prod.svc:9092"},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {
                    "fieldPath": "metadata.labels['app']"}}},
                {"name": "LITERAL", "value": "$$(POD_NAME) $(UNDEFINED) $(LATER)"},
                {"name": "LATER", "value": "x"},
            ],
        }],
    },
}


def no_lookup(kind, ns, name):
    return None


def test_expansion_follows_kubernetes():
    values = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)", values) == "1-two"
    assert expand("$$(A)", values) == "$(A)"
    assert expand("$(C) $(A", values) == "$(C) $(A"
    assert expand("$A $", values) == "$A $"


def test_broker_env_has_downward_api_and_ordered_expansion():
    env = dict(resolve_env(BROKER_POD, BROKER_POD["spec"]["containers"][0], "172.28.0.12",
                           "172.28.0.1", no_lookup))
    assert env["POD_NAME"] == "events-2"
    assert env["POD_NAMESPACE"] == "prod"
    assert env["IRONLOG_ADVERTISED_LISTENER"] == "events-2.events-brokers.prod.svc:9092"
    assert env["POD_IP"] == "172.28.0.12"
    assert env["APP"] == "ironlog"
    # $$ escapes; undefined and later-defined references stay as written.
    assert env["LITERAL"] == "$(POD_NAME) $(UNDEFINED) $(LATER)"


def test_config_map_refs_resolve_or_block():
    container = {"name": "c", "env": [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}
    data = {("configMap", "prod", "cm"): {"k": "v"}}
    env = resolve_env(BROKER_POD, container, "ip", "host",
                      lambda kind, ns, name: data.get((kind, ns, name)))
    assert env == [("X", "v")]
    with pytest.raises(ConfigError, match="not found"):
        resolve_env(BROKER_POD, container, "ip", "host", no_lookup)


def test_broker_pod_becomes_docker_run():
    container = BROKER_POD["spec"]["containers"][0]
    env = resolve_env(BROKER_POD, container, "172.28.0.12", "172.28.0.1", no_lookup)
    args = run_args(BROKER_POD, container, name="k8s_prod_events-2_u-1234", network="net",
                    ip="172.28.0.12", env=env,
                    mounts=[("/tmp/pv", "/var/lib/ironlog", False), ("/tmp/cm", "/etc/ironlog", True)],
                    labels={"ironlog-e2e": "k8s"})
    joined = " ".join(args)
    assert "--network net --ip 172.28.0.12 --hostname events-2" in joined
    assert "--network-alias events-2.events-brokers.prod.svc " in joined
    assert "--network-alias events-2.events-brokers.prod.svc.cluster.local" in joined
    assert "--user 1000:1000 --group-add 1000" in joined
    assert "--mount type=bind,source=/tmp/pv,target=/var/lib/ironlog --mount" in joined
    assert "type=bind,source=/tmp/cm,target=/etc/ironlog,readonly" in joined
    # command replaces the ENTRYPOINT (and with it the image's CMD): the shell line follows
    # the image as the arguments.
    image_at = args.index("ironlog/ironlog:e2e-compose")
    assert args[image_at - 2:image_at] == ["--entrypoint", "/bin/sh"]
    assert args[image_at + 1:] == container["command"][1:]


def test_args_alone_replace_cmd_only():
    container = {"name": "c", "image": "img", "args": ["serve", "$(PORT)"]}
    args = run_args({"metadata": {"name": "p", "namespace": "n", "uid": "u"}, "spec": {}},
                    container, name="c", network="net", ip="1.2.3.4", env=[("PORT", "80")],
                    mounts=[], labels={})
    assert "--entrypoint" not in args
    assert args[-3:] == ["img", "serve", "80"]


def test_hosts_file_has_pod_and_service_names():
    pod = dict(BROKER_POD, status={"podIP": "172.28.0.12"})
    other = {"metadata": {"name": "x", "namespace": "prod", "uid": "u2"},
             "spec": {}, "status": {"podIP": "172.28.0.13"}}
    endpoints = [{"metadata": {"name": "events-bootstrap", "namespace": "prod"},
                  "subsets": [{"addresses": [{"ip": "172.28.0.12"}, {"ip": "172.28.0.11"}]}]}]
    text = render(hosts_entries([pod, other], endpoints, {"u-1234-5678": "172.28.0.20"}))
    lines = text.splitlines()
    # The stand-in's own knowledge of a pod's IP wins over a status not yet updated.
    assert "172.28.0.20 events-2.events-brokers.prod.svc" in lines
    assert "172.28.0.20 events-2.events-brokers.prod.svc.cluster.local" in lines
    assert [ln for ln in lines if ln.endswith(" events-bootstrap.prod.svc")] == [
        "172.28.0.11 events-bootstrap.prod.svc", "172.28.0.12 events-bootstrap.prod.svc"]
    assert not any("172.28.0.13" in ln for ln in lines)  # no subdomain: no name


def test_provisioned_volume_is_prebound_and_pinned_to_its_node():
    pvc = {"metadata": {"name": "data-events-0", "namespace": "prod", "uid": "c-1"},
           "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}
    pv = local_volume(pvc, "pvc-c-1", "node-c", "/tmp/x/nodes/node-c/pv/pvc-c-1")
    spec = pv["spec"]
    assert spec["claimRef"] == {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                "namespace": "prod", "name": "data-events-0", "uid": "c-1"}
    assert spec["capacity"] == {"storage": "1Gi"}
    assert spec["local"]["path"].endswith("/nodes/node-c/pv/pvc-c-1")
    term = spec["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-c"]}
