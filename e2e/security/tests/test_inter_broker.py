"""Brokers talk to each other securely: followers fetch from their leaders over a SASL_SSL
inter-broker listener with SCRAM-SHA-512, as a user that is a super user, with the ACL
authorizer on; the Raft (controller) listener is mutual TLS. A broker given the wrong
inter-broker password never catches up: its leaders refuse its login. The controller
listener refuses plain TCP and certificates from another CA."""

import os
import socket
import ssl

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

import kafka_wire
from cluster import wait_until
from conftest import ADMIN, second_listener_ports

BROKER_USER = ("broker", "broker-secret")
# How a follower logs a refused login (ironlog_client's ClientError::Authentication).
REFUSED = "SASL authentication with broker"
PARTITIONS = 3


def secure_cluster(cluster_factory, certs, password_of=lambda node_id: BROKER_USER[1]):
    """Three nodes: clients on PLAINTEXT (as User:ANONYMOUS, a super user here, so the test
    needs no client login), followers on INTERNAL (SASL_SSL) as User:broker."""
    c = cluster_factory(3, start=False)
    internal = second_listener_ports(c)
    for i, node in c.nodes.items():
        node.extra_args += [
            "--listeners", f"PLAINTEXT://127.0.0.1:{node.port},INTERNAL://127.0.0.1:{internal[i]}",
            "--listener-security-protocol-map", "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL",
            "--inter-broker-listener-name", "INTERNAL",
            "--tls-cert", str(certs.broker_cert), "--tls-key", str(certs.broker_key),
            "--inter-broker-tls-ca", str(certs.ca),
            "--controller-security-protocol", "SSL", "--tls-client-ca", str(certs.ca),
            "--inter-broker-sasl-username", BROKER_USER[0],
            "--inter-broker-sasl-password", password_of(i),
            "--authorizer", "acl", "--super-users", "User:broker;User:ANONYMOUS"]
    os.environ["IRONLOG_ADD_SCRAM"] = (
        f"SCRAM-SHA-512=[name={BROKER_USER[0]},password={BROKER_USER[1]}];"
        f"SCRAM-SHA-512=[name={ADMIN[0]},password={ADMIN[1]}]")
    try:
        c.start()
    finally:
        del os.environ["IRONLOG_ADD_SCRAM"]
    return c, internal


def isr(c, topic, via):
    return {q: sorted(p.isr) for q, p in
            kafka_wire.metadata(c.nodes[via].bootstrap, [topic]).topics[topic].partitions.items()}


def test_followers_replicate_over_sasl_ssl(cluster_factory, certs, topic):
    c, internal = secure_cluster(cluster_factory, certs)
    # What the brokers register for each other is the INTERNAL listener; clients of the
    # PLAINTEXT listener are told PLAINTEXT addresses.
    md = kafka_wire.metadata(c.nodes[1].bootstrap)
    assert {i: port for i, (_, port, _) in md.brokers.items()} == \
        {i: n.port for i, n in c.nodes.items()}
    admin = AdminClient({"bootstrap.servers": c.bootstrap()})
    new = NewTopic(topic, PARTITIONS, 3, config={"min.insync.replicas": "3"})
    for future in admin.create_topics([new]).values():
        future.result(timeout=30)
    wait_until(lambda: all(r == [1, 2, 3] for r in isr(c, topic, 1).values()),
               f"every partition of {topic} with 3 in-sync replicas", timeout=60)
    # acks=all with min.insync.replicas=3: acknowledged only once both followers fetched it
    # over SASL_SSL.
    p = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all", "linger.ms": 5})
    errors = []
    for i in range(300):
        p.produce(topic, f"v{i}".encode(), partition=i % PARTITIONS,
                  on_delivery=lambda err, _m: errors.append(err) if err else None)
    assert p.flush(60) == 0
    assert errors == [], errors[:3]
    del p
    for q, replicas in isr(c, topic, 1).items():
        assert replicas == [1, 2, 3], (q, replicas)
    for i, node in c.nodes.items():
        assert REFUSED not in node.all_logs(), f"node {i}"


def test_the_controller_listener_refuses_plain_tcp_and_foreign_certificates(cluster_factory,
                                                                           certs):
    c, _ = secure_cluster(cluster_factory, certs)
    leader = c.wait_raft_leader()
    node = c.nodes[leader]
    addr = ("127.0.0.1", node.controller_port)
    # A plaintext Raft frame: the handshake fails and the connection is closed.
    with socket.create_connection(addr, timeout=10) as s:
        s.sendall(b"\x00\x00\x00\x05hello")
        answer = s.recv(100)
        assert answer == b"" or answer[:1] == b"\x15", answer  # closed, or a TLS alert
    # TLS with a client certificate from another CA: refused.
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    ctx.load_cert_chain(str(certs.rogue_cert), str(certs.rogue_key))
    refused = None
    try:
        with socket.create_connection(addr, timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"\x00\x00\x00\x05hello")
                refused = s.recv(100)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        refused = e
    assert refused == b"" or isinstance(refused, OSError), refused
    wait_until(lambda: node.all_logs().count("controller listener: TLS handshake failed") >= 2,
               "the node to log both refused handshakes", timeout=10)
    # The quorum is whole: every node sees the same Raft leader.
    assert c.wait_raft_leader() == leader


def test_a_broker_with_the_wrong_inter_broker_password_never_catches_up(cluster_factory, certs,
                                                                         topic):
    c, _ = secure_cluster(cluster_factory, certs,
                          password_of=lambda i: "not-the-password" if i == 3 else BROKER_USER[1])
    admin = AdminClient({"bootstrap.servers": c.bootstrap()})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 3)]).values():
        future.result(timeout=30)
    md = wait_until(lambda: (lambda parts: parts if len(parts) == PARTITIONS and all(
        p.leader > 0 for p in parts.values()) else None)(
        kafka_wire.metadata(c.nodes[1].bootstrap, [topic]).topics[topic].partitions),
        f"node 1 to know the leaders of {topic}", timeout=30)
    led_by_others = [q for q, p in md.items() if p.leader != 3]
    assert led_by_others, md
    wait_until(lambda: REFUSED in c.nodes[3].all_logs(),
               "node 3 to log that its login was refused", timeout=60)
    # Its leaders drop it from the ISR once it lags replica.lag.time.max.ms, and it never
    # comes back; nodes 1 and 2 stay in sync with each other.
    wait_until(lambda: all(3 not in isr(c, topic, 1)[q] for q in led_by_others),
               "node 3 out of the ISR of the partitions nodes 1 and 2 lead", timeout=90)
    p = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all"})
    for q in led_by_others:
        p.produce(topic, b"after", partition=q)
    assert p.flush(60) == 0
    del p
    for q in led_by_others:
        assert isr(c, topic, 1)[q] == [1, 2], (q, isr(c, topic, 1)[q])
    assert REFUSED not in c.nodes[1].all_logs() + c.nodes[2].all_logs()
