"""Command line: parse, call the core, render. No logic lives here.

Each command's body is owned by the issue that delivers it; shared plumbing
(error handling, connection options) is at the top.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from reconciler import __version__

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn every expected failure into one clear line on stderr and exit 1 — never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from reconciler.api.errors import ApiError, ConfigError
        from reconciler.diagnostics import UserError

        try:
            return func(*args, **kwargs)
        except UserError as exc:
            for diag in exc.diagnostics:
                click.echo(str(diag), err=True)
            sys.exit(1)
        except (ApiError, ConfigError) as exc:
            _fail(f"error: {exc}")
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except Exception as exc:  # a bug: say so in one line; --debug shows the traceback
            if os.environ.get("AMIGO_RECONCILER_DEBUG"):
                raise
            _fail(
                f"internal error: {type(exc).__name__}: {exc} "
                "(set AMIGO_RECONCILER_DEBUG=1 for a traceback, and please report it)"
            )

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
def main() -> None:
    """Declarative GitOps reconciler for Amigo services."""


# --- validate (issue 2) ---------------------------------------------------------


# --- plan (issue 4) -------------------------------------------------------------


# --- apply (issue 5) ------------------------------------------------------------


# --- export (issue 6) -----------------------------------------------------------


# --- emulator (issue 3) ---------------------------------------------------------


# --- schema (issue 2) -----------------------------------------------------------
