"""What every command shares: output, error handling, the runtime, common options.

Only click and the standard library are imported here: each command imports what
it needs when it runs, so `reconciler validate` does not pay for httpx.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

import click

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from reconciler.api.client import AmigoClient
    from reconciler.diagnostics import Diagnostic
    from reconciler.policy.sandbox import Policies
    from reconciler.workflow import Project, Selection

F = TypeVar("F", bound=Callable[..., Any])

# A usage error (unknown flag, missing argument, bad option value) exits 64 (EX_USAGE
# in sysexits.h), not click's 2: under --detailed-exitcode, 2 means "the plan has changes",
# and a pipeline must never read a typo as a plan to apply.
EXIT_USAGE = 64


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print through the one redaction of the API key (reconciler/redaction.py)."""
    from reconciler.redaction import redact

    click.echo(redact(message), err=err, nl=nl)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit `code`."""
    echo(message, err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn every expected failure into one clear line on stderr and exit 1 (64 for a
    UsageProblem: a flag given a value the command cannot take) — never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from reconciler.api.errors import ApiError, ConfigError
        from reconciler.diagnostics import UsageProblem, UserError

        try:
            return func(*args, **kwargs)
        except UserError as exc:
            for diag in exc.diagnostics:
                echo(str(diag), err=True)
            sys.exit(EXIT_USAGE if isinstance(exc, UsageProblem) else 1)
        except (ApiError, ConfigError) as exc:
            fail(f"error: {exc}")
        except (KeyboardInterrupt, click.exceptions.Abort):
            # click raises Abort for Ctrl-C / Ctrl-D at a prompt: the user stopped, no bug
            fail("interrupted", 130)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except Exception as exc:  # a bug: say so in one line; --debug shows the traceback
            if os.environ.get("AMIGO_RECONCILER_DEBUG"):
                raise
            fail(
                f"internal error: {type(exc).__name__}: {exc} "
                "(set AMIGO_RECONCILER_DEBUG=1 for a traceback, and please report it)"
            )

    return wrapper  # type: ignore[return-value]


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


# --- the runtime: what commands take from the outside world ------------------------


class ClientFactory(Protocol):
    """Opens the API client (live API, or the in-process emulator with --emulator)."""

    def __call__(
        self,
        settings: Mapping[str, str | None],
        *,
        emulator_seed: str | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> AmigoClient: ...


def _open_client(
    settings: Mapping[str, str | None],
    *,
    emulator_seed: str | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> AmigoClient:
    from reconciler.connect import open_client

    return open_client(settings, emulator_seed=emulator_seed, on_wait=on_wait)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _stream_is_terminal(err: bool) -> bool:
    stream = sys.stderr if err else sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


@dataclass(frozen=True)
class Runtime:
    """The click context object: how commands reach the API and the terminal.

    Tests pass their own (`CliRunner().invoke(main, args, obj=Runtime(...))`)
    instead of patching module attributes.
    """

    open_client: ClientFactory = _open_client
    stdin_is_terminal: Callable[[], bool] = _stdin_is_terminal  # can a person answer a prompt?
    stream_is_terminal: Callable[[bool], bool] = _stream_is_terminal  # stdout (False) / stderr


def runtime() -> Runtime:
    """The current command's Runtime (the default one outside `main`, e.g. a bare command)."""
    ctx = click.get_current_context(silent=True)
    found = ctx.find_object(Runtime) if ctx is not None else None
    return found if found is not None else Runtime()


