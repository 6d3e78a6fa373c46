"""Fixtures for the security suite: the run's certificates, and a broker with four
listeners (PLAINTEXT, SASL_SSL, SSL with mutual TLS, SASL_PLAINTEXT) and an admin user
created at start-up (`--add-scram`)."""

import os
from dataclasses import dataclass

import pytest

# Imported so pytest finds the fixtures and the report hook in this conftest.
from broker import (Broker, binary_path, broker, broker_factory,  # noqa: F401
                    free_ports, pytest_runtest_makereport, unique_name)
from certs import make_certs
from cluster import cluster_factory  # noqa: F401
from measure import measure, pytest_terminal_summary  # noqa: F401

ADMIN = ("admin", "admin-secret")


@dataclass
class SecureBroker:
    broker: Broker
    certs: object
    plaintext: str
    sasl_ssl: str
    ssl: str
    sasl_plaintext: str

    def sasl_ssl_config(self, user=ADMIN[0], password=ADMIN[1], mechanism="SCRAM-SHA-512"):
        """librdkafka properties for the SASL_SSL listener."""
        return {"bootstrap.servers": self.sasl_ssl, "security.protocol": "SASL_SSL",
                "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password,
                "ssl.ca.location": str(self.certs.ca)}

    def mtls_config(self, cert=None, key=None):
        """librdkafka properties for the SSL listener with a client certificate."""
        return {"bootstrap.servers": self.ssl, "security.protocol": "SSL",
                "ssl.ca.location": str(self.certs.ca),
                "ssl.certificate.location": str(cert or self.certs.client_cert),
                "ssl.key.location": str(key or self.certs.client_key)}


def second_listener_ports(cluster):
    """{node id: a free port} for a second listener on each node of a cluster not started
    yet; none is a port the cluster picked (and released) already."""
    taken = {p for n in cluster.nodes.values()
             for p in (n.port, n.metrics_port, n.controller_port)}
    ports = [p for p in free_ports(4 * len(cluster.nodes)) if p not in taken]
    assert len(ports) >= len(cluster.nodes)
    return dict(zip(cluster.nodes, ports))


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def start_secure_broker(workdir, certs, *extra):
    workdir.mkdir(parents=True, exist_ok=True)
    kafka, metrics, sasl_ssl, ssl, sasl_plain = free_ports(5)
    listeners = (f"PLAINTEXT://127.0.0.1:{kafka},SASL_SSL://127.0.0.1:{sasl_ssl},"
                 f"SSL://127.0.0.1:{ssl},SASL_PLAINTEXT://127.0.0.1:{sasl_plain}")
    os.environ["IRONLOG_ADD_SCRAM"] = f"SCRAM-SHA-512=[name={ADMIN[0]},password={ADMIN[1]}]"
    try:
        b = Broker(binary_path(), workdir, [
            "--listeners", listeners,
            "--tls-cert", str(certs.broker_cert), "--tls-key", str(certs.broker_key),
            "--tls-client-ca", str(certs.ca), *extra], ports=(kafka, metrics))
        b.start()
    finally:
        del os.environ["IRONLOG_ADD_SCRAM"]
    return SecureBroker(b, certs, f"127.0.0.1:{kafka}", f"127.0.0.1:{sasl_ssl}",
                        f"127.0.0.1:{ssl}", f"127.0.0.1:{sasl_plain}")


@pytest.fixture(scope="module")
def secure(tmp_path_factory, certs):
    """One secured broker for a test module; it must stop cleanly at the end."""
    s = start_secure_broker(tmp_path_factory.mktemp("broker"), certs)
    yield s
    if s.broker.alive():
        code = s.broker.stop()
        assert code == 0, f"broker did not stop cleanly:\n{s.broker.all_logs()[-5000:]}"


@pytest.fixture
def topic(request):
    return unique_name(request.node.name)
