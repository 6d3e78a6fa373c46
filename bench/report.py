#!/usr/bin/env python3
"""Turns one bench/run.sh run into a table and a JSON file, and checks every figure.

Input: the run's work directory (iperf3 and fio JSON, rows.jsonl with one row per
`ironlog perf workload` / `perf connections` run and one per broker setup). Each case ran
N times; every figure is reported as the median and the spread (min-max) of those runs.

Exit status 1 if a limit or a figure is missing or not a number, or a run's verification
(every acknowledged record read once, in order per partition) did not pass: that is what
`bench/run.sh --smoke` checks in CI. Targets are judged (and printed) only for full runs.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys

MB = 1_000_000  # the unit of every MB/s here, as in fio and iperf3 (bits/8)
MIB = 1 << 20

# Issue 13's targets on this machine class, judged on medians.
TARGETS = {
    "cost_cpu_s_per_gb_produced_max": 0.25,
    "cost_cpu_s_per_gb_consumed_max": 0.15,
    "fixed_50mb_e2e_p99_ms_max": 10.0,
    "fixed_50mb_publish_p99_ms_max": 5.0,
    "partitions_48_over_6_min": 0.80,
    "idle_connection_kib_max": 64.0,
}

# What each case is, for the table's legend (the flags are in bench/run.sh).
CASES = {
    "cost": "6 partitions, 3 producers at max rate for the measured window with no consumer; then 1 consumer re-reading that backlog from the start (drain; with write-behind the backlog is read from disk)",
    "cost-page-cache": "as cost, on a broker with --log-write-behind-bytes 0 (page cache left to the OS, as Kafka does): the drain reads from memory",
    "fixed-50mb": "6 partitions, 1 producer at 48,828 records/s = 50 MB/s (47.7 MiB/s), 1 consumer",
    "fixed-50mb-3p": "as fixed-50mb, the rate split over 3 producers",
    "partitions-1": "1 partition, 3 producers at max rate, 1 consumer",
    "partitions-6": "6 partitions, 3 producers at max rate, 1 consumer",
    "partitions-48": "48 partitions, 3 producers at max rate, 1 consumer",
    "producers-1": "6 partitions, 1 producer at max rate, 1 consumer",
    "producers-30": "6 partitions, 30 producers sharing a fixed 100 MB/s, 1 consumer",
    "records-100b": "100 B records, 6 partitions, 3 producers at max rate, 1 consumer",
    "text-lz4": "generated log-line text, lz4 (ratio measured per run), 6 partitions, 3 producers at max rate, 1 consumer",
    "fsync-each": "topic flush.messages=1 (fsync before every acknowledgement), 6 partitions, 3 producers at max rate, 1 consumer",
    "cluster-max": "3 brokers, RF=3, min.insync.replicas=2, 6 partitions, 3 producers at max rate, 1 consumer",
    "cluster-50mb": "3 brokers, RF=3, min.insync.replicas=2, 6 partitions, 1 producer at 50 MB/s, 1 consumer",
}

errors = []


def fail(msg):
    errors.append(msg)


def number(obj, key, where):
    v = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        fail(f"{where}: {key} is {v!r}, not a number")
        return float("nan")
    return float(v)


def load(path, where):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{where}: cannot parse {path}: {e}")
        return {}


def limits(work):
    iperf = load(os.path.join(work, "iperf.json"), "iperf3")
    tcp_bps = number(iperf.get("end", {}).get("sum_received", {}), "bits_per_second", "iperf3")
    out = {"loopback_tcp_mb_per_sec": tcp_bps / 8 / MB}
    # CPU seconds per GB the kernel and tools spend at these limits: the floor under what a
    # broker pays to receive (TCP) and write (page cache) a GB, or read and send it.
    end = iperf.get("end", {})
    cpu = end.get("cpu_utilization_percent", {})
    secs = number(end.get("sum_received", {}), "seconds", "iperf3")
    gb = number(end.get("sum_received", {}), "bytes", "iperf3") / 1e9
    if gb > 0:
        out["tcp_send_cpu_s_per_gb"] = number(cpu, "host_total", "iperf3 cpu") / 100 * secs / gb
        out["tcp_receive_cpu_s_per_gb"] = number(cpu, "remote_total", "iperf3 cpu") / 100 * secs / gb
    # (bandwidth figure, fio's JSON, CPU-per-GB figure or None). The CPU figures are the
    # usr+sys share of the job's run time per GB written through the page cache: onto new
    # pages, and over pages already cached.
    for name, file, cpu_name in [("disk_seq_write_mb_per_sec", "fio-end.json", "disk_write_cpu_s_per_gb"),
                                 ("disk_seq_write_warm_mb_per_sec", "fio-warm.json", "disk_write_warm_cpu_s_per_gb"),
                                 ("disk_seq_write_fsync_64k_mb_per_sec", "fio-sync.json", None)]:
        fio = load(os.path.join(work, file), "fio")
        jobs = fio.get("jobs") or [{}]
        w = jobs[0].get("write", {})
        out[name] = number(w, "bw_bytes", f"fio {file}") / MB
        if cpu_name:
            wgb = number(w, "io_bytes", f"fio {file}") / 1e9
            run_s = number(w, "runtime", f"fio {file}") / 1000
            if wgb > 0:
                out[cpu_name] = (number(jobs[0], "usr_cpu", "fio") + number(jobs[0], "sys_cpu", "fio")) / 100 * run_s / wgb
    return out


def spread(values):
    """Median, min and max of the runs' values (NaN-free), or None if there are none."""
    vs = [v for v in values if v is not None and v == v]
    if not vs:
        return None
    return {"median": statistics.median(vs), "min": min(vs), "max": max(vs), "runs": len(vs)}


