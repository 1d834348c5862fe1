"""Suite-wide secrets guard: no API key or bearer token in anything a test can see.

`tests/conftest.py` installs one `SecretsGuard` for the whole session. It learns
the secrets as they come into being and scans every place they could leak to:

What counts as a secret:
* canary API keys: `_reliability.CANARY_API_KEY` (the secrets, fault, crash and load
  suites run their emulators with it) and the scripted fake API's key;
* every bearer token any emulator issues (read from each sign-in answer through
  `session_observers` in conftest), and the fake API's tokens;
* API keys any emulator accepted. Those seeds' keys are throwaway values that
  `reconciler emulator` prints on purpose and that tests write into seed files,
  so they are held only against logs, exception messages and plan / apply-report
  objects, where nothing may carry them.

Where it looks (each test that leaks fails, naming where):
* CliRunner results (stdout, stderr, the exception) and `capsys` / `capfd` reads;
* the output pytest captured for the test (stdout, stderr, log records);
* log records of `reconciler`, `httpx` and `httpcore` at DEBUG;
* `ApiError` messages when they are made; every Plan the planner returns and
  every ApplyReport the applier returns (their reprs);
* every file the test left under its `tmp_path`, and at the end of the session
  every file under pytest's base temp directory.

Key ids and user ids are not secrets (they identify, they do not authenticate:
the API answers 401 without the key), so they are not scanned.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 5_000_000
_TOKEN_SHAPES = re.compile(r"emu\.[A-Za-z0-9_\-]+|tok-\d+-SECRETTOKEN")


class SecretsGuard(logging.Handler):
    def __init__(self, canaries: Iterable[str]) -> None:
        super().__init__(level=logging.DEBUG)
        self._lock = threading.Lock()
        self.canaries = {c for c in canaries if c}
        self.tokens: set[str] = set()
        self.odd_tokens: set[str] = set()  # tokens of another shape: searched literally
        self.accepted_keys: set[str] = set()
        self.leaks: list[str] = []
        self._expecting = 0
        self.expected: list[str] = []
        self.saved_levels: dict[str, int] = {}

    # --- learning ---------------------------------------------------------------
    def observe(self, exchange: Any) -> None:
        """An Emulator observer (conftest.session_observers): learn issued tokens and accepted keys."""
        if exchange.operation_id != "sign-in-with-api-key" or exchange.response.status != 200:
            return
        try:
            token = json.loads(exchange.response.body).get("id_token")
        except (ValueError, AttributeError):
            return
        key = exchange.headers.get("x-api-key")
        with self._lock:
            if isinstance(token, str) and token:
                if _TOKEN_SHAPES.fullmatch(token):
                    self.tokens.add(token)
                else:
                    self.odd_tokens.add(token)
            if key:
                self.accepted_keys.add(key)

    # --- scanning ---------------------------------------------------------------
    def found(self, text: str, *, keys_too: bool = False) -> list[str]:
        """The secrets `text` holds (shortened so that the report itself leaks nothing)."""
        if not text:
            return []
        with self._lock:
            literal = set(self.canaries) | set(self.odd_tokens)
            if keys_too:
                literal |= self.accepted_keys
            tokens = self.tokens
            hits = [s for s in literal if s in text]
            hits += [m for m in _TOKEN_SHAPES.findall(text) if m in tokens or "SECRET" in m]
        return sorted({f"{h[:6]}...({len(h)} chars)" for h in hits})

    def _all(self) -> list[str]:
        with self._lock:
            return [*self.canaries, *self.odd_tokens, *self.tokens, *self.accepted_keys]

    def check(self, text: Any, where: str, *, keys_too: bool = False) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if not isinstance(text, str):
            return
        hits = self.found(text, keys_too=keys_too)
        if not hits:
            return
        for secret in self._all():
            where = where.replace(secret, "***")  # the report must not leak it either
        message = f"secret {', '.join(hits)} in {where}"
        with self._lock:
            (self.expected if self._expecting else self.leaks).append(message)

    def check_file(self, path: Path) -> None:
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
                return
            data = path.read_bytes()
        except OSError:
            return
        self.check(data, f"file {path}")

    def check_tree(self, root: Path) -> None:
        if root.is_dir():
            for path in root.rglob("*"):
                self.check_file(path)

    @contextlib.contextmanager
    def expect_leaks(self) -> Iterator[list[str]]:
        """For the guard's own tests: collect leaks instead of failing the test."""
        with self._lock:
            self._expecting += 1
            start = len(self.expected)
        caught: list[str] = []
        try:
            yield caught
        finally:
            with self._lock:
                self._expecting -= 1
                caught.extend(self.expected[start:])
                del self.expected[start:]

    def take_leaks(self) -> list[str]:
        with self._lock:
            leaks, self.leaks = self.leaks, []
        return leaks

    # --- logging.Handler --------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken log call is not ours to report
            text = str(record.msg)
        self.check(f"{text} {record.args!r}", f"log record of {record.name}", keys_too=True)


LOGGERS = ("reconciler", "httpx", "httpcore")


def install(guard: SecretsGuard, monkeypatch: Any) -> None:
    """Hook the guard into CliRunner, capsys/capfd, logging, ApiError, plans and reports."""
    from _pytest.capture import CaptureFixture
    from click.testing import CliRunner

    from reconciler import applier, planner
    from reconciler.api.errors import ApiError

    invoke = CliRunner.invoke

    def guarded_invoke(self: Any, cli: Any, args: Any = None, *a: Any, **k: Any) -> Any:
        result = invoke(self, cli, args, *a, **k)
        where = f"CliRunner output of {args!r}"
        guard.check(result.stdout_bytes, where)
        guard.check(result.stderr_bytes or b"", where)
        if result.exception is not None:
            guard.check(f"{result.exception!s} {result.exception!r}", where, keys_too=True)
        return result

    monkeypatch.setattr(CliRunner, "invoke", guarded_invoke)

    readouterr = CaptureFixture.readouterr

    def guarded_readouterr(self: Any) -> Any:
        captured = readouterr(self)
        guard.check(captured.out, "capsys/capfd stdout")
        guard.check(captured.err, "capsys/capfd stderr")
        return captured

    monkeypatch.setattr(CaptureFixture, "readouterr", guarded_readouterr)

    error_init = ApiError.__init__

    def guarded_error_init(self: ApiError, *a: Any, **k: Any) -> None:
        error_init(self, *a, **k)
        guard.check(self.message, f"{type(self).__name__} message", keys_too=True)

    monkeypatch.setattr(ApiError, "__init__", guarded_error_init)

    plan_against = planner.plan_against

    def guarded_plan_against(*a: Any, **k: Any) -> Any:
        plan = plan_against(*a, **k)
        guard.check(repr(plan), "a Plan", keys_too=True)
        return plan

    monkeypatch.setattr(planner, "plan_against", guarded_plan_against)

    run = applier._Run.run

    def guarded_run(self: Any) -> Any:
        report = run(self)
        guard.check(repr(report), "an ApplyReport", keys_too=True)
        return report

    monkeypatch.setattr(applier._Run, "run", guarded_run)

    for name in LOGGERS:
        logger = logging.getLogger(name)
        guard.saved_levels[name] = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(guard)


def uninstall(guard: SecretsGuard) -> None:
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.removeHandler(guard)
        logger.setLevel(guard.saved_levels.get(name, logging.NOTSET))
