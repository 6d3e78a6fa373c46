"""The `ironlog` toolbox against a hostile "broker" (issue 8): forged array counts and string
lengths, a truncated body, a wrong correlation id, a 256 MiB size prefix followed by silence,
a negative size, garbage. Every tool must print an error naming the bad response and exit
non-zero, without a panic (exit 101) or a signal, within its request timeout.

The broker is a small scripted fake in this file: a TCP listener on 127.0.0.1 that answers
ApiVersions (advertising the versions the client speaks) and Metadata properly, so a tool
gets as far as the request under test, and answers that request with hostile bytes. The same
cases, and a few hundred mutated valid responses, are run against the client library by
client/tests/hostile_broker.rs.
"""

import random
import socket
import struct
import subprocess
import threading
import time

import pytest

from broker import binary_path

REQUEST_TIMEOUT_MS = 2000
# The tool's whole run: connect, negotiate, and at most one request waiting for its timeout.
RUN_DEADLINE_S = 30.0
MAX_RESPONSE_BYTES = 256 * 1024 * 1024

API_FETCH, API_LIST_OFFSETS, API_METADATA = 1, 2, 3
API_FIND_COORDINATOR, API_LIST_GROUPS, API_API_VERSIONS = 10, 16, 18
API_DESCRIBE_CONFIGS = 32
API_NAMES = {API_FETCH: "Fetch", API_LIST_OFFSETS: "ListOffsets", API_METADATA: "Metadata",
             API_LIST_GROUPS: "ListGroups", API_DESCRIBE_CONFIGS: "DescribeConfigs"}

# The highest version the client (kafka-protocol 0.18) speaks for each API; the fake offers
# exactly these, so the client picks them. All are flexible versions (compact encodings,
# response header v1).
VERSIONS = {
    API_FETCH: 18, API_LIST_OFFSETS: 10, API_METADATA: 13, API_FIND_COORDINATOR: 6,
    API_LIST_GROUPS: 5, API_DESCRIBE_CONFIGS: 4,
}
# The fixed-size fields before each response's first array, at those versions.
BEFORE_FIRST_ARRAY = {
    API_METADATA: 4,          # throttle_time_ms; then brokers
    API_LIST_OFFSETS: 4,      # throttle_time_ms; then topics
    API_LIST_GROUPS: 6,       # throttle_time_ms, error_code; then groups
    API_DESCRIBE_CONFIGS: 4,  # throttle_time_ms; then results
    API_FETCH: 10,            # throttle_time_ms, error_code, session_id; then responses
}


# --- encoding -------------------------------------------------------------------------------

def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def uvarint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def compact_str(s):
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def compact_array(items):
    return uvarint(len(items) + 1) + b"".join(items)


NO_TAGS = uvarint(0)


def response_header(api_key, correlation_id):
    # ApiVersions always answers with header v0 (no tagged fields); every other API here is
    # at a flexible version, whose responses carry header v1.
    return i32(correlation_id) + (b"" if api_key == API_API_VERSIONS else NO_TAGS)


def api_versions_body(version, offered):
    if version >= 3:
        keys = [i16(k) + i16(lo) + i16(hi) + NO_TAGS for k, (lo, hi) in sorted(offered.items())]
        return i16(0) + compact_array(keys) + i32(0) + NO_TAGS
    keys = b"".join(i16(k) + i16(lo) + i16(hi) for k, (lo, hi) in sorted(offered.items()))
    return i16(0) + i32(len(offered)) + keys + (i32(0) if version >= 1 else b"")


def metadata_v13_body(port):
    """This fake as broker 0 and controller, and topic "t" with one partition it leads."""
    broker = i32(0) + compact_str("127.0.0.1") + i32(port) + compact_str(None) + NO_TAGS
    partition = (i16(0) + i32(0) + i32(0) + i32(0)  # error, index, leader, leader epoch
                 + compact_array([i32(0)]) + compact_array([i32(0)]) + compact_array([])
                 + NO_TAGS)
    topic = (i16(0) + compact_str("t") + bytes(16) + b"\x00" + compact_array([partition])
             + i32(-2147483648) + NO_TAGS)
    return (i32(0) + compact_array([broker]) + compact_str("fake-cluster") + i32(0)
            + compact_array([topic]) + i16(0) + NO_TAGS)


def find_coordinator_v6_body(port):
    coordinator = (compact_str("g") + i32(0) + compact_str("127.0.0.1") + i32(port) + i16(0)
                   + compact_str(None) + NO_TAGS)
    return i32(0) + compact_array([coordinator]) + NO_TAGS


# --- the fake broker ------------------------------------------------------------------------

class Request:
    def __init__(self, api_key, version, correlation_id, nth):
        self.api_key, self.version, self.correlation_id, self.nth = (
            api_key, version, correlation_id, nth)

    def __repr__(self):
        return f"{API_NAMES.get(self.api_key, self.api_key)}#{self.nth} v{self.version}"


