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
    from collections.abc import Mapping, Sequence

    from reconciler.api.client import AmigoClient
    from reconciler.policy import JsonInput, PolicyResult
    from reconciler.policy.engine import Module

F = TypeVar("F", bound=Callable[..., Any])


def _echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print through the one redaction of the API key (reconciler/redaction.py)."""
    from reconciler.redaction import redact

    click.echo(redact(message), err=err, nl=nl)


def _fail(message: str, code: int = 1) -> NoReturn:
    _echo(message, err=True)
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
                _echo(str(diag), err=True)
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


# plan and apply shape a plan the same way: limited to the named services.
target_option = click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="NAME",
    help="Only this service (repeatable).",
)


# A usage error (unknown flag, missing argument, bad option value) exits 64 (EX_USAGE
# in sysexits.h), not click's 2: under --detailed-exitcode, 2 means "the plan has changes",
# and a pipeline must never read a typo as a plan to apply.
EXIT_USAGE = 64


class ReconcilerGroup(click.Group):
    """click.Group whose usage errors, wherever raised, exit EXIT_USAGE."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            setattr(exc, "exit_code", EXIT_USAGE)  # noqa: B010 (a ClassVar in the stubs)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            setattr(exc, "exit_code", EXIT_USAGE)  # noqa: B010 (a ClassVar in the stubs)
            raise


# --- policy options (issue 17) --------------------------------------------------
# validate, plan and apply check the manifests / plan against Rego policies.


def policy_options(func: F) -> F:
    """Add --policy (repeatable) and --namespace (repeatable); pass `policy`."""

    @click.option(
        "--policy",
        "policy_paths",
        multiple=True,
        metavar="PATH",
        help="Rego policy file or directory to check against (repeatable; docs/policy.md).",
    )
    @click.option(
        "--namespace",
        "namespaces",
        multiple=True,
        metavar="PACKAGE",
        help="Rego package whose deny/violation/warn rules count (repeatable; default: main).",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any, policy_paths: tuple[str, ...], namespaces: tuple[str, ...], **kwargs: Any
    ) -> Any:
        if namespaces and not policy_paths:
            raise click.UsageError("--namespace needs --policy")
        kwargs["policy"] = PolicyOptions(policy_paths, namespaces or ("main",))
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class PolicyOptions:
    paths: tuple[str, ...]
    namespaces: tuple[str, ...]

    def load(self) -> list[Module] | None:
        """The policy modules, compiled once to fail fast (before any API call); None if none."""
        if not self.paths:
            return None
        from reconciler.policy import load_modules
        from reconciler.policy.engine import Engine

        modules = load_modules(self.paths)
        Engine(modules)
        return modules

    def check(
        self, modules: Sequence[Module], document: Mapping[str, Any] | JsonInput
    ) -> PolicyResult:
        from reconciler.policy import evaluate

        return evaluate(modules, document, self.namespaces)


# --- end policy options ---------------------------------------------------------


