"""The CLI against an in-process emulator: one Runtime, one client factory, one runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler import cli
from reconciler.api.client import AmigoClient
from reconciler.cli.shared import Runtime
from reconciler.connect import emulator_config
from reconciler.emulator import Emulator


def emulator_client(emulator: Emulator, **options: Any) -> AmigoClient:
    """A client that talks to `emulator` in process (no sockets)."""
    return AmigoClient(emulator_config(emulator), transport=emulator.transport(), **options)


def emulator_runtime(emulator: Emulator, *, terminal: bool = False) -> Runtime:
    """A Runtime whose every connection goes to `emulator`, whatever the flags say."""

    def open_client(settings: Any, *, emulator_seed: Any = None, on_wait: Any = None) -> Any:
        return emulator_client(emulator, on_wait=on_wait)

    return Runtime(open_client=open_client, stdin_is_terminal=lambda: terminal)


def cli_runner(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """`run(*args, input=None, terminal=False)`: the CLI with every connection to `emulator`."""
    monkeypatch.setenv("AMIGO_RECONCILER_DEBUG", "")

    def invoke(*args: str, input: str | None = None, terminal: bool = False) -> Result:
        runtime = emulator_runtime(emulator, terminal=terminal)
        return CliRunner().invoke(
            cli.main, list(args), input=input, catch_exceptions=False, obj=runtime
        )

    return invoke
