"""Five nodes: three voters and two broker-only learners (nodes 4 and 5, not in --voters).
Learners serve clients, forward admin requests and lead partitions like any broker."""

from collections import Counter

from helpers import consume_all, ironlog, produce

NODES = (1, 2, 3, 4, 5)


def test_learners_create_topics_everyone_sees_them_and_learners_lead_partitions(
        cluster_factory, name):
    c = cluster_factory(5, voters=3)
    controller = c.wait_raft_leader()
    assert controller in (1, 2, 3), f"controller {controller} must be a voter"
    for i in NODES:
        assert sorted(c.describe_cluster(i).brokers) == list(NODES), f"node {i} DescribeCluster"

    # Through learner 4 on the wire, through learner 5 with the toolbox.
    wide, narrow = f"{name}-wide", f"{name}-narrow"
    code, message = c.create_topic(4, wide, partitions=10, replication_factor=1)
    assert code == 0, message
    out = ironlog("topics", "create", "--topic", narrow, "--partitions", "2",
                  "--replication-factor", "2", "--bootstrap-server", c.addr(5))
    assert f"Created topic {narrow}." in out.stdout

    topic = c.wait_topic_everywhere(wide, 10)
    leaders = Counter(topic.leaders().values())
    assert sorted(leaders) == list(NODES) and set(leaders.values()) == {2}, \
        f"10 partitions must be spread 2 per broker over all five: {topic.leaders()}"
    for p in topic.partitions.values():
        assert p.replicas == [p.leader], f"partition {p.partition}: replicas {p.replicas}"

    small = c.wait_topic_everywhere(narrow, 2)
    for p in small.partitions.values():
        assert len(set(p.replicas)) == 2 and p.leader in p.replicas, p

    assert sorted(t for t in c.metadata(5).topics if t.startswith(name)) == sorted([wide, narrow])

    # Records to the partitions learners lead, produced and read through a learner.
    learner_led = sorted(p for p, leader in topic.leaders().items() if leader in (4, 5))
    records = [{"partition": p, "key": f"k{p}-{j}".encode(), "value": f"v{j}".encode()}
               for p in learner_led for j in range(5)]
    delivered = produce(c.addr(4), wide, records)
    assert [(p, o) for p, o, _, _ in delivered] == [(p, j) for p in learner_led for j in range(5)]
    assert consume_all(c.addr(5), wide, 10) == sorted(delivered)
