#!/usr/bin/env bash
# Consumer-group suite: real clients (confluent-kafka/librdkafka, kafka-python, kcat -G)
# in groups against a real `ironlog broker` process per test; consumers run as
# subprocesses so tests can SIGKILL them.
#
#   e2e/groups/run.sh                 # everything
#   e2e/groups/run.sh -k static       # extra arguments go to pytest
#
# Env: IRONLOG_BIN  the broker binary (default: <repo>/target/debug/ironlog).
# Installs what it needs (e2e/lib/setup.sh): Debian kcat if missing, and the venv e2e/.venv
# with the pinned clients (shared with e2e/clients). Exits with pytest's status.
set -euo pipefail
source "$(dirname "$0")/../lib/setup.sh"
e2e_setup kcat
e2e_pytest "$@"
