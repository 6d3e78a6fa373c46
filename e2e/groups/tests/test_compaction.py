"""cleanup.policy=compact: the latest value per key survives across segments and restarts,
inside compressed batches of every codec, for confluent-kafka and kafka-python; consumers
see a consistent log while the cleaner swaps segments in; kill -9 mid-pass loses nothing.

The compressed-batch tests share one workload: 60,000 records over 1,500 keys, ~5%
tombstones, 100-byte values of mostly random hex (they compress to a half or more, not to
nothing),
produced in real multi-record batches with every offset taken from the delivery report;
then filler records on unique keys (incompressible, more than a segment) so that every data
record ends up in an inactive segment. Once the cleaner is done the partition must hold
exactly the latest record of every key, at its delivered offset."""

import random
import time
from collections import defaultdict

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTP

from helpers import LOG, create_topic, metric, producer, wait_until

KEYS = 10
ROUNDS = 30


def read_all(bootstrap, topic):
    """read_confluent with the values as text (this test's values are "v-<round>")."""
    records, hw = read_confluent(bootstrap, topic)
    return [(o, k, v.decode() if v is not None else None) for o, k, v in records], hw


def check_latest(records):
    per_key = defaultdict(list)
    for _, k, v in records:
        per_key[k].append(int(v.split("-")[1]))
    assert sorted(per_key) == [f"k{i}" for i in range(KEYS)]
    for k, rounds in per_key.items():
        assert rounds == sorted(rounds), f"{k} out of order: {rounds}"
        assert rounds[-1] == ROUNDS - 1, f"{k}: latest value lost ({rounds})"


def test_compacted_topic_keeps_latest_value_per_key(broker, name):
    topic = name
    create_topic(broker.bootstrap, topic, 1,
                 {"cleanup.policy": "compact", "segment.bytes": "1024"})
    p = producer(broker.bootstrap)
    for r in range(ROUNDS):
        for k in range(KEYS):
            p.produce(topic, key=f"k{k}".encode(), value=f"v-{r}".encode(), partition=0)
        p.flush(10)  # one batch per round: many small segments
    assert p.flush(30) == 0

    def compacted():
        records, end = read_all(broker.bootstrap, topic)
        assert end == KEYS * ROUNDS, "offsets never change"
        return records if len(records) < KEYS * ROUNDS // 2 else None

    records = wait_until("the cleaner to compact the inactive segments", compacted, timeout=30,
                         interval=0.5)
    check_latest(records)
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(offsets) and offsets[-1] == KEYS * ROUNDS - 1

    broker.restart()
    after, end = read_all(broker.bootstrap, topic)
    assert end == KEYS * ROUNDS
    assert after == records, "a restart must neither resurrect nor lose records"
    check_latest(after)


# --- compaction inside compressed batches -------------------------------------------------

CODECS = ["lz4", "zstd", "snappy", "gzip"]
DATA_RECORDS = 60_000
DATA_KEYS = 1_500
TOMBSTONE_SHARE = 0.05
FILLER_RECORDS = 1_200
FILLER_VALUE_BYTES = 1_000  # random bytes: 1.2 MB that no codec shrinks, > segment.bytes
SEGMENT_BYTES = 1_048_576
COMPACTED = {"cleanup.policy": "compact", "segment.bytes": str(SEGMENT_BYTES),
             "min.cleanable.dirty.ratio": "0.01"}
# The cleaner looks at logs every 100 ms instead of every second: shorter waits.
FAST_CLEANER = ["--log-cleaner-backoff-ms", "100"]
# 2 MB/s of cleaner I/O: a pass over the 4-7 MB of inactive segments (read twice: offset
# map, then copy) takes 4-7 s.
SLOW_CLEANER = [*FAST_CLEANER, "--log-cleaner-io-max-bytes-per-second", "2000000"]
CLEANER_METRICS = ["dirty_bytes", "max_dirty_ratio", "bytes_read_total",
                   "bytes_written_total", "records_removed_total"]


