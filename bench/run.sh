#!/usr/bin/env bash
# Ironlog benchmark: the machine's limits, then a single-node broker and a 3-node cluster
# (RF=3, acks=all) driven by `ironlog perf` (librdkafka), in one run on one machine.
# See bench/README.md.
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
CLUSTER_FORM_TIMEOUT_S=60 # three fresh nodes: healthy and each listing all three brokers

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
        --data-dir "$WORK/data-$name" --log-level warn "$@" >"$WORK/broker-$name.log" 2>&1 &
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
    log "broker $name: pid $BROKER_PID on 127.0.0.1:$PORT, idle RSS ${IDLE_RSS_KB} kB"
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

# Waits until every partition of the topic has a leader and a full ISR in the metadata of
# each broker of the bootstrap list, asked one by one (`topics describe`): a broker that has
# not applied the new topic yet would send the first produce requests back with
# NOT_LEADER_OR_FOLLOWER, and the client's retry backoff would show up as latency.
topic_ready_on() { # broker topic partitions replication-factor
    local out
    out=$("$BIN" topics describe --bootstrap-server "$1" --topic "$2" 2>/dev/null) || return 1
    [[ $(awk -v rf="$4" '
            /Partition:/ {
                leader = ""; isr = ""
                for (i = 1; i <= NF; i++) {
                    if ($i == "Leader:") leader = $(i + 1)
                    if ($i == "Isr:") isr = $(i + 1)
                }
                if (leader ~ /^[0-9]+$/ && split(isr, a, ",") == rf) ok++
            }
            END { print ok + 0 }' <<<"$out") == "$3" ]]
}

wait_topic_ready() { # bootstrap topic partitions replication-factor
    local bs=$1 topic=$2 parts=$3 rf=$4 broker ready
    for _ in $(seq 300); do
        ready=1
        for broker in ${bs//,/ }; do
            topic_ready_on "$broker" "$topic" "$parts" "$rf" || { ready=0; break; }
        done
        ((ready)) && return 0
        sleep 0.1
    done
    echo "bench: topic $topic not ready on every broker of $bs (every partition led, ISR of $rf):" >&2
    "$BIN" topics describe --bootstrap-server "$bs" --topic "$topic" >&2 || true
    exit 1
}

create_topic() { # bootstrap topic partitions replication-factor [--config k=v ...]
    local bs=$1 topic=$2 parts=$3 rf=$4
    shift 4
    "$BIN" topics create --bootstrap-server "$bs" --topic "$topic" --partitions "$parts" \
        --replication-factor "$rf" "$@" >/dev/null
    wait_topic_ready "$bs" "$topic" "$parts" "$rf"
}

# One produce run and its consume-back. Optional settings, as variables before the call:
# BOOTSTRAP (default the single broker), PRODUCERS (1), THROUGHPUT (-1 = max), TOPIC_SUFFIX,
# PARTITIONS with RF and TOPIC_CONFIG (create the topic first; else it is auto-created with
# one partition). The produce JSON goes to $WORK/last-produce.json as well.
run_case() { # durability records size acks compression
    local durability=$1 n=$2 size=$3 acks=$4 comp=$5
    local bs=${BOOTSTRAP:-127.0.0.1:$PORT} producers=${PRODUCERS:-1} rate=${THROUGHPUT:--1}
    local parts=${PARTITIONS:-1} rf=${RF:-1}
    local topic="bench-${durability//[^a-zA-Z0-9]/-}-$size-$acks-$comp${TOPIC_SUFFIX:-}"
    if [[ -n "${PARTITIONS:-}" ]]; then
        # shellcheck disable=SC2086 # TOPIC_CONFIG is a list of `--config k=v` words
        create_topic "$bs" "$topic" "$parts" "$rf" ${TOPIC_CONFIG:-}
    fi
    log "produce $n x $size B acks=$acks compression=$comp ($durability, $parts partition(s), $producers producer(s), rate ${rate/#-1/max})"
    local c0 c1 c2 p c
    c0=$(cpu_seconds)
    p=$("$BIN" perf produce --bootstrap-server "$bs" --topic "$topic" \
        --num-records "$n" --record-size "$size" --acks "$acks" --compression "$comp" \
        --producers "$producers" --throughput "$rate" \
        --json --reporting-interval-ms 2000 | tail -n 1)
    c1=$(cpu_seconds)
    echo "$p" >"$WORK/last-produce.json"
    log "consume $n"
    c=$("$BIN" perf consume --bootstrap-server "$bs" --topic "$topic" \
        --messages "$n" --json --reporting-interval-ms 2000 | tail -n 1)
    c2=$(cpu_seconds)
    echo "{\"durability\":\"$durability\",\"records\":$n,\"record_size\":$size,\"acks\":\"$acks\",\"compression\":\"$comp\",\"produce\":$p,\"consume\":$c,\"broker_cpu_produce_s\":$c1,\"broker_cpu_consume_s\":$c2,\"broker_cpu_start_s\":$c0,\"brokers\":${#BROKER_PIDS[@]},\"partitions\":$parts,\"replication_factor\":$rf,\"producers\":$producers,\"throughput_limit\":$rate}" >>"$ROWS"
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

start_broker page-cache
for case in "${MATRIX[@]}"; do
    read -r n size <<<"$case"
    for acks in 1 all; do
        for comp in none lz4; do
            run_case page-cache "$n" "$size" "$acks" "$comp"
        done
    done
done
# The same broker, one topic of 6 partitions written by 3 producers (acks=1, no compression).
for case in "${MATRIX[@]}"; do
    read -r n size <<<"$case"
    PARTITIONS=6 RF=1 PRODUCERS=3 run_case "page-cache 6p x3 producers" "$n" "$size" 1 none
done
stop_broker page-cache

start_broker fsync-each --default-topic-config flush.messages=1
run_case flush.messages=1 "$DURABLE_RECORDS" 100 all none
stop_broker fsync-each

# 3 brokers, RF=3, min.insync.replicas=2, 6 partitions, 3 producers with acks=all: as fast
# as possible, then at half the rate just measured (for the latency at a sustainable load).
cluster_case() { # records size throughput topic-suffix
    local BOOTSTRAP=$CLUSTER_BOOTSTRAP PARTITIONS=6 RF=3 PRODUCERS=3 THROUGHPUT=$3 TOPIC_SUFFIX=$4
    local TOPIC_CONFIG="--config min.insync.replicas=2"
    run_case "cluster RF=3 min.isr=2" "$1" "$2" all none
}
start_cluster cluster
for case in "${MATRIX[@]}"; do
    read -r n size <<<"$case"
    cluster_case "$n" "$size" -1 ""
    half=$(python3 -c 'import json,sys; print(max(1, int(json.load(open(sys.argv[1]))["records_per_sec"] / 2)))' "$WORK/last-produce.json")
    cluster_case "$n" "$size" "$half" "-half"
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
