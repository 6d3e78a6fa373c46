#!/usr/bin/env bash
# The Kubernetes control plane of e2e/k8s: etcd + kube-apiserver + kube-controller-manager +
# kube-scheduler v1.20.2 on 127.0.0.1:6443, as the shared recipe
# (../shared/k8s/local-control-plane.sh) runs them, with flags for node-loss tests: the
# node-lifecycle controller looks at Leases every 2 s and marks a Node that stopped renewing
# NotReady (Unknown) after 16 s instead of 40 s. There is no kubelet: e2e/k8s/kubelet.py plays it.
#
#   e2e/k8s/control-plane.sh build   # the recipe's build: binaries in $LOCAL_K8S_CACHE/bin (~5 min once)
#   e2e/k8s/control-plane.sh up      # start everything, write $STATE/kubeconfig (fresh etcd)
#   e2e/k8s/control-plane.sh down    # stop what `up` started, drop the etcd data
#   e2e/k8s/control-plane.sh env     # print `export KUBECONFIG=... PATH=<bin>:$PATH`
#
# STATE is /tmp/ironlog-e2e-k8s (E2E_K8S_STATE); the control plane keeps its files in
# $STATE/control-plane and appends its logs to $LOGS/<component>.log (E2E_K8S_LOGS, default
# $STATE/logs). Auth: the static
# bearer token `admintoken` (user admin in system:masters), RBAC on. The kubeconfig is written
# as JSON (valid YAML), so Python reads it without a YAML parser.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${IRONLOG_SHARED:-$(cd "$HERE/../../.." && pwd)/shared}
RECIPE=$SHARED/k8s/local-control-plane.sh
export LOCAL_K8S_CACHE=${LOCAL_K8S_CACHE:-$HOME/.cache/local-k8s}
BIN=$LOCAL_K8S_CACHE/bin
STATE=${E2E_K8S_STATE:-/tmp/ironlog-e2e-k8s}
CP=$STATE/control-plane
LOGS=${E2E_K8S_LOGS:-$STATE/logs}
TOKEN=admintoken
APISERVER=https://127.0.0.1:6443
COMPONENTS=(kube-scheduler kube-controller-manager kube-apiserver etcd)

wait_for() { # what, seconds, command...: polls the command once a second
  local what=$1 seconds=$2 i
  shift 2
  for ((i = 0; i < seconds; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "control-plane: $what not ready after $seconds s (logs in $LOGS)" >&2
  return 1
}

running() { # pid: the process exists and is not a zombie
  [[ -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

not_running() { ! running "$1"; }

healthy() { # url: the API server answers it with 200
  curl -skf -H "Authorization: Bearer $TOKEN" "$1"
}

start() { # name, command...: runs it in the background, its pid in $CP/name.pid
  local name=$1
  shift
  echo "=== $(date -u +%FT%TZ) starting $name" >>"$LOGS/$name.log"
  "$@" >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$CP/$name.pid"
}

up() {
  [[ -x $BIN/kube-apiserver ]] || { echo "control-plane: no binaries in $BIN; run '$0 build'" >&2; exit 1; }
  mkdir -p "$CP" "$LOGS"
  cd "$CP"
  # The service-account signing key and the static token file, as the recipe makes them.
  if [[ ! -f sa.key ]]; then
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  fi
  echo "$TOKEN,admin,admin,\"system:masters\"" >tokens.csv
  cat >"$STATE/kubeconfig" <<KC
{"apiVersion": "v1", "kind": "Config",
 "clusters": [{"name": "local", "cluster": {"server": "$APISERVER", "insecure-skip-tls-verify": true}}],
 "users": [{"name": "admin", "user": {"token": "$TOKEN"}}],
 "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin", "namespace": "default"}}],
 "current-context": "local"}
KC
  rm -rf "$CP/etcd"
  start etcd etcd --data-dir "$CP/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=127.0.0.1 --secure-port=6443 --cert-dir="$CP/certs" --token-auth-file=tokens.csv \
    --authorization-mode=Node,RBAC --service-account-key-file=sa.pub \
    --service-account-signing-key-file=sa.key --service-account-issuer=https://kubernetes.default.svc \
    --service-cluster-ip-range=10.96.0.0/16 --allow-privileged=true
  wait_for "kube-apiserver" 90 healthy "$APISERVER/readyz"
  # Node lifecycle: a Node whose Lease is not renewed for 16 s goes Unknown (NotReady); checked
  # every 2 s. The kubelet stand-in renews every 4 s.
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$STATE/kubeconfig" \
    --authentication-kubeconfig="$STATE/kubeconfig" --authorization-kubeconfig="$STATE/kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10257 --service-account-private-key-file=sa.key \
    --use-service-account-credentials=false --leader-elect=false \
    --controllers='*,-nodeipam,-csrsigning' \
    --node-monitor-period=2s --node-monitor-grace-period=16s
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$STATE/kubeconfig" \
    --authentication-kubeconfig="$STATE/kubeconfig" --authorization-kubeconfig="$STATE/kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false
  wait_for "kube-controller-manager" 60 curl -skf https://127.0.0.1:10257/healthz
  wait_for "kube-scheduler" 60 curl -skf https://127.0.0.1:10259/healthz
  # The default ServiceAccount exists once the controller-manager's token controller ran.
  wait_for "the default namespace's ServiceAccount" 60 \
    healthy "$APISERVER/api/v1/namespaces/default/serviceaccounts/default"
  echo "control-plane: up; export KUBECONFIG=$STATE/kubeconfig PATH=$BIN:\$PATH"
}

down() {
  local name pid
  for name in "${COMPONENTS[@]}"; do
    [[ -f $CP/$name.pid ]] || continue
    pid=$(cat "$CP/$name.pid")
    if kill "$pid" 2>/dev/null; then
      wait_for "$name to exit" 30 not_running "$pid" || kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$CP/$name.pid"
  done
  rm -rf "$CP/etcd"
}

case "${1:-}" in
  build) LOCAL_K8S_CACHE=$LOCAL_K8S_CACHE "$RECIPE" build ;;
  up) up ;;
  down) down ;;
  env) echo "export KUBECONFIG=$STATE/kubeconfig PATH=$BIN:\$PATH" ;;
  *) sed -n 2,17p "$0"; exit 2 ;;
esac
