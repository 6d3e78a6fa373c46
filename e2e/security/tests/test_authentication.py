"""Authentication with real clients: SCRAM-SHA-512 over SASL_SSL and mutual TLS with
confluent-kafka (librdkafka 2.1x), kafka-python and kcat (Debian's librdkafka 2.0); PLAIN and
SCRAM-SHA-256 against the same credential store; users managed with Kafka's admin API and
kept across a restart; the failures a client sees for a wrong password, an untrusted or
missing certificate; what an unauthenticated connection may send; re-authentication."""

import logging
import random
import re
import socket
import struct
import subprocess
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError as KafkaPythonError

from conftest import ADMIN, start_secure_broker

RECORDS = 50


def values(topic, n=RECORDS):
    return [f"{topic}-{i}".encode() for i in range(n)]


def confluent_round_trip(config, topic):
    """Produces RECORDS records with acks=all and reads them back; returns what was read."""
    errors = []
    p = Producer({**config, "acks": "all", "error_cb": errors.append})
    for v in values(topic):
        p.produce(topic, v)
    assert p.flush(30) == 0, f"unflushed records; client errors: {errors}"
    c = Consumer({**config, "group.id": f"g-{topic}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < RECORDS and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    c.close()
    return got


def kafka_python_security(secure, protocol):
    common = {"bootstrap_servers": secure.sasl_ssl if protocol == "SASL_SSL" else secure.ssl,
              "security_protocol": protocol, "ssl_cafile": str(secure.certs.ca),
              "request_timeout_ms": 15000}
    if protocol == "SASL_SSL":
        common.update(sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=ADMIN[0],
                      sasl_plain_password=ADMIN[1])
    else:
        common.update(ssl_certfile=str(secure.certs.client_cert),
                      ssl_keyfile=str(secure.certs.client_key))
    return common


def kafka_python_round_trip(common, topic):
    producer = KafkaProducer(acks="all", **common)
    for v in values(topic):
        producer.send(topic, v)
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10000,
                             group_id=None, **common)
    got = [m.value for m in consumer][:RECORDS]
    consumer.close()
    return got


def kcat(args, input_text=None, timeout=60):
    return subprocess.run(["kcat", *args], input=input_text, capture_output=True, text=True,
                          timeout=timeout)


def first_error_line(stderr):
    """The first line of a tool's stderr that names an error (for the test's report)."""
    lines = [ln for ln in stderr.splitlines() if "rror" in ln or "fail" in ln.lower()]
    return (lines or stderr.splitlines() or [""])[0].strip()


def kcat_props(config):
    out = []
    for key, value in config.items():
        if key == "bootstrap.servers":
            out += ["-b", value]
        elif key == "sasl.mechanism":
            out += ["-X", f"sasl.mechanisms={value}"]
        else:
            out += ["-X", f"{key}={value}"]
    return out


def kcat_round_trip(config, topic):
    lines = "\n".join(v.decode() for v in values(topic)) + "\n"
    produced = kcat([*kcat_props(config), "-P", "-t", topic, "-X", "acks=all"], lines)
    assert produced.returncode == 0, produced.stderr
    consumed = kcat([*kcat_props(config), "-C", "-t", topic, "-o", "beginning",
                     "-c", str(RECORDS), "-e", "-q"])
    assert consumed.returncode == 0, consumed.stderr
    return [line.encode() for line in consumed.stdout.splitlines()]


def metric(secure, name, labels=""):
    """The value of one Prometheus sample of the broker (0 if absent)."""
    url = f"http://127.0.0.1:{secure.broker.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    pattern = re.compile(rf"^{re.escape(name)}\{{[^}}]*{re.escape(labels)}[^}}]*\}} (\S+)$", re.M)
    return sum(float(v) for v in pattern.findall(text))


