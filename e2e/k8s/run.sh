#!/usr/bin/env bash
# Kubernetes end-to-end suite for the operator, on a real control plane: kube-apiserver +
# kube-controller-manager + kube-scheduler v1.20.2 on etcd, on loopback (e2e/k8s/control-plane.sh,
# built once from Debian's kubernetes source package by ../shared/k8s/local-control-plane.sh),
# helm v4 and kubectl v1.33. Two phases, each on a fresh control plane:
#
#   rust     operator/tests/k8s_e2e.rs with no kubelet: pods stay Pending, which is enough to
#            test what the operator builds, its status, scaling through the scale subresource
#            and GC (cargo test -p ironlog-operator --test k8s_e2e -- --ignored).
#   pytest   e2e/k8s/tests/ with the kubelet stand-in (e2e/k8s/kubelet.py): five Nodes whose
#            pods run as containers of the broker image on a private Docker network
#            (172.28.0.0/24), local volumes, and a hosts file of the cluster's DNS names that the
#            operator (a host process) and the tests resolve through nss_wrapper (with
#            e2e/k8s/resolver/serialize_lookups.so: nss_wrapper is not thread-safe).
#
#   e2e/k8s/run.sh                    # both phases
#   e2e/k8s/run.sh -k install         # extra arguments go to pytest
#   E2E_K8S_PHASES=pytest e2e/k8s/run.sh
#
# Env: IRONLOG_BIN     broker binary for the Rust KafkaTopic test (default <target dir>/debug/ironlog,
#                      built if missing).
#      IRONLOG_IMAGE   the broker image the scenarios run (default ironlog/ironlog:e2e-compose, which
#                      CI's compose step builds; built here with docker/build-images.sh if missing).
#      IRONLOG_SHARED  the shared tools directory (default: ../shared next to the repo).
#      E2E_K8S_PHASES  "rust pytest" (default), or one of them.
# Logs go to /tmp/ironlog-e2e-k8s-logs. Sets up, runs, tears everything down even on failure, and
# ends with the line "N passed, M failed"; the exit code is non-zero on any failure.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export IRONLOG_SHARED=${IRONLOG_SHARED:-$ROOT/../shared}
export E2E_K8S_STATE=${E2E_K8S_STATE:-/tmp/ironlog-e2e-k8s}
export E2E_K8S_LOGS=$E2E_K8S_STATE-logs
export CARGO_TERM_COLOR=never
CP=$HERE/control-plane.sh
LOG=$E2E_K8S_LOGS
STATE=$E2E_K8S_STATE
PHASES=${E2E_K8S_PHASES:-rust pytest}
METRICS_ADDR=127.0.0.1:18080
KUBELET_ADDR=127.0.0.1:18081
LABEL=ironlog-e2e=k8s
NODES=5
rm -rf "$LOG"
mkdir -p "$LOG"

started=$SECONDS
phase() { echo "=== [$((SECONDS - started)) s] $*"; }

