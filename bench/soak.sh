#!/usr/bin/env bash
# Steady-load soak: a broker under a fixed produce rate with a consumer following, for
# SOAK_SECONDS (default 600), sampling the broker's RSS every 10 s. Prints the samples, the
# RSS at the end of the first minute and at the end, and the CPU seconds per GB; exits
# non-zero if the final RSS exceeds the first-minute RSS by more than SOAK_GROWTH_MB (20).
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
cpu_s() { awk '{print ($14+$15)/100}' "/proc/$BROKER/stat"; }
idle_kb=$(rss_kb)
records=$((RATE * SECONDS_TOTAL))
"$BIN" perf produce --bootstrap-server 127.0.0.1:"$P" --topic soak --num-records "$records" \
    --record-size "$SIZE" --throughput "$RATE" --acks all --reporting-interval-ms 0 --json \
    >"$WORK/produce.json" 2>"$WORK/produce.err" &
PIDS+=($!)
"$BIN" perf consume --bootstrap-server 127.0.0.1:"$P" --topic soak --messages "$records" \
    --reporting-interval-ms 0 --json >"$WORK/consume.json" 2>"$WORK/consume.err" &
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
wait "${PIDS[0]}" || true
end_kb=$(rss_kb); cpu=$(cpu_s)
first_minute_kb=${first_minute_kb:-$end_kb}
gb=$(python3 -c "print($records * $SIZE / 1e9)")
echo "rss: idle $((idle_kb / 1024)) MiB, after 1 min $((first_minute_kb / 1024)) MiB, at end $((end_kb / 1024)) MiB"
echo "cpu: ${cpu}s for ${gb} GB produced and consumed ($(python3 -c "print(round($cpu / $gb, 2))") s/GB)"
tail -1 "$WORK/produce.json" | cut -c1-200
if ((end_kb > first_minute_kb + GROWTH_MB * 1024)); then
    echo "soak: RSS grew by more than $GROWTH_MB MiB"; exit 1
fi
echo "soak: ok"
