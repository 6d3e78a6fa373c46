#!/usr/bin/env python3
"""Turns one bench/run.sh run into a table and a JSON file, and checks every figure parses.

Exit status 1 if any limit or perf result is missing, not a number, or shows fewer
records than were asked for: that is what `bench/run.sh --smoke` checks.
"""

import argparse
import datetime
import json
import os
import platform
import sys

MB = 1_000_000  # the unit of every MB/s here, as in fio and iperf3 (bits/8)

PERF_FIELDS = ["records_per_sec", "mb_per_sec", "avg_ms", "p50_ms", "p95_ms", "p99_ms",
               "p999_ms", "max_ms", "records", "bytes"]

# Issue 5's targets on this machine class.
TARGETS = {
    "produce_100B_records_per_sec": 1_300_000,
    "consume_100B_records_per_sec": 1_000_000,
    "produce_1KiB_mb_per_sec": 700,
    "consume_1KiB_mb_per_sec": 800,
    "acks_all_max_cost": 0.10,
    "idle_rss_mb": 30,
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
    for name, file in [("disk_seq_write_mb_per_sec", "fio-end.json"),
                       ("disk_seq_write_fsync_64k_mb_per_sec", "fio-sync.json")]:
        fio = load(os.path.join(work, file), "fio")
        jobs = fio.get("jobs") or [{}]
        out[name] = number(jobs[0].get("write", {}), "bw_bytes", f"fio {file}") / MB
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    lim = limits(a.work)
    cases, brokers = [], {}
    with open(os.path.join(a.work, "rows.jsonl")) as f:
        for i, line in enumerate(f):
            try:
                row = json.loads(line)
            except ValueError as e:
                fail(f"row {i + 1} does not parse ({e}): {line[:200]!r}")
                continue
            if "broker" in row:
                brokers[row["broker"]] = row
            else:
                cases.append(row)
    if not cases:
        fail("no produce/consume results")

    for c in cases:
        where = f"{c.get('durability')} {c.get('records')}x{c.get('record_size')}B acks={c.get('acks')} {c.get('compression')}"
        for side in ("produce", "consume"):
            for field in PERF_FIELDS:
                number(c.get(side, {}), field, f"{where} {side}")
            got = c.get(side, {}).get("records")
            if got != c.get("records"):
                fail(f"{where} {side}: {got} records, expected {c.get('records')}")
        gb = c["records"] * c["record_size"] / 1e9
        c["broker_cpu_s_per_gb_produce"] = (c["broker_cpu_produce_s"] - c["broker_cpu_start_s"]) / gb
        c["broker_cpu_s_per_gb_consume"] = (c["broker_cpu_consume_s"] - c["broker_cpu_produce_s"]) / gb
        fsync_each = c["durability"] != "page-cache"
        disk = lim["disk_seq_write_fsync_64k_mb_per_sec" if fsync_each else "disk_seq_write_mb_per_sec"]
        c["produce_ratio_to_disk"] = c["produce"].get("mb_per_sec", 0) / disk if disk else float("nan")
        c["consume_ratio_to_tcp"] = c["consume"].get("mb_per_sec", 0) / lim["loopback_tcp_mb_per_sec"]

    # --- the table ---
    print()
    print(f"Limits: loopback TCP {lim['loopback_tcp_mb_per_sec']:.0f} MB/s "
          f"({lim['loopback_tcp_mb_per_sec'] * 8 / 1000:.1f} Gbit/s, iperf3); "
          f"disk sequential write {lim['disk_seq_write_mb_per_sec']:.0f} MB/s (fsync at end), "
          f"{lim['disk_seq_write_fsync_64k_mb_per_sec']:.0f} MB/s (fsync every 64 KiB) (fio)")
    print("Durability: 'page-cache' = flush.messages/flush.ms unset: acknowledged data is in the "
          "OS page cache, fsynced on segment roll and clean shutdown (Kafka's default). "
          "'flush.messages=1' = fsync before every acknowledgement.")
    print("MB = 10^6 bytes of record values. Produce latency = send -> delivery report. "
          "Ratios: produce MB/s / disk write limit (the fsync-every-64KiB one for flush.messages=1); "
          "consume MB/s / loopback TCP.")
    print()
    head = ["durability", "records x size", "acks", "comp", "prod rec/s", "prod MB/s", "p50 ms",
            "p99 ms", "p99.9 ms", "max ms", "cons rec/s", "cons MB/s", "cpu s/GB p/c",
            "prod/disk", "cons/tcp"]
    rows = []
    for c in cases:
        p, q = c["produce"], c["consume"]
        rows.append([
            c["durability"], f"{c['records']:,} x {c['record_size']} B", c["acks"], c["compression"],
            f"{p.get('records_per_sec', 0):,.0f}", f"{p.get('mb_per_sec', 0):.1f}",
            f"{p.get('p50_ms', 0):.1f}", f"{p.get('p99_ms', 0):.1f}", f"{p.get('p999_ms', 0):.1f}",
            f"{p.get('max_ms', 0):.1f}",
            f"{q.get('records_per_sec', 0):,.0f}", f"{q.get('mb_per_sec', 0):.1f}",
            f"{c['broker_cpu_s_per_gb_produce']:.1f}/{c['broker_cpu_s_per_gb_consume']:.1f}",
            f"{c['produce_ratio_to_disk']:.2f}", f"{c['consume_ratio_to_tcp']:.3f}",
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"
    print(fmt(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(fmt(r))
    print()
    for name, b in brokers.items():
        print(f"Broker {name}: idle RSS {b['idle_rss_kb'] / 1024:.1f} MiB, peak RSS (VmHWM) "
              f"{b['peak_rss_kb'] / 1024:.1f} MiB, CPU {b['cpu_s']:.1f} s in all")

    # --- against the targets (meaningful only for a full run) ---
    def find(size, acks, comp="none"):
        for c in cases:
            if c["durability"] == "page-cache" and c["record_size"] == size and c["acks"] == acks and c["compression"] == comp:
                return c
        return None

    checks = []
    s1, s1all, k1, k1all = find(100, "1"), find(100, "all"), find(1024, "1"), find(1024, "all")
    if s1 and k1:
        checks = [
            ("produce 100 B acks=1 records/s", s1["produce"]["records_per_sec"], ">=", TARGETS["produce_100B_records_per_sec"]),
            ("consume 100 B records/s", s1["consume"]["records_per_sec"], ">=", TARGETS["consume_100B_records_per_sec"]),
            ("produce 1 KiB acks=1 MB/s", k1["produce"]["mb_per_sec"], ">=", TARGETS["produce_1KiB_mb_per_sec"]),
            ("consume 1 KiB MB/s", k1["consume"]["mb_per_sec"], ">=", TARGETS["consume_1KiB_mb_per_sec"]),
        ]
        if s1all:
            checks.append(("acks=all cost vs acks=1, 100 B", 1 - s1all["produce"]["records_per_sec"] / s1["produce"]["records_per_sec"], "<=", TARGETS["acks_all_max_cost"]))
        if k1all:
            checks.append(("acks=all cost vs acks=1, 1 KiB", 1 - k1all["produce"]["mb_per_sec"] / k1["produce"]["mb_per_sec"], "<=", TARGETS["acks_all_max_cost"]))
    if "page-cache" in brokers:
        checks.append(("idle RSS MiB", brokers["page-cache"]["idle_rss_kb"] / 1024, "<=", TARGETS["idle_rss_mb"]))
    if checks:
        print()
        print("Targets (issue 5)" + (" - smoke counts are too small to judge these" if a.mode == "smoke" else "") + ":")
        for name, got, op, want in checks:
            ok = got >= want if op == ">=" else got <= want
            print(f"  {'met    ' if ok else 'NOT met'} {name}: {got:,.3f} (target {op} {want:,})")

    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": a.mode,
        "host": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "limits": lim,
        "durability_note": "page-cache: flush.messages and flush.ms unset (fsync on roll and shutdown only); flush.messages=1: fsync before every acknowledgement",
        "brokers": brokers,
        "cases": cases,
        "targets": TARGETS,
        "errors": errors,
    }
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    if errors:
        print("\nbench: FAILED, output did not parse:", file=sys.stderr)
        for e in errors:
            print("  " + e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
