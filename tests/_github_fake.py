"""A fake GitHub REST API on 127.0.0.1: canned JSON for GET paths and for writes (POST,
PATCH), and what was asked and written."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeGitHub:
    """Serves canned JSON for GET paths on 127.0.0.1 and records what was asked."""

    def __init__(self) -> None:
        self.routes: dict[str, Any] = {}
        self.seen: list[tuple[str, str]] = []  # (path, Authorization header)
        # Writes: (method, path) -> the answer; and what was written, in order.
        self.write_routes: dict[tuple[str, str], Any] = {}
        self.writes: list[tuple[str, str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.seen.append((self.path, self.headers.get("Authorization", "")))
                if self.path not in fake.routes:
                    body, status = {"message": "Not Found"}, 404
                else:
                    body, status = fake.routes[self.path], 200
                self._answer(body, status)

            def _answer(self, body: Any, status: int) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _write(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                fake.writes.append((self.command, self.path, body))
                key = (self.command, self.path)
                answer, status = (
                    (fake.write_routes[key], 201 if self.command == "POST" else 200)
                    if key in fake.write_routes
                    else ({"message": "Not Found"}, 404)
                )
                self._answer(answer, status)

            def do_POST(self) -> None:
                self._write()

            def do_PATCH(self) -> None:
                self._write()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
