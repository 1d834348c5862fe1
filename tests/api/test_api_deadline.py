"""Every attempt has a wall-clock deadline, even against a server that trickles bytes.

httpx timeouts bound each socket operation: a server sending one byte every 0.1 s
never trips a 0.3 s read timeout. The client's transport clamps every socket
operation to the attempt's deadline, so such a call ends anyway. Loopback only.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _reliability import CANARY_API_KEY
from support.api import canary_config as config

from reconciler.api.client import AmigoClient
from reconciler.api.errors import ConfigError, OutcomeUnknown, TransportError
from reconciler.api.retry import RetryPolicy
from reconciler.api.transport import (
    DEFAULT_LIMITS,
    DeadlineTransport,
    attempt_deadline,
    environment_proxy_mounts,
)

TIMEOUT = 0.3  # per socket operation; the trickle (a byte every 0.1 s) never trips it
DEADLINE = 1.0  # per attempt
TRICKLE_INTERVAL = 0.1
POLICY = RetryPolicy(max_attempts=2, base_delay=0.02, max_delay=0.05)


def worst_case_seconds(policy: RetryPolicy, deadline: float) -> float:
    """Every attempt runs to its deadline, every backoff to its ceiling."""
    backoffs = sum(
        min(policy.max_delay, policy.base_delay * 2.0 ** (n - 1))
        for n in range(1, policy.max_attempts)
    )
    return policy.max_attempts * deadline + backoffs


def _read_request(conn: socket.socket) -> bytes:
    """The request line and headers (and a Content-Length body); b'' if the peer left."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        body += chunk
    return head


def _answer(status: str, payload: Any) -> bytes:
    body = json.dumps(payload).encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


SIGN_IN_ANSWER = _answer("200 OK", {"id_token": "tok", "expires_at": "2999-01-01T00:00:00Z"})
EMPTY_PAGE = {"services": [], "has_more": False, "continuation_token": None}


