"""Nodes die and come back: the survivors keep a metadata quorum, a returning node catches
up, a dead broker is fenced, and a full stop and start keeps every piece of metadata."""

from cluster import FENCE_TIMEOUT_S, wait_until
from helpers import consume_all, produce

PARTITIONS = 3


def test_kill_each_node_in_turn_then_stop_and_start_all(cluster_factory, name):
    c = cluster_factory(3)
    first = f"{name}-before"
    c.create_topic_retrying(1, first, partitions=PARTITIONS, replication_factor=1)
    topics = [first]
    c.wait_topic_everywhere(first, PARTITIONS)

    leader = c.wait_raft_leader()
    victims = [leader] + [i for i in (1, 2, 3) if i != leader]
    for victim in victims:
        survivors = [i for i in (1, 2, 3) if i != victim]
        term_before = max(c.metric(i, "ironlog_raft_term") for i in survivors)
        was_leader = c.raft_leader() == victim
        c.kill(victim)

        new_leader = c.wait_raft_leader(among=survivors)
        assert new_leader in survivors, f"after killing node {victim}: controller {new_leader}"
        if was_leader:
            wait_until(lambda: min(c.metric(i, "ironlog_raft_term") for i in survivors)
                       > term_before, f"ironlog_raft_term above {term_before} on the survivors "
                       "(a new leader is elected in a later term)")

        created = f"{name}-while-{victim}-down"
        c.create_topic_retrying(survivors[0], created, partitions=PARTITIONS,
                                replication_factor=1)
        topics.append(created)
        # Its partitions may have been placed on the dead node before it was fenced.
        c.wait_topic_everywhere(created, PARTITIONS, among=survivors, online=False)

        c.start_node(victim)
        c.wait_formed()
        for t in topics:
            c.wait_topic_everywhere(t, PARTITIONS)

    # Data written before the full stop must be there after it.
    records = [{"key": f"k{j}".encode(), "value": f"v{j}".encode()} for j in range(30)]
    delivered = sorted(produce(c.bootstrap(), first, records))

    before = {t: c.wait_topic_everywhere(t, PARTITIONS) for t in topics}
    codes = c.stop_all()
    assert codes == {1: 0, 2: 0, 3: 0}, f"exit codes on SIGTERM: {codes}"

    for i in (1, 2, 3):
        c.start_node(i, wait=False)
    for i in (1, 2, 3):
        c.node(i).wait_healthy()
    c.wait_formed()
    for t, was in before.items():
        now = c.wait_topic_everywhere(t, PARTITIONS)
        assert now.topic_id == was.topic_id, f"{t}: topic id changed"
        assert now.assignment() == was.assignment(), f"{t}: leaders/replicas changed"
    assert sorted(c.metadata(1).topics) == sorted(topics), "topics after the full restart"
    for i in (1, 2, 3):
        assert consume_all(c.addr(i), first, PARTITIONS) == delivered, f"records via node {i}"


def test_killed_broker_is_fenced_its_partitions_go_offline_and_come_back(cluster_factory, name):
    c = cluster_factory(3)
    leader = c.wait_raft_leader()
    victim = next(i for i in (1, 2, 3) if i != leader)
    survivors = [i for i in (1, 2, 3) if i != victim]
    code, message = c.create_topic(leader, name, partitions=6, replication_factor=1)
    assert code == 0, message
    before = c.wait_topic_everywhere(name, 6)
    victims_partitions = sorted(p for p, l in before.leaders().items() if l == victim)
    assert victims_partitions, f"node {victim} leads none of {before.leaders()}"

    c.kill(victim)
    for i in survivors:
        wait_until(lambda: victim not in c.metadata(i).brokers,
                   f"node {i} to drop fenced broker {victim} from Metadata",
                   timeout=FENCE_TIMEOUT_S)
        assert victim not in c.describe_cluster(i).brokers
    after = c.wait_topic_everywhere(name, 6, among=survivors, online=False)
    for p, leader_id in after.leaders().items():
        want = -1 if p in victims_partitions else before.leaders()[p]
        assert leader_id == want, f"partition {p}: leader {leader_id} after node {victim} died"
    controller = c.wait_raft_leader(among=survivors)
    wait_until(lambda: c.metric(controller, "ironlog_fenced_brokers") == 1,
               "ironlog_fenced_brokers 1 on the controller")
    wait_until(lambda: c.metric(controller, "ironlog_offline_partitions")
               == len(victims_partitions), "ironlog_offline_partitions on the controller")

    c.start_node(victim)
    c.wait_formed()
    back = c.wait_topic_everywhere(name, 6)
    assert back.assignment() == before.assignment()
    wait_until(lambda: c.metric(controller, "ironlog_fenced_brokers") == 0
               and c.metric(controller, "ironlog_offline_partitions") == 0,
               "fenced brokers and offline partitions back to 0")
