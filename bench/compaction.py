"""Log compaction benchmark: what the cleaner does to a compacted topic per codec, how fast,
and what a busy cleaner costs produce latency on the same broker. Run by
bench/compaction.sh (which builds the release binary and sets up the e2e venv); see
bench/README.md.

1. Per codec (none, gzip, snappy, lz4, zstd), on a fresh broker: a compacted topic gets
   RECORDS keyed records over KEYS keys (100-byte random values: incompressible, so the
   compressed batches are about as big as the raw records and the codec's work is its worst
   case), then filler records on unique keys so every keyed record is in an inactive
   segment. The broker is restarted with the cleaner on and left until it is idle. Reported:
   records before cleaning (high watermark) and after (read back), log bytes before and
   after, and the cleaner's throughput: bytes it read / seconds its passes took (broker log
   and metrics).
2. Produce latency with a busy cleaner: a broker whose data directory holds a big dirty
   backlog in a compacted topic, started with the cleaner on or off
   (`--log-cleaner-enable false`); `ironlog perf produce` sends 100-byte records to another
   topic at a fixed rate with acks=all and linger.ms=0, and reports send -> delivery-report
   latency. Three runs of each, interleaved, each on its own copy of the backlog. Reported:
   median and min-max of p50 and p99, the ratio with/without of the medians, the broker's
   CPU use, and whether the cleaner was busy for the whole run (its one pass over the
   backlog not finished at the end).

Units: MB = 10^6 bytes; latency in ms; CPU in cores (CPU seconds per wall second).
"""

import argparse
import calendar
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "e2e" / "lib"))

from broker import Broker  # noqa: E402  (e2e/lib: the broker process, ports, logs)
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
MB = 1_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")

SIZES = {
    "full": dict(records=400_000, keys=10_000, value_bytes=100, segment_bytes=8 << 20,
                 backlog_value_bytes=1024, backlog_segment_bytes=64 << 20,
                 min_backlog_bytes=256 * MB, max_backlog_bytes=6_000 * MB,
                 rate=2_000, seconds=20, warmup_seconds=2, reps=3, settle_timeout=600),
    "smoke": dict(records=20_000, keys=1_000, value_bytes=100, segment_bytes=1 << 20,
                  backlog_value_bytes=1024, backlog_segment_bytes=4 << 20,
                  min_backlog_bytes=24 * MB, max_backlog_bytes=24 * MB,
                  rate=2_000, seconds=3, warmup_seconds=1, reps=3, settle_timeout=60),
}

FAST_CLEANER = ["--log-cleaner-backoff-ms", "100"]


def log(msg):
    print(f"[compaction-bench] {msg}", file=sys.stderr, flush=True)


# --- broker plumbing ----------------------------------------------------------------------

def metrics(broker):
    """{name or name{labels}: value} of the broker's cleaner metrics."""
    out = {}
    for line in broker.metrics_text().splitlines():
        if line.startswith("ironlog_log_cleaner_"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def passes(m, outcome="cleaned"):
    return m.get(f'ironlog_log_cleaner_passes_total{{outcome="{outcome}"}}', 0.0)


PASS_LINE = re.compile(r"^(\S+Z) .*compacted log (.*)")
FIELD = re.compile(r"(\w+)=(\S+)")


def pass_lines(broker):
    """The fields of each "compacted log" line of every run of `broker`, with `end` (the
    line's timestamp, epoch seconds)."""
    out = []
    for line in broker.all_logs().splitlines():
        m = PASS_LINE.search(line)
        if m:
            fields = dict(FIELD.findall(m.group(2)))
            stamp, frac = m.group(1).rstrip("Z").split(".")
            end = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{frac}")
            out.append({**fields, "end": end})
    return out


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def create_topic(bootstrap, name, config):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1,
                                       config=config)])
    fs[name].result(timeout=30)


def log_bytes(broker, topic):
    d = broker.data_dir / f"{topic}-0"
    return sum(p.stat().st_size for p in d.glob("*.log"))


