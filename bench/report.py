#!/usr/bin/env python3
"""Turns one bench/run.sh run into a table and a JSON file, and checks every figure parses.

Rows: the single-node broker (one partition, one producer; `page-cache 6p x3 producers`: six
partitions, three producers), fsync-each, and the 3-node cluster (`cluster RF=3 min.isr=2`,
acks=all, six partitions, three producers; at max rate and at half that rate).

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

# The replication issue's targets: the single-node 6-partition/3-producer row against the
# one-partition row, the cluster's acks=all against single-node acks=1, and the cluster's
# produce p99 at half its max rate.
CLUSTER_TARGETS = {
    "multi_partition_ratio_min": 1.0,
    "cluster_acks_all_ratio_min": 0.40,
    "cluster_half_rate_p99_ms_max": 10.0,
}

SINGLE = "page-cache"
MULTI = "page-cache 6p x3 producers"
CLUSTER = "cluster RF=3 min.isr=2"

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


def rate_label(c):
    limit = c.get("throughput_limit", -1)
    return "max" if limit is None or limit < 0 else f"{limit:,}"


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
        fsync_each = c["durability"].startswith("flush.")
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
    print(f"'{MULTI}' = the page-cache broker, a topic of 6 partitions written by 3 producers. "
          f"'{CLUSTER}' = 3 brokers (combined broker+voter) on this machine, a topic of 6 "
          "partitions, replication factor 3, min.insync.replicas=2, 3 producers with acks=all: "
          "acknowledged once every in-sync replica (at least 2) has the records in its page "
          "cache. cpu s/GB sums the three brokers' CPU.")
    print("MB = 10^6 bytes of record values. Produce latency = send -> delivery report. "
          "Ratios: produce MB/s / disk write limit (the fsync-every-64KiB one for flush.messages=1); "
          "consume MB/s / loopback TCP.")
    print()
    head = ["durability", "records x size", "acks", "comp", "limit rec/s", "prod rec/s", "prod MB/s", "p50 ms",
            "p99 ms", "p99.9 ms", "max ms", "cons rec/s", "cons MB/s", "cpu s/GB p/c",
            "prod/disk", "cons/tcp"]
    rows = []
    for c in cases:
        p, q = c["produce"], c["consume"]
        rows.append([
            c["durability"], f"{c['records']:,} x {c['record_size']} B", c["acks"], c["compression"],
            rate_label(c),
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
        if "nodes" in b:
            print(f"Broker {name} ({len(b['nodes'])} nodes): idle RSS {b['idle_rss_kb'] / 1024:.1f} MiB, "
                  f"peak RSS (VmHWM) {b['peak_rss_kb'] / 1024:.1f} MiB (largest node), "
                  f"CPU {b['cpu_s']:.1f} s in all (sum over nodes: "
                  + ", ".join(f"{n['cpu_s']:.1f}" for n in b["nodes"]) + ")")
        else:
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

    # --- multi-partition and cluster figures (one run each: the median of one is that run) ---
    def pick(durability, size, acks, comp="none", limited=False):
        got = [c for c in cases if c["durability"] == durability and c["record_size"] == size
               and c["acks"] == acks and c["compression"] == comp
               and (c.get("throughput_limit", -1) >= 0) == limited]
        return got

    def median(xs):
        xs = sorted(xs)
        n = len(xs)
        return float("nan") if n == 0 else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)

    def mbps(rows):
        return median([r["produce"].get("mb_per_sec", float("nan")) for r in rows])

    comparisons = []
    sizes = sorted({c["record_size"] for c in cases if c["durability"] in (MULTI, CLUSTER)})
    for size in sizes:
        one = pick(SINGLE, size, "1")
        multi = pick(MULTI, size, "1")
        if one and multi:
            comparisons.append({
                "name": f"single node, {size} B: 6 partitions x 3 producers / 1 partition x 1 producer, produce MB/s (acks=1)",
                "value": mbps(multi) / mbps(one), "op": ">=",
                "target": CLUSTER_TARGETS["multi_partition_ratio_min"], "runs": len(multi)})
        full = pick(CLUSTER, size, "all")
        if one and full:
            comparisons.append({
                "name": f"cluster acks=all / single-node acks=1 (1 partition), {size} B, produce MB/s",
                "value": mbps(full) / mbps(one), "op": ">=",
                "target": CLUSTER_TARGETS["cluster_acks_all_ratio_min"], "runs": len(full)})
        half = pick(CLUSTER, size, "all", limited=True)
        if half:
            comparisons.append({
                "name": f"cluster acks=all at half its max rate ({half[0]['throughput_limit']:,} rec/s), {size} B, produce p99 ms",
                "value": median([r["produce"].get("p99_ms", float("nan")) for r in half]), "op": "<=",
                "target": CLUSTER_TARGETS["cluster_half_rate_p99_ms_max"], "runs": len(half)})
    for cmp in comparisons:
        v = cmp["value"]
        cmp["met"] = (v >= cmp["target"]) if cmp["op"] == ">=" else (v <= cmp["target"])
        if v != v:  # NaN: a figure was missing (already reported as an error)
            cmp["met"] = False
    if comparisons:
        print()
        print("Multi-partition and replication (one run each, so each figure is that run's, not a median of repeats)"
              + (" - smoke counts are too small to judge these" if a.mode == "smoke" else "") + ":")
        for cmp in comparisons:
            print(f"  {'target met   ' if cmp['met'] else 'target missed'} {cmp['name']}: "
                  f"{cmp['value']:,.2f} (target {cmp['op']} {cmp['target']})")

    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": a.mode,
        "host": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "limits": lim,
        "durability_note": "page-cache: flush.messages and flush.ms unset (fsync on roll and shutdown only); flush.messages=1: fsync before every acknowledgement; cluster RF=3 min.isr=2: 3 brokers, acks=all acknowledged once every in-sync replica (at least 2) has the records in its page cache",
        "brokers": brokers,
        "cases": cases,
        "targets": TARGETS,
        "cluster_targets": CLUSTER_TARGETS,
        "comparisons": comparisons,
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
