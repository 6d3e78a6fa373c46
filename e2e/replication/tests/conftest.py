"""Fixtures for the replication suite: `cluster_factory` (e2e/lib/cluster.py),
`docker_cluster` (docker_cluster.py), a name unique to the test, and `measure`, whose
`MEASURE name value unit` lines are printed together at the end of the run (as in
e2e/cluster)."""

import pytest

# Imported so pytest finds the fixtures and the report hook in this conftest.
from broker import pytest_runtest_makereport, unique_name  # noqa: F401
from cluster import cluster_factory  # noqa: F401
from docker_cluster import docker_cluster  # noqa: F401

_MEASUREMENTS = []


@pytest.fixture
def name(request):
    """A topic name unique to this test (and this run)."""
    return unique_name(request.node.name)


@pytest.fixture
def measure():
    """`measure(name, value, unit)` records a figure for the end-of-run summary."""
    def record(metric, value, unit):
        _MEASUREMENTS.append(f"MEASURE {metric} {value:.1f} {unit}"
                             if isinstance(value, float) else f"MEASURE {metric} {value} {unit}")
    return record


def pytest_terminal_summary(terminalreporter):
    if _MEASUREMENTS:
        terminalreporter.section("measurements (not asserted)")
        for line in _MEASUREMENTS:
            terminalreporter.write_line(line)