def get(obj, *path):
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


# The figures kept per case: name -> path in a workload run's JSON summary.
FIGURES = {
    "publish_mb_per_sec": ("publish", "mb_per_sec"),
    "publish_records_per_sec": ("publish", "records_per_sec"),
    "publish_p50_ms": ("publish_latency", "p50_ms"),
    "publish_p99_ms": ("publish_latency", "p99_ms"),
    "publish_p999_ms": ("publish_latency", "p999_ms"),
    "publish_max_ms": ("publish_latency", "max_ms"),
    "consume_mb_per_sec": ("consume", "mb_per_sec"),
    "e2e_p50_ms": ("end_to_end_latency", "p50_ms"),
    "e2e_p99_ms": ("end_to_end_latency", "p99_ms"),
    "e2e_p999_ms": ("end_to_end_latency", "p999_ms"),
    "e2e_max_ms": ("end_to_end_latency", "max_ms"),
    "backlog_max_records": ("backlog", "max_records"),
    "drain_mb_per_sec": ("drain", "mb_per_sec"),
    "cpu_s_per_gb_moved": ("broker", "cpu_s_per_gb_moved"),
    "cpu_s_per_gb_produced": ("broker", "cpu_s_per_gb_produced"),
    "cpu_s_per_gb_consumed": ("broker", "cpu_s_per_gb_consumed"),
    "system_cpu_s_per_gb_moved": ("broker", "system_cpu_s_per_gb_moved"),
    "system_cpu_s_per_gb_produced": ("broker", "system_cpu_s_per_gb_produced"),
    "system_cpu_s_per_gb_consumed": ("broker", "system_cpu_s_per_gb_consumed"),
    "rss_steady_mib": ("broker", "rss_steady_kb"),
    "rss_peak_mib": ("broker", "rss_peak_kb"),
    "compression_ratio": ("payload", "ratio_producer_codec"),
}


def check_run(case, r, res):
    where = f"{case} run {r}"
    if not isinstance(res, dict) or res.get("kind") != "workload":
        fail(f"{where}: not a workload summary: {str(res)[:200]}")
        return
    for path in [("publish", "mb_per_sec"), ("publish", "records"), ("publish_latency", "p99_ms"),
                 ("broker", "rss_steady_kb")]:
        number(get(res, *path[:-1]) or {}, path[-1], where)
    if (get(res, "publish", "records") or 0) <= 0:
        fail(f"{where}: no records were published in the measured window")
    backlog_mode = get(res, "workload", "consume") == "backlog"
    if backlog_mode:
        number(get(res, "drain") or {}, "mb_per_sec", where)
        number(get(res, "broker") or {}, "cpu_s_per_gb_produced", where)
        number(get(res, "broker") or {}, "cpu_s_per_gb_consumed", where)
    else:
        number(get(res, "end_to_end_latency") or {}, "p99_ms", where)
        number(get(res, "broker") or {}, "cpu_s_per_gb_moved", where)
    v = res.get("verify")
    if not isinstance(v, dict) or v.get("ok") is not True or v.get("missing") != 0 or v.get("read") != v.get("expected"):
        fail(f"{where}: verification did not pass: {v}")


