"""Users and ACLs are cluster metadata: made through one broker, they hold on the others and
after the Raft leader is killed (kill -9)."""

import os

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType,
                                   ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

from conftest import ADMIN, second_listener_ports


def sasl(addr, user, password):
    return {"bootstrap.servers": addr, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": password}


def delivery_error(config, topic, timeout_ms=30000):
    results = []
    p = Producer({**config, "acks": "all", "message.timeout.ms": timeout_ms,
                  "enable.idempotence": False})
    p.produce(topic, b"x", on_delivery=lambda err, m: results.append(err))
    p.flush(35)
    assert len(results) == 1, "no delivery report"
    return results[0]


def test_users_and_acls_survive_the_raft_leader_being_killed(cluster_factory):
    c = cluster_factory(3, start=False)
    sasl_ports = second_listener_ports(c)
    for i, node in c.nodes.items():
        # The inter-broker listener is PLAINTEXT (followers fetch as User:ANONYMOUS, which
        # therefore is a super user here); clients use SASL_PLAINTEXT.
        node.extra_args += [
            "--listeners",
            f"PLAINTEXT://127.0.0.1:{node.port},SASL_PLAINTEXT://127.0.0.1:{sasl_ports[i]}",
            "--authorizer", "acl", "--super-users", "User:admin;User:ANONYMOUS"]
    os.environ["IRONLOG_ADD_SCRAM"] = f"SCRAM-SHA-512=[name={ADMIN[0]},password={ADMIN[1]}]"
    try:
        c.start()
    finally:
        del os.environ["IRONLOG_ADD_SCRAM"]
    leader = c.wait_raft_leader()
    # Made through a node that is not the Raft leader: the broker forwards to the quorum.
    via = next(i for i in c.nodes if i != leader)
    admin = AdminClient(sasl(f"127.0.0.1:{sasl_ports[via]}", *ADMIN))
    upsert = UserScramCredentialUpsertion(
        "erin", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"erin-pw")
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=30)
    for future in admin.create_topics([NewTopic("audit", 1, 3), NewTopic("hr", 1, 3)]).values():
        future.result(timeout=30)
    binding = AclBinding(ResourceType.TOPIC, "audit", ResourcePatternType.LITERAL, "User:erin",
                         "*", AclOperation.WRITE, AclPermissionType.ALLOW)
    for future in admin.create_acls([binding]).values():
        future.result(timeout=30)

    c.kill(leader)
    survivors = [i for i in c.nodes if i != leader]
    new_leader = c.wait_raft_leader(among=survivors)
    assert new_leader in survivors and new_leader != leader
    for i in survivors:
        erin = sasl(f"127.0.0.1:{sasl_ports[i]}", "erin", "erin-pw")
        assert delivery_error(erin, "audit") is None
        err = delivery_error(erin, "hr")
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
        wrong = sasl(f"127.0.0.1:{sasl_ports[i]}", "erin", "not-erins")
        err = delivery_error(wrong, "audit", timeout_ms=3000)
        assert err is not None and err.code() in (KafkaError._AUTHENTICATION,
                                                  KafkaError._MSG_TIMED_OUT), err
