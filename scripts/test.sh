#!/usr/bin/env bash
# The project's test command (README "Test"). Installs what it needs, then runs, in order:
# formatting, clippy, every crate's unit and integration tests, the CRD drift check, the
# real-client end-to-end suites (kcat, confluent-kafka, kafka-python; a loopback cluster; a
# docker-compose cluster of the broker image; replication under injected faults, on loopback
# and on a private Docker network; Sarama), the benchmark smoke runs (the broker's
# and the log cleaner's) and the Kubernetes end-to-end suite on a real API server.
#
#   scripts/test.sh            # everything
#   SKIP="k8s bench" scripts/test.sh   # leave out steps by name
#
# Steps: fmt clippy cargo-test crd-drift wire-schema build clients security groups cluster compose
#        replication sarama bench bench-compaction k8s
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SKIP=${SKIP:-}
export CARGO_TERM_COLOR=never
export IRONLOG_BIN=$ROOT/target/debug/ironlog

# Each step's output is kept, so the run can end with why each failed step failed.
STEP_LOGS=$(mktemp -d)
trap 'rm -rf "$STEP_LOGS"' EXIT
passed=0
failed=0
failures=()
ok_steps=()

step() { # name, command...
  local name=$1; shift
  if [[ " $SKIP " == *" $name "* ]]; then
    echo "=== $name: skipped (SKIP)"; return 0
  fi
  echo "=== $name: $*"
  local start=$SECONDS
  "$@" 2>&1 | tee "$STEP_LOGS/$name.log"
  if ((PIPESTATUS[0] == 0)); then
    echo "=== $name: ok ($((SECONDS - start)) s)"; passed=$((passed + 1)); ok_steps+=("$name")
  else
    echo "=== $name: FAILED ($((SECONDS - start)) s)"; failed=$((failed + 1)); failures+=("$name")
  fi
}

install_system_packages() {
  local missing=()
  command -v kcat >/dev/null || missing+=(kcat)
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v iperf3 >/dev/null || missing+=(iperf3)
  command -v fio >/dev/null || missing+=(fio)
  if ((${#missing[@]})); then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

crd_drift() {
  local tmp; tmp=$(mktemp -d)
  cargo run -q -p ironlog-operator --bin crdgen -- --out "$tmp" >/dev/null || return 1
  if ! diff -ru crds "$tmp"; then
    echo "crds/ differs from the Rust CRD types: run 'cargo run -p ironlog-operator --bin crdgen -- --out crds' and commit"
    return 1
  fi
}

step install install_system_packages
step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
step cargo-test cargo test --workspace
step crd-drift crd_drift
step wire-schema python3 scripts/gen-wire-schema.py --check
step build cargo build -p ironlog
step clients e2e/clients/run.sh
step security e2e/security/run.sh
step groups e2e/groups/run.sh
step cluster e2e/cluster/run.sh
step compose e2e/compose/run.sh
# The compose step built the broker image from this run's binary: the replication suite's
# container test reuses it instead of building it again.
replication_suite() {
  if [[ " ${ok_steps[*]} " == *" compose "* ]]; then
    IRONLOG_IMAGE=ironlog/ironlog:e2e-compose e2e/replication/run.sh
  else
    e2e/replication/run.sh
  fi
}
step replication replication_suite
step sarama e2e/sarama/run.sh
step bench bench/run.sh --smoke
step bench-compaction bench/compaction.sh --smoke
step k8s e2e/k8s/run.sh

echo
# Last, so a log cut to its tail still says what failed and why.
for name in "${failures[@]}"; do
  echo "--- $name: what failed"
  grep -E "^(FAILED|ERROR) |^E  |^error(\[|:)|^test .* FAILED|panicked at|INTERNALERROR|^--- pytest was killed|^#[0-9]+ " \
    "$STEP_LOGS/$name.log" | cut -c1-300 | tail -40
done
if ((failed)); then echo "failed steps: ${failures[*]}"; fi
echo "steps: $passed passed, $failed failed"
((failed == 0))