class FakeBroker:
    """Answers each request with `script(fake, request)`: ("frame", header+body) gets a size
    prefix; ("raw", bytes) is written as is; ("hang", bytes) is written and then the
    connection stays silent; ("close", bytes) is written and the connection closed."""

    def __init__(self, script):
        self.script = script
        self.received = []
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.connections = []
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.stopped.set()
        self.listener.close()
        with self.lock:
            for c in self.connections:
                try:
                    c.close()
                except OSError:
                    pass

    def requests_of(self, api_key):
        with self.lock:
            return [r for r in self.received if r.api_key == api_key]

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _recv_exactly(self, conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _serve(self, conn):
        try:
            while True:
                size = self._recv_exactly(conn, 4)
                if size is None:
                    return
                (size,) = struct.unpack(">i", size)
                if not 8 <= size <= 16 * 1024 * 1024:
                    return
                frame = self._recv_exactly(conn, size)
                if frame is None:
                    return
                api_key, version, correlation_id = struct.unpack(">hhi", frame[:8])
                with self.lock:
                    nth = sum(1 for r in self.received if r.api_key == api_key)
                    request = Request(api_key, version, correlation_id, nth)
                    self.received.append(request)
                kind, data = self.script(self, request)
                if kind == "frame":
                    conn.sendall(i32(len(data)) + data)
                elif kind == "raw":
                    conn.sendall(data)
                elif kind == "hang":
                    conn.sendall(data)
                    while conn.recv(4096):
                        pass
                    return
                elif kind == "close":
                    conn.sendall(data)
                    return
                else:
                    raise AssertionError(f"unknown reply kind {kind!r}")
        except OSError:
            return
        finally:
            conn.close()


def healthy(fake, request, metadata_version=VERSIONS[API_METADATA]):
    """The well-formed answer to the requests every tool starts with; None for the rest."""
    if request.api_key == API_API_VERSIONS:
        offered = {k: (v, v) for k, v in VERSIONS.items()}
        offered[API_METADATA] = (metadata_version, metadata_version)
        offered[API_API_VERSIONS] = (0, 3)
        body = api_versions_body(request.version, offered)
    elif request.api_key == API_METADATA:
        body = metadata_v13_body(fake.port)
    elif request.api_key == API_FIND_COORDINATOR:
        body = find_coordinator_v6_body(fake.port)
    else:
        return None
    return ("frame", response_header(request.api_key, request.correlation_id) + body)


# --- hostile answers ------------------------------------------------------------------------

def header_of(request):
    return response_header(request.api_key, request.correlation_id)


def forged_compact_count(request):
    fixed = bytes(BEFORE_FIRST_ARRAY[request.api_key])
    return ("frame", header_of(request) + fixed + uvarint(0xFFFFFFFF))


def forged_i32_count(request):
    # Metadata v8 (offered for this case): throttle_time_ms, then the brokers array.
    return ("frame", i32(request.correlation_id) + i32(0) + i32(0x7FFFFFFF))


def forged_compact_string(request):
    # Metadata: throttle_time_ms, one broker, its node id, then a host of u32::MAX - 1 bytes.
    body = i32(0) + uvarint(2) + i32(0) + uvarint(0xFFFFFFFF) + b"abc"
    return ("frame", header_of(request) + body)


def truncated(request):
    fixed = bytes(BEFORE_FIRST_ARRAY[request.api_key])
    return ("frame", header_of(request) + fixed[:3])


def wrong_correlation_id(request):
    return ("frame", response_header(request.api_key, request.correlation_id + 1000)
            + bytes(BEFORE_FIRST_ARRAY[request.api_key]) + uvarint(1) + NO_TAGS)


def huge_size_then_silence(request):
    return ("hang", i32(MAX_RESPONSE_BYTES))


def negative_size(request):
    return ("close", i32(-1))


def garbage_frame(request):
    rng = random.Random(request.api_key * 1000 + request.nth)
    return ("frame", bytes(rng.randrange(256) for _ in range(512)))


def http_server(request):
    # Something that is not Kafka on the port: "HTTP" read as a size prefix.
    return ("close", b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


# (name, reply, metadata version to offer, what stderr must mention)
HOSTILE = [
    ("array-count-0x7fffffff", forged_i32_count, 8, "2147483647 elements of at least"),
    ("compact-array-count-u32-max", forged_compact_count, 13, "4294967294 elements of at least"),
    ("compact-string-length-u32-max", forged_compact_string, 13, "needs 4294967294 more bytes"),
    ("truncated-body", truncated, 13, "more bytes"),
    ("wrong-correlation-id", wrong_correlation_id, 13, "does not match request"),
    ("size-256MiB-then-silence", huge_size_then_silence, 13, "timed out"),
    ("negative-size", negative_size, 13, "implausible response size -1"),
    ("garbage-frame", garbage_frame, 13, "response header"),
    ("http-server", http_server, 13, "implausible response size 1213486160"),
]

# The tools, each with the request it sends after connecting (connecting is ApiVersions and
# one Metadata request).
TOOLS = {
    "topics-list": (["topics", "list"], API_METADATA),
    "topics-describe": (["topics", "describe"], API_DESCRIBE_CONFIGS),
    "consume": (["consume", "--topic", "t", "--partition", "0", "--offset", "0",
                 "--max-messages", "1", "--timeout-ms", "3000"], API_FETCH),
    "consume-from-beginning": (["consume", "--topic", "t", "--from-beginning",
                                "--max-messages", "1", "--timeout-ms", "3000"], API_LIST_OFFSETS),
    "groups-list": (["groups", "list"], API_LIST_GROUPS),
}


def run_tool(fake, args):
    cmd = [binary_path(), *args, "--bootstrap-server", fake.bootstrap,
           "--request-timeout-ms", str(REQUEST_TIMEOUT_MS)]
    started = time.monotonic()
    try:
        result = subprocess.run(cmd, capture_output=True, timeout=RUN_DEADLINE_S,
                                stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin",
                                                               "NO_COLOR": "1"})
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{' '.join(args)} still running after {RUN_DEADLINE_S}s "
                             f"(received {fake.received}): {e.stderr!r}") from None
    return result, time.monotonic() - started


