"""A secured KafkaCluster on the test bed: TLS from cert-manager-style Secrets, SCRAM and
client-certificate listeners, the ACL authorizer, and KafkaUsers that the operator turns into
credentials, ACLs and quotas through the admin API.

The cluster `secure` (3 brokers) has two listeners, `scram` (9094, SASL_SSL with
SCRAM-SHA-512) and `mtls` (9095, SSL with client certificates), its brokers' certificate in
the Secret `secure-tls` (tls.crt, tls.key, ca.crt: the layout cert-manager writes) and the CA
of client certificates in `clients-ca`. `User:CN=ops` is a super user: the tests' own admin,
over mutual TLS. Brokers replicate, and the operator calls the admin API, on the internal
listener (9091, SASL_PLAINTEXT) with the generated users of `secure-internal-users`.
"""

import base64
import json
import os
import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

import kafka_wire
from harness import apply, kubectl, wait_until
from kube import api, condition, core
from records import LOG
from tls_certs import CLIENT_EXTENSIONS, SERVER_EXTENSIONS, make_ca, make_leaf

NS = "e2e-secure"
CLUSTER = "secure"
BROKERS = [0, 1, 2]
IRONLOG = "ironlog.dev/v1alpha1"
SCRAM_BOOTSTRAP = f"{CLUSTER}-bootstrap.{NS}.svc:9094"
MTLS_BOOTSTRAP = f"{CLUSTER}-bootstrap.{NS}.svc:9095"
READY_TIMEOUT_S = 300


def broker_host(node_id):
    return f"{CLUSTER}-{node_id}.{CLUSTER}-brokers.{NS}.svc"


class Pki:
    """The run's certificates: the brokers' (from the CA `ca`) and clients' (from
    `clients-ca`), as files."""

    def __init__(self, d):
        self.d = d
        make_ca(d, "ca", "/CN=Ironlog e2e cluster CA")
        make_ca(d, "clients-ca", "/CN=Ironlog e2e clients CA")
        make_leaf(d, "broker", "ca", f"/CN={CLUSTER}-bootstrap.{NS}.svc",
                  f"subjectAltName=DNS:*.{CLUSTER}-brokers.{NS}.svc,"
                  f"DNS:{CLUSTER}-bootstrap.{NS}.svc\n" + SERVER_EXTENSIONS)
        for user in ("ops", "auditor"):
            make_leaf(d, user, "clients-ca", f"/CN={user}", CLIENT_EXTENSIONS)

    def file(self, name):
        return str(self.d / name)

    def mtls_config(self, user):
        return {"bootstrap.servers": MTLS_BOOTSTRAP, "security.protocol": "SSL",
                "ssl.ca.location": self.file("ca.pem"),
                "ssl.certificate.location": self.file(f"{user}.pem"),
                "ssl.key.location": self.file(f"{user}.key"), "logger": LOG}

    def scram_config(self, user, password):
        return {"bootstrap.servers": SCRAM_BOOTSTRAP, "security.protocol": "SASL_SSL",
                "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user,
                "sasl.password": password, "ssl.ca.location": self.file("ca.pem"),
                "logger": LOG}


