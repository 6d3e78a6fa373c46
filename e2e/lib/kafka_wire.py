"""A minimal Kafka wire client that talks to exactly one broker, for the e2e suites.

Real clients (librdkafka, kafka-python) route a request to whichever broker they think is
right (the controller, the least loaded node), so "ask node 2" is not something they can
say. These helpers open one TCP connection to the given address, send one request and
decode its response, so a test can ask every node of a cluster the same question and
compare the answers. Only the APIs and versions the cluster suite needs are here:

    metadata(addr, topics=None)             Metadata v12 (brokers, controller, topic ids)
    describe_cluster(addr)                  DescribeCluster v0
    create_topics(addr, topics, ...)        CreateTopics v4 (assignments, configs)
    fetch_error(addr, topic, partition)     Fetch v4, the partition's error code only
    api_versions(addr)                      ApiVersions v0
    Connection(addr, client_id)             one kept connection: metadata_throttle() sends
                                            Metadata v3 for no topics, returns throttle_time_ms

Encoding follows the Kafka protocol guide: big-endian integers, (compact) strings and
arrays, unsigned varints, and empty tagged-field sections in flexible versions.
"""

import socket
import struct
import uuid
from dataclasses import dataclass, field

FETCH, METADATA, CREATE_TOPICS, API_VERSIONS, DESCRIBE_CLUSTER = 1, 3, 19, 18, 60
NOT_LEADER_OR_FOLLOWER = 6
CLIENT_ID = "ironlog-e2e"
DEFAULT_TIMEOUT_S = 5.0


class WireError(Exception):
    """The broker could not be reached or answered with bytes that don't decode."""


# ---- encoding -----------------------------------------------------------------------------

def _uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _i8(n):
    return struct.pack(">b", n)


def _i16(n):
    return struct.pack(">h", n)


def _i32(n):
    return struct.pack(">i", n)


def _string(s):
    if s is None:
        return _i16(-1)
    b = s.encode()
    return _i16(len(b)) + b


def _compact_string(s):
    if s is None:
        return _uvarint(0)
    b = s.encode()
    return _uvarint(len(b) + 1) + b


def _array(items, enc):
    if items is None:
        return _i32(-1)
    return _i32(len(items)) + b"".join(enc(i) for i in items)


def _compact_array(items, enc):
    if items is None:
        return _uvarint(0)
    return _uvarint(len(items) + 1) + b"".join(enc(i) for i in items)


NO_TAGS = _uvarint(0)


# ---- decoding -----------------------------------------------------------------------------

class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def _take(self, n):
        if self.pos + n > len(self.data):
            raise WireError(f"response truncated at byte {self.pos} (wanted {n} more)")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self):
        return struct.unpack(">b", self._take(1))[0]

    def i16(self):
        return struct.unpack(">h", self._take(2))[0]

    def i32(self):
        return struct.unpack(">i", self._take(4))[0]

    def boolean(self):
        return self.i8() != 0

    def uvarint(self):
        shift = result = 0
        while True:
            b = self._take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def uuid(self):
        return str(uuid.UUID(bytes=bytes(self._take(16))))

    def string(self):
        n = self.i16()
        return None if n < 0 else self._take(n).decode()

    def compact_string(self):
        n = self.uvarint()
        return None if n == 0 else self._take(n - 1).decode()

    def array(self, dec):
        n = self.i32()
        return None if n < 0 else [dec(self) for _ in range(n)]

    def compact_array(self, dec):
        n = self.uvarint()
        return None if n == 0 else [dec(self) for _ in range(n - 1)]

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self._take(self.uvarint())


# ---- one request, one response ------------------------------------------------------------

_correlation = 0


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise WireError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def request(addr, api_key, version, body, flexible, timeout=DEFAULT_TIMEOUT_S):
    """Sends one request to `addr` ("host:port") and returns a reader over the response body
    (after the response header)."""
    global _correlation
    _correlation += 1
    correlation = _correlation
    header = struct.pack(">hhi", api_key, version, correlation) + _string(CLIENT_ID)
    if flexible:
        header += NO_TAGS
    frame = header + body
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(_i32(len(frame)) + frame)
            size = struct.unpack(">i", _recv_exact(sock, 4))[0]
            data = _recv_exact(sock, size)
    except OSError as e:
        raise WireError(f"{addr}: {e}") from e
    r = _Reader(data)
    got = r.i32()
    if got != correlation:
        raise WireError(f"{addr}: correlation id {got}, expected {correlation}")
    # ApiVersions keeps response header v0 even in its flexible versions.
    if flexible and api_key != API_VERSIONS:
        r.tags()
    return r


