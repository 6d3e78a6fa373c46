"""Client quotas: AlterClientQuotas / DescribeClientQuotas on the wire; a producer held to
its `producer_byte_rate` (within 10% over a steady 18 s) while a producer with another
client id, without a quota, runs at full speed beside it; a client sending requests back to
back held back by its `request_percentage` while another is not."""

import os
import threading
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

import kafka_wire

QUOTA = 1_048_576  # bytes per second
RECORD = 1024
WARMUP_S = 12  # the 11 s window fills: a new client's first burst is allowed
MEASURE_S = 18


def test_quotas_are_stored_and_described(broker):
    addr = broker.bootstrap
    results = kafka_wire.alter_client_quotas(addr, [
        ([("client-id", "slow")], [("producer_byte_rate", float(QUOTA))]),
        ([("user", None)], [("consumer_byte_rate", 2e6)]),
        ([("client-id", "bad")], [("no_such_quota", 1.0)]),
    ])
    assert [code for code, _ in results] == [0, 0, 42], results
    assert "no_such_quota" in results[2][1]
    code, entries = kafka_wire.describe_client_quotas(addr, [("client-id", 2, None)])
    assert code == 0
    assert entries == {(("client-id", "slow"),): {"producer_byte_rate": float(QUOTA)}}
    code, entries = kafka_wire.describe_client_quotas(addr, [("user", 1, None)])
    assert entries == {(("user", None),): {"consumer_byte_rate": 2e6}}
    # Removed, it is gone.
    kafka_wire.alter_client_quotas(addr, [([("user", None)], [("consumer_byte_rate", None)])])
    code, entries = kafka_wire.describe_client_quotas(addr, [("user", 1, None)])
    assert entries == {}


def run_producer(bootstrap, client_id, topic, stop, deliveries, throttles):
    """Produces random 1 KiB records as fast as the broker lets it until `stop`."""
    p = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "acks": "1",
                  "linger.ms": 5, "queue.buffering.max.kbytes": 4096,
                  "throttle_cb": lambda event: throttles.append(event.throttle_time)})
    payload = os.urandom(RECORD * 64)

    def delivered(err, msg):
        if err is None:
            deliveries.append((time.monotonic(), len(msg.value())))

    i = 0
    while not stop.is_set():
        offset = (i * 97) % (len(payload) - RECORD)
        try:
            p.produce(topic, payload[offset:offset + RECORD], on_delivery=delivered)
            i += 1
        except BufferError:
            p.poll(0.01)
        p.poll(0)
    p.flush(30)


def rate(deliveries, start, end):
    return sum(n for t, n in deliveries if start <= t < end) / (end - start)


def test_a_throttled_producer_keeps_to_its_quota_and_another_is_unaffected(broker, topic,
                                                                           measure):
    addr = broker.bootstrap
    admin = AdminClient({"bootstrap.servers": addr})
    for future in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        future.result(timeout=30)
    results = kafka_wire.alter_client_quotas(
        addr, [([("client-id", "slow")], [("producer_byte_rate", float(QUOTA))])])
    assert results == [(0, None)], results

    stop = threading.Event()
    slow, fast, slow_throttles, fast_throttles = [], [], [], []
    threads = [
        threading.Thread(target=run_producer, args=(addr, "slow", topic, stop, slow,
                                                    slow_throttles)),
        threading.Thread(target=run_producer, args=(addr, "fast", topic, stop, fast,
                                                    fast_throttles)),
    ]
    start = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(WARMUP_S + MEASURE_S)
    stop.set()
    for t in threads:
        t.join(60)
    window = (start + WARMUP_S, start + WARMUP_S + MEASURE_S)
    slow_rate, fast_rate = rate(slow, *window), rate(fast, *window)
    measure("quota_limit", QUOTA / 1e3, "kB/s")
    measure("quota_throttled_producer_rate", slow_rate / 1e3, "kB/s (18 s steady state)")
    measure("quota_throttled_off_by", 100 * (slow_rate - QUOTA) / QUOTA, "%")
    measure("quota_unthrottled_producer_rate", fast_rate / 1e6, "MB/s")
    assert abs(slow_rate - QUOTA) / QUOTA <= 0.10, (slow_rate, QUOTA)
    assert slow_throttles and max(slow_throttles) > 0, "the slow producer was never told"
    assert fast_throttles == [] or max(fast_throttles) == 0, fast_throttles
    assert fast_rate > 2 * QUOTA, fast_rate


def send_metadata_until(addr, client_id, stop, answers):
    """Metadata requests back to back on one connection until `stop`; appends
    (time answered, throttle_time_ms) per answer."""
    conn = kafka_wire.Connection(addr, client_id)
    try:
        while not stop.is_set():
            throttle = conn.metadata_throttle()
            answers.append((time.monotonic(), throttle))
    finally:
        conn.close()


def test_request_percentage_holds_back_a_busy_client_and_not_another(broker, measure):
    addr = broker.bootstrap
    # 0.2% of one broker thread: 2 ms of handling a second, a few hundred Metadata requests
    # for no topics (the free client sends thousands).
    results = kafka_wire.alter_client_quotas(
        addr, [([("client-id", "busy")], [("request_percentage", 0.2)])])
    assert results == [(0, None)], results
    stop = threading.Event()
    busy, free = [], []
    threads = [threading.Thread(target=send_metadata_until, args=(addr, cid, stop, answers))
               for cid, answers in (("busy", busy), ("free", free))]
    start = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(WARMUP_S + 8)
    stop.set()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a connection stayed muted"
    window = (start + WARMUP_S, start + WARMUP_S + 8)

    def per_second(answers):
        return sum(1 for t, _ in answers if window[0] <= t < window[1]) / (window[1] - window[0])

    busy_rate, free_rate = per_second(busy), per_second(free)
    measure("request_quota_busy_client_rate", busy_rate, "requests/s (request_percentage 0.2)")
    measure("request_quota_free_client_rate", free_rate, "requests/s (no quota)")
    throttled = [ms for _, ms in busy if ms > 0]
    assert throttled, f"the busy client was never told it is throttled ({len(busy)} answers)"
    assert all(ms == 0 for _, ms in free), [ms for _, ms in free if ms][:5]
    assert free_rate > 10 * busy_rate, (busy_rate, free_rate)
    # Removed, the client goes at full speed again.
    kafka_wire.alter_client_quotas(addr, [([("client-id", "busy")],
                                           [("request_percentage", None)])])