def workload(seed):
    """The data records then the filler records, as (key, value) in produce order."""
    rng = random.Random(seed)
    data = []
    for i in range(DATA_RECORDS):
        key = f"k{i:04d}" if i < DATA_KEYS else f"k{rng.randrange(DATA_KEYS):04d}"
        # "value-" gives snappy and lz4 (no entropy coding) something to find in every
        # record, the random hex keeps the rest from compressing to nothing.
        value = (None if rng.random() < TOMBSTONE_SHARE
                 else b"value-" + rng.randbytes(47).hex().encode())
        data.append((key, value))
    filler = [(f"filler-{i:04d}", rng.randbytes(FILLER_VALUE_BYTES))
              for i in range(FILLER_RECORDS)]
    return data, filler


class ProducedLog:
    """What the broker acknowledged: offset -> (key, value), from delivery reports."""

    def __init__(self, delivered):
        self.at = {}
        for offset, key, value in delivered:
            assert offset not in self.at, f"offset {offset} delivered twice"
            self.at[offset] = (key, value)
        self.latest = {}  # key -> (offset, value)
        for offset in sorted(self.at):
            key, value = self.at[offset]
            self.latest[key] = (offset, value)
        self.end = max(self.at) + 1
        assert sorted(self.at) == list(range(self.end)), "delivered offsets have gaps"
        self.last_data_offset = max(o for o, (k, _) in self.at.items() if k.startswith("k"))

    def compacted(self):
        """The exact contents once every key is cleaned: its latest record, by offset."""
        return sorted((o, k, v) for k, (o, v) in self.latest.items())

    def check_consistent(self, records, what):
        """A read of the partition is a compaction of what was produced: strictly increasing
        offsets, each record exactly what was produced at its offset, and every key's latest
        record there (so the last value read per key is its latest)."""
        offsets = [o for o, _, _ in records]
        assert all(a < b for a, b in zip(offsets, offsets[1:])), f"{what}: offsets not increasing"
        for o, k, v in records:
            assert self.at.get(o) == (k, v), (
                f"{what}: offset {o} holds {(k, v)!r}, produced there: {self.at.get(o)!r}")
        last_read = {}
        for o, k, v in records:
            last_read[k] = (o, v)
        missing = [k for k, latest in self.latest.items() if last_read.get(k) != latest]
        assert not missing, (f"{what}: {len(missing)} keys lack their latest record, e.g. "
                             f"{missing[0]}: read {last_read.get(missing[0])!r}, "
                             f"latest {self.latest[missing[0]]!r}")


def produce_confluent(bootstrap, topic, records, codec):
    """Produces (key, value) records in batches of `codec`; (offset, key, value) of each."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "logger": LOG,
                  "compression.type": codec, "linger.ms": 20, "batch.size": 262_144,
                  "enable.idempotence": True})
    delivered, errors = [], []

    def report(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered.append((msg.offset(), msg.key().decode(), msg.value()))

    for key, value in records:
        while True:
            try:
                p.produce(topic, key=key.encode(), value=value, partition=0, on_delivery=report)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0, "undelivered records"
    assert not errors, f"delivery failed: {errors[:3]}"
    assert len(delivered) == len(records)
    return delivered


def read_confluent(bootstrap, topic):
    """(offset, key, value) of every record from the log start (no group), and the high
    watermark."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-reader", "logger": LOG,
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out = []
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, f"no end of partition after 30 s ({len(out)} read)"
            msgs = c.consume(num_messages=10_000, timeout=1)
            at_end = False
            for m in msgs:
                if m.error():
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    at_end = True
                else:
                    out.append((m.offset(), m.key().decode(), m.value()))
            if at_end:
                break
        hw = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)[1]
        return out, hw
    finally:
        c.close()


def produce_kafka_python(bootstrap, topic, records, codec):
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=codec,
                      linger_ms=20, batch_size=262_144, max_request_size=4_194_304)
    try:
        futures = [(key, value, p.send(topic, key=key.encode(), value=value, partition=0))
                   for key, value in records]
        p.flush(timeout=60)
        return [(f.get(timeout=10).offset, key, value) for key, value, f in futures]
    finally:
        p.close(timeout=10)


