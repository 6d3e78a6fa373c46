"""Client-side helpers shared by the tests: topic creation, producing with delivery reports,
reading partitions back from the beginning without a consumer group, metrics parsing."""

import logging
import re
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from records import deliver

TIMEOUT_S = 20.0

# librdkafka's own log lines go through Python logging: pytest shows them with a failing
# test's report instead of librdkafka printing to stderr (also after the run, when clients
# of stopped brokers are garbage collected). The NullHandler keeps Python's last-resort
# handler from printing them; records still propagate to pytest's capture.
RDKAFKA_LOGGER = logging.getLogger("librdkafka")
RDKAFKA_LOGGER.addHandler(logging.NullHandler())


def admin_client(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "logger": RDKAFKA_LOGGER})


def create_topic(bootstrap, name, partitions=1, config=None):
    admin = admin_client(bootstrap)
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=10)
    futures[name].result(timeout=TIMEOUT_S)
    return name


def producer(bootstrap, **conf):
    settings = {"bootstrap.servers": bootstrap, "acks": "all", "logger": RDKAFKA_LOGGER}
    settings.update({k.replace("_", "."): v for k, v in conf.items()})
    return Producer(settings)


def produce_all(prod, topic, messages):
    """Produces `messages` (dicts of Producer.produce kwargs) and waits for every delivery
    report. Returns the delivered messages (confluent Message) in produce order; fails on
    any delivery error."""
    return deliver(prod, topic, messages)


def consumer(bootstrap, **conf):
    # Consumer groups aren't served yet: a group.id is mandatory for confluent-kafka, but
    # nothing subscribes or commits, so no group coordinator is needed.
    settings = {
        "bootstrap.servers": bootstrap,
        "group.id": "e2e-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "logger": RDKAFKA_LOGGER,
    }
    settings.update(conf)
    return Consumer(settings)


def consume_partitions(bootstrap, topic, partitions, offset=OFFSET_BEGINNING, timeout=TIMEOUT_S,
                       **conf):
    """Reads `partitions` of `topic` from `offset` until every partition reports end of
    partition. Returns {partition: [Message, ...]} in the order received."""
    c = consumer(bootstrap, **conf)
    try:
        c.assign([TopicPartition(topic, p, offset) for p in partitions])
        out = {p: [] for p in partitions}
        at_end = set()
        deadline = time.monotonic() + timeout
        while at_end != set(partitions):
            assert time.monotonic() < deadline, (
                f"consuming {topic}: partitions {set(partitions) - at_end} not at end after "
                f"{timeout}s; got {[(p, len(v)) for p, v in out.items()]}")
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                    continue
                raise AssertionError(f"consume error: {msg.error()}")
            out[msg.partition()].append(msg)
            at_end.discard(msg.partition())
        return out
    finally:
        c.close()


def watermarks(bootstrap, topic, partition=0):
    c = consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    finally:
        c.close()


def wait_until(predicate, timeout, what, interval=0.1):
    """Polls `predicate` until it returns a truthy value (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """[(name, {label: value}, float)] for every sample in Prometheus text format."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"unparsable metrics line: {line!r}"
        labels = dict(_LABEL.findall(m.group(3) or ""))
        samples.append((m.group(1), labels, float(m.group(4))))
    return samples


def metric(samples, name, **labels):
    """The value of the single sample `name` whose labels include `labels`, or None."""
    found = [v for n, ls, v in samples
             if n == name and all(ls.get(k) == str(v2) for k, v2 in labels.items())]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0] if found else None
