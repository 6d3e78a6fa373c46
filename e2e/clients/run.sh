#!/usr/bin/env bash
# Black-box compatibility suite: real Kafka clients (kcat, confluent-kafka/librdkafka,
# kafka-python) and raw sockets against a real `ironlog broker` process per test.
#
#   e2e/clients/run.sh                   # everything
#   e2e/clients/run.sh -k durability     # extra arguments go to pytest
#
# Env: IRONLOG_BIN  the broker binary (default: <repo>/target/debug/ironlog; build it with
#                   `cargo build -p ironlog-server`).
# Installs what it needs: Debian kcat and prometheus (for promtool) if missing, and a venv in
# e2e/clients/.venv with the pinned clients from requirements.txt. Exits with pytest's status.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../.." && pwd))
export IRONLOG_BIN=${IRONLOG_BIN:-$ROOT/target/debug/ironlog}
VENV=$HERE/.venv

fail_setup() { echo "e2e/clients setup failed: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

missing=()
command -v kcat >/dev/null || missing+=(kcat)
command -v promtool >/dev/null || missing+=(prometheus)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail_setup "apt-get update"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail_setup "apt-get install ${missing[*]}"
fi

# Reinstall only when requirements.txt changed since the venv was last set up.
stamp=$VENV/.requirements.txt
if [[ ! -x $VENV/bin/python ]] || ! cmp -s "$HERE/requirements.txt" "$stamp"; then
  echo "setting up $VENV"
  python3 -m venv "$VENV" || fail_setup "python3 -m venv"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt" \
    || fail_setup "pip install -r requirements.txt"
  cp "$HERE/requirements.txt" "$stamp"
fi

[[ -x $IRONLOG_BIN ]] || fail_setup "broker binary $IRONLOG_BIN missing (cargo build -p ironlog-server)"

cd "$HERE"
status=0
"$VENV/bin/python" -m pytest -v -p no:cacheprovider --durations=8 "$@" || status=$?
exit "$status"