def fmt(s, digits=1, scale=1.0):
    if s is None:
        return "-"
    m, lo, hi = s["median"] / scale, s["min"] / scale, s["max"] / scale
    if s["runs"] == 1:
        return f"{m:,.{digits}f}"
    return f"{m:,.{digits}f} ({lo:,.{digits}f}-{hi:,.{digits}f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    lim = limits(a.work)
    runs, brokers = {}, {}
    with open(os.path.join(a.work, "rows.jsonl")) as f:
        for i, line in enumerate(f):
            try:
                row = json.loads(line)
            except ValueError as e:
                fail(f"row {i + 1} does not parse ({e}): {line[:200]!r}")
                continue
            if "broker" in row and "case" not in row:
                brokers[row["broker"]] = row
            else:
                runs.setdefault(row.get("case"), []).append(row)
    if not runs:
        fail("no workload results")

    cases = {}
    for name, rows in runs.items():
        if name == "idle-connections":
            per = []
            for row in rows:
                res = row.get("result") or {}
                b = number(res, "rss_bytes_per_connection", f"idle connections run {row.get('repeat')}")
                if res.get("count", 0) <= 0:
                    fail(f"idle connections run {row.get('repeat')}: no connections opened")
                per.append(b / 1024)
            cases[name] = {"setup": rows[0].get("setup"), "runs": len(rows),
                           "count": (rows[0].get("result") or {}).get("count"),
                           "figures": {"kib_per_connection": spread(per)}}
            continue
        if any(row.get("failed") for row in rows):
            fail(f"{name}: run(s) {[row.get('repeat') for row in rows if row.get('failed')]} failed (see the bench log)")
            rows = [row for row in rows if not row.get("failed")]
            if not rows:
                continue
        for row in rows:
            check_run(name, row.get("repeat"), row.get("result"))
        figures = {}
        for fig, path in FIGURES.items():
            vals = [get(row.get("result"), *path) for row in rows]
            if fig.startswith("rss_"):
                vals = [v / 1024 if isinstance(v, (int, float)) else None for v in vals]
            figures[fig] = spread([v for v in vals if isinstance(v, (int, float))])
        cases[name] = {"setup": rows[0].get("setup"), "runs": len(rows),
                       "workload": get(rows[0].get("result"), "workload"),
                       "description": CASES.get(name, ""), "figures": figures}

    # --- the table ---
    print()
    print(f"Limits: loopback TCP {lim['loopback_tcp_mb_per_sec']:.0f} MB/s "
          f"({lim['loopback_tcp_mb_per_sec'] * 8 / 1000:.1f} Gbit/s, iperf3); "
          f"disk sequential write {lim['disk_seq_write_mb_per_sec']:.0f} MB/s (fsync at end), "
          f"{lim['disk_seq_write_fsync_64k_mb_per_sec']:.0f} MB/s (fsync every 64 KiB) (fio)")
    print(f"CPU at those limits (the kernel's floor under a broker's cost): writing through the page cache "
          f"{lim.get('disk_write_cpu_s_per_gb', float('nan')):.3f} s/GB onto new pages, "
          f"{lim.get('disk_write_warm_cpu_s_per_gb', float('nan')):.3f} s/GB over cached ones (fio, fsync at end), TCP receive "
          f"{lim.get('tcp_receive_cpu_s_per_gb', float('nan')):.3f} s/GB, TCP send "
          f"{lim.get('tcp_send_cpu_s_per_gb', float('nan')):.3f} s/GB (iperf3)")
    print("Every figure: median (min-max) of the runs. MB = 10^6 bytes, MiB = 2^20 bytes, of record "
          "values. Publish latency = send -> delivery report (acks=all); end-to-end = send -> "
          "consumer has the record. CPU = broker user+system seconds from /proc over the measured "
          "window, per GB (10^9 bytes) produced+consumed ('moved'), or in the cost case per GB "
          "produced / per GB consumed.")
    print()
    head = ["case", "runs", "publish MB/s", "publish p99 ms", "consume MB/s", "e2e p50 ms",
            "e2e p99 ms", "e2e p99.9 ms", "broker cpu s/GB", "of which kernel", "RSS MiB"]
    rows = []
    for name, c in cases.items():
        f = c["figures"]
        if name == "idle-connections":
            continue
        cost = f.get("cpu_s_per_gb_produced")
        cpu = (f"{fmt(cost, 3)} in / {fmt(f.get('cpu_s_per_gb_consumed'), 3)} out" if cost
               else fmt(f.get("cpu_s_per_gb_moved"), 3))
        sys_cpu = (f"{fmt(f.get('system_cpu_s_per_gb_produced'), 3)} / {fmt(f.get('system_cpu_s_per_gb_consumed'), 3)}" if cost
                   else fmt(f.get("system_cpu_s_per_gb_moved"), 3))
        consume = fmt(f.get("drain_mb_per_sec")) + " (drain)" if f.get("drain_mb_per_sec") else fmt(f.get("consume_mb_per_sec"))
        rows.append([name, c["runs"], fmt(f["publish_mb_per_sec"]), fmt(f["publish_p99_ms"], 2), consume,
                     fmt(f["e2e_p50_ms"], 2), fmt(f["e2e_p99_ms"], 2), fmt(f["e2e_p999_ms"], 2),
                     cpu, sys_cpu, fmt(f["rss_steady_mib"])])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    if "idle-connections" in cases:
        c = cases["idle-connections"]
        print(f"\nidle connections: {c['count']:,} open, broker RSS growth per connection "
              f"{fmt(c['figures']['kib_per_connection'])} KiB ({c['runs']} runs)")
    for name, b in brokers.items():
        print(f"broker {name}: idle RSS {b['idle_rss_kb'] / 1024:.1f} MiB, peak RSS (VmHWM"
              f"{', largest node' if 'nodes' in b else ''}) {b['peak_rss_kb'] / 1024:.1f} MiB")

    # --- targets (medians; full runs only) ---
    def med(case, fig):
        s = get(cases, case, "figures", fig)
        return s["median"] if s else float("nan")

    checks = [
        ("broker CPU s per GB produced (cost)", med("cost", "cpu_s_per_gb_produced"), "<=", TARGETS["cost_cpu_s_per_gb_produced_max"]),
        ("broker CPU s per GB consumed (cost, backlog read from disk)", med("cost", "cpu_s_per_gb_consumed"), "<=", TARGETS["cost_cpu_s_per_gb_consumed_max"]),
        ("broker CPU s per GB produced (cost-page-cache, write-behind off)", med("cost-page-cache", "cpu_s_per_gb_produced"), "<=", TARGETS["cost_cpu_s_per_gb_produced_max"]),
        ("broker CPU s per GB consumed (cost-page-cache, backlog read from memory)", med("cost-page-cache", "cpu_s_per_gb_consumed"), "<=", TARGETS["cost_cpu_s_per_gb_consumed_max"]),
        ("end-to-end p99 ms at 50 MB/s, 6 partitions", med("fixed-50mb", "e2e_p99_ms"), "<=", TARGETS["fixed_50mb_e2e_p99_ms_max"]),
        ("publish p99 ms at 50 MB/s, 6 partitions", med("fixed-50mb", "publish_p99_ms"), "<=", TARGETS["fixed_50mb_publish_p99_ms_max"]),
        ("publish MB/s, 48 partitions / 6 partitions", med("partitions-48", "publish_mb_per_sec") / med("partitions-6", "publish_mb_per_sec"), ">=", TARGETS["partitions_48_over_6_min"]),
        ("broker RSS KiB per idle connection", med("idle-connections", "kib_per_connection"), "<=", TARGETS["idle_connection_kib_max"]),
    ]
    judged = []
    print()
    print("Targets (issue 13; medians)" + (" - smoke runs are too short to judge these" if a.mode == "smoke" else "") + ":")
    for name, got, op, want in checks:
        ok = got == got and (got >= want if op == ">=" else got <= want)
        judged.append({"name": name, "value": got, "op": op, "target": want, "met": ok})
        print(f"  {'met    ' if ok else 'NOT met'} {name}: {got:,.3f} (target {op} {want})")
    user = lambda fig, sys_fig: med("cost", fig) - med("cost", sys_fig)
    print(f"  (the broker's own code, user CPU only: {user('cpu_s_per_gb_produced', 'system_cpu_s_per_gb_produced'):.3f} s/GB produced, "
          f"{user('cpu_s_per_gb_consumed', 'system_cpu_s_per_gb_consumed'):.3f} s/GB consumed)")
    ratios = {}
    if "partitions-6" in cases:
        ratios["partitions_6_publish_over_disk_write"] = med("partitions-6", "publish_mb_per_sec") / lim["disk_seq_write_mb_per_sec"]
        ratios["partitions_6_consume_over_loopback_tcp"] = med("partitions-6", "consume_mb_per_sec") / lim["loopback_tcp_mb_per_sec"]
    if "cost" in cases:
        ratios["cost_drain_over_loopback_tcp"] = med("cost", "drain_mb_per_sec") / lim["loopback_tcp_mb_per_sec"]
    if "cluster-max" in cases and "partitions-6" in cases:
        ratios["cluster_over_single_publish"] = med("cluster-max", "publish_mb_per_sec") / med("partitions-6", "publish_mb_per_sec")
    if ratios:
        print("Ratios (medians): " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))

    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": a.mode,
        "host": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "limits": lim,
        "units": "MB = 10^6 bytes, MiB = 2^20 bytes, GB = 10^9 bytes, of record values; latencies in ms; medians with min/max over runs",
        "brokers": brokers,
        "cases": cases,
        "targets": judged,
        "ratios": ratios,
        "runs": runs,
        "errors": errors,
    }
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    if errors:
        print("\nbench: FAILED:", file=sys.stderr)
        for e in errors:
            print("  " + e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