# --- connection options --------------------------------------------------------------
# Shared by every command that talks to the API. httpx and the client load when
# `ConnectionOptions.open` is called.


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
    mongo_cluster: str | None = None
    factory: ClientFactory = field(default=_open_client, compare=False, repr=False)
    # The project file's environment (--env): fills what flags and AMIGO_* leave unset.
    selection: Selection | None = None

    def within(self, selection: Selection) -> ConnectionOptions:
        """These flags, over the settings of the environment selected."""
        from dataclasses import replace

        return replace(self, selection=selection)

    def settings(self) -> dict[str, str | None]:
        """The flags keyed by the AMIGO_* names they override (then the environment's)."""
        flags: dict[str, str | None] = {
            "AMIGO_ORGANIZATION_ID": self.organization,
            "AMIGO_BASE_URL": self.base_url,
            "AMIGO_API_KEY_ID": self.api_key_id,
            "AMIGO_USER_ID": self.user_id,
            "AMIGO_MONGO_CLUSTER_NAME": self.mongo_cluster,
        }
        if self.emulator_seed is not None:  # no credentials; the cluster header is still sent
            if self.selection is not None:
                cluster = self.selection.mongo_cluster(self.mongo_cluster, os.environ)
                flags["AMIGO_MONGO_CLUSTER_NAME"] = cluster
            elif not self.mongo_cluster:
                flags["AMIGO_MONGO_CLUSTER_NAME"] = os.environ.get("AMIGO_MONGO_CLUSTER_NAME")
            return flags
        if self.selection is None:
            return flags
        return self.selection.settings(flags, os.environ)

    def overrides(self) -> tuple[str, ...]:
        """The environment's settings a flag replaces, as the plan shows them."""
        if self.selection is None or self.emulator_seed is not None:
            return ()
        return self.selection.overrides(self.settings())

    def open(self, on_wait: Callable[[str], None] | None = None) -> AmigoClient:
        """The client, through the runtime's factory."""
        return self.factory(self.settings(), emulator_seed=self.emulator_seed, on_wait=on_wait)


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
    @click.option(
        "--mongo-cluster",
        metavar="NAME",
        help="Send x-mongo-cluster-name: NAME on every API call (default: "
        "$AMIGO_MONGO_CLUSTER_NAME, else the environment's mongo_cluster; unset: never sent).",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        mongo_cluster: str | None,
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
            mongo_cluster=mongo_cluster,
            factory=runtime().open_client,
        )
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --- environments (reconciler.yaml) ---------------------------------------------------


@dataclass(frozen=True)
class EnvOptions:
    """--env and --config: which environment of which project file (docs/environments.md)."""

    name: str | None = None
    config: str | None = None

    def select(self, paths: Iterable[str] = ()) -> Selection:
        """The project file found for `paths` (or --config) and the environment --env names."""
        from reconciler.diagnostics import UsageProblem
        from reconciler.workflow import select_environment

        try:
            selection = select_environment(self.config, self.name, tuple(paths))
        except UsageProblem as exc:
            raise click.UsageError(exc.diagnostics[0].message) from None
        warn_project(selection.project)
        return selection


def warn_project(project: Project | None) -> None:
    """The project file's warnings, on stderr (they never fail a command)."""
    for warning in project.warnings if project is not None else ():
        echo(str(warning), err=True)


def manifest_paths(selection: Selection, given: Iterable[str]) -> tuple[str, ...]:
    """PATH arguments, else the environment's `paths`; neither is a usage error (exit 64)."""
    from reconciler.diagnostics import UserError

    try:
        return selection.manifest_paths(tuple(given))
    except UserError as exc:
        raise click.UsageError(exc.diagnostics[0].message) from None


def env_options(func: F) -> F:
    """Add --env NAME and --config FILE; pass `env`."""

    @click.option(
        "--env",
        "env_name",
        metavar="NAME",
        envvar="AMIGO_RECONCILER_ENV",
        help="The environment of reconciler.yaml to use (its organization, credentials' "
        "variable names, ${VAR} values, prune, paths, policy, mongo cluster; "
        "default: $AMIGO_RECONCILER_ENV).",
    )
    @click.option(
        "--config",
        metavar="FILE",
        envvar="AMIGO_RECONCILER_CONFIG",
        type=click.Path(dir_okay=False, path_type=str),
        help="The project file (default: $AMIGO_RECONCILER_CONFIG, else the nearest "
        "reconciler.yaml at or above the manifests' common directory, up to the repository "
        "root).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, env_name: str | None, config: str | None, **kwargs: Any) -> Any:
        kwargs["env"] = EnvOptions(env_name, config)
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --- other shared options ------------------------------------------------------------


# plan and apply shape a plan the same way: limited to the named services.
target_option = click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="NAME",
    help="Only this service (repeatable).",
)