def plaintext_topic_records(secure, topic):
    """How many records `topic` holds, read on the PLAINTEXT listener (0 if it doesn't exist)."""
    c = Consumer({"bootstrap.servers": secure.plaintext, "group.id": f"check-{topic}",
                  "enable.auto.commit": False})
    md = c.list_topics(timeout=10)
    if topic not in md.topics or md.topics[topic].error is not None:
        c.close()
        return 0
    from confluent_kafka import TopicPartition
    total = 0
    for p in md.topics[topic].partitions:
        low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        total += high - low
    c.close()
    return total


# ---- SCRAM-SHA-512 over SASL_SSL ----------------------------------------------------------

def test_confluent_kafka_scram_sha512_over_sasl_ssl(secure, topic):
    assert confluent_round_trip(secure.sasl_ssl_config(), topic) == values(topic)


def test_kafka_python_scram_sha512_over_sasl_ssl(secure, topic):
    got = kafka_python_round_trip(kafka_python_security(secure, "SASL_SSL"), topic)
    assert got == values(topic)


def test_kcat_scram_sha512_over_sasl_ssl(secure, topic):
    assert kcat_round_trip(secure.sasl_ssl_config(), topic) == values(topic)


# ---- mutual TLS ---------------------------------------------------------------------------

def test_confluent_kafka_mutual_tls(secure, topic):
    assert confluent_round_trip(secure.mtls_config(), topic) == values(topic)


def test_kafka_python_mutual_tls(secure, topic):
    got = kafka_python_round_trip(kafka_python_security(secure, "SSL"), topic)
    assert got == values(topic)


def test_kcat_mutual_tls(secure, topic):
    assert kcat_round_trip(secure.mtls_config(), topic) == values(topic)


# ---- one credential store for PLAIN and SCRAM; users through the admin API ----------------

