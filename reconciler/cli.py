"""Command line: parse, call the core, render. No logic lives here.

Each command's body is owned by the issue that delivers it; shared plumbing
(error handling, connection options) is at the top.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from reconciler import __version__

if TYPE_CHECKING:
    from reconciler.api.client import AmigoClient

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


# --- connection options (issue 3, client) -----------------------------------------
# Shared by every command that talks to the API. Only click and dataclasses here:
# httpx and the client load when `ConnectionOptions.open` is called.


@dataclass(frozen=True)
class ConnectionOptions:
    """Where to connect, from flags; the environment fills the rest when opened.

    The API key is deliberately not a flag: it comes from AMIGO_API_KEY only, so it
    never lands in shell history or process lists.
    """

    organization: str | None = None
    base_url: str | None = None
    api_key_id: str | None = None
    user_id: str | None = None
    emulator_seed: str | None = None

    def settings(self) -> dict[str, str | None]:
        """The flags keyed by the AMIGO_* names they override."""
        return {
            "AMIGO_ORGANIZATION_ID": self.organization,
            "AMIGO_BASE_URL": self.base_url,
            "AMIGO_API_KEY_ID": self.api_key_id,
            "AMIGO_USER_ID": self.user_id,
        }

    def open(self, on_wait: Callable[[str], None] | None = None) -> AmigoClient:
        """The client (live API, or the in-process emulator with --emulator)."""
        from reconciler.connect import open_client

        return open_client(self.settings(), emulator_seed=self.emulator_seed, on_wait=on_wait)


def connection_options(func: F) -> F:
    """Add --organization, --base-url, --api-key-id, --user-id, --emulator; pass `connection`."""

    @click.option(
        "--organization",
        metavar="ID",
        help="Amigo organization id (default: $AMIGO_ORGANIZATION_ID).",
    )
    @click.option(
        "--base-url",
        metavar="URL",
        help="API base URL (default: $AMIGO_BASE_URL, else https://api.amigo.ai).",
    )
    @click.option("--api-key-id", metavar="ID", help="API key id (default: $AMIGO_API_KEY_ID).")
    @click.option("--user-id", metavar="ID", help="User to act as (default: $AMIGO_USER_ID).")
    @click.option(
        "--emulator",
        "emulator_seed",
        metavar="SEED_FILE",
        type=click.Path(exists=True, dir_okay=False),
        help="Run against the local emulator seeded from this file (no credentials needed).",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        organization: str | None,
        base_url: str | None,
        api_key_id: str | None,
        user_id: str | None,
        emulator_seed: str | None,
        **kwargs: Any,
    ) -> Any:
        kwargs["connection"] = ConnectionOptions(
            organization=organization,
            base_url=base_url,
            api_key_id=api_key_id,
            user_id=user_id,
            emulator_seed=emulator_seed,
        )
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --- end connection options -------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
def main() -> None:
    """Declarative GitOps reconciler for Amigo services."""


# --- validate (issue 2) ---------------------------------------------------------


def _echo_diagnostics(diagnostics: Any, fmt: str) -> None:
    """Text lines on stderr, or GitHub annotations on stdout (where Actions reads them)."""
    for diag in diagnostics:
        if fmt == "github":
            click.echo(diag.github_annotation())
        else:
            click.echo(str(diag), err=True)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "github"]),
    default="text",
    show_default=True,
    help="github: print ::error annotations so problems show inline on a pull request.",
)
@handle_errors
def validate(paths: tuple[str, ...], fmt: str) -> None:
    """Check manifests offline: exit 0 when valid, 1 with every problem found."""
    from reconciler.diagnostics import Severity, UserError
    from reconciler.manifests import load_manifests

    try:
        desired = load_manifests(paths)
    except UserError as exc:
        _echo_diagnostics(exc.diagnostics, fmt)
        errors = sum(1 for d in exc.diagnostics if d.severity is Severity.ERROR)
        click.echo(f"{errors} error{'s' if errors != 1 else ''}: manifests are invalid", err=True)
        sys.exit(1)
    _echo_diagnostics(desired.warnings, fmt)
    services = len(desired.services)
    files = len({service.source.file for service in desired.services})
    count = len(desired.warnings)
    warned = f", {count} warning{'s' if count != 1 else ''}" if count else ""
    click.echo(
        f"{services} service{'s' if services != 1 else ''} valid in "
        f"{files} file{'s' if files != 1 else ''}{warned}"
    )


# --- plan (issue 4) -------------------------------------------------------------


# --- apply (issue 5) ------------------------------------------------------------


# --- export (issue 6) -----------------------------------------------------------


# --- emulator (issue 3) ---------------------------------------------------------


# --- schema (issue 2) -----------------------------------------------------------


@main.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Write the schema to this file instead of stdout.",
)
@handle_errors
def schema(out: str | None) -> None:
    """Print the manifest's JSON Schema (what schemas/service.schema.json holds)."""
    from reconciler.schema import render_schema

    text = render_schema()
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        _fail(f"error: cannot write {out}: {exc.strerror}")
    click.echo(f"wrote {out}", err=True)