operator_pid=
kubelet_pid=
stop_pid() { # pid, seconds: SIGTERM, then SIGKILL after the deadline
  local pid=$1 i
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
remove_leftovers() { # containers and the network of the kubelet stand-in
  local ids
  ids=$(docker ps -aq --filter "label=$LABEL" 2>/dev/null)
  [[ -z $ids ]] || docker rm -f -v $ids >/dev/null 2>&1
  ids=$(docker network ls -q --filter "label=$LABEL" 2>/dev/null)
  [[ -z $ids ]] || docker network rm $ids >/dev/null 2>&1
  rm -rf "$STATE/nodes" "$STATE/pods"
}
cleanup() {
  stop_pid "$operator_pid" 30
  # The operator the scenarios started (harness.OperatorProcess), if pytest left it running.
  local pid
  pid=$(cat "$LOG/operator-pytest.pid" 2>/dev/null)
  if [[ -n $pid ]] && grep -qs ironlog-operator "/proc/$pid/cmdline"; then kill -9 "$pid" 2>/dev/null; fi
  stop_pid "$kubelet_pid" 60
  remove_leftovers
  "$CP" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- setup ------------------------------------------------------------------------------------
phase "setup"
cd "$ROOT"
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export IRONLOG_BIN=${IRONLOG_BIN:-$target_dir/debug/ironlog}
source "$ROOT/e2e/lib/setup.sh"  # e2e_setup, e2e_pytest, fail_setup ("0 passed, 1 failed")
command -v docker >/dev/null || fail_setup "docker is not installed"
docker info >/dev/null 2>&1 || fail_setup "docker daemon not reachable"
remove_leftovers
"$CP" down >/dev/null 2>&1 || true

cargo build -q -p ironlog-operator --bins -p ironlog --bin ironlog \
  || fail_setup "building the operator and the broker"
if [[ " $PHASES " == *" rust "* ]]; then
  cargo test -q -p ironlog-operator --test k8s_e2e --no-run 2>"$LOG/cargo-test-build.log" \
    || fail_setup "building operator/tests/k8s_e2e.rs (see $LOG/cargo-test-build.log)"
fi
dpkg -s libnss-wrapper >/dev/null 2>&1 || e2e_apt_install libnss-wrapper
# nss_wrapper crashes a multi-threaded process that looks names up while the hosts file is
# rewritten (e2e/k8s/resolver/serialize_lookups.c): every lookup goes through one lock.
mkdir -p "$STATE"
gcc -shared -fPIC -O2 -Wall -o "$STATE/serialize_lookups.so" \
  "$ROOT/e2e/k8s/resolver/serialize_lookups.c" -ldl -lpthread \
  || fail_setup "building e2e/k8s/resolver/serialize_lookups.c (needs gcc)"
e2e_setup
"$CP" build >"$LOG/build.log" 2>&1 || fail_setup "building the control plane (see $LOG/build.log)"
# The shared recipe ends with `kubectl version --client | head -1` under pipefail, which
# fails now and then after a good install (head exits first and kubectl gets SIGPIPE); a
# second run finds both binaries in place (or retries a failed download).
install_tools() { "$IRONLOG_SHARED/k8s/install-helm-kubectl.sh" >>"$LOG/tools.log" 2>&1; }
install_tools || install_tools || fail_setup "installing helm/kubectl (see $LOG/tools.log)"
eval "$("$CP" env)"
export KUBECONFIG PATH

export IRONLOG_IMAGE=${IRONLOG_IMAGE:-ironlog/ironlog:e2e-compose}
if docker image inspect "$IRONLOG_IMAGE" >/dev/null 2>&1; then
  echo "using image $IRONLOG_IMAGE"
elif [[ $IRONLOG_IMAGE == ironlog/ironlog:* ]]; then
  echo "building $IRONLOG_IMAGE from $target_dir/debug"
  CARGO_TARGET_DIR=$target_dir IRONLOG_PROFILE=debug IRONLOG_IMAGES=broker \
    timeout 900 "$ROOT/docker/build-images.sh" "${IRONLOG_IMAGE#*:}" >"$LOG/image.log" 2>&1 \
    || fail_setup "docker/build-images.sh (see $LOG/image.log)"
else
  fail_setup "image $IRONLOG_IMAGE does not exist"
fi

passed=0
failed=0

# ---- phase 1: the Rust tests, no kubelet ------------------------------------------------------
if [[ " $PHASES " == *" rust "* ]]; then
  phase "rust: control plane up"
  "$CP" up >"$LOG/up.log" 2>&1 || fail_setup "starting the control plane (see $LOG/up.log)"
  kubectl apply -f crds/ >"$LOG/crds.log" 2>&1 || fail_setup "applying crds/ (see $LOG/crds.log)"
  kubectl wait --for=condition=Established crd --all --timeout=60s >>"$LOG/crds.log" 2>&1 \
    || fail_setup "CRDs not established"
  "$target_dir/debug/ironlog-operator" --log-format text --metrics-addr "$METRICS_ADDR" \
    --allow-bootstrap-override >"$LOG/operator.log" 2>&1 &
  operator_pid=$!
  export E2E_OPERATOR_METRICS=$METRICS_ADDR

  phase "rust: operator/tests/k8s_e2e.rs"
  cargo test -p ironlog-operator --test k8s_e2e -- --ignored --test-threads=1 2>&1 | tee "$LOG/tests.log"
  status=${PIPESTATUS[0]}
  result=$(grep -E '^test result:' "$LOG/tests.log" | tail -1)
  p=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$result")
  f=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$result")
  p=${p:-0}; f=${f:-0}
  if ((status != 0 && f == 0)); then f=1; fi
  if ((f)); then
    echo "--- operator log (last 40 lines; full log in $LOG/operator.log)"
    tail -40 "$LOG/operator.log"
  fi
  if ! kill -0 "$operator_pid" 2>/dev/null; then
    echo "operator process exited during the run"; f=$((f + 1))
  fi
  stop_pid "$operator_pid" 30
  operator_pid=
  "$CP" down >>"$LOG/up.log" 2>&1
  echo "rust: $p passed, $f failed"
  passed=$((passed + p)); failed=$((failed + f))
fi

# ---- phase 2: the scenarios, with the kubelet stand-in ----------------------------------------
if [[ " $PHASES " == *" pytest "* ]]; then
  phase "pytest: control plane up, kubelet stand-in with $NODES nodes"
  "$CP" up >>"$LOG/up.log" 2>&1 || fail_setup "starting the control plane (see $LOG/up.log)"
  "$VENV/bin/python" -u "$HERE/kubelet.py" --state-dir "$STATE" --nodes "$NODES" \
    --listen "$KUBELET_ADDR" >"$LOG/kubelet.log" 2>&1 &
  kubelet_pid=$!
  for _ in $(seq 60); do
    curl -sf "http://$KUBELET_ADDR/healthz" >/dev/null && break
    kill -0 "$kubelet_pid" 2>/dev/null || fail_setup "the kubelet stand-in exited (see $LOG/kubelet.log)"
    sleep 1
  done
  kubectl wait --for=condition=Ready node --all --timeout=60s >"$LOG/nodes.log" 2>&1 \
    || fail_setup "nodes not Ready (see $LOG/nodes.log and $LOG/kubelet.log)"

  phase "pytest: e2e/k8s/tests"
  export E2E_KUBELET_URL=http://$KUBELET_ADDR
  export E2E_OPERATOR_BIN=$target_dir/debug/ironlog-operator
  export E2E_OPERATOR_ARGS="--log-format text --metrics-addr $METRICS_ADDR"
  export E2E_OPERATOR_METRICS=$METRICS_ADDR
  (
    # Cluster DNS names (pods, Services) for pytest and everything it starts, the operator too.
    export LD_PRELOAD="$STATE/serialize_lookups.so libnss_wrapper.so" NSS_WRAPPER_HOSTS=$STATE/hosts
    # pytest (its Kafka clients are librdkafka) has died of SIGSEGV here without a Python
    # traceback: keep a core to say where (printed below).
    ulimit -c unlimited 2>/dev/null || true
    e2e_pytest "$@"
  ) 2>&1 | tee "$LOG/pytest.log"
  status=${PIPESTATUS[0]}
  print_crash "$status" "$ROOT/e2e/k8s" "$ROOT/e2e/.venv/bin/python"
  summary=$(grep -E '^=+ .*(passed|failed|error|no tests ran).* in [0-9.]+s' "$LOG/pytest.log" | tail -1)
  p=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+')
  f=$(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '[0-9]+')
  e=$(grep -oE '[0-9]+ errors?' <<<"$summary" | grep -oE '[0-9]+')
  p=${p:-0}; f=$(( ${f:-0} + ${e:-0} ))
  if ((status != 0 && f == 0)); then f=1; fi
  if ! kill -0 "$kubelet_pid" 2>/dev/null; then
    echo "the kubelet stand-in exited during the run"; f=$((f + 1))
  fi
  if ((f)); then
    echo "--- kubelet stand-in log (last 40 lines; full log in $LOG/kubelet.log)"
    tail -40 "$LOG/kubelet.log"
    # Last, so a log cut to its tail still names what failed and why.
    echo "--- what failed (full output in $LOG/pytest.log)"
    grep -E "^(FAILED|ERROR) |^E  |INTERNALERROR" "$LOG/pytest.log" | tail -30
    [[ -n $summary ]] || echo "pytest printed no summary line (exit status $status)"
  fi
  echo "pytest: $p passed, $f failed"
  passed=$((passed + p)); failed=$((failed + f))
fi

phase "done (logs in $LOG)"
echo "$passed passed, $failed failed"
((failed == 0))
