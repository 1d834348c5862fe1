"""Transport safety: TLS verified, plain http only to loopback, a timeout on every call,
and a server that never answers cannot hang the reconciler.

Everything binds 127.0.0.1 only. `http://10.0.0.1` is refused before any socket is
made: `socket.socket.connect` is watched to prove no connection is attempted.
"""

from __future__ import annotations

import math
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _reliability import CANARY_API_KEY, http_client, realistic_seed
from click.testing import CliRunner
from support.api import canary_config as config

from reconciler import cli
from reconciler.api.client import AmigoClient
from reconciler.api.errors import ApiError, ConfigError, TransportError
from reconciler.api.retry import RetryPolicy
from reconciler.api.transport import DeadlineTransport
from reconciler.connect import emulator_config
from reconciler.emulator import Emulator

pytestmark = pytest.mark.http


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records (and refuses) every outgoing connection attempt made during the test."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("connection attempted in a test that must not connect")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


# --- TLS ---------------------------------------------------------------------------


def test_tls_verification_is_on_with_hostname_checks() -> None:
    client = AmigoClient(config("https://api.amigo.ai"))
    try:
        transport = client.transport
        assert isinstance(transport, DeadlineTransport)  # the one the client sends with
        context = transport.ssl_context
        assert context.verify_mode is ssl.CERT_REQUIRED
        assert context.check_hostname is True
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    finally:
        client.close()


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[tuple[str, list[bytes]]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate; records what it reads."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(2)
                    received.append(tls.recv(65536))
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}", received
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def test_an_untrusted_certificate_is_refused_before_the_key_is_sent(
    self_signed_server: tuple[str, list[bytes]],
) -> None:
    base_url, received = self_signed_server
    client = AmigoClient(config(base_url, timeout=2.0), retry_policy=RetryPolicy(max_attempts=1))
    with pytest.raises(TransportError) as info:
        client.list_services()
    client.close()
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) or "certificate" in str(info.value)
    assert not any(CANARY_API_KEY.encode() in data for data in received)
    assert all(b"HTTP/1.1" not in data for data in received)  # no request got through


def test_a_certificate_that_does_not_verify_fails_at_once_naming_the_host(
    self_signed_server: tuple[str, list[bytes]],
) -> None:
    # Issue 12, item 16: retrying cannot fix a certificate; five attempts only delay the error.
    base_url, _ = self_signed_server
    client = AmigoClient(config(base_url, timeout=2.0), retry_policy=RetryPolicy(max_attempts=5))
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        client.list_services()
    client.close()
    message = str(info.value)
    assert client.request_counts == {"sign-in-with-api-key": 1}
    assert client.retry_count == 0
    assert "TLS certificate verification failed for " + base_url in message
    assert "not retried" in message
    assert time.monotonic() - started < 2.0


# --- plain http ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1",
        "HTTP://10.0.0.1:8080/",
        "http://api.amigo.ai",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "http://[::ffff:10.0.0.1]",
        "http://0x0a000001",
    ],
)
def test_plain_http_to_a_non_loopback_host_is_refused_without_connecting(
    url: str, no_connections: list[Any]
) -> None:
    with pytest.raises(ConfigError, match="https"):
        config(url)
    assert no_connections == []


def test_the_cli_refuses_http_to_10_0_0_1_without_connecting(
    no_connections: list[Any], tmp_path: Path
) -> None:
    env = {
        "AMIGO_API_KEY": CANARY_API_KEY,
        "AMIGO_API_KEY_ID": "kid",
        "AMIGO_USER_ID": "uid",
        "AMIGO_ORGANIZATION_ID": "org",
    }
    (tmp_path / "s.yaml").write_text(
        "apiVersion: amigo.ai/v1\nkind: Service\nmetadata: {name: S}\n"
        "spec: {description: d, agent: A, service_hierarchical_state_machine: M}\n",
        encoding="utf-8",
    )
    for args, extra_env in (
        (["plan", str(tmp_path), "--base-url", "http://10.0.0.1"], {}),
        (["export"], {"AMIGO_BASE_URL": "http://10.0.0.1:80"}),
        (["apply", str(tmp_path), "--auto-approve", "--base-url", "http://10.0.0.1"], {}),
    ):
        result = CliRunner().invoke(
            cli.main, args, env={**env, **extra_env}, catch_exceptions=False
        )
        assert result.exit_code == 1, result.output
        assert "plain http" in result.stderr and "https" in result.stderr
        assert "Traceback" not in result.output
    assert no_connections == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8765", "http://localhost:1", "http://[::1]:1", "http://127.9.9.9"]
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert config(url).base_url == url


# --- timeouts ----------------------------------------------------------------------------