class Connection:
    """One connection kept open for many requests, under its own client id (a quota throttle
    mutes a connection: a request sent on a new one would not wait)."""

    def __init__(self, addr, client_id, timeout=30.0):
        host, port = addr.rsplit(":", 1)
        self.addr, self.client_id = addr, client_id
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.correlation = 0

    def close(self):
        self.sock.close()

    def request(self, api_key, version, body):
        """A non-flexible request; returns a reader over the response body."""
        self.correlation += 1
        frame = struct.pack(">hhi", api_key, version, self.correlation) \
            + _string(self.client_id) + body
        self.sock.sendall(_i32(len(frame)) + frame)
        size = struct.unpack(">i", _recv_exact(self.sock, 4))[0]
        r = _Reader(_recv_exact(self.sock, size))
        got = r.i32()
        if got != self.correlation:
            raise WireError(f"{self.addr}: correlation id {got}, expected {self.correlation}")
        return r

    def metadata_throttle(self):
        """Metadata v3 for no topics; returns the response's throttle_time_ms."""
        return self.request(METADATA, 3, _i32(0)).i32()


# ---- Metadata v12 -------------------------------------------------------------------------

@dataclass
class Partition:
    partition: int
    error_code: int
    leader: int
    leader_epoch: int
    replicas: list
    isr: list
    offline: list


@dataclass
class Topic:
    name: str
    topic_id: str
    error_code: int
    is_internal: bool
    partitions: dict = field(default_factory=dict)  # partition index -> Partition

    def assignment(self):
        """{partition: (leader, replicas)}: what every node must agree on."""
        return {p.partition: (p.leader, tuple(p.replicas)) for p in self.partitions.values()}

    def leaders(self):
        return {i: p.leader for i, p in self.partitions.items()}


@dataclass
class Metadata:
    brokers: dict  # node id -> (host, port, rack)
    cluster_id: str
    controller_id: int
    topics: dict  # name -> Topic


def metadata(addr, topics=None, timeout=DEFAULT_TIMEOUT_S):
    """Metadata v12 from `addr`: all topics (`topics=None`) or the named ones. Never asks for
    auto-creation."""
    body = (_compact_array(topics, lambda t: b"\0" * 16 + _compact_string(t) + NO_TAGS)
            + _i8(0)      # allow_auto_topic_creation
            + _i8(0)      # include_topic_authorized_operations
            + NO_TAGS)
    r = request(addr, METADATA, 12, body, flexible=True, timeout=timeout)
    r.i32()  # throttle_time_ms

    def broker(r):
        node, host, port, rack = r.i32(), r.compact_string(), r.i32(), r.compact_string()
        r.tags()
        return node, (host, port, rack)

    def partition(r):
        error, index, leader, epoch = r.i16(), r.i32(), r.i32(), r.i32()
        replicas = r.compact_array(lambda r: r.i32()) or []
        isr = r.compact_array(lambda r: r.i32()) or []
        offline = r.compact_array(lambda r: r.i32()) or []
        r.tags()
        return Partition(index, error, leader, epoch, replicas, isr, offline)

    def topic(r):
        error, name, topic_id, internal = r.i16(), r.compact_string(), r.uuid(), r.boolean()
        parts = r.compact_array(partition) or []
        r.i32()  # topic_authorized_operations
        r.tags()
        return Topic(name, topic_id, error, internal, {p.partition: p for p in parts})

    brokers = dict(r.compact_array(broker) or [])
    cluster_id = r.compact_string()
    controller = r.i32()
    topic_list = r.compact_array(topic) or []
    r.tags()
    return Metadata(brokers, cluster_id, controller, {t.name: t for t in topic_list})


# ---- DescribeCluster v0 -------------------------------------------------------------------

@dataclass
class Cluster:
    error_code: int
    error_message: str
    cluster_id: str
    controller_id: int
    brokers: dict  # node id -> (host, port, rack)


def describe_cluster(addr, timeout=DEFAULT_TIMEOUT_S):
    body = _i8(0) + NO_TAGS  # include_cluster_authorized_operations
    r = request(addr, DESCRIBE_CLUSTER, 0, body, flexible=True, timeout=timeout)
    r.i32()  # throttle_time_ms
    error, message = r.i16(), r.compact_string()
    cluster_id, controller = r.compact_string(), r.i32()

    def broker(r):
        node, host, port, rack = r.i32(), r.compact_string(), r.i32(), r.compact_string()
        r.tags()
        return node, (host, port, rack)

    brokers = dict(r.compact_array(broker) or [])
    r.i32()  # cluster_authorized_operations
    r.tags()
    return Cluster(error, message, cluster_id, controller, brokers)


# ---- CreateTopics v4 ----------------------------------------------------------------------