def secret_from_files(name, files, type_="Opaque"):
    kubectl("create", "secret", "generic", name, "-n", NS, f"--type={type_}",
            *[f"--from-file={key}={path}" for key, path in files.items()])


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secure(kube, operator, pki):
    """The KafkaCluster `secure`, Ready, with the topics `orders-eu` and `payments`."""
    kubectl("create", "namespace", NS)
    secret_from_files("secure-tls", {"tls.crt": pki.file("broker.pem"),
                                     "tls.key": pki.file("broker.key"),
                                     "ca.crt": pki.file("ca.pem")}, type_="kubernetes.io/tls")
    secret_from_files("clients-ca", {"ca.crt": pki.file("clients-ca.pem")})
    apply({
        "apiVersion": IRONLOG, "kind": "KafkaCluster",
        "metadata": {"name": CLUSTER, "namespace": NS},
        "spec": {
            "replicas": len(BROKERS), "image": os.environ["IRONLOG_IMAGE"],
            "storage": {"size": "1Gi"},
            "listeners": [
                {"name": "scram", "port": 9094, "tls": True,
                 "authentication": {"type": "scram-sha-512"}},
                {"name": "mtls", "port": 9095, "tls": True, "authentication": {"type": "tls"}},
            ],
            "tls": {"certificate": {"secretName": "secure-tls"},
                    "clientCa": {"secretName": "clients-ca"}},
            "authorization": {"type": "simple", "superUsers": ["User:CN=ops"]},
        },
    })
    wait_until(lambda: ready(kube.get(api(IRONLOG, "kafkaclusters", NS, CLUSTER))),
               "KafkaCluster secure Ready", timeout=READY_TIMEOUT_S, interval=2)
    for topic in ("orders-eu", "payments"):
        apply({"apiVersion": IRONLOG, "kind": "KafkaTopic",
               "metadata": {"name": topic, "namespace": NS},
               "spec": {"cluster": CLUSTER, "partitions": 3, "replicas": 3,
                        "config": {"min.insync.replicas": "2"}}})
    for topic in ("orders-eu", "payments"):
        wait_until(lambda: ready(kube.get(api(IRONLOG, "kafkatopics", NS, topic))),
                   f"KafkaTopic {topic} Ready (created by the operator over the internal "
                   "listener)", timeout=120)
    yield
    kubectl("delete", "kafkacluster", CLUSTER, "-n", NS, "--wait=false", check=False)


def ready(obj):
    c = condition(obj, "Ready")
    return (c is not None and c["status"] == "True"
            and obj["status"].get("observedGeneration") == obj["metadata"]["generation"])


def user_resource(name, spec):
    return {"apiVersion": IRONLOG, "kind": "KafkaUser",
            "metadata": {"name": name, "namespace": NS}, "spec": {"cluster": CLUSTER, **spec}}


def condition_message(status, type_):
    return next(c["message"] for c in status["conditions"] if c["type"] == type_)


def secret_data(kube, name):
    secret = kube.get_opt(core("secrets", NS, name))
    if secret is None:
        return None
    return {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}


def wait_user_ready(kube, name):
    return wait_until(lambda: ready(kube.get(api(IRONLOG, "kafkausers", NS, name))),
                      f"KafkaUser {name} Ready", timeout=90)


def produce(config, topic, values, timeout_ms=15000):
    """Produces `values` (acks=all); returns the delivery errors, one per value (None for a
    delivered record)."""
    results = []
    p = Producer({**config, "acks": "all", "enable.idempotence": False,
                  "message.timeout.ms": timeout_ms})
    for v in values:
        p.produce(topic, v, on_delivery=lambda err, m: results.append(err))
    p.flush(timeout_ms / 1000 + 15)
    assert len(results) == len(values), f"{len(results)} delivery reports for {len(values)}"
    return results


# Produces one record and reports what librdkafka said, as JSON. Run in a child process: a
# client whose login is refused calls its error callback while it is destroyed, and in this
# process that left a stray Python exception that surfaced at an unrelated later call.
LOGIN_PROBE = """
import json, sys
from confluent_kafka import Producer
config, topic = json.load(sys.stdin)
client_errors, deliveries = [], []
p = Producer({**config, "acks": "all", "message.timeout.ms": 8000,
              "error_cb": lambda e: client_errors.append((e.name(), e.str()))})
p.produce(topic, b"refused", on_delivery=lambda err, m: deliveries.append(
    None if err is None else err.name()))
p.flush(20)
print(json.dumps({"deliveries": deliveries, "client_errors": client_errors}), flush=True)
"""


def assert_login_refused(config, topic):
    """A producer with `config` gets an authentication error and delivers nothing."""
    config = {k: v for k, v in config.items() if k != "logger"}
    out = subprocess.run([sys.executable, "-c", LOGIN_PROBE], input=json.dumps([config, topic]),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    names = sorted({name for name, _ in seen["client_errors"]})
    print(f"saw: login refused: deliveries {seen['deliveries']}, client errors {names}, "
          f"first {seen['client_errors'][:1]}")
    assert seen["deliveries"] != [None], "a record was delivered"
    assert "_AUTHENTICATION" in names, seen


def consume(config, topic, group, want, timeout=30, done=None):
    """Reads `topic` in `group` from the beginning until `want` records, `done(values)`, or
    an authorization error; returns (values in partition order, errors)."""
    c = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got, errors = [], []
    deadline = time.monotonic() + timeout
    try:
        while (len(got) < want and time.monotonic() < deadline
               and not (done and done([v for _, _, v in got]))):
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                errors.append(m.error())
                if m.error().code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                        KafkaError.GROUP_AUTHORIZATION_FAILED,
                                        KafkaError._AUTHENTICATION):
                    break
                continue
            got.append((m.partition(), m.offset(), m.value()))
    finally:
        c.close()
    return [v for _, _, v in sorted(got)], errors


