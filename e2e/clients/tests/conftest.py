"""Fixtures for the real-client suite: an `ironlog broker` process per test (e2e/lib/broker.py:
`broker`, `broker_factory`), and a topic name unique to the test."""

import pytest

# Imported so pytest finds the fixtures and the report hook in this conftest.
from broker import broker, broker_factory, pytest_runtest_makereport, unique_name  # noqa: F401


@pytest.fixture
def topic(request):
    """A topic name unique to this test (and this run)."""
    return unique_name(request.node.name)
