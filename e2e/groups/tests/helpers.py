"""Shared helpers: topics, producing, committed offsets, polling waits, consumer processes."""

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

LOG = logging.getLogger("librdkafka")
LOG.addHandler(logging.NullHandler())
HERE = Path(__file__).parent


def wait_until(what, predicate, timeout=60.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def create_topic(bootstrap, name, partitions, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": LOG})
    fs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                       config=config or {})])
    fs[name].result(timeout=20)


def producer(bootstrap):
    return Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                     "logger": LOG})


def end_offsets(bootstrap, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "end-offsets-probe",
                  "logger": LOG})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
    finally:
        c.close()


def committed(bootstrap, group, topic, partitions):
    """The group's committed offsets via OffsetFetch (a consumer that never joins)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "logger": LOG})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def metric(text, name, **labels):
    """The value of one sample in Prometheus text (None if absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


class ConsumerProc:
    """A consumer_proc.py subprocess and the events it wrote."""

    def __init__(self, tmp, bootstrap, group, topic, strategy, label, instance=None):
        self.out = tmp / f"{label}.jsonl"
        self.stop_file = tmp / f"{label}.stop"
        for f in (self.out, self.stop_file):
            if f.exists():
                f.unlink()
        args = [sys.executable, str(HERE / "consumer_proc.py"), bootstrap, group, topic,
                strategy, str(self.out), str(self.stop_file)]
        if instance:
            args.append(instance)
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        self.label = label

    def events(self):
        if not self.out.exists():
            return []
        lines = self.out.read_text().splitlines()
        return [json.loads(l) for l in lines if l.endswith("}")]

    def assigned(self):
        """Partitions currently owned, per the callbacks seen so far."""
        owned = set()
        for e in self.events():
            if e["ev"] == "assign":
                owned |= set(e["parts"])
            elif e["ev"] in ("revoke", "lost"):
                owned -= set(e["parts"])
        return owned

    def records(self):
        return [e for e in self.events() if e["ev"] == "rec"]

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self, timeout=30):
        self.stop_file.touch()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"consumer {self.label} did not stop")