def test_users_made_with_the_admin_api_log_in_with_plain_and_scram(secure, topic):
    admin = AdminClient(secure.sasl_ssl_config())
    upsert = UserScramCredentialUpsertion(
        "bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), b"bob-secret")
    for user, future in admin.alter_user_scram_credentials([upsert]).items():
        future.result(timeout=30)
    described = admin.describe_user_scram_credentials(["bob"])["bob"].result(timeout=30)
    infos = described.scram_credential_infos
    assert [(i.mechanism, i.iterations) for i in infos] == [(ScramMechanism.SCRAM_SHA_256, 8192)]

    scram256 = secure.sasl_ssl_config("bob", "bob-secret", "SCRAM-SHA-256")
    assert confluent_round_trip(scram256, topic) == values(topic)
    plain = {"bootstrap.servers": secure.sasl_plaintext, "security.protocol": "SASL_PLAINTEXT",
             "sasl.mechanism": "PLAIN", "sasl.username": "bob", "sasl.password": "bob-secret"}
    assert confluent_round_trip(plain, topic + "-plain") == values(topic + "-plain")

    # A missing user is RESOURCE_NOT_FOUND.
    with pytest.raises(KafkaException) as missing:
        admin.describe_user_scram_credentials(["nobody"])["nobody"].result(timeout=30)
    assert missing.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND


def test_users_survive_a_restart(tmp_path, certs, topic):
    s = start_secure_broker(tmp_path / "restart", certs)
    try:
        admin = AdminClient(s.sasl_ssl_config())
        upsert = UserScramCredentialUpsertion(
            "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"carol-pw")
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(timeout=30)
        s.broker.restart()
        carol = s.sasl_ssl_config("carol", "carol-pw")
        assert confluent_round_trip(carol, topic) == values(topic)
        # --add-scram did not replace the admin's credential, which still works.
        assert confluent_round_trip(s.sasl_ssl_config(), topic + "-a") == values(topic + "-a")
    finally:
        assert s.broker.stop() == 0


# ---- failures -----------------------------------------------------------------------------

def test_wrong_password_fails_with_an_authentication_error_and_writes_nothing(secure, topic,
                                                                             caplog):
    wrong = secure.sasl_ssl_config(ADMIN[0], "not-the-password")
    failed_before = metric(secure, "ironlog_errors_total", 'error="SASL_AUTHENTICATION_FAILED"')

    errors = []
    p = Producer({**wrong, "error_cb": errors.append, "message.timeout.ms": 3000})
    p.produce(topic, b"never")
    p.flush(5)
    del p  # stops its reconnecting
    print(f"saw: confluent-kafka, wrong password: {errors[0].name()}: {errors[0].str()}")
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert any("Authentication failed" in e.str() for e in errors), [e.str() for e in errors]

    # kafka-python reports the broker's error on its logger, then gives up bootstrapping.
    kp_config = kafka_python_security(secure, "SASL_SSL")
    kp_config["sasl_plain_password"] = "not-the-password"
    kp_config["request_timeout_ms"] = 3000
    kp_config["bootstrap_timeout_ms"] = 3000
    with caplog.at_level(logging.WARNING, logger="kafka"):
        with pytest.raises(KafkaPythonError):
            producer = KafkaProducer(**kp_config, max_block_ms=3000)
            producer.send(topic, b"never").get(timeout=3)
    reported = [r.getMessage() for r in caplog.records if r.name.startswith("kafka")]
    print(f"saw: kafka-python, wrong password: {reported[:1]}")
    assert any("SaslAuthenticationFailedError" in m and "Authentication failed" in m
               for m in reported), reported[:5]

    out = kcat([*kcat_props(wrong), "-P", "-t", topic, "-X", "message.timeout.ms=3000"],
               "never\n", timeout=60)
    print(f"saw: kcat, wrong password: exit {out.returncode}: {first_error_line(out.stderr)}")
    assert out.returncode != 0
    assert "Authentication failed" in out.stderr, out.stderr

    assert metric(secure, "ironlog_errors_total",
                  'error="SASL_AUTHENTICATION_FAILED"') >= failed_before + 3
    assert plaintext_topic_records(secure, topic) == 0


def test_untrusted_or_missing_client_certificate_is_refused(secure, topic):
    refused_before = metric(secure, "ironlog_refused_frames_total", 'reason="tls_handshake"')
    rogue = secure.mtls_config(secure.certs.rogue_cert, secure.certs.rogue_key)
    errors = []
    p = Producer({**rogue, "error_cb": errors.append, "message.timeout.ms": 3000})
    p.produce(topic, b"never")
    p.flush(5)
    del p  # stops its reconnecting
    assert errors, "the producer with an untrusted certificate saw no error"
    print(f"saw: confluent-kafka, untrusted certificate: {errors[0].name()}: {errors[0].str()}")
    assert all(e.code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)
               for e in errors), errors

    no_cert = {"bootstrap.servers": secure.ssl, "security.protocol": "SSL",
               "ssl.ca.location": str(secure.certs.ca)}
    out = kcat([*kcat_props(no_cert), "-L", "-m", "3"], timeout=60)
    print(f"saw: kcat, no client certificate: exit {out.returncode}: "
          f"{first_error_line(out.stderr)}")
    assert out.returncode != 0, out.stdout

    common = kafka_python_security(secure, "SSL")
    common["ssl_certfile"] = str(secure.certs.rogue_cert)
    common["ssl_keyfile"] = str(secure.certs.rogue_key)
    common["request_timeout_ms"] = 3000
    common["bootstrap_timeout_ms"] = 3000
    with pytest.raises(KafkaPythonError) as raised:
        producer = KafkaProducer(**common, max_block_ms=3000)
        producer.send(topic, b"never").get(timeout=3)
    print(f"saw: kafka-python, untrusted certificate: {raised.value!r}")

    assert metric(secure, "ironlog_refused_frames_total",
                  'reason="tls_handshake"') >= refused_before + 3
    assert plaintext_topic_records(secure, topic) == 0


def _frame(api_key, version, correlation, body=b""):
    header = struct.pack(">hhi", api_key, version, correlation) + struct.pack(">h", -1)
    return struct.pack(">i", len(header) + len(body)) + header + body


def _closed_without_answer(sock):
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_an_unauthenticated_connection_may_only_authenticate(secure):
    host, port = secure.sasl_plaintext.rsplit(":", 1)
    # Metadata v0 before SASL: the connection is closed without an answer.
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(_frame(3, 0, 1, struct.pack(">i", 0)))
        assert _closed_without_answer(sock)
    # A frame over 512 KiB before SASL: closed before it is read.
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(struct.pack(">i", 600_000) + b"\0" * 1024)
        assert _closed_without_answer(sock)
    # ApiVersions is answered.
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(_frame(18, 0, 7))
        sock.settimeout(10)
        size = struct.unpack(">i", sock.recv(4))[0]
        assert size > 6
    # The same Metadata request on the PLAINTEXT listener is answered.
    host, port = secure.plaintext.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(_frame(3, 0, 1, struct.pack(">i", 0)))
        sock.settimeout(10)
        assert len(sock.recv(4)) == 4


def test_fuzzed_sasl_and_tls_handshakes_leave_the_broker_serving(secure, topic):
    rng = random.Random(12345)
    host, port = secure.sasl_plaintext.rsplit(":", 1)
    for i in range(150):
        with socket.create_connection((host, int(port))) as sock:
            sock.settimeout(5)
            mechanism = rng.choice([b"PLAIN", b"SCRAM-SHA-512", b"SCRAM-SHA-256", b"X" * 40])
            version = rng.choice([0, 1])
            body = struct.pack(">h", len(mechanism)) + mechanism
            sock.sendall(_frame(17, version, 1, body))
            try:
                size = struct.unpack(">i", sock.recv(4))[0]
                sock.recv(size)
                token = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
                if version == 0:
                    sock.sendall(struct.pack(">i", len(token)) + token)
                else:
                    sock.sendall(_frame(36, rng.choice([0, 1, 2]), 2,
                                        struct.pack(">i", len(token)) + token))
                # Half-close: the broker sees the end of input at once instead of waiting
                # for the rest of a frame the junk may have announced.
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(4096):
                    pass
            except (OSError, struct.error):
                pass
    host, port = secure.ssl.rsplit(":", 1)
    for i in range(100):
        with socket.create_connection((host, int(port))) as sock:
            junk = bytes([0x16, 0x03, 0x01]) + bytes(rng.randrange(256)
                                                     for _ in range(rng.randrange(0, 600)))
            try:
                sock.sendall(junk)
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(5)
                while sock.recv(4096):
                    pass
            except OSError:
                pass
    assert secure.broker.alive()
    assert confluent_round_trip(secure.sasl_ssl_config(), topic) == values(topic)


def test_sessions_are_reauthenticated(tmp_path, certs, topic):
    s = start_secure_broker(tmp_path / "reauth", certs, "--connections-max-reauth-ms", "2000")
    try:
        before = metric(s, "ironlog_requests_total", 'api="SaslAuthenticate"')
        errors = []
        p = Producer({**s.sasl_ssl_config(), "acks": "all", "error_cb": errors.append})
        delivered = []
        end = time.monotonic() + 9
        i = 0
        while time.monotonic() < end:
            p.produce(topic, f"r{i}".encode(),
                      on_delivery=lambda err, m: delivered.append(err))
            p.poll(0.1)
            i += 1
        assert p.flush(30) == 0
        assert len(delivered) == i and all(e is None for e in delivered), \
            [e for e in delivered if e is not None][:5]
        assert errors == [], errors
        # Two SaslAuthenticate requests per SCRAM login: the first, then one per 2 s window.
        logins = (metric(s, "ironlog_requests_total", 'api="SaslAuthenticate"') - before) / 2
        assert logins >= 4, f"only {logins} SCRAM logins in 9 s with a 2 s session lifetime"
    finally:
        assert s.broker.stop() == 0
