"""/metrics after real traffic: valid Prometheus exposition (promtool) with the request
counters and per-partition log gauges matching what was produced."""

import subprocess

from helpers import (consume_partitions, create_topic, metric, parse_metrics, produce_all,
                     producer, wait_until)

COUNT = 37


def test_metrics_after_produce_and_fetch(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=2)
    prod = producer(broker.bootstrap, **{"linger.ms": 5})
    produce_all(prod, topic, [{"value": f"m{i}".encode(), "partition": 0} for i in range(COUNT)])
    got = consume_partitions(broker.bootstrap, topic, [0, 1])
    assert len(got[0]) == COUNT and got[1] == []

    text = broker.metrics_text()
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0, f"promtool: {check.stdout}{check.stderr}"

    samples = parse_metrics(text)
    assert metric(samples, "ironlog_requests_total", api="Produce") > 0
    assert metric(samples, "ironlog_requests_total", api="Fetch") > 0
    assert metric(samples, "ironlog_requests_total", api="Metadata") > 0
    assert metric(samples, "ironlog_log_end_offset", topic=topic, partition=0) == COUNT
    assert metric(samples, "ironlog_log_end_offset", topic=topic, partition=1) == 0
    assert metric(samples, "ironlog_log_start_offset", topic=topic, partition=0) == 0
    assert metric(samples, "ironlog_produced_records_total") == COUNT
    assert metric(samples, "ironlog_log_size_bytes", topic=topic, partition=0) > COUNT * 2

    # A later produce shows in the next scrape.
    produce_all(prod, topic, [{"value": b"one-more", "partition": 1}])
    wait_until(lambda: metric(parse_metrics(broker.metrics_text()), "ironlog_log_end_offset",
                              topic=topic, partition=1) == 1, 5, "log_end_offset of partition 1")
