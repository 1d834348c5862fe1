"""Issue 12, item 7: Ctrl-C against a real `reconciler apply` process.

Writes queued behind the rate limiter are not in flight: after the first
SIGINT none of them is sent, and the report lists them as not started. A
second SIGINT stops at once, while a request is still on the wire, and the
JSON report is still written. The emulator runs in this process on 127.0.0.1,
so its request counts are read directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _reliability import manifest, realistic_seed

from reconciler.emulator import Emulator, Exchange, Fault

pytestmark = [pytest.mark.http, pytest.mark.slow]

CREATES = 24  # create-service allows 20 a window: the rest wait for the next one
WINDOW = 3600.0


def _emulator(**extra: Any) -> Emulator:
    """An hour-long rate window that starts now (on the emulator's clock).

    Windows are aligned to multiples of their length; shifting the emulator's clock
    to a window's start means none ends during the test, whatever the time of day.
    The client sees a Reset later than the real one and simply waits longer.
    """
    offset = WINDOW - time.time() % WINDOW + 1.0
    return Emulator.from_seed(
        realistic_seed(), window_seconds=WINDOW, clock=lambda: time.time() + offset, **extra
    )


def _manifests(directory: Path) -> Path:
    directory.mkdir()
    docs = [
        manifest(
            f"Queued {i:02d}",
            """
            description: waits for its rate-limit slot
            agent: Triage
            service_hierarchical_state_machine: Billing flow
            """,
        )
        for i in range(CREATES)
    ]
    (directory / "services.yaml").write_text("---\n".join(docs), encoding="utf-8")
    return directory


def _start(emulator: Emulator, base_url: str, manifests: Path) -> subprocess.Popen[str]:
    env = {**os.environ, **emulator.credentials(base_url), "PYTHONUNBUFFERED": "1"}
    env.pop("AMIGO_RECONCILER_DEBUG", None)
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "reconciler", "apply", str(manifests)),
            *("--auto-approve", "--format", "json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _creates(emulator: Emulator) -> int:
    return emulator.request_counts.get("create-service", 0)


def _created(emulator: Emulator) -> int:
    return sum(1 for s in emulator.services() if s["name"].startswith("Queued "))


def _wait_until_queued(emulator: Emulator, timeout: float = 60.0) -> None:
    """Until some creates went out and the rest have stopped: they wait for the window."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while True:
        now, count = time.monotonic(), _creates(emulator)
        if count != last:
            last, since = count, now
        elif count >= 5 and now - since >= 1.5:
            return
        assert now < deadline, f"creates never settled behind the rate limit ({count})"
        time.sleep(0.05)


def test_first_ctrl_c_sends_nothing_queued_behind_the_rate_limit(tmp_path: Path) -> None:
    emulator = _emulator()
    manifests = _manifests(tmp_path / "services")
    with emulator.serve() as server:
        proc = _start(emulator, server.base_url, manifests)
        try:
            _wait_until_queued(emulator)
            at_signal = _creates(emulator)
            created = _created(emulator)
            assert created < CREATES
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            took = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
        time.sleep(1.0)
        assert _creates(emulator) == at_signal, "a queued create was sent after Ctrl-C"
    assert proc.returncode == 130, err
    assert took < 10, took  # it did not wait out the rate-limit window
    assert _created(emulator) == created
    report = json.loads(out)
    assert report["outcome"] == "cancelled"
    assert report["summary"]["not_started"] == CREATES - created
    assert report["summary"]["done"] == created
    not_started = [o for o in report["operations"] if o["status"] == "not_started"]
    assert all("cancelled" in (o["message"] or "") for o in not_started)


def test_second_ctrl_c_stops_at_once_and_still_writes_the_report(tmp_path: Path) -> None:
    sent = threading.Event()

    def watch(exchange: Exchange) -> None:
        if exchange.fault is Fault.SLOW:
            sent.set()

    emulator = _emulator(slow_seconds=60.0, observers=[watch])
    manifests = _manifests(tmp_path / "services")
    emulator.inject("create-service", Fault.SLOW, service_name="Queued 00")
    with emulator.serve() as server:
        proc = _start(emulator, server.base_url, manifests)
        try:
            assert sent.wait(60)
            _wait_until_queued(emulator)
            proc.send_signal(signal.SIGINT)
            time.sleep(1.0)
            assert proc.poll() is None  # waiting for the slow answer
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            took = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    assert took < 5, took
    report = json.loads(out)  # never empty
    assert report["outcome"] == "cancelled"
    slow = next(o for o in report["operations"] if o["service"] == "Queued 00")
    assert slow["status"] == "outcome_unknown"
    assert report["summary"]["not_started"] >= 1
