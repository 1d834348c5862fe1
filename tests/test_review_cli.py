"""The CLI as its users meet it: colour, messages that say what would be right, plan files.

Each test here pins a fix found by using the tool end to end against the emulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler import cli

REPO = Path(__file__).resolve().parent.parent
SEED = str(REPO / "examples" / "emulator-seed.yaml")
EXAMPLES = str(REPO / "examples" / "services")


def run(args: list[str], env: dict[str, str] | None = None, *, color: bool = False) -> object:
    return CliRunner().invoke(cli.main, args, env=env, color=color, catch_exceptions=False)


# --- colour ----------------------------------------------------------------------


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend stdout and stderr are a terminal (so apply would colour its output)."""
    monkeypatch.setattr(cli, "_apply_stream_is_terminal", lambda err: True)


def test_apply_colours_on_a_terminal(terminal: None) -> None:
    result = CliRunner().invoke(
        cli.main,
        ["apply", EXAMPLES, "--emulator", SEED, "--auto-approve"],
        env={"NO_COLOR": ""},
        color=True,
    )
    assert result.exit_code == 0, result.output
    assert "\x1b[" in result.output  # the control: colour is on without NO_COLOR


def test_apply_respects_no_color(terminal: None) -> None:
    result = CliRunner().invoke(
        cli.main,
        ["apply", EXAMPLES, "--emulator", SEED, "--auto-approve"],
        env={"NO_COLOR": "1"},
        color=True,
    )
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.output
