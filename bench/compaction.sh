#!/usr/bin/env bash
# Log compaction benchmark (bench/compaction.py): per codec, records before/after cleaning
# and the cleaner's MB/s; then produce latency (acks=all, fixed rate) with a busy cleaner vs
# `--log-cleaner-enable false`. See bench/README.md.
#
#   bench/compaction.sh            full run (~15 min); writes bench/results/compaction-<date>.json
#   bench/compaction.sh --smoke    tiny counts, 3 s latency runs (~1 min warm); checks every
#                                  figure parses; writes $CARGO_TARGET_DIR/bench-compaction-smoke.json;
#                                  exits non-zero on failure
#
# Environment: CARGO_TARGET_DIR (default target/perf, as bench/run.sh), BENCH_NO_BUILD=1 to use
# the binary as built, BENCH_DATA_DIR (default: under the target dir). Sets up the e2e venv
# (e2e/lib/setup.sh: pinned confluent-kafka) for the Python driver.
set -euo pipefail

source "$(dirname "$0")/lib.sh"
bench_init "$@"
export IRONLOG_BIN=$CARGO_TARGET_DIR/release/ironlog

if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
    echo "[compaction-bench] building the release binary into $CARGO_TARGET_DIR" >&2
    (cd "$ROOT" && cargo build --release -q -p ironlog)
fi
source "$ROOT/e2e/lib/setup.sh"
e2e_setup # the venv with the pinned clients; fails if $IRONLOG_BIN is missing

if [[ $MODE == smoke ]]; then
    OUT=$CARGO_TARGET_DIR/bench-compaction-smoke.json
    FLAGS=(--smoke)
else
    mkdir -p "$ROOT/bench/results"
    OUT=$ROOT/bench/results/compaction-$(date -u +%Y-%m-%dT%H%M%SZ).json
    FLAGS=()
fi
exec "$VENV/bin/python" "$ROOT/bench/compaction.py" "${FLAGS[@]}" --bin "$IRONLOG_BIN" \
    --out "$OUT" --work "${BENCH_DATA_DIR:-$CARGO_TARGET_DIR}"
