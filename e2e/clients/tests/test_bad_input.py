"""Malformed requests on raw sockets: the broker closes that one connection, keeps serving
every other client and stays up. ApiVersions with an unsupported version gets the KIP-511
fallback answer."""

import socket
import struct
import subprocess
import time

import pytest

MAX_REQUEST_BYTES = 1_048_576
API_VERSIONS = 18
UNSUPPORTED_VERSION = 35
DEADLINE_S = 10.0


def request(api_key, version, correlation_id, body=b"", flexible=False):
    client_id = b"e2e-raw"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    if flexible:
        header += b"\x00"  # header v2: empty tagged fields
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def connect(broker):
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=DEADLINE_S)
    s.settimeout(DEADLINE_S)
    return s


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, f"connection closed after {len(data)} of {n} bytes"
        data += chunk
    return data


def recv_response(s):
    (size,) = struct.unpack(">i", recv_exactly(s, 4))
    return recv_exactly(s, size)


def parse_api_versions_v0(payload):
    correlation_id, error_code, count = struct.unpack(">ihi", payload[:10])
    apis = [struct.unpack(">hhh", payload[10 + 6 * i:16 + 6 * i]) for i in range(count)]
    assert len(payload) >= 10 + 6 * count
    return correlation_id, error_code, {key: (lo, hi) for key, lo, hi in apis}


def api_versions_ok(s, correlation_id):
    s.sendall(request(API_VERSIONS, 0, correlation_id))
    got_id, error, apis = parse_api_versions_v0(recv_response(s))
    assert (got_id, error) == (correlation_id, 0)
    assert API_VERSIONS in apis and 0 in apis  # ApiVersions and Produce
    return apis


def assert_closed_by_broker(s):
    """recv returns EOF (or a reset) before the deadline; no response bytes arrive."""
    deadline = time.monotonic() + DEADLINE_S
    received = b""
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return received
        except socket.timeout:
            break
        if not chunk:
            assert received == b"", f"broker answered before closing: {received[:64]!r}"
            return received
        received += chunk
    pytest.fail(f"connection still open after {DEADLINE_S}s (received {received[:64]!r})")


def assert_still_serving(broker, other):
    assert broker.alive(), "broker process died"
    # The connection opened before the bad one still works...
    api_versions_ok(other, 99)
    # ...and so do new clients.
    with connect(broker) as fresh:
        api_versions_ok(fresh, 100)
    out = subprocess.run(["kcat", "-b", broker.bootstrap, "-L", "-m", "10"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert f"broker 1 at {broker.bootstrap}" in out.stdout


BAD_FRAMES = {
    # Declared size one past --socket-request-max-bytes: refused on the size alone.
    "oversized": struct.pack(">i", MAX_REQUEST_BYTES + 1) + b"\x00" * 1024,
    "negative-size": struct.pack(">i", -5) + b"\x00" * 16,
    # A well-sized frame of junk (its api key reads as -8531).
    "garbage": struct.pack(">i", 32) + b"\xde\xad\xbe\xef" * 8,
    "unknown-api-key": request(9999, 0, 5),
    # Metadata v1 claims 5 topics and ends: the body is shorter than its own fields.
    "truncated-metadata": request(3, 1, 6, body=struct.pack(">i", 5)),
    # Produce v3 cut off after acks (no timeout, no topics).
    "truncated-produce": request(0, 3, 7, body=struct.pack(">hh", -1, -1)),
    # A header that stops inside client_id.
    "truncated-header": struct.pack(">i", 10) + struct.pack(">hhih", 18, 0, 8, 40),
}


@pytest.mark.parametrize("name", list(BAD_FRAMES))
def test_bad_frame_closes_only_that_connection(broker_factory, name):
    broker = broker_factory("--socket-request-max-bytes", str(MAX_REQUEST_BYTES))
    with connect(broker) as other, connect(broker) as bad:
        api_versions_ok(other, 1)
        api_versions_ok(bad, 2)  # a healthy connection until the bad frame
        bad.sendall(BAD_FRAMES[name])
        assert_closed_by_broker(bad)
        assert_still_serving(broker, other)


def produce_v3(correlation_id, topic, records):
    name = topic.encode()
    body = struct.pack(">hhi", -1, 1, 5000)  # transactional_id null, acks=1, timeout
    body += struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iii", 1, 0, len(records)) + records
    return request(0, 3, correlation_id, body)


@pytest.mark.parametrize("over", [0, 1], ids=["at-limit", "one-over"])
def test_request_size_limit_is_inclusive(broker_factory, over):
    """A frame of exactly --socket-request-max-bytes is read and answered (its junk records
    get an error code, not a closed connection); one byte more closes the connection."""
    broker = broker_factory("--socket-request-max-bytes", str(MAX_REQUEST_BYTES))
    overhead = len(produce_v3(11, "limit-topic", b"")) - 4
    frame = produce_v3(11, "limit-topic", b"\x00" * (MAX_REQUEST_BYTES - overhead + over))
    assert len(frame) - 4 == MAX_REQUEST_BYTES + over
    with connect(broker) as other, connect(broker) as s:
        s.sendall(frame)
        if over:
            assert_closed_by_broker(s)
        else:
            response = recv_response(s)
            (correlation_id,) = struct.unpack(">i", response[:4])
            assert correlation_id == 11
        assert_still_serving(broker, other)


def test_api_versions_unsupported_version_falls_back_to_v0(broker):
    with connect(broker) as s:
        s.sendall(request(API_VERSIONS, 99, 4242, body=b"\x00", flexible=True))
        correlation_id, error, apis = parse_api_versions_v0(recv_response(s))
        assert correlation_id == 4242
        assert error == UNSUPPORTED_VERSION
        assert len(apis) > 5
        assert apis[API_VERSIONS][0] == 0 and apis[API_VERSIONS][1] >= 3
        # The connection stays usable: the client retries with a version we serve.
        api_versions_ok(s, 4243)
