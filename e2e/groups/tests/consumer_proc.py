"""A confluent-kafka group consumer run as a subprocess (so tests can SIGKILL it).

    python consumer_proc.py BOOTSTRAP GROUP TOPIC STRATEGY OUT_FILE STOP_FILE [INSTANCE_ID]

Writes one JSON line per event to OUT_FILE, flushed at once, in the order things happened:
  {"ev": "assign", "parts": [..]}     partitions assigned (incrementally for cooperative)
  {"ev": "revoke", "parts": [..]}
  {"ev": "rec", "p": P, "o": OFFSET, "v": VALUE}
Offsets are committed synchronously (manual commits: at least once) every 100 ms and in
the revoke callback. Exits cleanly (final commit, close) when STOP_FILE exists.
"""

import json
import logging
import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

bootstrap, group, topic, strategy, out_path, stop_path = sys.argv[1:7]
instance = sys.argv[7] if len(sys.argv) > 7 else None
out = open(out_path, "a", buffering=1)
log = logging.getLogger("librdkafka")
log.addHandler(logging.NullHandler())


def emit(**event):
    out.write(json.dumps(event) + "\n")
    out.flush()


conf = {
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
    "partition.assignment.strategy": strategy,
    "logger": log,
}
if instance:
    conf["group.instance.id"] = instance
consumer = Consumer(conf)
pending = {}  # partition -> next offset to commit


def commit(parts=None):
    offsets = [TopicPartition(topic, p, o) for p, o in pending.items()
               if parts is None or p in parts]
    if not offsets:
        return
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
        for tp in offsets:
            if pending.get(tp.partition) == tp.offset:
                del pending[tp.partition]
    except KafkaException as e:
        emit(ev="commit_error", error=str(e))


def on_assign(c, parts):
    emit(ev="assign", parts=sorted(p.partition for p in parts))
    if strategy == "cooperative-sticky":
        c.incremental_assign(parts)


def on_revoke(c, parts):
    revoked = {p.partition for p in parts}
    commit(revoked)
    for p in revoked:
        pending.pop(p, None)
    emit(ev="revoke", parts=sorted(revoked))
    if strategy == "cooperative-sticky":
        c.incremental_unassign(parts)


def on_lost(c, parts):
    lost = {p.partition for p in parts}
    for p in lost:
        pending.pop(p, None)
    emit(ev="lost", parts=sorted(lost))
    if strategy == "cooperative-sticky":
        c.incremental_unassign(parts)


consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
last_commit = time.monotonic()
while not os.path.exists(stop_path):
    msg = consumer.poll(0.1)
    if msg is not None and msg.error() is None:
        emit(ev="rec", p=msg.partition(), o=msg.offset(), v=msg.value().decode())
        pending[msg.partition()] = msg.offset() + 1
    if time.monotonic() - last_commit > 0.1:
        commit()
        last_commit = time.monotonic()
commit()
consumer.close()
emit(ev="closed")