def read_kafka_python(bootstrap, topic):
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                      max_partition_fetch_bytes=4_194_304)
    try:
        tp = KTP(topic, 0)
        hw = c.end_offsets([tp])[tp]
        c.assign([tp])
        c.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + 60
        while c.position(tp) < hw:
            assert time.monotonic() < deadline, f"not at {hw} after 60 s ({len(out)} read)"
            for msgs in c.poll(timeout_ms=1000, max_records=10_000).values():
                out.extend((m.offset, m.key.decode(), m.value) for m in msgs)
        return out, hw
    finally:
        c.close()


def cleaner_metrics(broker):
    text = broker.metrics_text()
    m = {n: metric(text, f"ironlog_log_cleaner_{n}") or 0.0 for n in CLEANER_METRICS}
    m["passes_cleaned"] = metric(text, "ironlog_log_cleaner_passes_total", outcome="cleaned") or 0
    m["passes_failed"] = metric(text, "ironlog_log_cleaner_passes_total", outcome="failed") or 0
    return m


def partition_dir(broker, topic):
    d = broker.data_dir / f"{topic}-0"
    assert d.is_dir(), f"no partition directory {d}"
    return d


def cleaned_files(broker, topic):
    return sorted(p.name for p in partition_dir(broker, topic).glob("*.cleaned"))


def segment_bases(broker, topic):
    return sorted(int(p.stem) for p in partition_dir(broker, topic).glob("*.log"))


CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def batch_headers(path):
    """(codec name, record count) of each whole v2 record batch in a segment file (Kafka's
    batch header: length at byte 8, attributes at 21, record count at 57)."""
    data = path.read_bytes()
    codecs = {v: k for k, v in CODEC_IDS.items()}
    out, pos = [], 0
    while pos + 61 <= len(data):
        size = 12 + int.from_bytes(data[pos + 8:pos + 12], "big")
        if pos + size > len(data):
            break
        attributes = int.from_bytes(data[pos + 21:pos + 23], "big")
        out.append((codecs.get(attributes & 7), int.from_bytes(data[pos + 57:pos + 61], "big")))
        pos += size
    return out


def produce_workload(broker, topic, produce, codec, seed):
    """Produces the data records, then the filler; checks the data went into multi-record
    batches of `codec` (in the active segment, which the cleaner leaves alone) and that
    every data record ended up in an inactive segment (so the cleaner may clean it)."""
    data, filler = workload(seed)
    delivered = produce(broker.bootstrap, topic, data, codec)
    active = partition_dir(broker, topic) / f"{segment_bases(broker, topic)[-1]:020d}.log"
    batches = batch_headers(active)
    # A client may send a batch uncompressed when compressing does not make it smaller
    # (kafka-python does); nearly all records must still be in `codec` batches.
    assert batches and all(c in (codec, "none") for c, _ in batches), f"{active}: {batches}"
    compressed = [n for c, n in batches if c == codec]
    share = sum(compressed) / sum(n for _, n in batches)
    assert share >= 0.9, f"only {share:.0%} of the records in {codec} batches: {batches}"
    per_batch = sum(compressed) / len(compressed)
    assert per_batch >= 10, f"{per_batch:.1f} records per batch: linger.ms had no effect"
    delivered += produce(broker.bootstrap, topic, filler, codec)
    log = ProducedLog(delivered)
    assert log.end == DATA_RECORDS + FILLER_RECORDS
    active_base = segment_bases(broker, topic)[-1]
    assert active_base > log.last_data_offset, (
        f"the active segment starts at {active_base}, data ends at {log.last_data_offset}: "
        "more filler needed")
    print(f"\n[{codec}] {per_batch:.0f} records per {codec} batch, {share:.0%} of the records "
          f"in {codec} batches; "
          f"{len(segment_bases(broker, topic)) - 1} inactive segments")
    return log


