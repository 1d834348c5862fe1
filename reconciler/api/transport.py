"""The HTTP transport: httpx's own behaviour, plus a wall-clock deadline per attempt.

httpx timeouts bound each socket operation, not a whole request: a server (or a
broken proxy) that trickles its status line, headers or body one byte at a time,
each byte inside the read timeout, would hold a call open indefinitely. Here the
network backend under httpcore clamps every connect, TLS handshake, read and
write to the time left before the current attempt's deadline, and fails the
operation with httpcore's own `ConnectTimeout` / `ReadTimeout` / `WriteTimeout`
once it has passed. They reach the client as httpx timeouts, which it already
retries (idempotent calls) or turns into `OutcomeUnknown` (POSTs).

The deadline lives in a context variable set by `attempt_deadline` around one
send: httpx's sync client does all I/O of a request in the thread that sends it,
and each thread has its own context, so concurrent calls never see each other's
deadline. Outside `attempt_deadline` the streams behave exactly like httpcore's.

`DeadlineTransport` builds httpcore's public pool classes the way
`httpx.HTTPTransport` does (same TLS context, limits and proxy handling) but
with the deadline backend; `environment_proxy_mounts` gives the HTTP(S)_PROXY /
ALL_PROXY / NO_PROXY routing httpx would apply by itself when no transport is
passed to it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from types import TracebackType
from typing import Any
from urllib.request import getproxies

import httpcore
import httpx

__all__ = [
    "DEFAULT_LIMITS",
    "DeadlineBackend",
    "DeadlineTransport",
    "attempt_deadline",
    "environment_proxy_mounts",
]

# httpx's own defaults for a Client (max_connections=100, keep-alive 20, 5 s expiry).
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class _Deadline:
    """A monotonic instant and the budget it came from (said in the error)."""

    __slots__ = ("at", "budget")

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.at = time.monotonic() + budget

    def left(self) -> float:
        return self.at - time.monotonic()

    def describe(self) -> str:
        return f"no complete answer within the {self.budget:g}s attempt deadline"


_current: ContextVar[_Deadline | None] = ContextVar("amigo_attempt_deadline", default=None)


@contextlib.contextmanager
def attempt_deadline(seconds: float) -> Iterator[None]:
    """Every socket operation of this thread inside the block ends by `seconds` from now."""
    token = _current.set(_Deadline(seconds))
    try:
        yield
    finally:
        _current.reset(token)


def _clamp(timeout: float | None, error: type[httpcore.TimeoutException]) -> float | None:
    """The smaller of the per-operation timeout and the time left; raise once none is left."""
    deadline = _current.get()
    if deadline is None:
        return timeout
    left = deadline.left()
    if left <= 0:
        raise error(deadline.describe())
    return left if timeout is None else min(timeout, left)


@contextlib.contextmanager
def _named_if_past_deadline() -> Iterator[None]:
    """A socket timeout caused by the deadline says so (not just 'timed out')."""
    try:
        yield
    except httpcore.TimeoutException as exc:
        deadline = _current.get()
        if deadline is not None and deadline.left() <= 0:
            raise type(exc)(deadline.describe()) from exc
        raise


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _named_if_past_deadline():
            return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _named_if_past_deadline():
            self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        with _named_if_past_deadline():
            upgraded = self._inner.start_tls(
                ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout)
            )
        return _DeadlineStream(upgraded)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend whose streams honour the current attempt deadline."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        with _named_if_past_deadline():
            stream = self._inner.connect_tcp(
                host,
                port,
                _clamp(timeout, httpcore.ConnectTimeout),
                local_address,
                socket_options,
            )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        with _named_if_past_deadline():
            stream = self._inner.connect_unix_socket(
                path, _clamp(timeout, httpcore.ConnectTimeout), socket_options
            )
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# httpcore exception -> httpx exception, as httpx.HTTPTransport maps them.
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
)


def _httpx_error_for(exc: Exception) -> type[httpx.TransportError] | None:
    """The most specific httpx class for an httpcore error (ReadTimeout, not TimeoutException)."""
    found: type[httpx.TransportError] | None = None
    for source, target in _EXCEPTIONS:
        if isinstance(exc, source) and (found is None or issubclass(target, found)):
            found = target
    return found


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = _httpx_error_for(exc)
        if mapped is None:
            raise
        raise mapped(str(exc)) from exc


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """`httpx.HTTPTransport` (HTTP/1.1, verified TLS) on the deadline backend.

    `proxy` routes through an http(s) or socks5 proxy exactly as
    `httpx.HTTPTransport(proxy=...)` would.
    """

    def __init__(
        self,
        *,
        verify: bool = True,
        trust_env: bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=trust_env)
        self.ssl_context = ssl_context  # what every connection verifies with
        backend = DeadlineBackend()
        pool_options: dict[str, Any] = {
            "ssl_context": ssl_context,
            "max_connections": limits.max_connections,
            "max_keepalive_connections": limits.max_keepalive_connections,
            "keepalive_expiry": limits.keepalive_expiry,
            "http1": True,
            "http2": False,
            "network_backend": backend,
        }
        if proxy is None:
            self._pool = httpcore.ConnectionPool(**pool_options)
            return
        proxy_url = httpcore.URL(
            scheme=proxy.url.raw_scheme,
            host=proxy.url.raw_host,
            port=proxy.url.port,
            target=proxy.url.raw_path,
        )
        if proxy.url.scheme in ("http", "https"):
            self._pool = httpcore.HTTPProxy(
                proxy_url=proxy_url,
                proxy_auth=proxy.raw_auth,
                proxy_headers=proxy.headers.raw,
                proxy_ssl_context=proxy.ssl_context,
                **pool_options,
            )
        elif proxy.url.scheme in ("socks5", "socks5h"):
            # Needs the optional 'socksio' package, as in httpx itself.
            self._pool = httpcore.SOCKSProxy(
                proxy_url=proxy_url, proxy_auth=proxy.raw_auth, **pool_options
            )
        else:
            raise ValueError(
                "Proxy protocol must be either 'http', 'https', 'socks5', or 'socks5h',"
                f" but got {proxy.url.scheme!r}."
            )

    def __enter__(self) -> DeadlineTransport:
        self._pool.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        with _as_httpx_errors():
            self._pool.__exit__(exc_type, exc_value, traceback)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise TypeError("DeadlineTransport needs a synchronous request body")
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            core_response = self._pool.handle_request(core_request)
        if not isinstance(core_response.stream, Iterable):
            raise TypeError("httpcore answered with an asynchronous stream")
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_ResponseStream(core_response.stream),
            extensions=core_response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def _is_ip(host: str, version: int) -> bool:
    """An address, or a CIDR block as NO_PROXY allows ("192.168.0.0/16"), of this IP version."""
    try:
        return ipaddress.ip_address(host.split("/")[0]).version == version
    except ValueError:
        return False


def environment_proxy_mounts(
    *, verify: bool = True, limits: httpx.Limits = DEFAULT_LIMITS
) -> dict[str, DeadlineTransport | None]:
    """httpx's routing from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY, as `mounts`.

    httpx applies these itself only when it builds its own transport; this gives
    the same URL patterns (a None value means: no proxy for that pattern).
    """
    info = getproxies()
    routes: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        if info.get(scheme):
            target = info[scheme]
            routes[f"{scheme}://"] = target if "://" in target else f"http://{target}"
    for host in (part.strip() for part in info.get("no", "").split(",")):
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            routes[host] = None
        elif _is_ip(host, 4) or host.lower() == "localhost":
            routes[f"all://{host}"] = None
        elif _is_ip(host, 6):
            routes[f"all://[{host}]"] = None
        else:
            routes[f"all://*{host}"] = None
    return {
        pattern: None
        if url is None
        else DeadlineTransport(verify=verify, limits=limits, proxy=httpx.Proxy(url=url))
        for pattern, url in routes.items()
    }