def test_every_call_carries_finite_timeouts(allow_invalid_requests: None) -> None:
    emulator = Emulator.from_seed(realistic_seed())
    inner = emulator.transport()
    seen: dict[str, dict[str, Any]] = {}

    class Recording(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen[f"{request.method} {request.url.path}"] = dict(request.extensions["timeout"])
            return inner.handle_request(request)

    client = AmigoClient(emulator_config(emulator), transport=Recording())
    services = client.list_services()
    sid = services[0]["id"]
    client.list_agents()
    client.list_state_machines()
    client.list_unit_tests([sid])
    client.update_service(sid, {"description": "timeouts"}, service="x")
    client.upsert_version_set(
        sid,
        "canary",
        {
            "agent_version_number": None,
            "service_hierarchical_state_machine_version_number": None,
            "llm_model_preferences": {},
        },
        service="x",
    )
    client.delete_version_set(sid, "canary", service="x")
    with pytest.raises(ApiError):
        client.create_service({"name": "incomplete"}, service="incomplete")
    client.close()
    methods = {key.split()[0] for key in seen}
    assert methods == {"GET", "POST", "PUT", "DELETE"}
    assert len(seen) >= 8
    for call, timeouts in seen.items():
        assert set(timeouts) == {"connect", "read", "write", "pool"}, call
        for phase, value in timeouts.items():
            assert value is not None and 0 < value <= 30, (call, phase, value)


# --- a server that never answers ----------------------------------------------------------


@pytest.fixture
def hung_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """A loopback socket that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)  # kept open, never read, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()


def worst_case_seconds(policy: RetryPolicy, timeout: float) -> float:
    """Every attempt waits its full read timeout, every backoff its ceiling."""
    backoffs = sum(
        min(policy.max_delay, policy.base_delay * 2.0 ** (n - 1))
        for n in range(1, policy.max_attempts)
    )
    return policy.max_attempts * timeout + backoffs


def test_a_hung_server_fails_the_call_within_timeout_times_attempts(
    hung_server: tuple[str, list[socket.socket]],
) -> None:
    base_url, accepted = hung_server
    policy = RetryPolicy(base_delay=0.02, max_delay=0.05)
    timeout = 0.25
    client = AmigoClient(config(base_url, timeout=timeout), retry_policy=policy)
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        client.list_services()
    elapsed = time.monotonic() - started
    client.close()
    bound = worst_case_seconds(policy, timeout)
    assert elapsed <= bound + 1.0, (elapsed, bound)
    assert elapsed >= policy.max_attempts * timeout * 0.9  # it did wait, and retried
    assert f"gave up after {policy.max_attempts} attempts" in str(info.value)
    assert "timed out" in str(info.value)
    assert len(accepted) >= 1


@pytest.mark.slow
def test_apply_against_a_server_that_stops_answering_ends_with_a_report(
    tmp_path: Path,
) -> None:
    """Sign-in and reads work, then every write hangs: the apply still ends, bounded."""
    from _reliability import write_manifests

    from reconciler.applier import Status, apply_plan
    from reconciler.emulator import Fault
    from reconciler.manifests import load_manifests
    from reconciler.workflow import make_plan

    emulator = Emulator.from_seed(realistic_seed(), window_seconds=1.0, slow_seconds=3600)
    desired = load_manifests([write_manifests(tmp_path / "services")])
    policy = RetryPolicy(base_delay=0.02, max_delay=0.05)
    timeout = 0.3
    with emulator.serve() as server:
        client = http_client(
            emulator, server.base_url, timeout=timeout, window_seconds=1.0, retry_policy=policy
        )
        plan = make_plan(client, desired, prune=True)
        for operation_id in (
            "create-service",
            "update-service",
            "upsert-service-version-set",
            "delete-service-version-set",
        ):
            emulator.inject(operation_id, Fault.SLOW, times=1000)
        started = time.monotonic()
        report = apply_plan(client, plan)
        elapsed = time.monotonic() - started
        emulator.clear_faults()
        client.close()
    # Each operation: at most two sends plus a lookup (creates), each bounded by the retry
    # budget; operations run 8 at a time.
    per_operation = 3 * worst_case_seconds(policy, timeout)
    bound = math.ceil(len(plan.operations) / 8) * per_operation + 2.0
    assert elapsed <= bound, (elapsed, bound)
    assert not report.ok
    # The writes acted (Fault.SLOW acts, then hangs): not "failed", which would say they
    # did not; outcome unknown, saying why.
    assert not report.by_status(Status.FAILED)
    unknown = report.by_status(Status.OUTCOME_UNKNOWN)
    assert unknown and all("timed out" in (r.message or "") for r in unknown), unknown[:2]