def wait_compacted(broker, topic, log, read, timeout=60.0, cleaned_before=False):
    """Waits until the cleaner has removed records and is idle (no backlog, no pass writing,
    no new pass) and two reads a second or more apart agree; checks every read on the way.
    Returns the settled read. With `cleaned_before` (a broker restarted over a log that an
    earlier run of it may have cleaned to the end already, so this run has nothing to remove),
    a read equal to the compacted log stands in for records removed by this run."""
    last = {}

    def settled():
        m = cleaner_metrics(broker)
        assert m["passes_failed"] == 0, f"a cleaning pass failed:\n{broker.log()}"
        removed = m["records_removed_total"] > 0
        if (not removed and not cleaned_before) or m["dirty_bytes"] > 0 \
                or cleaned_files(broker, topic):
            last.clear()
            return None
        records, hw = read(broker.bootstrap, topic)
        assert hw == log.end, f"high watermark {hw}, produced {log.end}: offsets never change"
        log.check_consistent(records, "a read while waiting for the cleaner")
        if not removed and records != log.compacted():
            last.clear()
            return None
        snapshot = (records, m["passes_cleaned"], m["records_removed_total"])
        if last.get("snapshot") == snapshot and time.monotonic() - last["at"] >= 1.0:
            return records
        if last.get("snapshot") != snapshot:
            last.update(snapshot=snapshot, at=time.monotonic())
        return None

    return wait_until("the cleaner to finish compacting", settled, timeout=timeout, interval=0.3)


def check_compacted_exactly(records, log, what):
    log.check_consistent(records, what)
    want = log.compacted()
    assert len(records) == len(want), (
        f"{what}: {len(records)} records, want {len(want)} (one per key)")
    assert records == want, f"{what}: the compacted log differs from the latest per key"
    data_keys = [k for _, k, _ in records if k.startswith("k")]
    assert len(data_keys) == len(set(data_keys)) == DATA_KEYS


def report(broker, log, records, what):
    m = cleaner_metrics(broker)
    tombstones = sum(1 for _, k, v in records if k.startswith("k") and v is None)
    data_after = sum(1 for _, k, _ in records if k.startswith("k"))
    print(f"\n[{what}] data records before cleaning: {DATA_RECORDS}, after: {data_after} "
          f"({tombstones} tombstones); all records before (high watermark): {log.end}, "
          f"after: {len(records)}; cleaner: {m['passes_cleaned']:.0f} passes, "
          f"{m['records_removed_total']:.0f} records removed, "
          f"{m['bytes_read_total']:.0f} bytes read, {m['bytes_written_total']:.0f} written")


@pytest.mark.parametrize("codec", CODECS)
def test_compaction_inside_compressed_batches_confluent(broker_factory, name, codec):
    broker = broker_factory(*FAST_CLEANER)
    create_topic(broker.bootstrap, name, 1, COMPACTED)
    log = produce_workload(broker, name, produce_confluent, codec, seed=f"confluent-{codec}")
    records = wait_compacted(broker, name, log, read_confluent)
    check_compacted_exactly(records, log, f"confluent-kafka {codec}")
    report(broker, log, records, f"confluent-kafka {codec}")


@pytest.mark.parametrize("codec", CODECS)
def test_compaction_inside_compressed_batches_kafka_python(broker_factory, name, codec):
    broker = broker_factory(*FAST_CLEANER)
    create_topic(broker.bootstrap, name, 1, COMPACTED)
    log = produce_workload(broker, name, produce_kafka_python, codec,
                           seed=f"kafka-python-{codec}")
    records = wait_compacted(broker, name, log, read_kafka_python)
    check_compacted_exactly(records, log, f"kafka-python {codec}")
    # The same log read by the other client.
    assert read_confluent(broker.bootstrap, name) == (records, log.end)
    report(broker, log, records, f"kafka-python {codec}")


def produce_uncleaned(broker_factory, topic, codec):
    """A broker with the cleaner off and the workload in `topic`, all of it still there."""
    broker = broker_factory("--log-cleaner-enable", "false")
    create_topic(broker.bootstrap, topic, 1, COMPACTED)
    log = produce_workload(broker, topic, produce_confluent, codec, seed=f"uncleaned-{codec}")
    records, hw = read_confluent(broker.bootstrap, topic)
    assert hw == log.end
    assert records == [(o, *log.at[o]) for o in range(log.end)], "nothing is cleaned when disabled"
    assert cleaner_metrics(broker)["passes_cleaned"] == 0
    return broker, log


