"""A fake GitHub REST API on 127.0.0.1: canned JSON for GET paths and for writes (POST,
PATCH), and what was asked and written.

Writes with no canned answer fall through to issues and their comments, kept as GitHub
keeps them for the calls the workflows make: POST /repos/O/R/issues (open), PATCH
/repos/O/R/issues/N (edit, close), POST /repos/O/R/issues/N/comments (comment, also on
a pull request), GET /repos/O/R/issues?labels=L&state=S (list).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BOT = "github-actions[bot]"


class FakeGitHub:
    """Serves canned JSON for GET paths on 127.0.0.1 and records what was asked."""

    def __init__(self) -> None:
        self.routes: dict[str, Any] = {}
        self.seen: list[tuple[str, str]] = []  # (path, Authorization header)
        # Writes: (method, path) -> the answer; and what was written, in order.
        self.write_routes: dict[tuple[str, str], Any] = {}
        self.writes: list[tuple[str, str, Any]] = []
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[str]] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.seen.append((self.path, self.headers.get("Authorization", "")))
                if self.path in fake.routes:
                    self._answer(fake.routes[self.path], 200)
                    return
                listed = fake.list_issues(self.path)
                if listed is None:
                    self._answer({"message": "Not Found"}, 404)
                else:
                    self._answer(listed, 200)

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
                with fake.lock:
                    fake.writes.append((self.command, self.path, body))
                    key = (self.command, self.path)
                    if key in fake.write_routes:
                        answer = fake.write_routes[key]
                        status = 201 if self.command == "POST" else 200
                    else:
                        status, answer = fake.apply_write(self.command, self.path, body)
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

    def list_issues(self, path: str) -> list[dict[str, Any]] | None:
        parts = urlsplit(path)
        if not re.fullmatch(r"/repos/[^/]+/[^/]+/issues", parts.path):
            return None
        query = parse_qs(parts.query)
        state = query.get("state", ["open"])[0]
        labels = set(query.get("labels", [""])[0].split(",")) - {""}
        return [
            issue
            for issue in sorted(self.issues.values(), key=lambda i: i["number"])
            if (state == "all" or issue["state"] == state)
            and labels <= {label["name"] for label in issue["labels"]}
        ]

    def apply_write(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        issues = re.fullmatch(r"/repos/[^/]+/[^/]+/issues", path)
        one = re.fullmatch(r"/repos/[^/]+/[^/]+/issues/(\d+)", path)
        comments = re.fullmatch(r"/repos/[^/]+/[^/]+/issues/(\d+)/comments", path)
        if method == "POST" and issues:
            number = max([*self.issues, *self.comments, 0]) + 1
            self.issues[number] = {
                "number": number,
                "title": body["title"],
                "body": body.get("body", ""),
                "state": "open",
                "labels": [{"name": name} for name in body.get("labels", [])],
                "user": {"login": BOT},
            }
            return 201, self.issues[number]
        if method == "PATCH" and one and int(one.group(1)) in self.issues:
            issue = self.issues[int(one.group(1))]
            issue.update({k: v for k, v in body.items() if k in ("body", "state", "title")})
            return 200, issue
        if method == "POST" and comments:
            self.comments.setdefault(int(comments.group(1)), []).append(body["body"])
            return 201, {"id": len(self.writes), "body": body["body"]}
        return 404, {"message": "Not Found"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