def produce_keyed(bootstrap, topic, n, keys, value_bytes, codec, key_prefix="key-"):
    """`n` records over `keys` keys (each key at least once; 0: every key unique), random
    values; waits for every acknowledgement. Returns records/s."""
    import random
    rng = random.Random(n * 31 + keys)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                  "batch.size": 1_000_000, "compression.type": codec,
                  "queue.buffering.max.kbytes": 262_144})
    failed = []

    def report(err, _msg):
        if err is not None:
            failed.append(err)

    started = time.monotonic()
    for i in range(n):
        if keys:
            key = f"{key_prefix}{i if i < keys else rng.randrange(keys):06d}".encode()
        else:
            key = f"{key_prefix}{i:09d}".encode()
        while True:
            try:
                p.produce(topic, key=key, value=os.urandom(value_bytes), partition=0,
                          on_delivery=report)
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(300)
    if left or failed:
        raise RuntimeError(f"{left} records undelivered, {len(failed)} failed: {failed[:3]}")
    return n / (time.monotonic() - started)


def read_count(bootstrap, topic, key_prefix):
    """(records read from the log start, of which keys start with `key_prefix`)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-bench",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        total = keyed = 0
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=10_000, timeout=1):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        return total, keyed
                    raise RuntimeError(m.error())
                total += 1
                keyed += m.key().startswith(key_prefix.encode())
        raise RuntimeError(f"no end of {topic} after 300 s ({total} read)")
    finally:
        c.close()


def high_watermark(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-bench"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)[1]
    finally:
        c.close()


def wait_idle(broker, topic, timeout):
    """Waits until the cleaner removed records and has been idle for a second: no backlog,
    no .cleaned file, no new pass."""
    deadline = time.monotonic() + timeout
    last, since = None, None
    d = broker.data_dir / f"{topic}-0"
    while time.monotonic() < deadline:
        m = metrics(broker)
        if passes(m, "failed"):
            raise RuntimeError(f"a cleaning pass failed; broker log:\n{broker.log()[-4000:]}")
        busy = (m.get("ironlog_log_cleaner_records_removed_total", 0) == 0
                or m.get("ironlog_log_cleaner_dirty_bytes", 0) > 0 or any(d.glob("*.cleaned")))
        state = (passes(m), m.get("ironlog_log_cleaner_records_removed_total"))
        if busy or state != last:
            last, since = state, time.monotonic()
        elif time.monotonic() - since >= 1.0:
            return m
        time.sleep(0.2)
    raise RuntimeError(f"the cleaner did not finish within {timeout}s")


# --- 1. per codec ---------------------------------------------------------------------------

def bench_codec(binary, work, codec, s):
    topic = f"compacted-{codec}"
    wd = work / f"codec-{codec}"
    wd.mkdir()
    broker = Broker(binary, wd, ["--log-cleaner-enable", "false", *FAST_CLEANER])
    broker.start()
    try:
        create_topic(broker.bootstrap, topic, {
            "cleanup.policy": "compact", "segment.bytes": str(s["segment_bytes"])})
        rate = produce_keyed(broker.bootstrap, topic, s["records"], s["keys"], s["value_bytes"],
                             codec)
        # Filler on unique keys, more than a segment: every keyed record becomes inactive.
        filler = s["segment_bytes"] * 11 // 10 // 1024
        produce_keyed(broker.bootstrap, topic, filler, 0, 1024, codec, key_prefix="filler-")
        hw = high_watermark(broker.bootstrap, topic)
        bytes_before = log_bytes(broker, topic)
        broker.stop()
        broker.extra_args = FAST_CLEANER
        started = time.monotonic()
        broker.start()
        m = wait_idle(broker, topic, s["settle_timeout"])
        wall = time.monotonic() - started
        after, keyed_after = read_count(broker.bootstrap, topic, "key-")
        hw_after = high_watermark(broker.bootstrap, topic)
        lines = pass_lines(broker)
        pass_seconds = sum(float(p["seconds"]) for p in lines)
        read = m["ironlog_log_cleaner_bytes_read_total"]
        logged_read = sum(int(p["bytes_read"]) for p in lines)
        if logged_read != read:
            raise RuntimeError(f"bytes read: log says {logged_read}, metrics {read}")
        row = {
            "codec": codec,
            "records_produced": s["records"],
            "keys": s["keys"],
            "value_bytes": s["value_bytes"],
            "filler_records": filler,
            "produce_records_per_s": rate,
            "records_before": hw,
            "records_after": after,
            "keyed_records_after": keyed_after,
            "high_watermark_after": hw_after,
            "log_mb_before": bytes_before / MB,
            "log_mb_after": log_bytes(broker, topic) / MB,
            "passes": len(lines),
            "pass_seconds": pass_seconds,
            "cleaner_mb_read": read / MB,
            "cleaner_mb_written": m["ironlog_log_cleaner_bytes_written_total"] / MB,
            "records_removed": m["ironlog_log_cleaner_records_removed_total"],
            "cleaner_mb_per_s": read / MB / pass_seconds,
            "cleaner_log_mb_per_s": bytes_before / MB / pass_seconds,
            "wall_seconds_to_idle": wall,
        }
        if keyed_after != s["keys"] or hw_after != hw or after != keyed_after + filler:
            raise RuntimeError(f"{codec}: wrong compaction result: {row}")
        return row
    finally:
        if broker.alive():
            broker.stop()
        shutil.rmtree(wd / "data", ignore_errors=True)


# --- 2. latency with a busy cleaner -----------------------------------------------------------

def build_backlog(binary, work, codec, target_bytes, s):
    """A data directory with `target_bytes` of dirty compacted log (cleaner off)."""
    wd = work / "backlog"
    wd.mkdir()
    broker = Broker(binary, wd, ["--log-cleaner-enable", "false"])
    broker.start()
    try:
        create_topic(broker.bootstrap, "backlog", {
            "cleanup.policy": "compact", "segment.bytes": str(s["backlog_segment_bytes"])})
        create_topic(broker.bootstrap, "latency", {})
        n = max(1, int(target_bytes / (s["backlog_value_bytes"] + 30)))
        rate = produce_keyed(broker.bootstrap, "backlog", n, s["keys"], s["backlog_value_bytes"],
                             codec)
        size = log_bytes(broker, "backlog")
        log(f"backlog: {n} records, {size / MB:.0f} MB of {codec} batches "
            f"({rate * s['backlog_value_bytes'] / MB:.0f} MB/s produced)")
    finally:
        broker.stop()
    return wd / "data", n, size


def perf_produce(binary, bootstrap, n, rate):
    out = subprocess.run(
        [binary, "perf", "produce", "--bootstrap-server", bootstrap, "--topic", "latency",
         "--num-records", str(n), "--record-size", "100", "--throughput", str(rate),
         "--acks", "all", "--linger-ms", "0", "--reporting-interval-ms", "0", "--json"],
        capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"perf produce failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def latency_run(binary, work, pristine, cleaner, rep, s):
    wd = work / f"latency-{'with' if cleaner else 'without'}-{rep}"
    wd.mkdir()
    shutil.copytree(pristine, wd / "data")
    args = FAST_CLEANER if cleaner else ["--log-cleaner-enable", "false"]
    broker = Broker(binary, wd, args)
    try:
        broker.start()
        perf_produce(binary, broker.bootstrap, s["rate"] * s["warmup_seconds"], s["rate"])
        before_pass = passes(metrics(broker))
        cpu0, t0, w0 = cpu_seconds(broker.proc.pid), time.monotonic(), time.time()
        r = perf_produce(binary, broker.bootstrap, s["rate"] * s["seconds"], s["rate"])
        cpu = (cpu_seconds(broker.proc.pid) - cpu0) / (time.monotonic() - t0)
        w1 = time.time()
        m = metrics(broker)
        if not cleaner:
            busy = 0.0
        elif passes(m) == 0:
            busy = 1.0  # the one pass over the backlog, begun at start-up, is still going
        else:  # the share of the run that finished passes overlapped
            busy = sum(max(0.0, min(w1, p["end"]) - max(w0, p["end"] - float(p["seconds"])))
                       for p in pass_lines(broker)) / (w1 - w0)
        cleaned_files = len(list((broker.data_dir / "backlog-0").glob("*.cleaned")))
        row = {"cleaner": cleaner, "rep": rep, "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
               "p999_ms": r["p999_ms"], "max_ms": r["max_ms"],
               "records_per_s": r["records_per_sec"], "errors": r["errors"],
               "broker_cpu_cores": cpu,
               # One pass covers the whole backlog: none finished before or during the run
               # means the cleaner worked through all of it.
               "cleaner_busy_throughout": cleaner and before_pass == 0 and passes(m) == 0,
               "cleaner_busy_fraction": busy,
               "passes_finished_by_end": passes(m), "cleaned_files_at_end": cleaned_files}
        log(f"latency {'with' if cleaner else 'without'} cleaner, run {rep}: "
            f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, broker {cpu:.2f} cores"
            + (f", cleaner busy {busy:.0%} of the run" if cleaner else ""))
        return row
    finally:
        if broker.alive():
            broker.stop()
        shutil.rmtree(wd / "data", ignore_errors=True)


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# --- output -----------------------------------------------------------------------------------

def table(rows, columns):
    cells = [[h for h, _ in columns]] + [[f(r) for _, f in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    fmt = lambda c: "| " + " | ".join(x.ljust(w) for x, w in zip(c, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [fmt(c) for c in cells[1:]])


def check_figures(result):
    """Every number is finite; the ones that must be positive are."""
    bad = []

    def walk(x, path):
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{path}.{k}")
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{path}[{i}]")
        elif isinstance(x, float) and not math.isfinite(x):
            bad.append(path)

    walk(result, "")
    for r in result["codecs"]:
        for k in ("cleaner_mb_per_s", "records_removed", "pass_seconds", "records_after"):
            if not r[k] > 0:
                bad.append(f"codecs[{r['codec']}].{k}={r[k]}")
    lat = result["latency"]
    for cond in ("with_cleaner", "without_cleaner"):
        for q in ("p50_ms", "p99_ms"):
            if not lat[cond][q]["median"] > 0:
                bad.append(f"latency.{cond}.{q}")
    for q in ("p50", "p99"):
        if not lat[f"ratio_{q}"] > 0:
            bad.append(f"latency.ratio_{q}")
    if any(r["errors"] for r in lat["runs"]):
        bad.append("latency runs had delivery errors")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the release ironlog binary")
    ap.add_argument("--smoke", action="store_true", help="tiny counts, 3 s latency runs")
    ap.add_argument("--out", required=True, help="where to write the JSON results")
    ap.add_argument("--work", help="scratch directory (default: a temp dir beside --out)")
    # gzip: the costliest codec for the cleaner per byte, so the smallest backlog that keeps
    # it busy for a whole run.
    ap.add_argument("--backlog-codec", default="gzip", choices=CODECS,
                    help="codec of the dirty backlog in the latency runs")
    args = ap.parse_args()
    s = SIZES["smoke" if args.smoke else "full"]
    work = Path(tempfile.mkdtemp(prefix="compaction-bench.", dir=args.work))
    try:
        codec_rows = []
        for codec in CODECS:
            log(f"{codec}: {s['records']} records over {s['keys']} keys")
            row = bench_codec(args.bin, work, codec, s)
            log(f"{codec}: {row['records_before']} -> {row['records_after']} records, "
                f"{row['cleaner_mb_per_s']:.1f} MB/s")
            codec_rows.append(row)

        # The backlog: enough that one pass outlasts warm-up + run at the throughput above.
        throughput = next(r["cleaner_mb_per_s"] for r in codec_rows if r["codec"] == args.backlog_codec)
        need = throughput * MB * (s["warmup_seconds"] + s["seconds"] + 5) * 1.3
        target = min(max(need, s["min_backlog_bytes"]), s["max_backlog_bytes"])
        pristine, backlog_records, backlog_bytes = build_backlog(args.bin, work, args.backlog_codec,
                                                                 target, s)
        runs = []
        for rep in range(1, s["reps"] + 1):
            for cleaner in (True, False):
                runs.append(latency_run(args.bin, work, pristine, cleaner, rep, s))
        with_ = [r for r in runs if r["cleaner"]]
        without = [r for r in runs if not r["cleaner"]]
        latency = {
            "rate_per_s": s["rate"], "seconds": s["seconds"], "record_bytes": 100,
            "acks": "all", "linger_ms": 0, "backlog_codec": args.backlog_codec,
            "backlog_records": backlog_records, "backlog_mb": backlog_bytes / MB,
            "with_cleaner": {q: summarize([r[q] for r in with_])
                             for q in ("p50_ms", "p99_ms", "broker_cpu_cores")},
            "without_cleaner": {q: summarize([r[q] for r in without])
                                for q in ("p50_ms", "p99_ms", "broker_cpu_cores")},
            "cleaner_busy_throughout_runs": sum(r["cleaner_busy_throughout"] for r in with_),
            "cleaner_busy_fraction": summarize([r["cleaner_busy_fraction"] for r in with_]),
            "runs": runs,
        }
        for q in ("p50", "p99"):
            latency[f"ratio_{q}"] = (latency["with_cleaner"][f"{q}_ms"]["median"]
                                     / latency["without_cleaner"][f"{q}_ms"]["median"])
        result = {"mode": "smoke" if args.smoke else "full",
                  "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "cores": os.cpu_count(), "codecs": codec_rows, "latency": latency}
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")

        print(f"\nCompaction per codec: {s['records']:,} records over {s['keys']:,} keys, "
              f"{s['value_bytes']}-byte random values (incompressible: compressed batches are "
              f"about raw size), + filler on unique keys. MB = 10^6 bytes of log as stored; "
              f"cleaner read MB/s = bytes its passes read (the dirty section twice: offset map, "
              f"then filter) / seconds the passes took; log MB/s = log MB before / those seconds. "
              f"One pass per codec.\n")
        print(table(codec_rows, [
            ("codec", lambda r: r["codec"]),
            ("records before", lambda r: f"{r['records_before']:,}"),
            ("records after", lambda r: f"{r['records_after']:,}"),
            ("keyed after", lambda r: f"{r['keyed_records_after']:,}"),
            ("log MB before", lambda r: f"{r['log_mb_before']:.1f}"),
            ("log MB after", lambda r: f"{r['log_mb_after']:.2f}"),
            ("passes", lambda r: str(r["passes"])),
            ("pass s", lambda r: f"{r['pass_seconds']:.2f}"),
            ("cleaner MB read", lambda r: f"{r['cleaner_mb_read']:.1f}"),
            ("read MB/s", lambda r: f"{r['cleaner_mb_per_s']:.1f}"),
            ("log MB/s", lambda r: f"{r['cleaner_log_mb_per_s']:.1f}"),
        ]))
        lw, lo = latency["with_cleaner"], latency["without_cleaner"]
        span = lambda x: f"{x['median']:.2f} ({x['min']:.2f}-{x['max']:.2f})"  # noqa: E731
        print(f"\nProduce latency, send -> delivery report, acks=all, linger.ms=0, 100 B records "
              f"at {s['rate']:,}/s for {s['seconds']} s; backlog {backlog_bytes / MB:,.0f} MB "
              f"of {args.backlog_codec} in a compacted topic on the same broker; "
              f"{s['reps']} runs each: median (min-max), ms; CPU in cores.\n")
        print(table([("cleaner on", lw), ("cleaner off", lo)], [
            ("broker", lambda r: r[0]),
            ("p50 ms", lambda r: span(r[1]["p50_ms"])),
            ("p99 ms", lambda r: span(r[1]["p99_ms"])),
            ("broker CPU cores", lambda r: span(r[1]["broker_cpu_cores"])),
        ]))
        print(f"\nratio on/off of the medians: p50 {latency['ratio_p50']:.2f}, "
              f"p99 {latency['ratio_p99']:.2f}; cleaner busy for the whole run in "
              f"{latency['cleaner_busy_throughout_runs']} of {len(with_)} runs (busy share of "
              f"the run: {span(latency['cleaner_busy_fraction'])})")
        bad = check_figures(result)
        if bad:
            print(f"\nbad figures: {bad}", file=sys.stderr)
            return 1
        log(f"results written to {args.out}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