def codes(errors):
    """The distinct error codes of `errors` (None, a delivered record, left out)."""
    return sorted({e.code() for e in errors if e is not None})


def test_the_secured_cluster_replicates_over_its_internal_listener(secure, kube, pki):
    kc = kube.get(api(IRONLOG, "kafkaclusters", NS, CLUSTER))
    assert kc["status"]["listeners"] == [
        {"name": "scram", "securityProtocol": "SASL_SSL", "bootstrap": SCRAM_BOOTSTRAP},
        {"name": "mtls", "securityProtocol": "SSL", "bootstrap": MTLS_BOOTSTRAP},
    ]
    internal = secret_data(kube, f"{CLUSTER}-internal-users")
    assert sorted(internal) == ["ironlog-broker", "ironlog-operator"]
    assert all(len(p) == 32 and p.isalnum() for p in internal.values()), "generated passwords"
    service_ports = {p["name"]: p["port"] for p in
                     kube.get(core("services", NS, f"{CLUSTER}-bootstrap"))["spec"]["ports"]}
    assert service_ports == {"scram": 9094, "mtls": 9095, "replication": 9091}

    # The tests' admin (super user User:CN=ops over mutual TLS) sees every replica in sync:
    # followers fetch on the internal listener as ironlog-broker.
    admin = AdminClient(pki.mtls_config("ops"))

    def in_sync():
        md = admin.list_topics(timeout=10)
        parts = [p for t in ("orders-eu", "payments") for p in md.topics[t].partitions.values()]
        return len(parts) == 6 and all(sorted(p.isrs) == BROKERS and sorted(p.replicas) ==
                                       BROKERS for p in parts)
    wait_until(in_sync, "orders-eu and payments: 3 replicas each, all in sync", timeout=120)

    # Without a login the internal listener answers nothing but authentication.
    with pytest.raises(kafka_wire.WireError) as refused:
        kafka_wire.metadata(f"{broker_host(0)}:9091", timeout=5)
    print(f"saw: anonymous Metadata on the internal listener: {refused.value!r}")


def test_a_kafka_user_produces_to_its_topics_and_nothing_else(secure, kube, pki):
    apply(user_resource("alice", {
        "authentication": {"type": "scram-sha-512"},
        "authorization": {"acls": [
            {"resource": {"type": "topic", "name": "orders-", "patternType": "prefix"},
             "operations": ["Write", "Describe"]},
            {"resource": {"type": "cluster"}, "operations": ["IdempotentWrite"]},
        ]},
        "quotas": {"producerByteRate": 10485760},
    }))
    wait_user_ready(kube, "alice")
    status = kube.get(api(IRONLOG, "kafkausers", NS, "alice"))["status"]
    assert (status["principal"], status["secret"]) == ("User:alice", "alice")
    # What the operator set on the cluster.
    assert condition_message(status, "Ready") == \
        "User:alice has its credential, 3 ACLs, quotas producer_byte_rate=10485760", status

    secret = kube.get(core("secrets", NS, "alice"))
    owner = secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner.get("controller")) == ("KafkaUser", "alice", True)
    login = secret_data(kube, "alice")
    assert login["username"] == "alice" and login["sasl.mechanism"] == "SCRAM-SHA-512"
    assert len(login["password"]) == 32 and login["password"].isalnum()
    assert f'password="{login["password"]}"' in login["sasl.jaas.config"]
    alice = pki.scram_config("alice", login["password"])

    values = [f"alice-{i:03d}".encode() for i in range(50)]
    assert produce(alice, "orders-eu", values) == [None] * 50

    denied = produce(alice, "payments", [b"not-allowed"])
    print(f"saw: alice producing to payments: {denied}")
    assert codes(denied) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]

    got, errors = consume(alice, "orders-eu", "alice-readers", want=1, timeout=20)
    print(f"saw: alice reading orders-eu: {got[:3]} {errors}")
    assert got == []
    assert set(codes(errors)) & {KafkaError.GROUP_AUTHORIZATION_FAILED,
                                 KafkaError.TOPIC_AUTHORIZATION_FAILED}, errors

    assert_login_refused({**alice, "sasl.password": "not-" + login["password"]}, "orders-eu")

    # What reached the topic, read by the super user: exactly alice's 50 records (per
    # partition in the order produced), nothing from the refused attempts.
    read, errors = consume(pki.mtls_config("ops"), "orders-eu", "ops-readers", want=51,
                           timeout=20)
    assert not [e for e in errors if e.code() != KafkaError._PARTITION_EOF], errors
    assert sorted(read) == values