@click.group(cls=ReconcilerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
def main() -> None:
    """Declarative GitOps reconciler for Amigo services."""


# --- validate (issue 2) ---------------------------------------------------------


def _echo_diagnostics(diagnostics: Any, fmt: str) -> None:
    """Text lines on stderr, or GitHub annotations on stdout (where Actions reads them)."""
    for diag in diagnostics:
        if fmt == "github":
            _echo(diag.github_annotation())
        else:
            _echo(str(diag), err=True)


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
@policy_options
@handle_errors
def validate(paths: tuple[str, ...], fmt: str, policy: PolicyOptions) -> None:
    """Check manifests offline: exit 0 when valid, 1 with every problem found."""
    from reconciler.diagnostics import Severity, UserError
    from reconciler.manifests import load_manifests

    modules = policy.load()
    try:
        desired = load_manifests(paths)
    except UserError as exc:
        _echo_diagnostics(exc.diagnostics, fmt)
        errors = sum(1 for d in exc.diagnostics if d.severity is Severity.ERROR)
        _echo(f"{errors} error{'s' if errors != 1 else ''}: manifests are invalid", err=True)
        sys.exit(1)
    _echo_diagnostics(desired.warnings, fmt)
    services = len(desired.services)
    files = len({service.source.file for service in desired.services})
    count = len(desired.warnings)
    warned = f", {count} warning{'s' if count != 1 else ''}" if count else ""
    _echo(
        f"{services} service{'s' if services != 1 else ''} valid in "
        f"{files} file{'s' if files != 1 else ''}{warned}"
    )
    if modules is not None:
        from reconciler.policy import validate_input
        from reconciler.policy.render import render

        document = validate_input(desired, organization=os.environ.get("AMIGO_ORGANIZATION_ID"))
        checked = policy.check(modules, document)
        _echo(render(checked, fmt), nl=False)
        if checked.denied:
            sys.exit(1)


# --- plan (issue 4) -------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "--out",
    "out",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=str),
    help="Save the plan as JSON for `reconciler apply FILE` (refused there if stale).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json", "github"]),
    default="text",
    show_default=True,
    help="markdown: a pull-request comment; json: the plan file's content; "
    "github: ::error/::warning annotations.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Deactivate owned services absent from the manifests and delete undeclared "
    "version sets of managed services (never edge or release).",
)
@target_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when the plan has changes (0: none, 1: error).",
)
@policy_options
@connection_options
@handle_errors
def plan(
    paths: tuple[str, ...],
    out: str | None,
    fmt: str,
    prune: bool,
    targets: tuple[str, ...],
    detailed_exitcode: bool,
    connection: ConnectionOptions,
    policy: PolicyOptions,
) -> None:
    """Diff the manifests against live state and show the operations apply would run.

    Exit 0 ok, 1 on any error (manifests, plan checks, API, a policy deny); with
    --detailed-exitcode, 2 when there are changes.
    """
    from reconciler.diagnostics import UserError
    from reconciler.manifests import load_manifests
    from reconciler.plan import save_plan
    from reconciler.planner import make_plan

    modules = policy.load()
    try:  # manifests first: offline mistakes are reported before any connection
        desired = load_manifests(paths)
    except UserError as exc:
        _echo_diagnostics(exc.diagnostics, fmt if fmt == "github" else "text")
        sys.exit(1)

    client = connection.open(on_wait=lambda message: _echo(message, err=True))
    try:
        result = make_plan(client, desired, prune=prune, targets=targets)
    finally:
        client.close()
    checked = None
    if modules is not None:
        from reconciler.policy import plan_input_json

        checked = policy.check(modules, plan_input_json(result))
    denied = checked is not None and bool(checked.denied)
    if out and not denied:
        save_plan(result, out)
    color = fmt == "text" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    _echo_plan_with_policy(result, checked, fmt, color)
    if out and denied:
        _echo(f"Plan not saved to {out}: a policy denies it.", err=True)
    elif out:
        _echo(f"Plan saved to {out}; apply it with: reconciler apply {out}", err=True)
    if result.errors or denied:
        sys.exit(1)
    if detailed_exitcode and result.has_changes:
        sys.exit(2)


def _echo_plan_with_policy(
    result: Any, checked: PolicyResult | None, fmt: str, color: bool
) -> None:
    """The plan, with the policy findings where each format's reader looks for them."""
    from reconciler.render import GITHUB_COMMENT_LIMIT, render_markdown, render_plan

    if checked is None:
        _echo(render_plan(result, fmt, color=color), nl=False)
        return
    from reconciler.policy.render import render

    if fmt == "markdown":  # the policy section heads the pull-request comment
        section = render(checked, "markdown")
        limit = GITHUB_COMMENT_LIMIT - len(section) - 1
        body = render_markdown(result, limit=limit)
        marker, newline, rest = body.partition("\n")  # the hidden digest line stays first
        if not marker.startswith("<!--"):
            marker, newline, rest = "", "", body
        _echo(marker + newline + section + "\n" + rest, nl=False)
    elif fmt == "json":  # stdout stays the plan file; findings go to stderr
        _echo(render_plan(result, fmt), nl=False)
        _echo(render(checked, "text"), err=True, nl=False)
    else:
        _echo(render_plan(result, fmt, color=color), nl=False)
        _echo(render(checked, fmt), nl=False)


# --- apply (issue 5) ------------------------------------------------------------

# Progress bar only for applies long enough to want one.
APPLY_PROGRESS_BAR_MIN_OPERATIONS = 10


def _apply_stdin_is_terminal() -> bool:
    """Whether a person can answer the prompt (tests patch this)."""
    return sys.stdin.isatty()


