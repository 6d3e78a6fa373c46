"""The compose suite runs against the cluster e2e/compose/run.sh started with
docker-compose; COMPOSE_BOOTSTRAPS lists its nodes' advertised addresses, node 1 first."""

import os

import pytest

from broker import unique_name


@pytest.fixture
def bootstraps():
    value = os.environ.get("COMPOSE_BOOTSTRAPS")
    if not value:
        pytest.exit("COMPOSE_BOOTSTRAPS is not set: run e2e/compose/run.sh", returncode=2)
    return value.split(",")


@pytest.fixture
def name(request):
    return unique_name(request.node.name)
