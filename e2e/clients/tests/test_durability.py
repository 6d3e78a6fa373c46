"""Durability across restarts: a clean SIGTERM stop, and SIGKILL while a producer runs.

The SIGKILL test uses the default topic config (no flush.messages): killing the process
doesn't lose what it wrote to the page cache, so every acknowledged record must survive.
Only a machine crash could lose unflushed writes, which a process test can't show."""

import signal
import threading
import time

from confluent_kafka import KafkaException

from helpers import consume_partitions, create_topic, produce_all, producer, wait_until

PARTITIONS = 2


def test_sigterm_restart_keeps_acknowledged_records(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    prod = producer(broker.bootstrap, **{"linger.ms": 5})
    messages = [{"key": f"k{i}".encode(), "value": f"value-{i}".encode() * 10,
                 "partition": i % PARTITIONS} for i in range(300)]
    delivered = produce_all(prod, topic, messages)

    assert broker.stop(signal.SIGTERM) == 0
    assert "broker stopped cleanly" in broker.log()
    broker.start()
    assert "clean_shutdown=true" in broker.log(), broker.log()

    got = consume_partitions(broker.bootstrap, topic, range(PARTITIONS))
    for p in range(PARTITIONS):
        expected = [(d.offset(), m["key"], m["value"]) for d, m in zip(delivered, messages)
                    if m["partition"] == p]
        assert [(r.offset(), r.key(), r.value()) for r in got[p]] == expected

    # The log continues where it was: the next record gets the next offset.
    [after] = produce_all(prod, topic, [{"value": b"after-restart", "partition": 0}])
    assert after.offset() == 150


def test_sigkill_mid_produce_keeps_acknowledged_records(broker, topic):
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    acked = {}  # (partition, offset) -> value, from delivery reports only
    acked_lock = threading.Lock()
    stop = threading.Event()
    sent = [0]
    errors = []

    def on_delivery(err, msg):
        if err is None:
            with acked_lock:
                acked[(msg.partition(), msg.offset())] = msg.value()

    def run():
        prod = producer(broker.bootstrap, **{"linger.ms": 2, "message.timeout.ms": 3000,
                                             "retries": 0})
        i = 0
        try:
            while not stop.is_set():
                try:
                    prod.produce(topic, value=f"record-{i}".encode() * 5,
                                 partition=i % PARTITIONS, on_delivery=on_delivery)
                    i += 1
                except BufferError:
                    pass
                prod.poll(0.001)
            # Give outstanding requests their outcome (failures once the broker is gone).
            prod.flush(10)
        except KafkaException as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            sent[0] = i

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(acked) >= 2000, 30, "2000 acknowledged records")
        assert broker.kill() == -signal.SIGKILL
        # Keep producing a little against the dead broker, then stop.
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "producer thread did not stop"
    assert not errors, errors

    with acked_lock:
        snapshot = dict(acked)
    assert len(snapshot) >= 2000

    broker.start()
    # No clean shutdown marker: the broker recovers the logs.
    assert "clean_shutdown=false" in broker.log(), broker.log()

    got = consume_partitions(broker.bootstrap, topic, range(PARTITIONS), timeout=60)
    for p in range(PARTITIONS):
        offsets = [r.offset() for r in got[p]]
        assert offsets == list(range(len(offsets))), f"partition {p}: offsets not dense"
    stored = {(p, r.offset()): r.value() for p in range(PARTITIONS) for r in got[p]}
    print(f"acknowledged {len(snapshot)}, sent {sent[0]}, stored after recovery {len(stored)}")
    missing = [k for k in snapshot if k not in stored]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
    wrong = [k for k, v in snapshot.items() if stored[k] != v]
    assert not wrong, f"{len(wrong)} acknowledged records changed, e.g. {sorted(wrong)[:5]}"

    # New appends go after everything recovered.
    prod = producer(broker.bootstrap)
    [after] = produce_all(prod, topic, [{"value": b"after-crash", "partition": 0}])
    assert after.offset() == len(got[0])