def _apply_stream_is_terminal(err: bool) -> bool:
    stream = sys.stderr if err else sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def _apply_install_sigint(cancel: Any, abort: Any, applying: Any) -> Callable[[], None]:
    """First Ctrl-C: send nothing new, finish what is on the wire, report. Second: stop
    now, and still report (the apply returns at once; during the convergence check, a
    KeyboardInterrupt ends the check)."""
    import signal

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            _echo(
                "\nStopping now. Operations in flight may or may not have completed; "
                "run plan to see where things stand.",
                err=True,
            )
            abort.set()
            if not applying.is_set():
                raise KeyboardInterrupt
            return
        cancel.set()
        _echo(
            "\nCancelling: nothing new will be sent; waiting for requests already sent "
            "(Ctrl-C again to stop at once).",
            err=True,
        )

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread (embedded use): no handler
        return lambda: None

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    return restore


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation (CI).")
@click.option(
    "--prune",
    is_flag=True,
    help="Also deactivate owned services and delete version sets absent from the manifests.",
)
@target_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: a machine-readable apply report on stdout (progress goes to stderr).",
)
@policy_options
@connection_options
@handle_errors
def apply(
    paths: tuple[str, ...],
    auto_approve: bool,
    prune: bool,
    targets: tuple[str, ...],
    fmt: str,
    connection: ConnectionOptions,
    policy: PolicyOptions,
) -> None:
    """Plan from manifests (or load a saved PLANFILE), confirm, apply, and check convergence.

    Exit 0 when live state converged, 1 when something failed or still differs
    (or a policy denies the plan: nothing is written), 130 when cancelled.
    """
    import json
    import threading

    from reconciler.applier import apply_plan, check_convergence, check_saved_plan
    from reconciler.plan import looks_like_saved_plan
    from reconciler.redaction import redact
    from reconciler.render import render_plan
    from reconciler.report import (
        ApplyProgress,
        Convergence,
        apply_report_json,
        render_apply_text,
    )

    as_json = fmt == "json"
    plans = [path for path in paths if looks_like_saved_plan(path)]
    if plans and len(paths) > 1:
        raise click.UsageError(
            f"{plans[0]} is a saved plan: apply it on its own (`reconciler apply {plans[0]}`), "
            "or pass only manifests"
        )
    saved = bool(plans)
    if saved and (prune or targets):
        raise click.UsageError(
            "--prune and --target shape a plan when it is made; a saved plan already "
            "carries them (run plan again with the flags you want)"
        )
    color = not as_json and _apply_stream_is_terminal(err=False) and not os.environ.get("NO_COLOR")
    bar = _apply_stream_is_terminal(err=True)
    progress: ApplyProgress | None = None
    modules = policy.load()

    def on_wait(message: str) -> None:
        if progress is not None:
            progress.note(message)
        else:
            _echo(message, err=True)

    client = connection.open(on_wait=on_wait)
    try:
        desired = None
        if saved:
            from reconciler.plan import load_plan

            plan = load_plan(paths[0])
            check_saved_plan(client, plan)
        else:
            from reconciler.manifests import load_manifests
            from reconciler.planner import make_plan

            desired = load_manifests(paths)
            plan = make_plan(client, desired, prune=prune, targets=targets)

        shown = render_plan(plan, "text", color=color and not as_json)
        if plan.errors:
            _echo(shown, err=True)
            _fail(f"Refusing to apply: the plan has {len(plan.errors)} error(s) (above).")
        if modules is not None:
            from reconciler.policy import plan_input_json
            from reconciler.policy.render import render

            checked = policy.check(modules, plan_input_json(plan))
            if checked.denied:
                _echo(shown, err=True)
                _echo(render(checked, "text"), err=True, nl=False)
                _fail("Refusing to apply: a policy denies this plan (above); nothing was changed.")
            if checked.findings:
                _echo(render(checked, "text"), err=True, nl=False)
        if not plan.operations:
            if as_json:
                _echo(json.dumps(apply_report_json(plan, None, Convergence(True)), indent=2))
            else:
                _echo(shown)
            return
        _echo(shown, err=as_json)

        if not auto_approve:
            if not _apply_stdin_is_terminal():
                _fail(
                    "stdin is not a terminal, so no one can confirm: pass --auto-approve "
                    "to apply without the prompt (after reviewing the plan, e.g. in CI)"
                )
            count = len(plan.operations)
            answer = click.prompt(
                redact(
                    f"\nApply {count} change{'s' if count != 1 else ''} to organization "
                    f"{plan.organization}? Only 'yes' will be accepted"
                ),
                default="",
                show_default=False,
                err=as_json,
            )
            if answer.strip() != "yes":
                _fail("Apply cancelled; nothing was changed.")

        cancel = client.cancel  # the client sends nothing new once it is set
        abort = threading.Event()
        applying = threading.Event()
        progress = ApplyProgress(
            len(plan.operations),
            lambda text: _echo(text, err=as_json),
            (lambda raw: _echo(raw, err=True, nl=False))
            if bar and len(plan.operations) >= APPLY_PROGRESS_BAR_MIN_OPERATIONS
            else None,
            color=color,
        )
        restore = _apply_install_sigint(cancel, abort, applying)
        try:
            applying.set()
            try:
                report = apply_plan(
                    client, plan, on_event=progress.event, cancel=cancel, abort=abort
                )
            finally:
                applying.clear()
                progress.close()
            convergence: Convergence | None = None
            if not report.cancelled and not abort.is_set():
                try:
                    convergence = check_convergence(
                        client, plan, report, desired, prune=prune, targets=targets
                    )
                except KeyboardInterrupt:
                    convergence = Convergence(False, error="interrupted (Ctrl-C)")
        finally:
            restore()
        if as_json:
            _echo(json.dumps(apply_report_json(plan, report, convergence), indent=2))
        else:
            _echo("")
            _echo(render_apply_text(report, convergence, color=color))
        if abort.is_set():
            # Worker threads may still wait on the network: leave without joining them.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        if report.cancelled:
            sys.exit(130)
        if not report.ok or (convergence is not None and not convergence.converged):
            sys.exit(1)
    finally:
        client.close()