def format_option(choices: Iterable[str], help: str) -> Callable[[F], F]:
    """--format FMT (`fmt`), default text."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default="text",
        show_default=True,
        help=help,
    )


policy_timeout_option = click.option(
    "--policy-timeout",
    "policy_timeout",
    type=click.FloatRange(min=0.1),
    default=None,
    metavar="SECONDS",
    help="Wall-clock limit for evaluating the policies (they run in a sandboxed child "
    "process); default: the environment's policy_timeout, else 30.",
)


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
    @policy_timeout_option
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        policy_paths: tuple[str, ...],
        namespaces: tuple[str, ...],
        policy_timeout: float | None,
        **kwargs: Any,
    ) -> Any:
        kwargs["policy"] = PolicyOptions(
            policy_paths, namespaces or ("main",), bool(namespaces), policy_timeout
        )
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class PolicyOptions:
    paths: tuple[str, ...]
    namespaces: tuple[str, ...]
    namespaces_given: bool = False  # --namespace on the command line
    timeout: float | None = None  # --policy-timeout (None: the environment's, else 30)

    def within(self, selection: Selection) -> PolicyOptions:
        """--policy if given, else the selected environment's `policy` paths."""
        return replace(
            self,
            paths=selection.policy(self.paths),
            timeout=selection.policy_timeout(self.timeout),
        )

    def load(self) -> Policies | None:
        """The policy modules, compiled once to fail fast (before any API call); None if none."""
        from reconciler.workflow import load_policies

        if self.namespaces_given and not self.paths:
            raise click.UsageError(
                "--namespace needs --policy (or an --env whose `policy` setting names some)"
            )

        return load_policies(self.paths, self.timeout)


@dataclass(frozen=True)
class ReviewOptions:
    """--max-chars and --link-base (markdown), for `plan` and `show`."""

    max_chars: int | None
    link_base: str | None

    def resolve(self, fmt: str) -> tuple[int | None, str | None]:
        """(cap, link base): the markdown default cap; links from the GitHub environment."""
        from reconciler.github import link_base_from_env
        from reconciler.render import MARKDOWN_MAX_CHARS

        if self.max_chars is not None and fmt != "markdown":
            fail(f"--max-chars applies to --format markdown, not {fmt}", EXIT_USAGE)
        if self.link_base is not None:
            from reconciler.render import link_base_problem

            problem = link_base_problem(self.link_base)
            if problem:
                fail(f"--link-base {self.link_base!r}: {problem}", EXIT_USAGE)
        link = self.link_base or link_base_from_env(os.environ)
        return (self.max_chars or MARKDOWN_MAX_CHARS) if fmt == "markdown" else None, link


def review_options(func: F) -> F:
    """Add --max-chars and --link-base; pass `review`."""

    @click.option(
        "--max-chars",
        type=click.IntRange(min=2_000),
        default=None,
        metavar="N",
        help="markdown: at most N characters, fitted by leaving out whole sections "
        "(default 60000, under GitHub's 65,536-character comment limit).",
    )
    @click.option(
        "--link-base",
        metavar="URL",
        default=None,
        help="markdown: link manifest lines to URL/PATH#LLINE, an http(s) URL (default in GitHub Actions: "
        "the reviewed commit's blob URL).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, max_chars: int | None, link_base: str | None, **kwargs: Any) -> Any:
        return func(*args, review=ReviewOptions(max_chars, link_base), **kwargs)

    return wrapper  # type: ignore[return-value]


def echo_diagnostics(diagnostics: Iterable[Diagnostic], fmt: str) -> None:
    """Text lines on stderr, or GitHub annotations on stdout (where Actions reads them)."""
    for diag in diagnostics:
        if fmt == "github":
            echo(diag.github_annotation())
        else:
            echo(str(diag), err=True)


def install_sigint(handler: Callable[[int, Any], None]) -> Callable[[], None]:
    """Route Ctrl-C to `handler`; returns what restores the previous handler.

    Outside the main thread (embedded use) no handler is installed.
    """
    import signal

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:
        return lambda: None

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    return restore
