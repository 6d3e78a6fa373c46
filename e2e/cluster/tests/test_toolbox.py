"""The `ironlog` toolbox walkthrough (e2e/lib/walkthrough.py) against a three-node cluster,
each step through a different node."""

from walkthrough import walkthrough


def test_toolbox_walkthrough(cluster_factory, name):
    c = cluster_factory(3)
    summary = walkthrough([c.addr(i) for i in (1, 2, 3)], topic=name, group=f"{name}-group")
    assert summary["records"] == 1000
