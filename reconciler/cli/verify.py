"""`reconciler verify`: run the simulation unit test sets covering version sets."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from reconciler.cli.shared import (
    ConnectionOptions,
    EnvOptions,
    connection_options,
    echo,
    env_options,
    format_option,
    handle_errors,
    install_sigint,
)


@click.command()
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
@format_option(
    ["text", "markdown", "json", "github"],
    "markdown: a pull-request comment; json: machine-readable; github: annotations.",
)
@env_options
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
    env: EnvOptions,
) -> None:
    """Run the simulation unit test sets covering version sets and report per set and metric.

    Exit 0 when every test set passed, 1 when any failed, errored or timed out
    (or a version set has no test set), 130 when cancelled.
    """
    import threading

    from reconciler.render_verify import render_verification
    from reconciler.workflow import load_saved_plan, verification_targets, verify_plan_pairs
    from reconciler.workflow import verify as run

    if plan_file and (services or version_sets):
        raise click.UsageError("give --plan or --service/--version-set, not both")
    if not plan_file and not (services and version_sets):
        raise click.UsageError(
            "name what to verify: --service NAME --version-set SET, or --plan FILE"
        )
    pairs: list[tuple[str, str]]
    saved = None
    if plan_file:
        saved, _ = load_saved_plan(plan_file)
        pairs = verify_plan_pairs(saved)
        if not pairs:
            echo(f"{plan_file} changes no version set: nothing to verify.", err=True)
            return
    else:
        pairs = [(s, v) for s in services for v in version_sets]
    selection = env.select(paths)
    connection = connection.within(selection)
    targets = verification_targets(pairs, paths, selection)
    cancel = threading.Event()
    restore = install_verify_sigint(cancel)
    client = connection.open(on_wait=lambda message: echo(message, err=True))
    try:
        result = run(
            client,
            targets,
            saved=saved,
            environment=selection.name,
            timeout=timeout,
            poll_seconds=poll_seconds,
            on_progress=lambda message: echo(message, err=True),
            cancel=cancel,
        )
    finally:
        restore()
        client.close()
    echo(render_verification(result, fmt), nl=False)
    if result.cancelled:
        sys.exit(130)
    if not result.passed:
        sys.exit(1)


def install_verify_sigint(cancel: threading.Event) -> Callable[[], None]:
    """First Ctrl-C: stop waiting and report what finished. Second: stop now."""

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        echo(
            "\nCancelling: reporting what has finished; runs already started keep running "
            "(Ctrl-C again to stop at once).",
            err=True,
        )

    return install_sigint(on_sigint)