# --- export (issue 6) -----------------------------------------------------------


@main.command("export")
@click.option(
    "--out",
    "out_dir",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Write one file per service into DIR (created). Default: all documents to stdout.",
)
@click.option("--active-only", is_flag=True, help="Leave out inactive services.")
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="NAME",
    help="Export only the services of this name (repeatable).",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist in DIR.")
@click.option(
    "--seed",
    "seed_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write the whole organization as an emulator seed to FILE (no secrets), "
    "for `plan --emulator FILE`; manifests too only with --out.",
)
@connection_options
@handle_errors
def export(
    out_dir: str | None,
    active_only: bool,
    targets: tuple[str, ...],
    force: bool,
    seed_file: str | None,
    connection: ConnectionOptions,
) -> None:
    """Write a manifest for every live service, to adopt an organization as it stands.

    With --seed, write the organization as an emulator seed instead (and the
    manifests as well when --out is given).

    Exit 0 written (warnings on stderr), 1 on any error; nothing is written when a
    file would be overwritten without --force.
    """
    from pathlib import Path

    from reconciler.export import (
        export_manifests,
        export_seed,
        join_documents,
        read_organization,
        read_unit_tests,
        schema_ref_for,
        write_export,
        write_seed_file,
    )

    if seed_file is not None and out_dir is None and (active_only or targets):
        raise click.UsageError(
            "--active-only and --target choose manifests; a seed always copies the whole "
            "organization (add --out DIR to write the chosen manifests too)"
        )
    client = connection.open(on_wait=lambda message: _echo(message, err=True))
    try:
        organization = read_organization(client)
        unit_tests = read_unit_tests(client, organization.services) if seed_file else ()
    finally:
        client.close()
    if seed_file is not None:
        text, warnings = export_seed(client.config.organization, organization, unit_tests)
        for warning in warnings:
            prefix = f"{warning.service}: " if warning.service else ""
            _echo(f"{prefix}{warning}", err=True)
        write_seed_file(text, Path(seed_file), force=force)
        _echo(
            f"Wrote an emulator seed of {len(organization.services)} service(s) and "
            f"{len(unit_tests)} unit test(s) to {seed_file}",
            err=True,
        )
        if out_dir is None:
            return
    schema_ref = schema_ref_for(Path(out_dir) if out_dir is not None else Path.cwd())
    result = export_manifests(
        organization.services,
        organization.agents,
        organization.state_machines,
        active_only=active_only,
        targets=targets,
        schema_ref=schema_ref,
    )
    for warning in result.warnings:
        _echo(f"{warning.service}: {warning}", err=True)
    if out_dir is None:
        _echo(join_documents(result.files, schema_ref), nl=False)
    else:
        written = write_export(result.files, Path(out_dir), force=force)
        _echo(f"Wrote {len(written)} manifest(s) to {out_dir}", err=True)
    if not result.files:
        _echo("No services to export.", err=True)


# --- emulator (issue 3) ---------------------------------------------------------


@main.command("emulator")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port on 127.0.0.1 to serve on (0 picks a free one).",
)
@click.option(
    "--seed",
    "seed_file",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Seed YAML describing the organization (default: examples/emulator-seed.yaml).",
)
@click.option(
    "--window-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Length of the rate-limit window (the live API's is a minute).",
)
@handle_errors
def emulator(port: int, seed_file: str | None, window_seconds: float) -> None:
    """Serve a local Amigo API emulator on 127.0.0.1 until Ctrl-C.

    Prints the environment (throwaway credentials of the emulator) to paste
    into a shell, so the other commands talk to it.
    """
    import shlex

    from reconciler.emulator import Emulator
    from reconciler.emulator.seed import default_seed_path

    if seed_file is None:
        default = default_seed_path()
        if default is None:
            raise click.UsageError("no default seed here; pass --seed FILE")
        seed_file = str(default)
    emulated = Emulator.from_seed(seed_file, window_seconds=window_seconds)
    try:
        server = emulated.serve("127.0.0.1", port)
    except OSError as exc:
        _fail(
            f"error: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}); "
            "choose another port with --port (0 picks a free one)"
        )
    with server:
        env = emulated.credentials(server.base_url)
        for name in (
            "AMIGO_BASE_URL",
            "AMIGO_ORGANIZATION_ID",
            "AMIGO_API_KEY",
            "AMIGO_API_KEY_ID",
            "AMIGO_USER_ID",
        ):
            # The emulator's own throwaway key, printed on purpose: not redacted.
            click.echo(f"export {name}={shlex.quote(env[name])}")
        sys.stdout.flush()
        _echo(
            f"# Amigo API emulator for organization {emulated.organization!r} at "
            f"{server.base_url} (seed: {seed_file}, rate-limit window {window_seconds:g}s). "
            "Ctrl-C stops it.",
            err=True,
        )
        try:
            server.wait()
        except KeyboardInterrupt:
            _echo("emulator stopped", err=True)


