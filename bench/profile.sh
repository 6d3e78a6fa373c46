#!/usr/bin/env bash
# Instruction counts (callgrind) of the broker under a fixed produce+fetch load:
# 300,000 x 100 B and 60,000 x 1 KiB produced, then consumed back. Repeatable whatever
# else the machine is doing (it counts instructions, not time). Prints the total and the
# top functions; the raw profile stays in $OUT (default /tmp/ironlog-callgrind).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target/perf}/release/ironlog
OUT=${OUT:-/tmp/ironlog-callgrind}
rm -rf "$OUT" && mkdir -p "$OUT"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port); M=$(port)
valgrind --tool=callgrind --callgrind-out-file="$OUT/broker.out" "$BIN" broker \
    --listen 127.0.0.1:"$P" --metrics-listen 127.0.0.1:"$M" --data-dir "$OUT/data" --log-level warn \
    >"$OUT/broker.log" 2>&1 &
VP=$!
trap 'kill -TERM $VP 2>/dev/null || true' EXIT
for _ in $(seq 300); do curl -sf "127.0.0.1:$M/health" >/dev/null && break; sleep 0.2; done
perf() { "$BIN" perf "$@" --bootstrap-server 127.0.0.1:"$P" --reporting-interval-ms 0 --json 2>/dev/null | tail -1 | cut -c1-100; }
perf produce --topic s --num-records 300000 --record-size 100
perf produce --topic k --num-records 60000 --record-size 1024
perf consume --topic s --messages 300000
perf consume --topic k --messages 60000
kill -TERM "$VP"; wait "$VP" || true
trap - EXIT
callgrind_annotate --inclusive=yes "$OUT/broker.out" 2>/dev/null | grep -E "PROGRAM TOTALS|memcpy|memset|parse_batches|produce::handle|fetch::read_once|encode_response|Log::append_with_epoch|Log::read_up_to" | grep -v "^ *[0-9,]* *([0-9.]*%) */rustc" | cut -c1-160
