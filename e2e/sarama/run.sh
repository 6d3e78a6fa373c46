#!/usr/bin/env bash
# Compatibility suite: Sarama (the pure-Go Kafka client, Debian bookworm's
# golang-github-shopify-sarama-dev 1.22.1 with Debian's Go 1.19, Kafka protocol 2.1) against one
# real `ironlog broker` process. See the header of sarama_test.go for what is covered.
#
#   e2e/sarama/run.sh                                # everything
#   e2e/sarama/run.sh -run 'TestAsyncProducer/zstd'  # extra arguments go to `go test`
#
# Env: IRONLOG_BIN        the broker binary (default: <repo>/target/debug/ironlog; build it with
#                         `cargo build -p ironlog`)
#      IRONLOG_LOG_LEVEL  the broker's log filter (e.g. debug); its log is printed on failure
#      SARAMA_DEBUG=1     Sarama's own log on stderr
# Installs Go, Sarama and a C compiler (zstd is cgo) from Debian if missing. Builds in GOPATH
# mode against /usr/share/gocode; the Go build cache lives in e2e/sarama/.cache. Ends with a
# summary line "N passed, M failed" (test and subtest results) and exits non-zero on failure.
set -euo pipefail

source "$(dirname "$0")/../lib/setup.sh" # ROOT, IRONLOG_BIN, fail_setup, e2e_apt_install
SUITE_DIR=$E2E_SUITE_DIR
SARAMA_SRC=/usr/share/gocode/src/github.com/Shopify/sarama

missing=()
command -v go >/dev/null || missing+=(golang-go)
[[ -f $SARAMA_SRC/sarama.go ]] || missing+=(golang-github-shopify-sarama-dev)
command -v gcc >/dev/null || missing+=(gcc)
[[ -f /usr/include/stdlib.h ]] || missing+=(libc6-dev)
e2e_apt_install "${missing[@]}"
e2e_require_broker

export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOCACHE=$SUITE_DIR/.cache/go-build
export CGO_ENABLED=1 # Sarama's zstd codec is DataDog/zstd, a cgo binding of libzstd
export CGO_CFLAGS="-g -O2 -Wno-deprecated-declarations" # it calls a deprecated libzstd function
mkdir -p "$GOCACHE"
echo "$(go version); Sarama $(dpkg-query -W -f='${Version}' golang-github-shopify-sarama-dev 2>/dev/null || echo '?'); broker $IRONLOG_BIN"

cd "$SUITE_DIR"
output=$SUITE_DIR/.cache/last-run.log
status=0
go test -v -count=1 -timeout 10m "$@" 2>&1 | tee "$output" || status=$?

passed=$(grep -c -- '--- PASS' "$output" || true)
failed=$(grep -c -- '--- FAIL' "$output" || true)
if ((status != 0 && failed == 0)); then
  # A build error, a broker that didn't start or stop cleanly, a panic: no test to blame.
  echo "go test exited with $status outside any test"
  failed=1
fi
echo "$passed passed, $failed failed"
((status == 0 && failed == 0))