# --- policy (issue 17) ----------------------------------------------------------


@main.group("policy")
def policy_group() -> None:
    """Work with Rego policies (docs/policy.md)."""


@policy_group.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@handle_errors
def policy_test(paths: tuple[str, ...]) -> None:
    """Run the policies' own `test_` rules (as `opa test` / `conftest verify`).

    Exit 0 when every test passes, 1 when one fails or a policy is broken.
    """
    from reconciler.policy import load_modules, run_tests

    results = run_tests(load_modules(paths, tests=True))
    for result in results:
        verdict = "PASS" if result.passed else "FAIL"
        _echo(f"{verdict}: {result.name} ({result.pos.file}:{result.pos.line})")
    failed = sum(1 for r in results if not r.passed)
    _echo(f"{len(results) - failed} passed, {failed} failed")
    if not results:
        _fail("no test_ rules found (tests live in *_test.rego files)")
    if failed:
        sys.exit(1)


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
    from reconciler.redaction import redact
    from reconciler.schema import render_schema

    text = render_schema()
    if out is None:
        _echo(text, nl=False)
        return
    try:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(redact(text))
    except OSError as exc:
        _fail(f"error: cannot write {out}: {exc.strerror}")
    _echo(f"wrote {out}", err=True)


# --- ci (issue 13): GitHub Actions steps, logic in reconciler/github.py --------------


@main.group("ci", cls=ReconcilerGroup)
def ci() -> None:
    """Steps of the GitHub workflows (read GITHUB_* variables; see docs/ci.md)."""


def _ci_context() -> Any:
    from reconciler.github import RunContext

    return RunContext.from_env(os.environ)


def _ci_outputs(**values: str) -> None:
    from reconciler.github import append_file

    append_file(os.environ.get("GITHUB_OUTPUT"), "".join(f"{k}={v}\n" for k, v in values.items()))


def _ci_summary(text: str) -> None:
    from reconciler.github import append_file

    append_file(os.environ.get("GITHUB_STEP_SUMMARY"), text.rstrip("\n") + "\n")


def _ci_run_url(context: Any) -> str:
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    return f"{server}/{context.repository}/actions/runs/{os.environ.get('GITHUB_RUN_ID', '')}"


@ci.command("decide")
@click.argument("paths", nargs=-1, required=True)
@click.option("--environment", default="default", show_default=True, help="Environment name.")
@click.option(
    "--credentials/--no-credentials",
    "has_credentials",
    required=True,
    help="Whether the run has AMIGO_API_KEY (or an emulator seed).",
)
@click.option("--comment", "comment_file", default="comment.md", show_default=True, metavar="FILE")
@handle_errors
def ci_decide(
    paths: tuple[str, ...], environment: str, has_credentials: bool, comment_file: str
) -> None:
    """Plan, or skip with a label (no manifest changes; no credentials): output `decision`."""
    from reconciler.github import (
        changed_files,
        decide_plan,
        diff_base,
        failure_comment,
        plan_comment,
    )

    context = _ci_context()
    base = diff_base(context)
    changed = changed_files(base) if base else None
    decision = decide_plan(
        context, has_credentials=has_credentials, changed_files=changed, paths=paths
    )
    _ci_outputs(decision=decision.action, label=decision.label)
    if decision.action == "fail":
        text = failure_comment(
            environment=environment,
            label=decision.label,
            detail=decision.detail + " Nothing was planned.",
            errors="",
            commit=context.pull_request.get("head", {}).get("sha", context.sha),
            run_url=_ci_run_url(context),
        )
        with open(comment_file, "w", encoding="utf-8") as handle:
            handle.write(text)
        _ci_summary(text)
        _fail(f"::error::{decision.detail}")
    _echo(f"reconciler ci decide: {decision.label}")
    if decision.action == "skip":
        text = plan_comment(
            environment=environment,
            exit_code="",
            markdown="",
            errors="",
            commit=context.pull_request.get("head", {}).get("sha", context.sha),
            run_url=_ci_run_url(context),
            plan=None,
            skipped=decision,
        )
        with open(comment_file, "w", encoding="utf-8") as handle:
            handle.write(text)
        _ci_summary(text)
        _echo(f"::notice title=reconciler plan::{decision.label}")


@ci.command("check-tip")
@handle_errors
def ci_check_tip() -> None:
    """Exit 1 unless this run's commit is the tip of the default branch (naming both)."""
    from reconciler.github import GitHubApi, GitHubError, check_tip

    context = _ci_context()
    api = GitHubApi(context)
    try:
        tip = check_tip(context, api.get)
    except GitHubError as exc:
        _ci_summary(f"> [!CAUTION]\n> **Refused: not the tip of the default branch.** {exc}\n")
        raise
    finally:
        api.close()
    _echo(f"commit {tip.tip} is the tip of {tip.branch}")


