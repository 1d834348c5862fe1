"""Cancelling `reconciler apply` before anything is sent, in a real process.

Ctrl-C at the confirmation prompt is a cancellation (exit 130), Ctrl-D there
ends the input without a 'yes', so it declines like 'no' (exit 1); neither is
an "internal error". Ctrl-C while the plan is still being read, with
`--format json`, still writes a report on stdout (outcome `cancelled`).
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time

import pytest
from support.paths import REPO

from reconciler.emulator import Emulator, Fault

SEED = str(REPO / "examples" / "emulator-seed.yaml")
EXAMPLES = str(REPO / "examples" / "services")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", **(extra or {})}
    env.pop("AMIGO_RECONCILER_DEBUG", None)
    return env


def _at_the_prompt() -> tuple[subprocess.Popen[str], int]:
    """`apply` on a terminal (a pty as stdin), waiting at its confirmation prompt."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", EXAMPLES, "--emulator", SEED],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    os.close(slave)
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "Only 'yes' will be accepted" not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, seen
        seen += os.read(proc.stdout.fileno(), 65536).decode()
    time.sleep(0.2)  # the prompt is printed just before the read starts
    return proc, master


def test_ctrl_c_at_the_prompt_is_a_cancellation_not_a_bug() -> None:
    proc, master = _at_the_prompt()
    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Apply cancelled; nothing was changed." in err
    assert "internal error" not in err and "report it" not in err


def test_ctrl_d_at_the_prompt_declines_like_no() -> None:
    proc, master = _at_the_prompt()
    try:
        os.write(master, b"\x04")  # the terminal's end-of-file
        _, err = proc.communicate(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "Apply cancelled; nothing was changed." in err
    assert "internal error" not in err and "report it" not in err


@pytest.mark.http
def test_ctrl_c_while_planning_still_writes_a_json_report() -> None:
    emulator = Emulator.from_seed(SEED, slow_seconds=30.0)
    emulator.inject("get-services", Fault.SLOW)
    with emulator.serve() as server:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "reconciler", "apply", EXAMPLES),
                *("--auto-approve", "--format", "json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(emulator.credentials(server.base_url)),
        )
        try:
            deadline = time.monotonic() + 60
            while not emulator.request_counts.get("get-services"):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert emulator.request_counts.get("create-service", 0) == 0
    assert proc.returncode == 130, err
    report = json.loads(out)
    assert report["outcome"] == "cancelled"
    assert report["operations"] == [] and report["summary"]["done"] == 0
    assert "Apply cancelled; nothing was changed." in err
    assert "internal error" not in err