def assert_clean_failure(result, elapsed, args, expect, fake, api_key):
    stderr = result.stderr.decode(errors="replace")
    what = f"ironlog {' '.join(args)}: exit {result.returncode}, stderr {stderr!r}"
    assert fake.requests_of(api_key), (
        f"the tool never sent {API_NAMES[api_key]} (received {fake.received}); {what}")
    assert result.returncode != 0, what
    assert result.returncode > 0, f"killed by signal {-result.returncode}: {what}"
    assert result.returncode != 101, f"panicked: {what}"
    assert "panicked" not in stderr and "RUST_BACKTRACE" not in stderr, what
    assert any(line.startswith("error: ") for line in stderr.splitlines()), what
    assert "response" in stderr or "broker" in stderr, what
    assert expect in stderr, f"expected {expect!r}; {what}"
    # At most two attempts wait out their timeout (Metadata asks the known broker, then the
    # bootstrap server; a fetch adds its wait): more means a retry loop or a hang.
    assert elapsed < 2 * REQUEST_TIMEOUT_MS / 1000 + 5, f"took {elapsed:.1f}s: {what}"


@pytest.fixture
def fake_broker():
    fakes = []

    def make(script):
        fake = FakeBroker(script)
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        fake.stop()


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("name,reply,metadata_version,expect", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_tool_fails_cleanly_on_hostile_bootstrap_metadata(fake_broker, tool, name, reply,
                                                          metadata_version, expect):
    """The first Metadata request, which every tool sends while connecting, is answered with
    hostile bytes."""
    args, _ = TOOLS[tool]

    def script(fake, request):
        if request.api_key == API_METADATA:
            return reply(request)
        return healthy(fake, request, metadata_version) or ("close", b"")

    fake = fake_broker(script)
    result, elapsed = run_tool(fake, args)
    assert_clean_failure(result, elapsed, args, expect, fake, API_METADATA)
    assert "no bootstrap server reachable" in result.stderr.decode(errors="replace")


# The cases that don't depend on a particular field layout, for the tool's own request.
LATER = [h for h in HOSTILE if h[0] not in ("array-count-0x7fffffff",
                                            "compact-string-length-u32-max")]


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("name,reply,metadata_version,expect", LATER, ids=[h[0] for h in LATER])
def test_tool_fails_cleanly_on_hostile_answer_to_its_own_request(fake_broker, tool, name, reply,
                                                                 metadata_version, expect):
    """The tool connects fine; the request it then sends (Metadata for `topics list`,
    DescribeConfigs for `topics describe`, Fetch or ListOffsets for `consume`, ListGroups for
    `groups list`) is answered with hostile bytes."""
    args, target = TOOLS[tool]

    def script(fake, request):
        bootstrap_metadata = request.api_key == API_METADATA and request.nth == 0
        if request.api_key == target and not bootstrap_metadata:
            return reply(request)
        return healthy(fake, request) or ("close", b"")

    fake = fake_broker(script)
    result, elapsed = run_tool(fake, args)
    hostile = [r for r in fake.requests_of(target) if not (target == API_METADATA and r.nth == 0)]
    assert hostile, f"the tool never sent {API_NAMES[target]} after connecting: {fake.received}"
    assert_clean_failure(result, elapsed, args, expect, fake, target)


def test_tools_work_against_the_healthy_fake(fake_broker):
    """The control: with no hostile answer, `topics list` and `groups list` succeed, so the
    failures above come from the hostile bytes, not from a broken fake."""
    def script(fake, request):
        if request.api_key == API_LIST_GROUPS:
            body = i32(0) + i16(0) + compact_array([]) + NO_TAGS
            return ("frame", header_of(request) + body)
        return healthy(fake, request) or ("close", b"")

    fake = fake_broker(script)
    result, _ = run_tool(fake, ["topics", "list"])
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout.decode().splitlines() == ["t"]
    # Connecting (ApiVersions, Metadata), then Metadata on a connection to broker 0.
    assert [r.api_key for r in fake.received] == [API_API_VERSIONS, API_METADATA,
                                                  API_API_VERSIONS, API_METADATA]

    result, _ = run_tool(fake, ["groups", "list"])
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout.decode() == ""
    assert len(fake.requests_of(API_LIST_GROUPS)) == 1
