"""Three combined broker+voters form one cluster: one view of brokers and topics from every
node, partitions spread over the brokers, data produced and read through any node."""

from collections import Counter

import kafka_wire
from helpers import by_partition, consume_all, produce

RECORDS_PER_NODE = 60


def test_every_node_reports_the_same_brokers_cluster_id_and_controller(cluster_factory):
    c = cluster_factory(3, node_args={i: ["--rack", f"rack-{i}"] for i in (1, 2, 3)})
    expected = {i: ("127.0.0.1", c.node(i).port, f"rack-{i}") for i in (1, 2, 3)}
    leader = c.wait_raft_leader()
    assert leader in (1, 2, 3)

    for i in (1, 2, 3):
        md = c.metadata(i)
        assert md.brokers == expected, f"node {i} Metadata brokers"
        assert md.controller_id == leader, f"node {i} Metadata controller"
        dc = c.describe_cluster(i)
        assert (dc.error_code, dc.brokers, dc.controller_id) == (0, expected, leader), \
            f"node {i} DescribeCluster"
    cluster_ids = {c.metadata(i).cluster_id for i in (1, 2, 3)} | \
        {c.describe_cluster(i).cluster_id for i in (1, 2, 3)}
    assert len(cluster_ids) == 1 and next(iter(cluster_ids)), cluster_ids

    # The Raft gauges agree with the protocol on who leads.
    for i in (1, 2, 3):
        assert c.metric(i, "ironlog_raft_leader_id") == leader, f"node {i} ironlog_raft_leader_id"
        assert c.metric(i, "ironlog_raft_term") >= 1, f"node {i} ironlog_raft_term"
        assert c.metric(i, "ironlog_raft_commit_index") >= 1, f"node {i} ironlog_raft_commit_index"
        assert c.metric(i, "ironlog_fenced_brokers") == 0, f"node {i} ironlog_fenced_brokers"


def test_topic_created_through_node_1_is_one_topic_everywhere_with_data_through_any_node(
        cluster_factory, name):
    c = cluster_factory(3)
    code, message = c.create_topic(1, name, partitions=6, replication_factor=3)
    assert code == 0, message

    topic = c.wait_topic_everywhere(name, 6)
    assert topic.topic_id != "00000000-0000-0000-0000-000000000000"
    leaders = Counter(topic.leaders().values())
    assert sorted(leaders) == [1, 2, 3] and sorted(leaders.values()) == [2, 2, 2], \
        f"leaders not spread evenly: {topic.leaders()}"
    for p in topic.partitions.values():
        assert sorted(p.replicas) == [1, 2, 3], f"partition {p.partition} replicas {p.replicas}"
        assert p.leader in p.isr and set(p.isr) <= set(p.replicas), \
            f"partition {p.partition}: leader {p.leader}, isr {p.isr}, replicas {p.replicas}"
        assert p.offline == [] and p.error_code == 0

    # Only the leader serves a partition; the others send the client elsewhere.
    for index, leader in topic.leaders().items():
        for i in (1, 2, 3):
            want = 0 if i == leader else kafka_wire.NOT_LEADER_OR_FOLLOWER
            assert kafka_wire.fetch_error(c.addr(i), name, index) == want, \
                f"Fetch {name}-{index} from node {i} (leader {leader})"

    # acks=all through each node as the only bootstrap server.
    delivered = []
    for i in (1, 2, 3):
        records = [{"key": f"n{i}-k{j}".encode(), "value": f"value {i}/{j}".encode()}
                   for j in range(RECORDS_PER_NODE)]
        got = produce(c.addr(i), name, records)
        assert [(k, v) for _, _, k, v in got] == [(r["key"], r["value"]) for r in records]
        delivered += got
    assert {p for p, _, _, _ in delivered} == set(range(6)), "keys did not reach every partition"
    expected = sorted(delivered)
    assert {p: offsets for p, offsets in by_partition(expected).items()} == \
        {p: list(range(len(offsets))) for p, offsets in by_partition(expected).items()}, \
        "offsets of each partition must run 0, 1, 2, ..."

    for i in (1, 2, 3):
        assert consume_all(c.addr(i), name, 6) == expected, f"records read through node {i}"
