"""SIGKILL `reconciler apply` at random points; re-running converges with no duplicates.

The apply runs as a real process (`python -m reconciler apply ... --base-url`)
against the emulator served on 127.0.0.1. It is killed either

* right after the emulator committed the k-th write and before the answer is
  written (an exchange observer sends the SIGKILL: the worst moment, the
  process never learns its write happened), or
* after a random delay (anywhere: start-up, sign-in, planning, mid-apply).

Then `reconciler apply` runs again: it must exit 0 and report convergence, the
organization must equal the one an uninterrupted apply produces, no service
may exist twice and no version set may be lost.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _reliability import (
    WRITES,
    assert_no_duplicates,
    realistic_seed,
    snapshot,
    write_manifests,
)
from click.testing import CliRunner
from support.cli import emulator_client

from reconciler import cli
from reconciler.applier import apply_plan
from reconciler.emulator import Emulator
from reconciler.manifests import load_manifests
from reconciler.workflow import make_plan

pytestmark = pytest.mark.http

SEEDS = range(8)


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    import tempfile

    emulator = Emulator.from_seed(realistic_seed())

    with tempfile.TemporaryDirectory() as tmp:
        desired = load_manifests([write_manifests(Path(tmp) / "services")])
        client = emulator_client(emulator)
        report = apply_plan(client, make_plan(client, desired, prune=True))
        client.close()
    assert report.ok
    after = emulator.services()
    return {"snapshot": snapshot(after), "names": Counter(s["name"] for s in after)}


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_at_a_random_point_then_rerun_converges(
    seed: int, reference: dict[str, Any], tmp_path: Path, secrets_guard: Any
) -> None:
    rng = random.Random(seed)
    at_write = rng.randint(1, 32) if seed % 2 == 0 else None
    delay = None if at_write else rng.uniform(0.3, 2.5)
    manifests = write_manifests(tmp_path / "services")
    killed = threading.Event()
    writes = 0
    lock = threading.Lock()
    proc: subprocess.Popen[str] | None = None

    def kill_on_write(exchange: Any) -> None:
        nonlocal writes
        if exchange.operation_id not in WRITES or proc is None:
            return
        with lock:
            writes += 1
            if writes == at_write and not killed.is_set():
                killed.set()
                os.kill(proc.pid, signal.SIGKILL)  # committed, answer not yet written

    emulator = Emulator.from_seed(
        realistic_seed(), window_seconds=2.0, observers=[kill_on_write] if at_write else ()
    )
    before = emulator.services()

    with emulator.serve() as server:
        env = {
            **os.environ,
            **emulator.credentials(server.base_url),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("AMIGO_RECONCILER_DEBUG", None)
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "reconciler", "apply", str(manifests)),
                *("--prune", "--auto-approve"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        if delay is not None:
            time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed.set()
        output, _ = proc.communicate(timeout=60)
        assert not secrets_guard.found(output)
        # Killed, or it finished just before the kill point: then it must have succeeded.
        assert proc.returncode in (-signal.SIGKILL, 0), output
        assert proc.returncode == -signal.SIGKILL or "Converged" in output, output
        interrupted = emulator.services()
        assert_no_duplicates(interrupted, reference["names"], f"seed {seed}, after the kill")

        rerun = CliRunner().invoke(
            cli.main,
            ["apply", str(manifests), "--prune", "--auto-approve"],
            env=emulator.credentials(server.base_url),
            catch_exceptions=False,
        )
        assert rerun.exit_code == 0, rerun.output
        assert "Converged" in rerun.output or "No changes" in rerun.output, rerun.output
        again = CliRunner().invoke(
            cli.main,
            ["plan", str(manifests), "--prune", "--detailed-exitcode"],
            env=emulator.credentials(server.base_url),
            catch_exceptions=False,
        )
        assert again.exit_code == 0, again.output
    final = emulator.services()
    assert_no_duplicates(final, reference["names"], f"seed {seed}")
    by_id = {s["id"]: s for s in final}
    assert all(s["id"] in by_id for s in before)  # no service lost (the API cannot delete)
    assert snapshot(final) == reference["snapshot"], f"seed {seed}: a different organization"


# --- a client that dies mid-request (default suite: fast and deterministic) ---------


def test_a_request_cut_off_mid_body_is_not_acted_on(capfd: pytest.CaptureFixture[str]) -> None:
    """A killed client leaves a half-sent body: the emulator must not handle it (the live
    API never sees an incomplete request) nor print a traceback."""
    import socket
    import struct

    emulator = Emulator.from_seed(realistic_seed())
    service_id = emulator.services()[0]["id"]
    with emulator.serve() as server:
        head = (
            f"PUT /v1/{emulator.organization}/service/{service_id}/version_sets/canary/ HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"
        )
        with socket.create_connection((server.host, server.port)) as conn:
            conn.sendall(head.encode() + b'{"version_set": {"agent_version_number": ')
        # A reset (SO_LINGER 0) in the middle of the request line, as a SIGKILL can leave.
        with socket.create_connection((server.host, server.port)) as conn:
            conn.sendall(b"GET /v1/")
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        time.sleep(0.5)  # the server threads see the cut-off requests
        handled = emulator.request_counts
    assert "upsert-service-version-set" not in handled, handled
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err
