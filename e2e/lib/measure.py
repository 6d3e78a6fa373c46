"""Fixtures the cluster and replication suites share: `name`, a topic/group name unique to
the test, and `measure`, whose `MEASURE name value unit` lines are printed together at the
end of the run (figures, not assertions). A suite's conftest.py imports them:

    from measure import measure, name, pytest_terminal_summary  # noqa: F401
"""

import pytest

from broker import unique_name

_MEASUREMENTS = []


@pytest.fixture
def name(request):
    """A topic/group name unique to this test (and this run)."""
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
