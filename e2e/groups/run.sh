#!/usr/bin/env bash
# Consumer-group suite: real clients (confluent-kafka/librdkafka, kafka-python, kcat -G)
# in groups against a real `ironlog broker` process per test; consumers run as
# subprocesses so tests can SIGKILL them.
#
#   e2e/groups/run.sh                 # everything
#   e2e/groups/run.sh -k static       # extra arguments go to pytest
#
# Env: IRONLOG_BIN  the broker binary (default: <repo>/target/debug/ironlog).
# Uses the same pinned clients as e2e/clients (its requirements.txt and venv).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../.." && pwd))
export IRONLOG_BIN=${IRONLOG_BIN:-$ROOT/target/debug/ironlog}
CLIENTS=$ROOT/e2e/clients
VENV=$CLIENTS/.venv

fail_setup() { echo "e2e/groups setup failed: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

if ! command -v kcat >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail_setup "apt-get update"
  apt-get install -y -qq --no-install-recommends kcat >/dev/null || fail_setup "apt-get install kcat"
fi
stamp=$VENV/.requirements.txt
if [[ ! -x $VENV/bin/python ]] || ! cmp -s "$CLIENTS/requirements.txt" "$stamp"; then
  echo "setting up $VENV"
  python3 -m venv "$VENV" || fail_setup "python3 -m venv"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$CLIENTS/requirements.txt" \
    || fail_setup "pip install -r requirements.txt"
  cp "$CLIENTS/requirements.txt" "$stamp"
fi
[[ -x $IRONLOG_BIN ]] || fail_setup "broker binary $IRONLOG_BIN missing (cargo build -p ironlog-server)"

cd "$HERE"
status=0
"$VENV/bin/python" -m pytest -v -p no:cacheprovider --durations=8 "$@" || status=$?
exit "$status"
