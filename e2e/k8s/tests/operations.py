"""What the scenarios of test_cluster.py run beside their producers: a consumer that reads the
topic for the whole scenario, and a sampler that checks min.insync.replicas at every moment it
looks.
"""

import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

import kafka_wire
from records import LOG


class Reader(threading.Thread):
    """A consumer reading every partition of `topic` from the beginning for as long as it
    runs (no group: it assigns itself the partitions), keeping every value it saw."""

    def __init__(self, bootstrap, topic, partitions):
        super().__init__(daemon=True)
        self.settings = {"bootstrap.servers": bootstrap, "group.id": "e2e-k8s-reader",
                         "enable.auto.commit": False, "logger": LOG}
        self.topic, self.partitions = topic, partitions
        self.seen = set()
        self.errors = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        c = Consumer(self.settings)
        try:
            c.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING)
                      for p in range(self.partitions)])
            while not self.stopping.is_set():
                msg = c.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    if not (msg.error().retriable() or msg.error().code() in (
                            KafkaError._PARTITION_EOF, KafkaError.NOT_LEADER_OR_FOLLOWER,
                            KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TRANSPORT)):
                        self.errors.append(str(msg.error()))
                    continue
                with self.lock:
                    self.seen.add(msg.value())
        finally:
            c.close()

    def missing(self, acks):
        with self.lock:
            return [a.value for a in acks if a.value not in self.seen]

    def stop(self):
        self.stopping.set()
        self.join(30)


class MinIsrSampler(threading.Thread):
    """Samples the topic's Metadata every `interval` s; records every sample in which a
    partition had fewer than `min_isr` in-sync replicas (or no leader)."""

    def __init__(self, bootstrap, topic, min_isr, interval=0.5):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.min_isr, self.interval = bootstrap, topic, min_isr, interval
        self.samples = 0
        self.violations = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.wait(self.interval):
            try:
                md = kafka_wire.metadata(self.bootstrap, [self.topic], timeout=5)
            except (OSError, AssertionError, ValueError):
                continue  # the bootstrap broker itself restarting: no sample
            self.samples += 1
            for p in md.topics[self.topic].partitions.values():
                if len(p.isr) < self.min_isr or p.leader < 0:
                    self.violations.append((time.strftime("%H:%M:%S"), p.partition, p.leader,
                                            list(p.isr)))

    def stop(self):
        self.stopping.set()
        self.join(30)