def create_topics(addr, topics, timeout_ms=10_000, validate_only=False, timeout=None):
    """CreateTopics v4 sent to `addr`. `topics` is a list of dicts with `name` and any of
    `partitions` (default -1), `replication_factor` (default -1), `assignment`
    ({partition: [broker ids]}) and `configs` ({name: value}). Returns {name: (error code,
    error message)}."""
    def topic(t):
        assignment = sorted((t.get("assignment") or {}).items())
        return (_string(t["name"])
                + _i32(t.get("partitions", -1) if not assignment else -1)
                + _i16(t.get("replication_factor", -1) if not assignment else -1)
                + _array(assignment, lambda a: _i32(a[0]) + _array(a[1], _i32))
                + _array(sorted((t.get("configs") or {}).items()),
                         lambda c: _string(c[0]) + _string(c[1])))

    body = _array(topics, topic) + _i32(timeout_ms) + _i8(1 if validate_only else 0)
    r = request(addr, CREATE_TOPICS, 4, body, flexible=False,
                timeout=timeout or timeout_ms / 1000 + DEFAULT_TIMEOUT_S)
    r.i32()  # throttle_time_ms
    results = r.array(lambda r: (r.string(), r.i16(), r.string())) or []
    return {name: (code, message) for name, code, message in results}


# ---- Fetch v4 ----------------------------------------------------------------------------

def fetch_error(addr, topic, partition, offset=0, timeout=DEFAULT_TIMEOUT_S):
    """The error code `addr` answers a Fetch v4 of `topic`/`partition` at `offset` with
    (0 from the leader, NOT_LEADER_OR_FOLLOWER from any other broker). Doesn't wait for data."""
    body = (_i32(-1) + _i32(0) + _i32(1) + _i32(1 << 20) + _i8(0)  # replica, wait, min, max, isolation
            + _array([topic], lambda t: _string(t) + _array(
                [partition], lambda p: _i32(p) + struct.pack(">q", offset) + _i32(1 << 20))))
    r = request(addr, FETCH, 4, body, flexible=False, timeout=timeout)
    r.i32()  # throttle_time_ms

    def part(r):
        index, error = r.i32(), r.i16()
        r._take(16)  # high_watermark, last_stable_offset
        r.array(lambda r: r._take(16))  # aborted_transactions
        n = r.i32()
        if n > 0:
            r._take(n)
        return index, error

    topics = r.array(lambda r: (r.string(), r.array(part))) or []
    for name, parts in topics:
        for index, error in parts or []:
            if name == topic and index == partition:
                return error
    raise WireError(f"{addr}: Fetch response has no {topic}-{partition}")


# ---- ApiVersions v0 -----------------------------------------------------------------------

def api_versions(addr, timeout=DEFAULT_TIMEOUT_S):
    """{api key: (min version, max version)} served by `addr`."""
    r = request(addr, API_VERSIONS, 0, b"", flexible=False, timeout=timeout)
    error = r.i16()
    if error:
        raise WireError(f"{addr}: ApiVersions error {error}")
    return {k: (lo, hi) for k, lo, hi in (r.array(lambda r: (r.i16(), r.i16(), r.i16())) or [])}


# ---- AlterClientQuotas v0 / DescribeClientQuotas v0 ---------------------------------------

ALTER_CLIENT_QUOTAS, DESCRIBE_CLIENT_QUOTAS = 49, 48


def alter_client_quotas(addr, entries, timeout=DEFAULT_TIMEOUT_S):
    """`entries`: [(entity, ops)] with entity [(type, name or None)] and ops
    [(key, value or None to remove)]. Returns [(error_code, error_message)] per entry."""
    def entity(e):
        return _array(e, lambda p: _string(p[0]) + _string(p[1]))

    def op(o):
        key, value = o
        return _string(key) + struct.pack(">d", value or 0.0) + _i8(1 if value is None else 0)

    body = _array(entries, lambda e: entity(e[0]) + _array(e[1], op)) + _i8(0)
    r = request(addr, ALTER_CLIENT_QUOTAS, 0, body, flexible=False, timeout=timeout)
    r.i32()  # throttle_time_ms

    def entry(r):
        code, message = r.i16(), r.string()
        r.array(lambda r: (r.string(), r.string()))
        return code, message

    return r.array(entry)


def describe_client_quotas(addr, components, strict=False, timeout=DEFAULT_TIMEOUT_S):
    """`components`: [(type, match_type, name)] (match 0 exact, 1 default, 2 any). Returns
    (error_code, {((type, name), ...): {key: value}})."""
    body = _array(components, lambda c: _string(c[0]) + _i8(c[1]) + _string(c[2]))
    body += _i8(1 if strict else 0)
    r = request(addr, DESCRIBE_CLIENT_QUOTAS, 0, body, flexible=False, timeout=timeout)
    r.i32()
    code, _message = r.i16(), r.string()

    def entry(r):
        entity = tuple(r.array(lambda r: (r.string(), r.string())))
        values = dict(r.array(lambda r: (r.string(), struct.unpack(">d", r._take(8))[0])))
        return entity, values

    entries = r.array(entry) or []
    return code, dict(entries)
