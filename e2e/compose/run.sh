#!/usr/bin/env bash
# docker-compose suite: the repository's docker-compose.yml (three broker+voter nodes on the
# host network, Kafka on 127.0.0.1:11092/12092/13092) run from a freshly built broker image,
# checked from the host with kcat and the `ironlog` toolbox walkthrough. The cluster is always
# taken down with its volumes (`docker-compose down -v`), also on failure or interrupt.
#
#   e2e/compose/run.sh                 # everything
#   e2e/compose/run.sh -k walkthrough  # extra arguments go to pytest
#
# Env: IRONLOG_BIN      the host-side toolbox binary (default: <repo>/target/debug/ironlog)
#      IRONLOG_PROFILE  the image's binary: debug (default here, target/debug, no release build)
#                       or release (docker/build-images.sh)
#      IRONLOG_TAG      the image tag to build and run (default e2e-compose)
#      SKIP_IMAGE_BUILD=1  run ironlog/ironlog:$IRONLOG_TAG as it is
# Needs docker and docker-compose (1.29 or later); the ports 11092-13644 above must be free.
set -euo pipefail
source "$(dirname "$0")/../lib/setup.sh"
e2e_setup kcat
command -v docker >/dev/null || fail_setup "docker is not installed"
command -v docker-compose >/dev/null || e2e_apt_install docker-compose

export IRONLOG_TAG=${IRONLOG_TAG:-e2e-compose}
export COMPOSE_PROJECT_NAME=ironlog-e2e
export COMPOSE_FILE=$ROOT/docker-compose.yml
export COMPOSE_BOOTSTRAPS=127.0.0.1:11092,127.0.0.1:12092,127.0.0.1:13092
UP_TIMEOUT_S=60

for port in 11092 11093 11644 12092 12093 12644 13092 13093 13644; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail_setup "port $port is in use (docker-compose.yml needs 11092-13644)"
  fi
done

if [[ ${SKIP_IMAGE_BUILD:-} != 1 ]]; then
  echo "building ironlog/ironlog:$IRONLOG_TAG"
  IRONLOG_PROFILE=${IRONLOG_PROFILE:-debug} IRONLOG_IMAGES=broker \
    timeout 900 "$ROOT/docker/build-images.sh" "$IRONLOG_TAG" >/dev/null \
    || fail_setup "docker/build-images.sh"
fi

down() {
  local status=$?
  if ((status != 0)); then
    echo "--- docker-compose logs (last 60 lines per node)"
    docker-compose logs --no-color --tail 60 || true
  fi
  timeout 120 docker-compose down -v --remove-orphans >/dev/null 2>&1 \
    || echo "docker-compose down -v failed; clean up project $COMPOSE_PROJECT_NAME by hand" >&2
  exit "$status"
}
trap down EXIT
trap 'exit 130' INT TERM

docker-compose down -v --remove-orphans >/dev/null 2>&1 || true
timeout 120 docker-compose up -d || fail_setup "docker-compose up"

# Up means: node 1 lists three brokers.
deadline=$((SECONDS + UP_TIMEOUT_S))
until [[ $(kcat -L -b 127.0.0.1:11092 -m 3 2>/dev/null | grep -c '^  broker ') == 3 ]]; do
  if ((SECONDS > deadline)); then
    kcat -L -b 127.0.0.1:11092 -m 3 || true
    fail_setup "the cluster did not list 3 brokers within ${UP_TIMEOUT_S}s"
  fi
  sleep 0.5
done

status=0
cd "$E2E_SUITE_DIR"
timeout 300 "$VENV/bin/python" -m pytest -v -p no:cacheprovider --durations=8 "$@" || status=$?
exit "$status"
