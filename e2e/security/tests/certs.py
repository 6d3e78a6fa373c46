"""Certificates for the run, made with the openssl command: a CA, the broker's certificate
(for 127.0.0.1 and localhost), a client certificate from the same CA, and a client
certificate from another CA the broker does not trust."""

import subprocess
from dataclasses import dataclass
from pathlib import Path


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


def _run(*args, cwd):
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"openssl {' '.join(args)} failed:\n{result.stderr}"


def _ca(d, name, subject):
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", subject,
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _leaf(d, name, ca, subject, extensions):
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
    (d / f"{name}.ext").write_text(extensions)
    _run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
         "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
         cwd=d)


def make_certs(d: Path) -> Certs:
    d.mkdir(parents=True, exist_ok=True)
    _ca(d, "ca", "/CN=Ironlog Test CA")
    _ca(d, "rogue-ca", "/CN=Rogue CA")
    # A broker's certificate is also its client certificate to other brokers (Raft over
    # mutual TLS).
    _leaf(d, "broker", "ca", "/CN=localhost",
          "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
          "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n")
    client_ext = ("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                  "extendedKeyUsage=clientAuth\n")
    _leaf(d, "client", "ca", "/C=US/O=Ironlog Tests/CN=client-a", client_ext)
    _leaf(d, "rogue", "rogue-ca", "/C=US/O=Ironlog Tests/CN=client-a", client_ext)
    return Certs(ca=d / "ca.pem", broker_cert=d / "broker.pem", broker_key=d / "broker.key",
                 client_cert=d / "client.pem", client_key=d / "client.key",
                 rogue_cert=d / "rogue.pem", rogue_key=d / "rogue.key")
