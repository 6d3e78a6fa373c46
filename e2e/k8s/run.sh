#!/usr/bin/env bash
# Kubernetes end-to-end suite for the operator, on a real control plane:
# kube-apiserver + kube-controller-manager + kube-scheduler v1.20.2 on etcd, on loopback
# (built once from Debian's kubernetes source package by ../shared/k8s/local-control-plane.sh),
# helm v4 and kubectl v1.33. There is no kubelet: pods stay Pending, which is enough to test
# what the operator builds, its status, scaling through the scale subresource and GC.
#
#   e2e/k8s/run.sh
#
# Env: IRONLOG_BIN   broker binary for the KafkaTopic test (default target/debug/ironlog);
#                    the test is reported as skipped if it is missing.
#      IRONLOG_SHARED the shared tools directory (default: ../shared next to the repo).
# Sets up, runs the tests in operator/tests/k8s_e2e.rs, tears down even on failure, and ends
# with the line "N passed, M failed[, K skipped]"; the exit code is non-zero on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${IRONLOG_SHARED:-$ROOT/../shared}
CP=$SHARED/k8s/local-control-plane.sh
export LOCAL_K8S_STATE=${LOCAL_K8S_STATE:-/tmp/ironlog-e2e-k8s}
export CARGO_TERM_COLOR=never
METRICS_ADDR=127.0.0.1:18080
IRONLOG_BIN=${IRONLOG_BIN:-$ROOT/target/debug/ironlog}
LOG=$LOCAL_K8S_STATE-logs
mkdir -p "$LOG"

operator_pid=
cleanup() {
  if [[ -n $operator_pid ]]; then kill "$operator_pid" 2>/dev/null; wait "$operator_pid" 2>/dev/null; fi
  "$CP" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
fail_setup() { echo "k8s e2e setup failed: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

[[ -x $CP ]] || fail_setup "$CP not found (expected ../shared next to the repository)"
"$CP" build >"$LOG/build.log" 2>&1 || fail_setup "building the control plane (see $LOG/build.log)"
"$SHARED/k8s/install-helm-kubectl.sh" >"$LOG/tools.log" 2>&1 || fail_setup "installing helm/kubectl (see $LOG/tools.log)"
"$CP" down >/dev/null 2>&1 || true
"$CP" up >"$LOG/up.log" 2>&1 || fail_setup "starting the control plane (see $LOG/up.log)"
eval "$("$CP" env)"
export KUBECONFIG PATH

cd "$ROOT"
cargo build -q -p ironlog-operator --bins || fail_setup "building the operator"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
kubectl apply -f crds/ >"$LOG/crds.log" 2>&1 || fail_setup "applying crds/ (see $LOG/crds.log)"
kubectl wait --for=condition=Established crd --all --timeout=60s >>"$LOG/crds.log" 2>&1 || fail_setup "CRDs not established"

"$target_dir/debug/ironlog-operator" --log-format text --metrics-addr "$METRICS_ADDR" \
  --allow-bootstrap-override >"$LOG/operator.log" 2>&1 &
operator_pid=$!
export E2E_OPERATOR_METRICS=$METRICS_ADDR

skipped=0
filter=()
if [[ -x $IRONLOG_BIN ]]; then
  export IRONLOG_BIN
else
  echo "IRONLOG_BIN ($IRONLOG_BIN) missing: skipping the KafkaTopic test"
  filter=(--skip kafka_topic)
  skipped=1
fi

cargo test -p ironlog-operator --test k8s_e2e -- --ignored --test-threads=1 "${filter[@]}" 2>&1 | tee "$LOG/tests.log"
status=${PIPESTATUS[0]}
result=$(grep -E '^test result:' "$LOG/tests.log" | tail -1)
passed=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$result")
failed=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$result")
passed=${passed:-0}; failed=${failed:-0}
if ((status != 0 && failed == 0)); then failed=1; fi
if ((failed)); then
  echo "--- operator log (last 40 lines; full log in $LOG/operator.log)"
  tail -40 "$LOG/operator.log"
fi
if kill -0 "$operator_pid" 2>/dev/null; then :; else echo "operator process exited during the run"; failed=$((failed + 1)); fi
line="$passed passed, $failed failed"
((skipped)) && line+=", $skipped skipped"
echo "$line"
((failed == 0))
