"""The console-script entry answers --version without click and hands everything else on."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner
from support.paths import EXAMPLE_SERVICES

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


def test_validate_imports_only_its_own_command() -> None:
    """A command loads its own module, not the others nor the API client (start-up time).

    Nor what only bad input needs (difflib, for "did you mean").
    """
    manifest = min(EXAMPLE_SERVICES.glob("*.yaml"))
    code = (
        "import sys; from reconciler.cli import main\n"
        f"try: main(['validate', {str(manifest)!r}])\n"
        "except SystemExit as exc: assert exc.code in (0, None), exc.code\n"
        "loaded = {'httpx', 'reconciler.api.client', 'reconciler.cli.plan',\n"
        "          'reconciler.cli.apply', 'reconciler.planner', 'reconciler.applier',\n"
        "          'difflib'}\n"  # "did you mean" only on a miss
        "print(sorted(loaded & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"


def test_every_listed_command_loads_under_its_own_name() -> None:
    from reconciler.cli.group import COMMANDS, LazyCommands

    commands = LazyCommands(COMMANDS)
    assert list(commands) == sorted(COMMANDS)
    for name in COMMANDS:
        assert commands[name].name == name
    del commands["schema"]
    assert "schema" not in commands and len(commands) == len(COMMANDS) - 1
