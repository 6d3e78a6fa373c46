#!/usr/bin/env bash
# Ironlog benchmark: the machine's limits, then a single-node broker and a 3-node cluster
# (RF=3, acks=all) driven by `ironlog perf workload` (librdkafka; OpenMessaging-Benchmark
# style: producers and consumers together, warm-up, then a measured steady state, every
# record verified) and `ironlog perf connections`, in one run on one machine. Each case runs
# REPEATS times; the report gives the median and the spread (min-max). See bench/README.md.
#
#   bench/run.sh            full run (~25 min: 3 x (5 s warm-up + 20 s) per case)
#                           writes bench/results/<date>.json
#   bench/run.sh --smoke    one 3-second run per case (~2 min on a warm build); checks every
#                           figure parses and every record was read;
#                           writes $CARGO_TARGET_DIR/bench-smoke.json; exits non-zero on failure
#
# Environment: CARGO_TARGET_DIR (default target/perf), BENCH_NO_BUILD=1 to use the
# binary as built, BENCH_DATA_DIR (default: under the target dir, i.e. the repo's filesystem),
# BENCH_REPEATS (runs per case in a full run, default 3).
set -euo pipefail

source "$(dirname "$0")/lib.sh"
bench_init "$@"
BIN=$CARGO_TARGET_DIR/release/ironlog
WORK=$(mktemp -d "${BENCH_DATA_DIR:-$CARGO_TARGET_DIR}/bench.XXXXXX")
ROWS=$WORK/rows.jsonl
: >"$ROWS"
BROKER_PID=""
BROKER_PIDS=()  # every broker process of the current setup (one, or the cluster's three)
CLUSTER_PIDS=()
IPERF_PID=""