@ci.command("compare")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--environment",
    default="default",
    show_default=True,
    help="The environment whose pull-request plan to compare with.",
)
@click.option(
    "--apply-environment",
    default="",
    metavar="NAME",
    help="The environment stage 2 applies in (its reviewers approve); default: --environment.",
)
@click.option("--markdown", "markdown_file", default="plan.md", show_default=True, metavar="FILE")
@handle_errors
def ci_compare(
    plan_file: str, environment: str, apply_environment: str, markdown_file: str
) -> None:
    """Compare the plan's digest with the one on the pull request; write stage 1's summary."""
    from pathlib import Path

    from reconciler.github import (
        Comparison,
        GitHubApi,
        GitHubError,
        compare_with_pr,
        find_pr_plan,
        stage1_summary,
    )
    from reconciler.plan import load_plan, plan_digest

    plan = load_plan(plan_file)
    digest = plan_digest(plan)
    context = _ci_context()
    api = GitHubApi(context)
    try:
        pr = find_pr_plan(context, api.get, environment)
        comparison = compare_with_pr(
            digest, plan.manifests_digest, plan.live_fingerprint, pr, context.sha
        )
    except GitHubError as exc:
        comparison = Comparison(
            "unknown",
            "",
            f"> [!WARNING]\n> **Could not read the pull request's plan** ({exc}); "
            "nothing was compared: read the plan below before approving.",
        )
    finally:
        api.close()
    _ci_outputs(digest=digest, match=comparison.status, **{"pr-digest": comparison.pr_digest})
    markdown = Path(markdown_file)
    _ci_summary(
        stage1_summary(
            apply_environment=apply_environment or environment,
            comparison=comparison,
            markdown=markdown.read_text(encoding="utf-8") if markdown.is_file() else "",
            has_changes=plan.has_changes,
        )
    )
    if comparison.status == "differs":
        _echo(
            f"::warning title=plan differs from the pull request's::merge-time plan {digest}, "
            f"pull request plan {comparison.pr_digest}; see the job summary"
        )
    _echo(f"plan digest {digest}: {comparison.status}")


@ci.command("comment")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--environment", default="default", show_default=True, help="Environment name.")
@click.option(
    "--exit-code", required=True, help="The plan step's exit code (empty: the plan did not run)."
)
@click.option(
    "--validation",
    default="",
    metavar="OUTCOME",
    help="The validate step's outcome; `failure` writes a 'validation failed' comment "
    "with the errors of validating PATHS.",
)
@click.option("--artifact", default="", metavar="NAME", help="The plan artifact's name.")
@click.option("--commit", required=True, help="The commit planned (the pull request's head).")
@click.option("--run-url", required=True, help="Link to the workflow run.")
@click.option("--plan-file", default="plan.json", show_default=True, metavar="FILE")
@click.option("--markdown", "markdown_file", default="plan.md", show_default=True, metavar="FILE")
@click.option("--errors", "errors_file", default="plan.err", show_default=True, metavar="FILE")
@click.option("--out", "out", default="comment.md", show_default=True, metavar="FILE")
@handle_errors
def ci_comment(
    paths: tuple[str, ...],
    environment: str,
    exit_code: str,
    validation: str,
    artifact: str,
    commit: str,
    run_url: str,
    plan_file: str,
    markdown_file: str,
    errors_file: str,
    out: str,
) -> None:
    """Write the sticky comment and the job summary: the plan (with the hidden digest
    marker), or why there is none, so an older plan never stays up looking current."""
    import json
    from pathlib import Path

    from reconciler.diagnostics import UserError
    from reconciler.github import VALIDATION_FAILED, failure_comment, plan_comment
    from reconciler.manifests import load_manifests

    def read(name: str) -> str:
        path = Path(name)
        return path.read_text(encoding="utf-8") if path.is_file() else ""

    if not exit_code.strip() or exit_code == "unknown":  # the plan did not run
        if validation == "failure":
            try:
                load_manifests(paths)
                errors = "(validating again found no error: see the workflow run's log)"
            except UserError as exc:
                errors = "\n".join(str(diag) for diag in exc.diagnostics)
            label = VALIDATION_FAILED
            detail = "The manifests have errors, so nothing was planned. Fix them and push."
        elif Path(out).is_file():
            return  # `ci decide` wrote it and the summary (a labelled skip, or a failure)
        else:
            label, errors = "the check failed before planning", ""
            detail = "Nothing was planned: the workflow run's log says which step failed."
        text = failure_comment(
            environment=environment,
            label=label,
            detail=detail,
            errors=errors,
            commit=commit,
            run_url=run_url,
        )
        Path(out).write_text(text, encoding="utf-8")
        _ci_summary(text)
        return

    try:
        saved = json.loads(read(plan_file) or "null")
    except ValueError:
        saved = None
    text = plan_comment(
        environment=environment,
        exit_code=exit_code,
        markdown=read(markdown_file),
        errors=read(errors_file),
        commit=commit,
        run_url=run_url,
        plan=saved if isinstance(saved, dict) else None,
        artifact=artifact,
    )
    Path(out).write_text(text, encoding="utf-8")
    _ci_summary(text)


