"""Moving partitions: AlterPartitionReassignments / ListPartitionReassignments (API keys 45,
46) and ElectLeaders (43), through kafka-python's admin client, which sends them to the
controller the cluster names."""

from kafka import KafkaAdminClient
from kafka.structs import TopicPartition

from cluster import FENCE_TIMEOUT_S, wait_until
from helpers import consume_all, produce

ELECTION_PREFERRED = 0
PREFERRED_LEADER_NOT_AVAILABLE = 80
ELECTION_NOT_NEEDED = 84


def admin(c):
    return KafkaAdminClient(bootstrap_servers=c.bootstrap(), request_timeout_ms=30_000,
                            client_id="e2e-cluster-admin")


def test_reassign_idle_rf1_partition_from_broker_1_to_broker_2(cluster_factory, name):
    c = cluster_factory(3)
    code, message = c.create_topic(3, name, assignment={0: [1], 1: [3]})
    assert code == 0, message
    assert c.wait_topic_everywhere(name, 2).assignment() == {0: (1, (1,)), 1: (3, (3,))}

    a = admin(c)
    try:
        moved, untouched = TopicPartition(name, 0), TopicPartition(name, 1)
        assert a.alter_partition_reassignments({moved: [2]}) == {moved: None}

        listed = a.list_partition_reassignments({name: [0, 1]})
        assert untouched not in listed, listed
        if moved in listed:  # still in progress: 2 being added, 1 being removed
            state = listed[moved]
            assert (state["adding_replicas"], state["removing_replicas"]) == ([2], [1]), listed
            assert sorted(state["replicas"]) == [1, 2], listed

        def moved_everywhere():
            # One view per poll: the nodes may disagree between two Metadata rounds.
            t = c.topic_everywhere(name, 2)
            return t is not None and t.assignment() == {0: (2, (2,)), 1: (3, (3,))}

        wait_until(moved_everywhere, f"every node to show {name}-0 on replicas [2] led by 2")
        wait_until(lambda: a.list_partition_reassignments({name: [0, 1]}) == {},
                   "the reassignment to leave ListPartitionReassignments")
    finally:
        a.close()

    # The moved partition takes and serves records on its new broker, via the old one too.
    records = [{"partition": 0, "key": f"k{j}".encode(), "value": f"v{j}".encode()}
               for j in range(20)]
    delivered = produce(c.addr(1), name, records)
    assert [(p, o) for p, o, _, _ in delivered] == [(0, j) for j in range(20)]
    for i in (1, 2, 3):
        assert consume_all(c.addr(i), name, 2) == delivered, f"records via node {i}"


def election_errors(response):
    """{(topic, partition): error code} of an ElectLeaders response."""
    return {(r.topic, p.partition_id): p.error_code
            for r in response.replica_election_results for p in r.partition_result}


def test_elect_preferred_leaders_not_needed_then_not_available(cluster_factory, name):
    c = cluster_factory(3)
    leader = c.wait_raft_leader()
    other = next(i for i in (1, 2, 3) if i != leader)
    code, message = c.create_topic(1, name, assignment={0: [leader], 1: [other]})
    assert code == 0, message
    c.wait_topic_everywhere(name, 2)

    a = admin(c)
    try:
        got = a.elect_leaders(ELECTION_PREFERRED, {name: [0, 1]}, raise_errors=False)
        assert election_errors(got) == {(name, 0): ELECTION_NOT_NEEDED,
                                        (name, 1): ELECTION_NOT_NEEDED}

        c.kill(other)
        survivors = [i for i in (1, 2, 3) if i != other]
        wait_until(lambda: c.metadata(leader, [name]).topics[name].partitions[1].leader == -1,
                   f"{name}-1 offline after node {other} died", timeout=FENCE_TIMEOUT_S)
        got = a.elect_leaders(ELECTION_PREFERRED, {name: [1]}, raise_errors=False)
        assert election_errors(got) == {(name, 1): PREFERRED_LEADER_NOT_AVAILABLE}
        assert c.topic_everywhere(name, 2, among=survivors, online=False).leaders() == \
            {0: leader, 1: -1}
    finally:
        a.close()