class TrickleServer:
    """Answers sign-in at once; everything else as `mode` says.

    "headers": the status line and headers a byte at a time, forever.
    "body": headers at once, then a 100 kB body a byte at a time, forever.
    "finite:N": an empty services page whose body arrives a byte at a time, in N bytes'
    worth of time (the JSON is padded with spaces), then complete.
    "normal": an empty services page at once.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        self.requests: list[bytes] = []
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(timeout=5)
        for conn in self.connections:
            conn.close()

    def _accept(self) -> None:
        self.listener.settimeout(0.05)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket, data: bytes) -> bool:
        for index in range(len(data)):
            if self.stop.is_set():
                return False
            conn.sendall(data[index : index + 1])
            time.sleep(TRICKLE_INTERVAL)
        return True

    def _serve(self, conn: socket.socket) -> None:
        try:
            while not self.stop.is_set():
                head = _read_request(conn)
                if not head:
                    return
                self.requests.append(head.split(b"\r\n")[0])
                if b"/user/signin_with_api_key" in head:
                    conn.sendall(SIGN_IN_ANSWER)
                elif self.mode == "headers":
                    self._trickle(conn, b"HTTP/1.1 200 OK\r\nx-slow: " + b"a" * 100_000)
                    return
                elif self.mode == "body":
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
                    self._trickle(conn, b" " * 100_000)
                    return
                elif self.mode.startswith("finite:"):
                    size = int(self.mode.partition(":")[2])
                    body = json.dumps(EMPTY_PAGE).encode()
                    body = body + b" " * max(0, size - len(body))
                    conn.sendall(f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n\r\n".encode())
                    conn.sendall(body[: len(body) - size])
                    if not self._trickle(conn, body[len(body) - size :]):
                        return
                else:
                    conn.sendall(_answer("200 OK", EMPTY_PAGE))
        except OSError:  # the client gave up and closed: expected
            return


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[TrickleServer]:
    running = TrickleServer(request.param)
    try:
        yield running
    finally:
        running.close()


def client_for(server: TrickleServer, **extra: Any) -> AmigoClient:
    return AmigoClient(
        config(server.base_url, timeout=TIMEOUT, attempt_deadline=DEADLINE, **extra),
        retry_policy=POLICY,
    )


# --- the guarantee ----------------------------------------------------------------------


@pytest.mark.http
@pytest.mark.parametrize("server", ["headers", "body"], indirect=True)
def test_a_trickling_server_fails_a_get_within_attempts_times_deadline(
    server: TrickleServer,
) -> None:
    client = client_for(server)
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        client.list_services()
    elapsed = time.monotonic() - started
    client.close()
    bound = worst_case_seconds(POLICY, DEADLINE)
    assert elapsed < bound + 0.5, (elapsed, bound)
    # It was the deadline that ended each attempt, not the 0.3 s read timeout.
    assert elapsed >= POLICY.max_attempts * DEADLINE * 0.9, elapsed
    message = str(info.value)
    assert message.startswith("get-services failed")
    assert "timed out" in message and "1s attempt deadline" in message
    assert f"gave up after {POLICY.max_attempts} attempts" in message
    assert sum(b"GET " in line for line in server.requests) == POLICY.max_attempts
    assert CANARY_API_KEY not in message


@pytest.mark.http
@pytest.mark.parametrize("server", ["headers"], indirect=True)
def test_a_trickled_create_is_an_unknown_outcome_after_one_deadline(
    server: TrickleServer,
) -> None:
    client = client_for(server)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown) as info:
        client.create_service({"name": "S"}, service="S")
    elapsed = time.monotonic() - started
    client.close()
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + 0.5, elapsed
    message = str(info.value)
    assert message.startswith("create-service for service 'S': outcome unknown")
    assert "attempt deadline" in message and "look before re-sending" in message
    assert sum(b"POST /v1/org/service/" in line for line in server.requests) == 1  # not re-sent


@pytest.mark.http
@pytest.mark.parametrize("server", ["headers"], indirect=True)
def test_without_the_deadline_the_same_trickle_outlives_the_timeout(
    server: TrickleServer,
) -> None:
    """The control: plain httpx with the same 0.3 s timeout is still waiting after 1.2 s."""
    outcome: list[object] = []
    plain = httpx.Client(transport=httpx.HTTPTransport(), timeout=TIMEOUT)

    def call() -> None:
        try:
            outcome.append(plain.get(f"{server.base_url}/v1/org/service/"))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(timeout=1.2 * DEADLINE)
    still_waiting = thread.is_alive()
    server.close()  # ends the trickle, so the call ends too
    thread.join(timeout=5)
    plain.close()
    assert still_waiting, outcome


# --- normal calls are unaffected --------------------------------------------------------


@pytest.mark.http
@pytest.mark.parametrize("server", ["normal"], indirect=True)
def test_a_normal_call_is_unaffected(server: TrickleServer) -> None:
    client = client_for(server)
    for _ in range(3):
        assert client.list_services() == []
    assert client.retry_count == 0
    client.close()


@pytest.mark.http
@pytest.mark.parametrize("server", ["finite:6"], indirect=True)
def test_the_deadline_is_per_attempt_not_per_client(server: TrickleServer) -> None:
    """Each 0.6 s answer fits its own 1 s deadline, though together they take longer."""
    client = client_for(server)
    started = time.monotonic()
    for _ in range(2):
        assert client.list_services() == []
    elapsed = time.monotonic() - started
    client.close()
    assert elapsed > 1.1 * DEADLINE  # the two calls together outlast one deadline
    assert client.retry_count == 0


def test_the_in_process_transport_is_used_unchanged() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path.endswith("signin_with_api_key"):
            return httpx.Response(200, json={"id_token": "t", "expires_at": "2999-01-01T00:00:00Z"})
        return httpx.Response(200, json=EMPTY_PAGE)

    client = AmigoClient(
        config("http://localhost", attempt_deadline=DEADLINE),
        transport=httpx.MockTransport(handler),
    )
    assert client.list_services() == []
    client.close()
    assert seen == ["/v1/org/user/signin_with_api_key", "/v1/org/service/"]


# --- configuration ----------------------------------------------------------------------


def test_the_default_deadline_is_twice_the_timeout_plus_five_seconds() -> None:
    assert config("https://api.amigo.ai").attempt_deadline_seconds == 65.0
    assert config("https://api.amigo.ai", timeout=2.0).attempt_deadline_seconds == 9.0
    assert config("https://api.amigo.ai", attempt_deadline=3.0).attempt_deadline_seconds == 3.0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_a_deadline_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ConfigError, match="attempt_deadline"):
        config("https://api.amigo.ai", attempt_deadline=bad)


def test_the_client_sends_over_the_deadline_transport_with_httpx_defaults() -> None:
    client = AmigoClient(config("https://api.amigo.ai"))
    try:
        transport = client.transport
        assert isinstance(transport, DeadlineTransport)
    finally:
        client.close()
    defaults = pytest.importorskip("httpx._config", reason="httpx internals moved")
    assert DEFAULT_LIMITS == defaults.DEFAULT_LIMITS


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HTTPS_PROXY": "http://proxy.example:3128"},
        {"HTTP_PROXY": "proxy.example:8080", "ALL_PROXY": "socks5://s.example:1080"},
        {
            "HTTPS_PROXY": "http://user:pw@proxy.example:3128",
            "NO_PROXY": "localhost,127.0.0.1,::1,.internal.example,example.com,"
            "192.168.0.0/16,https://direct.example",
        },
        {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "a.example,*"},
    ],
)
def test_environment_proxies_route_as_httpx_would(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if any(value.startswith("socks") for value in env.values()):
        pytest.importorskip("socksio", reason="socks proxies need the optional socksio package")
    utils = pytest.importorskip("httpx._utils", reason="httpx internals moved")
    expected = utils.get_environment_proxies()
    mounts = environment_proxy_mounts()
    assert set(mounts) == set(expected)
    for pattern, transport in mounts.items():
        assert (transport is None) == (expected[pattern] is None), pattern
        if transport is not None:
            assert isinstance(transport, DeadlineTransport)
            transport.close()


def test_deadline_errors_map_to_httpx_timeouts() -> None:
    """A deadline that passed fails the next socket operation as an httpx timeout."""
    transport = DeadlineTransport()
    request = httpx.Request("GET", "http://127.0.0.1:9/")
    with attempt_deadline(0.001), pytest.raises(httpx.ConnectTimeout, match="attempt deadline"):
        time.sleep(0.01)
        transport.handle_request(request)
    transport.close()
