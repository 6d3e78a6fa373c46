#!/usr/bin/env bash
# Steady-load soak: a broker under a fixed produce rate with a consumer following, for
# SOAK_SECONDS (default 600), sampling the broker's RSS every 10 s (`ironlog perf workload`:
# one topic, acks=all, idempotent producer, the consumer in a group). Prints the samples, the
# RSS at the end of the first minute and at the end, and the CPU seconds per GB; exits
# non-zero if the final RSS exceeds the first-minute RSS by more than SOAK_GROWTH_MB (20), or
# if the consumer did not read every acknowledged record exactly once and in order.
#
#   bench/soak.sh                      # 10 minutes, 20,000 x 1 KiB records/s, acks=all
#   SOAK_SECONDS=60 bench/soak.sh      # shorter
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/perf}
BIN=$CARGO_TARGET_DIR/release/ironlog
SECONDS_TOTAL=${SOAK_SECONDS:-600}
RATE=${SOAK_RATE:-20000}
SIZE=${SOAK_RECORD_SIZE:-1024}
GROWTH_MB=${SOAK_GROWTH_MB:-20}
[[ ${BENCH_NO_BUILD:-} == 1 ]] || cargo build -q --release -p ironlog --bin ironlog
WORK=$(mktemp -d "$CARGO_TARGET_DIR/soak.XXXXXX")
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port); M=$(port)
# Segments of 64 MiB and 1 GiB retained per partition keep the disk bounded and make
# retention run during the soak.
"$BIN" broker --listen 127.0.0.1:"$P" --metrics-listen 127.0.0.1:"$M" --data-dir "$WORK/data" \
    --log-level warn --default-topic-config segment.bytes=67108864,retention.bytes=1073741824 \
    >"$WORK/broker.log" 2>&1 &
BROKER=$!
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; kill -TERM "$BROKER" 2>/dev/null || true; wait "$BROKER" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "127.0.0.1:$M/health" >/dev/null && break; sleep 0.1; done
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$BROKER/status"; }
CLK_TCK=$(getconf CLK_TCK)
cpu_s() { awk -v t="$CLK_TCK" '{print ($14+$15)/t}' "/proc/$BROKER/stat"; }
idle_kb=$(rss_kb)
# The consumer follows closely, so retention (set on the broker above) never deletes a
# record before it is read.
"$BIN" perf workload --bootstrap-server 127.0.0.1:"$P" --name soak --partitions 1 \
    --producers 1 --consumers 1 --record-size "$SIZE" --rate "$RATE" --acks all \
    --warmup-s 0 --duration-s "$SECONDS_TOTAL" --broker-pid "$BROKER" \
    --reporting-interval-ms 60000 --json >"$WORK/workload.out" 2>"$WORK/workload.err" &
PIDS+=($!)
echo "soak: ${SECONDS_TOTAL}s at $RATE x $SIZE B/s, acks=all; idle RSS $((idle_kb / 1024)) MiB"
first_minute_kb=""
start=$SECONDS
while ((SECONDS - start < SECONDS_TOTAL)); do
    sleep 10
    kill -0 "$BROKER" || { echo "soak: broker died"; cat "$WORK/broker.log"; exit 1; }
    t=$((SECONDS - start)); kb=$(rss_kb)
    echo "t=${t}s rss=$((kb / 1024)) MiB cpu=$(cpu_s)s"
    if [[ -z $first_minute_kb ]] && ((t >= 60)); then first_minute_kb=$kb; fi
done
workload_ok=1
wait "${PIDS[0]}" || workload_ok=0
end_kb=$(rss_kb); cpu=$(cpu_s)
first_minute_kb=${first_minute_kb:-$end_kb}
echo "rss: idle $((idle_kb / 1024)) MiB, after 1 min $((first_minute_kb / 1024)) MiB, at end $((end_kb / 1024)) MiB"
grep -E '^(publish|consume|end-to-end|broker|verify)' "$WORK/workload.out" || true
if ((workload_ok == 0)); then
    echo "soak: the workload failed:"; tail -5 "$WORK/workload.err"; exit 1
fi
if ((end_kb > first_minute_kb + GROWTH_MB * 1024)); then
    echo "soak: RSS grew by more than $GROWTH_MB MiB"; exit 1
fi
echo "soak: ok"
