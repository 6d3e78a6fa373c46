#!/usr/bin/env bash
# Regenerates the upgrade test's fixture: a data directory written by the last single-node
# (pre-cluster) broker, commit 988eff6, and what it holds.
#
#   e2e/cluster/make-legacy-fixture.sh
#
# Builds that commit's binary once (a git worktree in $OLD_SRC, target dir $OLD_TARGET),
# starts it on free loopback ports with the default node id (1), lets legacy_fixture.py
# create two topics, produce known records and commit a group's offsets, stops it with
# SIGTERM (it must exit 0: a clean shutdown), and writes
#   fixtures/single-node-pre-cluster.tar.gz   the data directory (its contents at ./)
#   fixtures/single-node-pre-cluster.json     topics, topic ids, records, committed offsets
# The records' timestamps are fixed; topic ids and file times differ between runs.
#
# Env: OLD_SRC (default /tmp/ironlog-old), OLD_TARGET (default <repo>/target-old),
#      OLD_BIN (default $OLD_TARGET/debug/ironlog: skips the build when present).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel)
OLD_COMMIT=988eff6
OLD_SRC=${OLD_SRC:-/tmp/ironlog-old}
OLD_TARGET=${OLD_TARGET:-$ROOT/target-old}
OLD_BIN=${OLD_BIN:-$OLD_TARGET/debug/ironlog}
OUT=$HERE/fixtures/single-node-pre-cluster
MAX_BYTES=204800

if [[ ! -x $OLD_BIN ]]; then
  [[ -d $OLD_SRC ]] || git -C "$ROOT" worktree add --detach "$OLD_SRC" "$OLD_COMMIT"
  (cd "$OLD_SRC" && CARGO_TARGET_DIR=$OLD_TARGET cargo build -p ironlog-server --bin ironlog)
fi

# The venv with the pinned clients (e2e/lib/setup.sh); its broker check is about $IRONLOG_BIN.
export IRONLOG_BIN=$OLD_BIN
source "$ROOT/e2e/lib/setup.sh"
e2e_setup
PY=$VENV/bin/python

work=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

read -r port metrics_port < <(PYTHONPATH=$ROOT/e2e/lib "$PY" -c \
  'from broker import free_ports; print(*free_ports(2))')
"$OLD_BIN" broker --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$metrics_port" \
  --data-dir "$work/data" --log-level info >"$work/broker.log" 2>&1 &
pid=$!
"$PY" - "$metrics_port" <<'PYEOF' || { cat "$work/broker.log"; exit 1; }
import sys, time, urllib.request
deadline = time.monotonic() + 30
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=1) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("old broker not healthy after 30 s")
    time.sleep(0.1)
PYEOF

"$PY" "$HERE/legacy_fixture.py" "127.0.0.1:$port" "$OUT.json" \
  || { cat "$work/broker.log"; exit 1; }

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
if ((status != 0)); then
  cat "$work/broker.log"
  echo "the old broker exited with $status on SIGTERM (not a clean shutdown)" >&2
  exit 1
fi

# Sorted names, no owners or times in the archive or the gzip header.
tar -C "$work/data" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - . \
  | gzip -9n >"$OUT.tar.gz"
size=$(stat -c %s "$OUT.tar.gz")
echo "wrote $OUT.tar.gz ($size bytes):"
tar -tzvf "$OUT.tar.gz" | awk '$3 > 0 {print "  " $3 "\t" $6}'
if ((size > MAX_BYTES)); then
  echo "fixture is $size bytes, more than $MAX_BYTES" >&2
  exit 1
fi