@ci.command("apply-report")
@click.option("--environment", default="default", show_default=True, help="Environment name.")
@click.option("--exit-code", required=True, help="The apply step's exit code.")
@click.option("--log", "log_file", default="apply.log", show_default=True, metavar="FILE")
@handle_errors
def ci_apply_report(environment: str, exit_code: str, log_file: str) -> None:
    """Write the apply's job summary (what to do after a stale refusal); exit 1 unless applied."""
    from pathlib import Path

    from reconciler.github import apply_summary

    path = Path(log_file)
    log = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    text, ok = apply_summary(
        environment=environment,
        exit_code=exit_code,
        log=log,
        commit=os.environ.get("GITHUB_SHA", ""),
    )
    _ci_summary(text)
    if not ok:
        _fail(
            f"::error::reconciler apply did not apply (exit code {exit_code}); see the job summary"
        )


@ci.command("plan-info")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--expect-digest",
    metavar="DIGEST",
    default=None,
    help="Exit 1 unless the plan has this digest (the one the approver saw); empty: exit 1.",
)
@handle_errors
def ci_plan_info(plan_file: str, expect_digest: str | None) -> None:
    """Print the plan's digest; set outputs `digest` and `has-changes`."""
    from reconciler.plan import load_plan, plan_digest

    if expect_digest is not None and not expect_digest.strip():
        _fail(
            "::error::--expect-digest is empty: stage 1 reported no digest, so nothing shows "
            "which plan the approver saw; nothing was applied: re-run all jobs"
        )
    plan = load_plan(plan_file)
    digest = plan_digest(plan)
    if expect_digest is not None and digest != expect_digest:
        _fail(
            f"::error::{plan_file} has digest {digest}, not {expect_digest} (the plan stage 1 "
            "showed); nothing was applied: re-run all jobs to plan and approve again"
        )
    _ci_outputs(digest=digest, **{"has-changes": str(plan.has_changes).lower()})
    _echo(digest)


@ci.command("export-vars")
@click.option("--environment", default="default", show_default=True, help="Environment name.")
@handle_errors
def ci_export_vars(environment: str) -> None:
    """Export the configuration variables VARIABLE_NAMES lists (from CONFIGURATION_VARIABLES,
    i.e. toJSON(vars)) to GITHUB_ENV for ${VAR} in the manifests, one line each."""
    from reconciler.github import append_file, manifest_vars

    found = manifest_vars(
        os.environ.get("VARIABLE_NAMES", ""),
        os.environ.get("CONFIGURATION_VARIABLES", ""),
        environment,
    )
    for warning in found.warnings:
        _echo(f"::warning::{warning}")
    append_file(os.environ.get("GITHUB_ENV"), "".join(line + "\n" for line in found.env_lines))
    _echo(f"exported {len(found.env_lines)} manifest variable(s)")


@ci.command("drift-report")
@click.option("--environment", default="default", show_default=True, help="Environment name.")
@click.option("--exit-code", required=True, help="The plan step's exit code.")
@click.option("--markdown", "markdown_file", default="plan.md", show_default=True, metavar="FILE")
@click.option("--errors", "errors_file", default="plan.err", show_default=True, metavar="FILE")
@handle_errors
def ci_drift_report(environment: str, exit_code: str, markdown_file: str, errors_file: str) -> None:
    """Write the drift check's job summary (no drift, the drift, or why the check failed)."""
    from pathlib import Path

    from reconciler.github import drift_summary

    def read(name: str) -> str:
        path = Path(name)
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""

    _ci_summary(
        drift_summary(
            environment=environment,
            exit_code=exit_code,
            plan=read(markdown_file),
            errors=read(errors_file),
        )
    )


# --- promote (issue 18) ---------------------------------------------------------

# Exit code when there is nothing to promote (0 written, 1 error, 64 usage error; 2 means
# "changes" under plan --detailed-exitcode, so it is not reused).
PROMOTE_NOTHING_TO_DO = 3


