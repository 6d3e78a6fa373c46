#!/usr/bin/env bash
# Black-box compatibility suite: real Kafka clients (kcat, confluent-kafka/librdkafka,
# kafka-python) and raw sockets against a real `ironlog broker` process per test.
#
#   e2e/clients/run.sh                   # everything
#   e2e/clients/run.sh -k durability     # extra arguments go to pytest
#
# Env: IRONLOG_BIN  the broker binary (default: <repo>/target/debug/ironlog; build it with
#                   `cargo build -p ironlog`).
# Installs what it needs (e2e/lib/setup.sh): Debian kcat and prometheus (for promtool) if
# missing, and the venv e2e/.venv with the pinned clients. Exits with pytest's status.
set -euo pipefail
source "$(dirname "$0")/../lib/setup.sh"
e2e_setup kcat promtool
e2e_pytest "$@"
