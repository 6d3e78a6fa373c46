"""Fixtures for the cluster suite: `cluster_factory` (e2e/lib/cluster.py), and `name` and
`measure` (e2e/lib/measure.py)."""

# Imported so pytest finds the fixtures and the report hooks in this conftest.
from broker import pytest_runtest_makereport  # noqa: F401
from cluster import cluster_factory  # noqa: F401
from measure import measure, name, pytest_terminal_summary  # noqa: F401
