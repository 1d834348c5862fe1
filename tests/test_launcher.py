"""The console-script entry answers --version without click and hands everything else on."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from reconciler.cli import main as cli_main


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, check=False
    )


def test_version_is_what_click_would_print() -> None:
    fast = _run("--version")
    assert fast.returncode == 0
    assert fast.stdout == CliRunner().invoke(cli_main, ["--version"]).output


def test_version_does_not_import_click() -> None:
    code = (
        "import sys; sys.argv = ['reconciler', '--version']; "
        "from reconciler.launcher import main; main(); "
        "print('click' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "False"


def test_everything_else_reaches_the_click_application() -> None:
    helped = _run("--help")
    assert helped.returncode == 0 and "validate" in helped.stdout
    wrong = _run("no-such-command")
    assert wrong.returncode == 64 and "No such command" in wrong.stderr
    assert "Traceback" not in wrong.stderr