def test_consumers_read_a_consistent_log_while_the_cleaner_swaps_segments(broker_factory, name):
    broker, log = produce_uncleaned(broker_factory, name, "lz4")
    broker.extra_args = SLOW_CLEANER
    broker.restart()
    # The metrics start from zero with the broker; the first read begins before the first
    # pass ends (it takes seconds), the last one after: a pass completed during the reads.
    reads = []  # (records removed when the read began, records read)
    backlog_during_pass = []  # the backlog gauge, sampled while a .cleaned file was written

    def read_until_one_began_after_a_pass():
        if cleaned_files(broker, name):
            backlog_during_pass.append(cleaner_metrics(broker)["dirty_bytes"])
        removed_before = cleaner_metrics(broker)["records_removed_total"]
        records, hw = read_confluent(broker.bootstrap, name)
        assert hw == log.end
        log.check_consistent(records, f"read {len(reads) + 1} during cleaning")
        reads.append((removed_before, len(records)))
        if cleaned_files(broker, name):
            backlog_during_pass.append(cleaner_metrics(broker)["dirty_bytes"])
        assert cleaner_metrics(broker)["passes_failed"] == 0, broker.log()
        return removed_before > 0

    wait_until("a read that begins after a cleaning pass completed",
               read_until_one_began_after_a_pass, timeout=60, interval=0)
    m = cleaner_metrics(broker)
    print(f"\n[reads during cleaning] {len(reads)} reads, records per read: "
          f"{[n for _, n in reads]}; {m['passes_cleaned']:.0f} passes, "
          f"{m['records_removed_total']:.0f} records removed")
    assert m["passes_cleaned"] >= 1
    assert reads[0] == (0, log.end), "the first read began before any pass and saw every record"
    assert reads[-1][1] < log.end, "the last read began after a pass and saw fewer records"
    assert backlog_during_pass and max(backlog_during_pass) > 0, \
        f"the backlog gauge during the pass: {backlog_during_pass}"


def test_kill_9_during_cleaning_loses_nothing(broker_factory, name):
    broker, log = produce_uncleaned(broker_factory, name, "zstd")
    dir_ = partition_dir(broker, name)
    inactive = len(segment_bases(broker, name)) - 1
    assert inactive >= 4, f"only {inactive} inactive segments"
    broker.extra_args = SLOW_CLEANER
    broker.restart()
    # Each segment is about segment.bytes, so each is its own cleaned group and a pass writes
    # `inactive` .cleaned files one after another: kill with the first, a middle and the last
    # one being written.
    for n in (1, inactive // 2 + 1, inactive):
        def writing_file_n():
            files = cleaned_files(broker, name)
            return files if len(files) >= n else None

        files = wait_until(f"a pass writing its .cleaned file number {n}", writing_file_n,
                           timeout=30, interval=0.02)
        broker.kill()
        print(f"\n[kill -9] with {files} in {dir_.name}")
        broker.start()
        assert cleaned_files(broker, name) == [], "recovery left the killed pass's files"
        records, hw = read_confluent(broker.bootstrap, name)
        assert hw == log.end, f"high watermark {hw} after kill -9, was {log.end}"
        log.check_consistent(records, f"after kill -9 with {len(files)} .cleaned files")
        print(f"[kill -9] restarted: {len(records)} records readable, high watermark {hw}")
    broker.extra_args = FAST_CLEANER
    broker.restart()
    # On a slow machine the pass begun after the last restart may have cleaned to the end
    # before this restart: then this run has nothing left to remove.
    records = wait_compacted(broker, name, log, read_confluent, cleaned_before=True)
    check_compacted_exactly(records, log, "after the kills, cleaned to the end")
    report(broker, log, records, "kill -9 during cleaning, zstd")
