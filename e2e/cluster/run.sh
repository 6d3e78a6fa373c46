#!/usr/bin/env bash
# Cluster suite: several `ironlog broker` processes on loopback forming one cluster (three
# voters, learners), driven by real clients (confluent-kafka, kafka-python, kcat, the
# `ironlog` toolbox) and by one-node wire requests (e2e/lib/kafka_wire.py) so each node is
# asked on its own. Kills, stops and restarts nodes; upgrades a pre-cluster data directory
# (fixtures/, made by make-legacy-fixture.sh). Prints `MEASURE name value unit` lines at the
# end (failover and propagation times; not asserted).
#
#   e2e/cluster/run.sh                 # everything
#   e2e/cluster/run.sh -k upgrade      # extra arguments go to pytest
#
# Env: IRONLOG_BIN  the binary (default: <repo>/target/debug/ironlog).
# Installs what it needs (e2e/lib/setup.sh): Debian kcat if missing, and the venv e2e/.venv
# with the pinned clients (shared with e2e/clients and e2e/groups). Exits with pytest's status.
set -euo pipefail
source "$(dirname "$0")/../lib/setup.sh"
e2e_setup kcat
e2e_pytest "$@"