def test_a_tls_user_reads_with_its_certificate(secure, kube, pki):
    apply(user_resource("auditor", {
        "authentication": {"type": "tls"},
        "authorization": {"acls": [
            {"resource": {"type": "topic", "name": "orders-", "patternType": "prefix"},
             "operations": ["Read", "Describe"]},
            {"resource": {"type": "group", "name": "audit"}, "operations": ["Read"]},
        ]},
    }))
    wait_user_ready(kube, "auditor")
    assert kube.get(api(IRONLOG, "kafkausers", NS, "auditor"))["status"]["principal"] == \
        "User:CN=auditor"
    assert secret_data(kube, "auditor") is None, "a TLS user gets no Secret"

    ops = pki.mtls_config("ops")
    marks = [f"audit-{i}".encode() for i in range(10)]
    assert produce(ops, "orders-eu", marks) == [None] * 10
    auditor = pki.mtls_config("auditor")
    got, errors = consume(auditor, "orders-eu", "audit", want=10_000, timeout=30,
                          done=lambda values: set(marks) <= set(values))
    assert set(marks) <= set(got), f"auditor read {len(got)} records, errors {errors}"
    denied = produce(auditor, "orders-eu", [b"auditors-do-not-write"])
    print(f"saw: auditor producing: {denied}")
    assert codes(denied) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def test_changed_and_deleted_users_lose_their_rights(secure, kube, pki):
    apply(user_resource("bob", {
        "authentication": {"type": "scram-sha-512"},
        "authorization": {"acls": [
            {"resource": {"type": "topic", "name": "payments"}, "operations": ["Write"]},
            {"resource": {"type": "cluster"}, "operations": ["IdempotentWrite"]},
        ]},
    }))
    wait_user_ready(kube, "bob")
    first = secret_data(kube, "bob")["password"]
    assert produce(pki.scram_config("bob", first), "payments", [b"bob-1"]) == [None]

    # A new password written into the Secret is set on the cluster; the old one stops working.
    new = "Rotated" + first[7:]
    kube.patch(core("secrets", NS, "bob"),
               {"data": {"password": base64.b64encode(new.encode()).decode()}})
    wait_until(lambda: produce(pki.scram_config("bob", new), "payments", [b"bob-2"]) == [None],
               "bob's new password accepted", timeout=60, interval=2)
    assert_login_refused(pki.scram_config("bob", first), "payments")

    # An ACL taken out of the spec is taken off the cluster.
    apply(user_resource("bob", {
        "authentication": {"type": "scram-sha-512"},
        "authorization": {"acls": [
            {"resource": {"type": "topic", "name": "orders-eu"}, "operations": ["Write"]},
            {"resource": {"type": "cluster"}, "operations": ["IdempotentWrite"]},
        ]},
    }))
    wait_user_ready(kube, "bob")
    bob = pki.scram_config("bob", new)
    assert codes(produce(bob, "payments", [b"bob-3"])) == \
        [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    assert produce(bob, "orders-eu", [b"bob-4"]) == [None]

    # Deleted: the finalizer removes the credential and the ACLs, the Secret goes with it.
    kubectl("delete", "kafkauser", "bob", "-n", NS, "--timeout=60s")
    assert_login_refused(bob, "orders-eu")
    wait_until(lambda: secret_data(kube, "bob") is None, "Secret bob garbage-collected",
               timeout=60)
    admin = AdminClient(pki.mtls_config("ops"))  # alive until the answer is in
    assert admin.describe_acls(_principal_filter("User:bob")).result(timeout=30) == []


def _principal_filter(principal):
    from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType,
                                       ResourcePatternType, ResourceType)
    return AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,
                            AclOperation.ANY, AclPermissionType.ANY)
