#!/usr/bin/env bash
# Ironlog benchmark: the machine's limits, then a single-node broker driven by
# `ironlog perf` (librdkafka), in one run on one machine. See bench/README.md.
#
#   bench/run.sh            full run (~5-10 min); writes bench/results/<date>.json
#   bench/run.sh --smoke    tiny counts (~1 min on a warm build); checks every figure parses;
#                           writes $CARGO_TARGET_DIR/bench-smoke.json; exits non-zero on failure
#
# Environment: CARGO_TARGET_DIR (default target/perf), BENCH_NO_BUILD=1 to use the
# binary as built, BENCH_DATA_DIR (default: under the target dir, i.e. the repo's filesystem).
set -euo pipefail

source "$(dirname "$0")/lib.sh"
bench_init "$@"
BIN=$CARGO_TARGET_DIR/release/ironlog
WORK=$(mktemp -d "${BENCH_DATA_DIR:-$CARGO_TARGET_DIR}/bench.XXXXXX")
ROWS=$WORK/rows.jsonl
: >"$ROWS"
BROKER_PID=""
IPERF_PID=""

cleanup() {
    # Only the processes this script started, by PID.
    if [[ -n "$BROKER_PID" ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    if [[ -n "$IPERF_PID" ]] && kill -0 "$IPERF_PID" 2>/dev/null; then
        kill "$IPERF_PID" 2>/dev/null || true
        wait "$IPERF_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[bench] $*" >&2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- tools ---------------------------------------------------------------------------
need=()
command -v iperf3 >/dev/null || need+=(iperf3)
command -v fio >/dev/null || need+=(fio)
if ((${#need[@]})); then
    log "installing ${need[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        echo "bench: need ${need[*]} and not root; install them (apt-get install ${need[*]})" >&2
        exit 1
    fi
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- sizes -----------------------------------------------------------------------------
if [[ $MODE == smoke ]]; then
    IPERF_SECONDS=1
    FIO_SIZE=64M
    FIO_SYNC_SIZE=8M
    MATRIX=("20000 100" "2000 1024")
    DURABLE_RECORDS=2000
else
    IPERF_SECONDS=5
    FIO_SIZE=2G
    FIO_SYNC_SIZE=256M
    MATRIX=("1000000 100" "200000 1024")
    DURABLE_RECORDS=100000
fi

# --- limits ----------------------------------------------------------------------------
log "loopback TCP: iperf3 for ${IPERF_SECONDS}s"
# A fresh one-off server per attempt, and the client only once the server listens: a
# client that connects too early fails, and a one-off server that saw a failed client is gone.
for attempt in 1 2 3; do
    IPORT=$(free_port)
    iperf3 -s -1 -p "$IPORT" </dev/null >/dev/null 2>&1 &
    IPERF_PID=$!
    for _ in $(seq 100); do
        ss -Hltn "sport = :$IPORT" 2>/dev/null | grep -q . && break
        sleep 0.05
    done
    ok=0
    iperf3 -c 127.0.0.1 -p "$IPORT" -t "$IPERF_SECONDS" -J >"$WORK/iperf.json" 2>/dev/null && ok=1
    # The one-off server normally exits after the test; stop it in case it didn't.
    kill "$IPERF_PID" 2>/dev/null || true
    wait "$IPERF_PID" 2>/dev/null || true
    IPERF_PID=""
    ((ok)) && break
    log "iperf3 attempt $attempt failed: $(head -c 300 "$WORK/iperf.json" | tr '\n' ' ')"
done

log "disk: fio sequential write in $WORK ($FIO_SIZE, fsync at end; $FIO_SYNC_SIZE, fsync every 64 KiB)"
fio --name=seq-end-fsync --directory="$WORK" --rw=write --bs=1M --size="$FIO_SIZE" \
    --ioengine=psync --end_fsync=1 --output-format=json >"$WORK/fio-end.json"
rm -f "$WORK"/seq-end-fsync*
fio --name=seq-fsync-64k --directory="$WORK" --rw=write --bs=64k --size="$FIO_SYNC_SIZE" \
    --ioengine=psync --fsync=1 --output-format=json >"$WORK/fio-sync.json"
rm -f "$WORK"/seq-fsync-64k*

# --- build -----------------------------------------------------------------------------
if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
    log "building (release) into $CARGO_TARGET_DIR"
    (cd "$ROOT" && cargo build --release -q -p ironlog)
fi
[[ -x "$BIN" ]] || { echo "bench: $BIN not built" >&2; exit 1; }

# --- broker ----------------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
cpu_seconds() { # utime + stime of the broker, in seconds
    awk -v t="$CLK_TCK" '{ print ($14 + $15) / t }' "/proc/$BROKER_PID/stat"
}
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$BROKER_PID/status"; }

PORT=""
start_broker() { # name, extra args...
    local name=$1
    shift
    PORT=$(free_port)
    local mport
    mport=$(free_port)
    "$BIN" broker --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$mport" \
        --data-dir "$WORK/data-$name" --log-level warn "$@" >"$WORK/broker-$name.log" 2>&1 &
    BROKER_PID=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$mport/health" >/dev/null 2>&1 && break
        kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/broker-$name.log" >&2; exit 1; }
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$mport/health" >/dev/null || { echo "bench: broker not healthy" >&2; exit 1; }
    sleep 0.5 # let start-up allocations settle before reading the idle RSS
    IDLE_RSS_KB=$(status_kb VmRSS)
    log "broker $name: pid $BROKER_PID on 127.0.0.1:$PORT, idle RSS ${IDLE_RSS_KB} kB"
}

stop_broker() { # name
    PEAK_RSS_KB=$(status_kb VmHWM)
    CPU_TOTAL=$(cpu_seconds)
    kill -TERM "$BROKER_PID"
    wait "$BROKER_PID" || { echo "bench: broker $1 exited with an error" >&2; cat "$WORK/broker-$1.log" >&2; exit 1; }
    BROKER_PID=""
    echo "{\"broker\":\"$1\",\"idle_rss_kb\":$IDLE_RSS_KB,\"peak_rss_kb\":$PEAK_RSS_KB,\"cpu_s\":$CPU_TOTAL}" >>"$ROWS"
}

run_case() { # durability records size acks compression
    local durability=$1 n=$2 size=$3 acks=$4 comp=$5
    local topic="bench-${durability//[^a-zA-Z0-9]/-}-$size-$acks-$comp"
    log "produce $n x $size B acks=$acks compression=$comp ($durability)"
    local c0 c1 c2 p c
    c0=$(cpu_seconds)
    p=$("$BIN" perf produce --bootstrap-server "127.0.0.1:$PORT" --topic "$topic" \
        --num-records "$n" --record-size "$size" --acks "$acks" --compression "$comp" \
        --json --reporting-interval-ms 2000 | tail -n 1)
    c1=$(cpu_seconds)
    log "consume $n"
    c=$("$BIN" perf consume --bootstrap-server "127.0.0.1:$PORT" --topic "$topic" \
        --messages "$n" --json --reporting-interval-ms 2000 | tail -n 1)
    c2=$(cpu_seconds)
    echo "{\"durability\":\"$durability\",\"records\":$n,\"record_size\":$size,\"acks\":\"$acks\",\"compression\":\"$comp\",\"produce\":$p,\"consume\":$c,\"broker_cpu_produce_s\":$c1,\"broker_cpu_consume_s\":$c2,\"broker_cpu_start_s\":$c0}" >>"$ROWS"
}

start_broker page-cache
for case in "${MATRIX[@]}"; do
    read -r n size <<<"$case"
    for acks in 1 all; do
        for comp in none lz4; do
            run_case page-cache "$n" "$size" "$acks" "$comp"
        done
    done
done
stop_broker page-cache

start_broker fsync-each --default-topic-config flush.messages=1
run_case flush.messages=1 "$DURABLE_RECORDS" 100 all none
stop_broker fsync-each

# --- report ----------------------------------------------------------------------------
if [[ $MODE == smoke ]]; then
    OUT=$CARGO_TARGET_DIR/bench-smoke.json
else
    mkdir -p "$ROOT/bench/results"
    OUT=$ROOT/bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).json
fi
python3 "$ROOT/bench/report.py" --mode "$MODE" --work "$WORK" --out "$OUT"
log "results written to $OUT"