@main.command()
@click.argument("services", nargs=-1, metavar="SERVICE...")
@click.option(
    "--manifests",
    "paths",
    multiple=True,
    required=True,
    metavar="PATH",
    type=click.Path(path_type=str),
    help="Manifest files or directories to edit (repeatable).",
)
@click.option("--from", "source", required=True, metavar="SET", help="Version set to copy.")
@click.option(
    "--to",
    "target",
    default="release",
    show_default=True,
    metavar="SET",
    help="Version set to make equal to --from (never edge).",
)
@click.option("--all", "all_services", is_flag=True, help="Every service that has the --from set.")
@click.option("--dry-run", is_flag=True, help="Print the diff; write nothing.")
@handle_errors
def promote(
    services: tuple[str, ...],
    paths: tuple[str, ...],
    source: str,
    target: str,
    all_services: bool,
    dry_run: bool,
) -> None:
    """Copy one version set's contents to another in the manifests, in place, and print the diff.

    Only the target set's text changes: comments, key order, quoting and every
    other byte stay. Exit 0 promoted, 1 on any error, 3 when there is nothing
    to promote (the target already equals the source).
    """
    from reconciler.promote import NothingToPromote, plan_promotion, write_promotion

    try:
        promotion = plan_promotion(
            paths, services, source=source, target=target, all_services=all_services
        )
    except NothingToPromote as exc:
        _fail(str(exc), PROMOTE_NOTHING_TO_DO)
    for change in promotion.changes:
        _echo(change.diff(), nl=False)
    if not dry_run:
        write_promotion(promotion)
    for name in promotion.unchanged:
        _echo(f"'{name}': '{target}' already equals '{source}'; left as it is", err=True)
    verb = "Would promote" if dry_run else "Promoted"
    names = ", ".join(promotion.promoted)
    _echo(
        f"{verb} '{source}' to '{target}' for {names} in {len(promotion.changes)} file(s)",
        err=True,
    )


# --- verify (issue 18) ----------------------------------------------------------


@main.command()
@click.option(
    "--service",
    "services",
    multiple=True,
    metavar="NAME",
    help="Service to verify (repeatable; each with every --version-set).",
)
@click.option(
    "--version-set",
    "version_sets",
    multiple=True,
    metavar="SET",
    help="Version set to verify, e.g. canary (repeatable).",
)
@click.option(
    "--plan",
    "plan_file",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="Verify the version sets this saved plan creates or changes.",
)
@click.option(
    "--manifests",
    "paths",
    multiple=True,
    metavar="PATH",
    type=click.Path(path_type=str),
    help="Manifests whose version sets' verify.unit_test_sets name the test sets to run.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=1800.0,
    show_default=True,
    help="Seconds to wait for all runs, overall.",
)
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0),
    default=15.0,
    show_default=True,
    help="Seconds between polls of the runs (paced within the API's rate limits).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json", "github"]),
    default="text",
    show_default=True,
    help="markdown: a pull-request comment; json: machine-readable; github: annotations.",
)
@connection_options
@handle_errors
def verify(
    services: tuple[str, ...],
    version_sets: tuple[str, ...],
    plan_file: str | None,
    paths: tuple[str, ...],
    timeout: float,
    poll_seconds: float,
    fmt: str,
    connection: ConnectionOptions,
) -> None:
    """Run the simulation unit test sets covering version sets and report per set and metric.

    Exit 0 when every test set passed, 1 when any failed, errored or timed out
    (or a version set has no test set), 130 when cancelled.
    """
    import threading

    from reconciler.verify import run_verification, targets_from_plan, verify_targets

    if plan_file and (services or version_sets):
        raise click.UsageError("give --plan or --service/--version-set, not both")
    if not plan_file and not (services and version_sets):
        raise click.UsageError(
            "name what to verify: --service NAME --version-set SET, or --plan FILE"
        )
    pairs: list[tuple[str, str]]
    saved = None
    if plan_file:
        from reconciler.plan import load_plan

        saved = load_plan(plan_file)
        pairs = targets_from_plan(saved)
        if not pairs:
            _echo(f"{plan_file} changes no version set: nothing to verify.", err=True)
            return
    else:
        pairs = [(s, v) for s in services for v in version_sets]
    desired = None
    if paths:
        from reconciler.manifests import load_manifests

        desired = load_manifests(paths)
    targets = verify_targets(pairs, desired)
    cancel = threading.Event()
    restore = _verify_install_sigint(cancel)
    client = connection.open(on_wait=lambda message: _echo(message, err=True))
    try:
        if saved is not None:
            from reconciler.plan import check_plan_target

            check_plan_target(
                saved, organization=client.config.organization, base_url=client.config.base_url
            )
        result = run_verification(
            client,
            targets,
            timeout=timeout,
            poll_seconds=poll_seconds,
            on_progress=lambda message: _echo(message, err=True),
            cancel=cancel,
        )
    finally:
        restore()
        client.close()
    from reconciler.render_verify import render_verification

    _echo(render_verification(result, fmt), nl=False)
    if result.cancelled:
        sys.exit(130)
    if not result.passed:
        sys.exit(1)


def _verify_install_sigint(cancel: Any) -> Callable[[], None]:
    """First Ctrl-C: stop waiting and report what finished. Second: stop now."""
    import signal

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        _echo(
            "\nCancelling: reporting what has finished; runs already started keep running "
            "(Ctrl-C again to stop at once).",
            err=True,
        )

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread (embedded use): no handler
        return lambda: None

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    return restore
