"""Two ways to reach an Emulator: an in-process httpx transport and a loopback HTTP server.

Both hand requests to `Emulator.handle` and act out its directives the way a
network would: a dropped answer is a connection closed without a response
(`httpx.RemoteProtocolError` in-process); a slow answer arrives late, so a
client whose read timeout is shorter times out (`httpx.ReadTimeout`
in-process, after waiting that timeout). A late commit (Fault.COMMIT_LATE)
is acted on after its delay even when the client has already given up.
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import httpx

if TYPE_CHECKING:
    from reconciler.emulator.core import Emulator


def make_transport(emulator: Emulator) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        body = request.read()
        path = request.url.raw_path.decode("ascii").partition("?")[0]
        query = list(request.url.params.multi_items())
        response = emulator.handle(request.method, path, query, dict(request.headers), body)
        if response.delay:
            timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
            read_timeout = timeouts.get("read")
            if read_timeout is not None and response.delay >= read_timeout:
                deferred = response.deferred
                if deferred is not None:  # the server acts later, the client long gone
                    threading.Timer(response.delay, deferred).start()
                time.sleep(read_timeout)
                raise httpx.ReadTimeout("The read operation timed out", request=request)
            time.sleep(response.delay)
        if response.deferred is not None:
            response = response.deferred()
        if response.drop:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.Response(
            response.status,
            headers=list(response.headers),
            content=response.body,
            request=request,
        )

    return httpx.MockTransport(handle)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self.stopping = threading.Event()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished (killed, timed out) is normal: no traceback on stderr."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms stalls
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:  # the client went away mid-request: nothing to act on
            self.close_connection = True
            return
        path, _, query_string = self.path.partition("?")
        query = parse_qsl(query_string, keep_blank_values=True)
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = self.server.emulator.handle(self.command, path, query, headers, body)
        if response.delay:
            self.server.stopping.wait(response.delay)
        if response.deferred is not None:
            # Acted on whether or not the client is still there (it may have timed out).
            response = response.deferred()
        if response.drop or self.server.stopping.is_set():
            self.close_connection = True  # the socket closes with no answer written
            return
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("content-length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
            self.wfile.flush()
        except OSError:  # the client gave up (e.g. timed out on a slow answer)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the core never prints
        return


class EmulatorServer:
    """A running loopback server; a context manager. `base_url` is what clients use."""

    def __init__(self, emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), emulator)
        bound_host, bound_port = self._server.server_address[:2]
        self.host = str(bound_host)
        self.port = int(bound_port)
        self.base_url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"amigo-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait(self) -> None:
        """Block until closed (the CLI waits here until Ctrl-C)."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmulatorServer({self.base_url})"
