"""Certificates for the run, made with the openssl command: a CA, the broker's certificate
(for 127.0.0.1 and localhost), a client certificate from the same CA, and a client
certificate from another CA the broker does not trust."""

from dataclasses import dataclass
from pathlib import Path

from tls_certs import CLIENT_EXTENSIONS, SERVER_EXTENSIONS, make_ca, make_leaf


@dataclass
class Certs:
    ca: Path
    broker_cert: Path
    broker_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path
    # The principal the broker derives from client_cert (Kafka's RFC 2253 form).
    client_principal: str = "User:CN=client-a,O=Ironlog Tests,C=US"


def make_certs(d: Path) -> Certs:
    d.mkdir(parents=True, exist_ok=True)
    make_ca(d, "ca", "/CN=Ironlog Test CA")
    make_ca(d, "rogue-ca", "/CN=Rogue CA")
    # A broker's certificate is also its client certificate to other brokers (Raft over
    # mutual TLS).
    make_leaf(d, "broker", "ca", "/CN=localhost",
              "subjectAltName=DNS:localhost,IP:127.0.0.1\n" + SERVER_EXTENSIONS)
    make_leaf(d, "client", "ca", "/C=US/O=Ironlog Tests/CN=client-a", CLIENT_EXTENSIONS)
    make_leaf(d, "rogue", "rogue-ca", "/C=US/O=Ironlog Tests/CN=client-a", CLIENT_EXTENSIONS)
    return Certs(ca=d / "ca.pem", broker_cert=d / "broker.pem", broker_key=d / "broker.key",
                 client_cert=d / "client.pem", client_key=d / "client.key",
                 rogue_cert=d / "rogue.pem", rogue_key=d / "rogue.key")