cleanup() {
    # Only the processes this script started, by PID.
    if [[ -n "$BROKER_PID" ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    local pid
    for pid in "${CLUSTER_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${CLUSTER_PIDS[@]}"; do
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
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
# Every workload case: WARMUP_S unmeasured, then DURATION_S measured, REPEATS times.
if [[ $MODE == smoke ]]; then
    IPERF_SECONDS=1
    FIO_SIZE=64M
    FIO_SYNC_SIZE=8M
    REPEATS=1
    WARMUP_S=1
    DURATION_S=3
    CONNECTIONS=500
else
    IPERF_SECONDS=10
    FIO_SIZE=2G
    FIO_SYNC_SIZE=256M
    REPEATS=${BENCH_REPEATS:-3}
    WARMUP_S=5
    DURATION_S=20
    CONNECTIONS=10000
fi
DRAIN_S=$DURATION_S
CLUSTER_FORM_TIMEOUT_S=60 # three fresh nodes: healthy and each listing all three brokers
# The idle-connections case holds CONNECTIONS sockets in the client and in the broker.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < CONNECTIONS + 1000)); then
    echo "bench: open-files limit $(ulimit -n) is too low for $CONNECTIONS connections (raise ulimit -Hn)" >&2
    exit 1
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
# The same write over pages already in the page cache: what copying a GB into it costs when
# the kernel doesn't have to find fresh pages first (in this VM a never-touched page costs
# far more; the broker's write-behind window keeps reusing warm ones, see bench/README.md).
fio --name=seq-warm --filename="$WORK/seq-warm" --rw=write --bs=1M --size="$FIO_SIZE" \
    --ioengine=psync --end_fsync=1 --output-format=json >/dev/null
fio --name=seq-warm --filename="$WORK/seq-warm" --rw=write --bs=1M --size="$FIO_SIZE" \
    --ioengine=psync --end_fsync=1 --output-format=json >"$WORK/fio-warm.json"
rm -f "$WORK/seq-warm"
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
cpu_seconds() { # utime + stime of the broker(s) under test, summed, in seconds
    local pid
    for pid in "${BROKER_PIDS[@]}"; do cat "/proc/$pid/stat"; done |
        awk -v t="$CLK_TCK" '{ s += $14 + $15 } END { print s / t }'
}
status_kb() { # field [pid]: a /proc/PID/status figure in kB (default: the single broker)
    awk -v k="$1:" '$1 == k { print $2 }' "/proc/${2:-$BROKER_PID}/status"
}

PORT=""
start_broker() { # name, extra args...
    local name=$1
    shift
    PORT=$(free_port)
    local mport
    mport=$(free_port)
    "$BIN" broker --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$mport" \
        --data-dir "$WORK/data-$name" --log-level warn \
        --max-connections-per-ip $((CONNECTIONS + 100)) "$@" >"$WORK/broker-$name.log" 2>&1 &
    BROKER_PID=$!
    BROKER_PIDS=("$BROKER_PID")
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$mport/health" >/dev/null 2>&1 && break
        kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/broker-$name.log" >&2; exit 1; }
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$mport/health" >/dev/null || { echo "bench: broker not healthy" >&2; exit 1; }
    sleep 0.5 # let start-up allocations settle before reading the idle RSS
    IDLE_RSS_KB=$(status_kb VmRSS)
    BOOTSTRAP=127.0.0.1:$PORT
    log "broker $name: pid $BROKER_PID on $BOOTSTRAP, idle RSS ${IDLE_RSS_KB} kB"
}

stop_broker() { # name
    PEAK_RSS_KB=$(status_kb VmHWM)
    CPU_TOTAL=$(cpu_seconds)
    kill -TERM "$BROKER_PID"
    wait "$BROKER_PID" || { echo "bench: broker $1 exited with an error" >&2; cat "$WORK/broker-$1.log" >&2; exit 1; }
    BROKER_PID=""
    BROKER_PIDS=()
    echo "{\"broker\":\"$1\",\"idle_rss_kb\":$IDLE_RSS_KB,\"peak_rss_kb\":$PEAK_RSS_KB,\"cpu_s\":$CPU_TOTAL}" >>"$ROWS"
}

# One workload case, REPEATS times, against the running setup ($BOOTSTRAP, $BROKER_PIDS):
# `ironlog perf workload` with the case's flags; each run's JSON summary becomes a row.
# A run that fails (a record missing, duplicated or out of order; a delivery error) stops
# the benchmark.
workload_case() { # case setup [workload flags...]
    local name=$1 setup=$2 r out pid
    shift 2
    local -a pids=()
    for pid in "${BROKER_PIDS[@]}"; do pids+=(--broker-pid "$pid"); done
    for r in $(seq "$REPEATS"); do
        log "$name ($setup) run $r/$REPEATS: $*"
        # A failed run (a record lost, duplicated or out of order; a delivery error) is a row
        # too: the report lists it and exits non-zero, after printing everything else.
        if out=$(timeout $((WARMUP_S + DURATION_S + DRAIN_S + 240)) "$BIN" perf workload \
            --bootstrap-server "$BOOTSTRAP" --name "$name" --warmup-s "$WARMUP_S" \
            --duration-s "$DURATION_S" --drain-s "$DRAIN_S" --reporting-interval-ms 5000 \
            "${pids[@]}" --json "$@" 2>"$WORK/workload.err" | tail -n 1) && [[ $out == "{"* ]]; then
            echo "{\"case\":\"$name\",\"setup\":\"$setup\",\"repeat\":$r,\"result\":$out}" >>"$ROWS"
        else
            log "workload $name run $r FAILED: $(grep -v PROTOERR "$WORK/workload.err" | tail -n 3 | tr '\n' ' ' | cut -c1-400)"
            echo "{\"case\":\"$name\",\"setup\":\"$setup\",\"repeat\":$r,\"failed\":true}" >>"$ROWS"
        fi
        grep -v PROTOERR "$WORK/workload.err" | grep -E '^\[|^workload' >&2 || true
    done
}

# Idle connections, each run on a fresh broker: one that already held them once keeps the
# freed memory in its allocator and reuses it, so its RSS would barely grow a second time.
connections_case() { # setup
    local r out
    for r in $(seq "$REPEATS"); do
        start_broker "connections-$r"
        log "idle connections ($1) run $r/$REPEATS: $CONNECTIONS"
        out=$("$BIN" perf connections --bootstrap-server "$BOOTSTRAP" --count "$CONNECTIONS" \
            --broker-pid "$BROKER_PID" --json | tail -n 1)
        echo "{\"case\":\"idle-connections\",\"setup\":\"$1\",\"repeat\":$r,\"result\":$out}" >>"$ROWS"
        stop_broker "connections-$r"
    done
}

# --- 3-node cluster ----------------------------------------------------------------------
# Combined broker+voter nodes 1..3 on loopback, each with its own ports and data directory.
CLUSTER_BOOTSTRAP=""
CLUSTER_METRICS=()
start_cluster() { # name
    local name=$1 i
    local -a kport mport cport
    for i in 1 2 3; do
        kport[i]=$(free_port)
        mport[i]=$(free_port)
        cport[i]=$(free_port)
    done
    local voters="1@127.0.0.1:${cport[1]},2@127.0.0.1:${cport[2]},3@127.0.0.1:${cport[3]}"
    CLUSTER_BOOTSTRAP="127.0.0.1:${kport[1]},127.0.0.1:${kport[2]},127.0.0.1:${kport[3]}"
    CLUSTER_METRICS=()
    CLUSTER_PIDS=()
    for i in 1 2 3; do
        "$BIN" broker --node-id "$i" --listen "127.0.0.1:${kport[i]}" \
            --metrics-listen "127.0.0.1:${mport[i]}" --data-dir "$WORK/data-$name-$i" \
            --controller-listen "127.0.0.1:${cport[i]}" --voters "$voters" \
            --log-level warn >"$WORK/broker-$name-$i.log" 2>&1 &
        CLUSTER_PIDS+=("$!")
        CLUSTER_METRICS+=("${mport[i]}")
    done
    BROKER_PIDS=("${CLUSTER_PIDS[@]}")
    # Healthy, and each node's own Metadata/DescribeCluster lists all three brokers unfenced.
    local deadline=$((SECONDS + CLUSTER_FORM_TIMEOUT_S)) formed=0 desc=""
    while ((SECONDS < deadline)); do
        formed=0
        for i in 1 2 3; do
            kill -0 "${CLUSTER_PIDS[i - 1]}" 2>/dev/null || {
                echo "bench: cluster node $i exited" >&2
                cat "$WORK/broker-$name-$i.log" >&2
                exit 1
            }
            curl -sf "http://127.0.0.1:${mport[i]}/health" >/dev/null 2>&1 || continue
            desc=$("$BIN" cluster describe --bootstrap-server "127.0.0.1:${kport[i]}" \
                --request-timeout-ms 2000 2>/dev/null) || continue
            grep -q '^Brokers: 3$' <<<"$desc" &&
                [[ $(grep -c 'Fenced: false' <<<"$desc") == 3 ]] && formed=$((formed + 1))
        done
        ((formed == 3)) && break
        sleep 0.2
    done
    ((formed == 3)) || { echo "bench: cluster did not form in ${CLUSTER_FORM_TIMEOUT_S}s; last:" >&2; echo "$desc" >&2; exit 1; }
    sleep 0.5 # let start-up allocations settle before reading the idle RSS
    CLUSTER_IDLE_RSS_KB=()
    for i in 1 2 3; do CLUSTER_IDLE_RSS_KB+=("$(status_kb VmRSS "${CLUSTER_PIDS[i - 1]}")"); done
    log "cluster $name: pids ${CLUSTER_PIDS[*]} on $CLUSTER_BOOTSTRAP, idle RSS ${CLUSTER_IDLE_RSS_KB[*]} kB"
}

stop_cluster() { # name: SIGTERM to all three at once, then wait for each
    local name=$1 i pid failed=0 nodes="" idle_max=0 peak_max=0 peak cpu
    cpu=$(cpu_seconds)
    for i in 1 2 3; do
        pid=${CLUSTER_PIDS[i - 1]}
        peak=$(status_kb VmHWM "$pid")
        ((peak > peak_max)) && peak_max=$peak
        ((CLUSTER_IDLE_RSS_KB[i - 1] > idle_max)) && idle_max=${CLUSTER_IDLE_RSS_KB[i - 1]}
        nodes+="${nodes:+,}{\"node_id\":$i,\"idle_rss_kb\":${CLUSTER_IDLE_RSS_KB[i - 1]},\"peak_rss_kb\":$peak,\"cpu_s\":$(awk -v t="$CLK_TCK" '{ print ($14 + $15) / t }' "/proc/$pid/stat")}"
    done
    for pid in "${CLUSTER_PIDS[@]}"; do kill -TERM "$pid"; done
    for i in 1 2 3; do
        pid=${CLUSTER_PIDS[i - 1]}
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "bench: cluster node $i did not exit within 30 s of SIGTERM" >&2
            kill -KILL "$pid" 2>/dev/null || true
            failed=1
        fi
        wait "$pid" || { echo "bench: cluster node $i exited with an error" >&2; cat "$WORK/broker-$name-$i.log" >&2; failed=1; }
    done
    CLUSTER_PIDS=()
    BROKER_PIDS=()
    ((failed == 0)) || exit 1
    # idle/peak RSS: the largest node's; cpu_s: the three nodes' sum.
    echo "{\"broker\":\"$name\",\"idle_rss_kb\":$idle_max,\"peak_rss_kb\":$peak_max,\"cpu_s\":$cpu,\"nodes\":[$nodes]}" >>"$ROWS"
}

# --- cases -------------------------------------------------------------------------------
# Each case is a workload file in bench/workloads/ (what it runs is written there); the
# durations are set here. Single node first, Kafka's default durability (page cache, no
# fsync per write) unless the workload sets flush.messages.
WORKLOADS=$ROOT/bench/workloads
start_broker single
for name in cost fixed-50mb fixed-50mb-3p partitions-1 partitions-6 partitions-48 producers-1 producers-30 \
    records-100b text-lz4 fsync-each; do
    workload_case "$name" single --workload "$WORKLOADS/$name.yaml"
done
stop_broker single
# The cost case again with write-behind off (--log-write-behind-bytes 0: the page cache left
# to the OS, as Kafka does): the consumer then re-reads the backlog from memory instead of
# disk, and the produce side pays for fresh pages.
start_broker page-cache --log-write-behind-bytes 0
workload_case cost-page-cache page-cache --workload "$WORKLOADS/cost.yaml"
stop_broker page-cache
connections_case single

# 3 brokers (combined broker+voter), RF=3, min.insync.replicas=2, acks=all.
start_cluster cluster
BOOTSTRAP=$CLUSTER_BOOTSTRAP
for name in cluster-max cluster-50mb; do
    workload_case "$name" cluster --workload "$WORKLOADS/$name.yaml"
done
stop_cluster cluster

# --- report ----------------------------------------------------------------------------
if [[ $MODE == smoke ]]; then
    OUT=$CARGO_TARGET_DIR/bench-smoke.json
else
    mkdir -p "$ROOT/bench/results"
    OUT=$ROOT/bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).json
fi
python3 "$ROOT/bench/report.py" --mode "$MODE" --work "$WORK" --out "$OUT"
log "results written to $OUT"
