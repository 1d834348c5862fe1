"""`reconciler apply` over real HTTP: the emulator served on 127.0.0.1, the CLI connecting
the way a user's does (AMIGO_* environment, --base-url), and a real Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_apply_cli import MANIFESTS, SEED, assert_desired

from reconciler import cli
from reconciler.emulator import Emulator, EmulatorServer, Fault

pytestmark = pytest.mark.http


@pytest.fixture
def emulator() -> Emulator:
    return Emulator.from_seed(SEED, window_seconds=1.0)


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with emulator.serve() as running:
        yield running


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    (tmp_path / "services.yaml").write_text(MANIFESTS, encoding="utf-8")
    return tmp_path


def run(emulator: Emulator, server: EmulatorServer, *args: str) -> Result:
    env = emulator.credentials()
    env["AMIGO_RECONCILER_DEBUG"] = ""
    return CliRunner().invoke(
        cli.main, ["apply", *args, "--base-url", server.base_url], env=env, catch_exceptions=False
    )


def test_apply_over_http_converges_and_reruns_as_a_no_op(
    emulator: Emulator, server: EmulatorServer, manifests: Path
) -> None:
    first = run(emulator, server, str(manifests), "--auto-approve")
    assert first.exit_code == 0, first.output
    assert "Converged." in first.output
    assert_desired(emulator)
    second = run(emulator, server, str(manifests), "--auto-approve")
    assert second.exit_code == 0, second.output
    assert "No changes." in second.output


def test_connection_dropped_after_create_committed_makes_no_duplicate(
    emulator: Emulator, server: EmulatorServer, manifests: Path
) -> None:
    emulator.inject("create-service", Fault.DROP_AFTER, service_name="Appointment Reminders")
    emulator.inject("update-service", Fault.DROP_AFTER, service_name="After-hours Line")
    result = run(emulator, server, str(manifests), "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "answer lost" in result.output
    assert emulator.request_counts["create-service"] == 2  # two new services, none re-sent
    assert_desired(emulator)


def test_ctrl_c_finishes_in_flight_work_reports_and_exits_130(
    emulator: Emulator, server: EmulatorServer, tmp_path: Path
) -> None:
    # 30 new services: more creates than one rate-limit window (20) allows, so
    # the apply is still running when Ctrl-C comes.
    docs = [
        "apiVersion: amigo.ai/v1\nkind: Service\nmetadata:\n"
        f"  name: Bulk {i:02d}\nspec:\n  description: bulk service\n"
        "  agent: Concierge\n  service_hierarchical_state_machine: Onboarding flow\n"
        for i in range(30)
    ]
    (tmp_path / "bulk.yaml").write_text("---\n".join(docs), encoding="utf-8")
    slow = Emulator.from_seed(SEED, window_seconds=3.0)
    with slow.serve() as slow_server:
        env = {**os.environ, **slow.credentials(), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "reconciler", "apply", str(tmp_path)),
                *("--auto-approve", "--base-url", slow_server.base_url),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 20
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("[") and "done" in line:
                proc.send_signal(signal.SIGINT)
                break
            assert time.monotonic() < deadline, "".join(lines)
        # Read on through the same buffered file (communicate() would skip its buffer).
        output = "".join(lines) + proc.stdout.read()
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.wait(timeout=30)
    assert proc.returncode == 130, output + err
    assert "Cancelling" in err
    assert "not started" in output
    assert "Cancelled" in output
    created = Counter(s["name"] for s in slow.services() if s["name"].startswith("Bulk"))
    assert 0 < len(created) < 30
    assert all(n == 1 for n in created.values())
    done_lines = [line for line in output.splitlines() if line.startswith("[") and " done " in line]
    assert len(done_lines) == len(created)  # every create that happened was reported
