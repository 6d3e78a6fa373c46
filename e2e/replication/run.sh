#!/usr/bin/env bash
# Replication suite: records survive faults. A workload of idempotent acks=all producers
# (confluent-kafka) runs while brokers are killed (kill -9), paused (SIGSTOP) past
# --replica-lag-time-max-ms, cut off the network, or lose their ISR below
# min.insync.replicas; then a verifier reads every partition back to the high watermark and
# counts acknowledged records lost, duplicated or out of producer order (all must be 0).
#
#   tests/test_faults.py          loopback cluster (voters 1-3 + broker 4): leaders killed in
#                                 turn, a follower paused, two of three replicas killed
#   tests/test_partition.py       three containers of the broker image on a private Docker
#                                 network (172.29.0.0/24): the leader disconnected, reconnected
#   tests/test_unclean.py         all in-sync replicas gone: offline until
#                                 unclean.leader.election.enable, then the documented loss
#   tests/test_reassign_data.py   RF=1 -> [2, 3] while producing: the data moves along
#
#   e2e/replication/run.sh                # everything (about 4-5 minutes)
#   e2e/replication/run.sh -k unclean     # extra arguments go to pytest
#
# Prints `MEASURE name value unit` lines at the end: counts per run and, per fault, the
# longest time a hit partition acknowledged nothing (not asserted).
#
# Env: IRONLOG_BIN    the broker binary for the loopback tests and the toolbox
#                     (default: <repo>/target/debug/ironlog).
#      IRONLOG_IMAGE  the broker image for test_partition.py. If it names an existing image,
#                     that is used as it is; otherwise ironlog/ironlog:e2e-compose is built
#                     (docker/build-images.sh with IRONLOG_PROFILE=debug, as e2e/compose does).
# Needs docker (the suite creates and always removes its containers and network, labelled
# ironlog-e2e=replication). Installs the venv e2e/.venv like the other suites. Exits with
# pytest's status.
set -euo pipefail
source "$(dirname "$0")/../lib/setup.sh"
e2e_setup
command -v docker >/dev/null || fail_setup "docker is not installed (test_partition.py needs it)"
docker info >/dev/null 2>&1 || fail_setup "docker daemon not reachable"

if [[ -n ${IRONLOG_IMAGE:-} ]] && docker image inspect "$IRONLOG_IMAGE" >/dev/null 2>&1; then
  echo "using image $IRONLOG_IMAGE"
else
  export IRONLOG_IMAGE=ironlog/ironlog:e2e-compose
  # The image gets the binary under test: <target dir>/debug/ironlog.
  if [[ $IRONLOG_BIN == */debug/ironlog ]]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(dirname "$(dirname "$IRONLOG_BIN")")}
  fi
  echo "building $IRONLOG_IMAGE"
  IRONLOG_PROFILE=debug IRONLOG_IMAGES=broker \
    timeout 900 "$ROOT/docker/build-images.sh" "${IRONLOG_IMAGE#*:}" >/dev/null \
    || fail_setup "docker/build-images.sh"
fi
export IRONLOG_IMAGE

# test_partition.py removes its containers and network itself; this is for an interrupted run.
remove_containers() {
  local ids
  ids=$(docker ps -aq --filter label=ironlog-e2e=replication)
  [[ -z $ids ]] || docker rm -f -v $ids >/dev/null 2>&1 || true
  ids=$(docker network ls -q --filter label=ironlog-e2e=replication)
  [[ -z $ids ]] || docker network rm $ids >/dev/null 2>&1 || true
}
trap remove_containers EXIT
trap 'exit 130' INT TERM

e2e_pytest "$@"
