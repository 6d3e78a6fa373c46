"""Authorization with the ACL authorizer (`--authorizer acl`, super user `User:admin`), users
over SASL_SSL with SCRAM-SHA-512: what a missing ACL, a prefixed ACL and a DENY do to real
clients (confluent-kafka, kafka-python, kcat), ACLs managed with Kafka's admin API, topics
hidden from those who may not describe them, and ACLs kept across a restart."""

import logging
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation,
                                   AclPermissionType, AdminClient, NewTopic, ResourcePatternType,
                                   ResourceType, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)
from kafka import KafkaProducer
from kafka.errors import KafkaError as KafkaPythonError

from conftest import start_secure_broker
from test_authentication import first_error_line, kafka_python_security, kcat, kcat_props

AUTHZ = ("--authorizer", "acl", "--super-users", "User:admin")


@pytest.fixture(scope="module")
def authz(tmp_path_factory, certs):
    s = start_secure_broker(tmp_path_factory.mktemp("authz"), certs, *AUTHZ)
    admin = AdminClient(s.sasl_ssl_config())
    for user in ("alice", "bob"):
        upsert = UserScramCredentialUpsertion(
            user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), f"{user}-pw".encode())
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(timeout=30)
    topics = [NewTopic(t, 1, 1) for t in ("orders-eu", "orders-secret", "order", "payments")]
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)
    yield s, admin
    if s.broker.alive():
        assert s.broker.stop() == 0


def acl(name, operation, permission=AclPermissionType.ALLOW, principal="User:alice",
        resource=ResourceType.TOPIC, pattern=ResourcePatternType.LITERAL):
    return AclBinding(resource, name, pattern, principal, "*", operation, permission)


def create(admin, bindings):
    for future in admin.create_acls(bindings).values():
        future.result(timeout=30)


def produce_error(config, topic):
    """The delivery error of one record to `topic` (None if delivered)."""
    results = []
    p = Producer({**config, "acks": "all", "message.timeout.ms": 10000,
                  "enable.idempotence": False})
    p.produce(topic, b"x", on_delivery=lambda err, m: results.append(err))
    p.flush(15)
    assert len(results) == 1, "no delivery report"
    return results[0]


def consume(config, topic, group, n, timeout=20):
    c = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got, errors = [], []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            errors.append(m.error())
            if m.error().fatal() or m.error().code() in (
                    KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED):
                break
        else:
            got.append(m.value())
    c.close()
    return got, errors


def test_a_missing_acl_refuses_every_client_and_writes_nothing(authz):
    s, admin = authz
    bob = s.sasl_ssl_config("bob", "bob-pw")
    err = produce_error(bob, "payments")
    print(f"saw: confluent-kafka, no ACL: {err}")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err

    out = kcat([*kcat_props(bob), "-P", "-t", "payments", "-X", "message.timeout.ms=8000"],
               "never\n")
    print(f"saw: kcat, no ACL: exit {out.returncode}: {first_error_line(out.stderr)}")
    assert out.returncode != 0
    assert "Topic authorization failed" in out.stderr or "TOPIC_AUTHORIZATION_FAILED" in out.stderr, \
        out.stderr

    config = kafka_python_security(s, "SASL_SSL")
    config.update(sasl_plain_username="bob", sasl_plain_password="bob-pw")
    producer = KafkaProducer(**config, max_block_ms=8000, retries=0)
    with pytest.raises(KafkaPythonError) as raised:
        producer.send("payments", b"never").get(timeout=10)
    producer.close()
    print(f"saw: kafka-python, no ACL: {raised.value!r}")
    assert "TopicAuthorizationFailed" in repr(raised.value), repr(raised.value)

    # The admin reads the topic: nothing was written.
    got, errors = consume(s.sasl_ssl_config(), "payments", "admin-check", 1, timeout=5)
    assert got == [] and errors == []


def test_a_prefixed_acl_grants_exactly_its_prefix(authz):
    s, admin = authz
    create(admin, [
        acl("orders-", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED),
        acl("orders-", AclOperation.READ, pattern=ResourcePatternType.PREFIXED),
        acl("g-alice", AclOperation.READ, resource=ResourceType.GROUP),
    ])
    alice = s.sasl_ssl_config("alice", "alice-pw")
    assert produce_error(alice, "orders-eu") is None
    err = produce_error(alice, "order")
    print(f"saw: confluent-kafka, outside the prefix orders-: {err}")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    got, errors = consume(alice, "orders-eu", "g-alice", 1)
    assert got == [b"x"], errors
    # A group she has no ACL for.
    got, errors = consume(alice, "orders-eu", "g-other", 1, timeout=10)
    print(f"saw: confluent-kafka, group without ACL: {errors[:1]}")
    assert got == []
    assert any(e.code() == KafkaError.GROUP_AUTHORIZATION_FAILED for e in errors), errors


def test_a_deny_beats_an_allow(authz):
    s, admin = authz
    create(admin, [
        acl("orders-", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED),
        acl("orders-secret", AclOperation.WRITE, AclPermissionType.DENY),
    ])
    alice = s.sasl_ssl_config("alice", "alice-pw")
    assert produce_error(alice, "orders-eu") is None
    err = produce_error(alice, "orders-secret")
    print(f"saw: confluent-kafka, DENY over a prefixed ALLOW: {err}")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err


def test_topics_are_hidden_from_principals_that_may_not_describe_them(authz):
    s, admin = authz
    create(admin, [acl("orders-", AclOperation.READ, pattern=ResourcePatternType.PREFIXED)])
    alice = AdminClient(s.sasl_ssl_config("alice", "alice-pw"))
    visible = set(alice.list_topics(timeout=15).topics)
    assert {"orders-eu", "orders-secret"} <= visible
    assert not visible & {"order", "payments"}, visible
    bob = AdminClient(s.sasl_ssl_config("bob", "bob-pw"))
    assert set(bob.list_topics(timeout=15).topics) == set()


def test_acls_are_described_and_deleted_with_the_admin_api(authz):
    s, admin = authz
    binding = acl("audit-", AclOperation.DESCRIBE, principal="User:carol",
                  pattern=ResourcePatternType.PREFIXED)
    create(admin, [binding])
    filt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:carol", None,
                            AclOperation.ANY, AclPermissionType.ANY)
    described = admin.describe_acls(filt).result(timeout=30)
    assert described == [binding]
    deleted = admin.delete_acls([filt])[filt].result(timeout=30)
    assert deleted == [binding]
    assert admin.describe_acls(filt).result(timeout=30) == []
    # Only a principal allowed to alter the cluster may change ACLs.
    alice = AdminClient(s.sasl_ssl_config("alice", "alice-pw"))
    with pytest.raises(KafkaException) as refused:
        for future in alice.create_acls([binding]).values():
            future.result(timeout=30)
    assert refused.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED


def test_acls_and_users_survive_a_restart(tmp_path, certs, caplog):
    s = start_secure_broker(tmp_path / "acl-restart", certs, *AUTHZ)
    try:
        admin = AdminClient(s.sasl_ssl_config())
        upsert = UserScramCredentialUpsertion(
            "dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"dave-pw")
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(timeout=30)
        for future in admin.create_topics([NewTopic("ledger", 1, 1)]).values():
            future.result(timeout=30)
        create(admin, [acl("ledger", AclOperation.WRITE, principal="User:dave")])
        s.broker.restart()
        dave = s.sasl_ssl_config("dave", "dave-pw")
        assert produce_error(dave, "ledger") is None
        err = produce_error(dave, "other")
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    finally:
        assert s.broker.stop() == 0


logging.getLogger("kafka").setLevel(logging.ERROR)
