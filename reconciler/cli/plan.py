"""`reconciler plan`: diff the manifests against live state; show (and save) the plan."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from reconciler.cli.shared import (
    ConnectionOptions,
    EnvOptions,
    PolicyOptions,
    ReviewOptions,
    connection_options,
    echo,
    echo_diagnostics,
    env_options,
    format_option,
    handle_errors,
    manifest_paths,
    policy_options,
    review_options,
    target_option,
    warn_project,
)

if TYPE_CHECKING:
    from reconciler.plan import Plan
    from reconciler.policy import PolicyResult


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--out",
    "out",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=str),
    help="Save the plan as JSON for `reconciler apply FILE` (refused there if stale).",
)
@format_option(
    ["text", "markdown", "json", "github"],
    "markdown: a pull-request comment; json: the plan file's content; "
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
@review_options
@click.option(
    "--no-rehearse",
    "no_rehearse",
    is_flag=True,
    help="Skip the rehearsal (the plan applied first to an in-memory copy of live state).",
)
@click.option(
    "--allow-rehearsal-failure",
    is_flag=True,
    help="Exit 0 even when the rehearsal's emulator refuses an operation or the plan "
    "would not converge (the finding is still shown and saved).",
)
@policy_options
@env_options
@connection_options
@handle_errors
def plan(
    paths: tuple[str, ...],
    out: str | None,
    fmt: str,
    prune: bool,
    targets: tuple[str, ...],
    detailed_exitcode: bool,
    review: ReviewOptions,
    no_rehearse: bool,
    allow_rehearsal_failure: bool,
    connection: ConnectionOptions,
    policy: PolicyOptions,
    env: EnvOptions,
) -> None:
    """Diff the manifests against live state and show the operations apply would run.

    PATHS default to the environment's `paths` (reconciler.yaml). `--env all` plans
    every environment of the project file into one report, a section each.

    Exit 0 ok, 1 on any error (manifests, plan checks, API, a policy deny,
    a failed rehearsal unless --allow-rehearsal-failure); with --detailed-exitcode, 2
    when there are changes.
    """
    from reconciler.diagnostics import UserError
    from reconciler.workflow import (
        check_plan_policy,
        load_desired,
        make_plan,
        means_every_environment,
        save_plan,
    )

    if means_every_environment(env.name):
        if out:
            raise click.UsageError(
                "--out saves one environment's plan: use --env NAME (--env all is for review)"
            )
        plan_all(
            paths,
            fmt,
            prune,
            targets,
            detailed_exitcode,
            connection,
            policy,
            env,
            review,
            rehearse=not no_rehearse,
            allow_rehearsal_failure=allow_rehearsal_failure,
        )
        return
    selection = env.select(paths)
    paths = manifest_paths(selection, paths)
    policy = policy.within(selection)
    connection = connection.within(selection)
    prune = selection.prune(prune)
    modules = policy.load()
    try:  # manifests first: offline mistakes are reported before any connection
        desired = load_desired(paths, selection)
    except UserError as exc:
        echo_diagnostics(exc.diagnostics, fmt if fmt == "github" else "text")
        sys.exit(1)

    client = connection.open(on_wait=lambda message: echo(message, err=True))
    try:
        result = make_plan(
            client,
            desired,
            prune=prune,
            targets=targets,
            environment=selection.name,
            rehearse=not no_rehearse,
            overrides=connection.overrides(),
        )
    finally:
        client.close()
    checked = None
    if modules is not None:
        checked = check_plan_policy(modules, result, policy.namespaces)
    denied = checked is not None and bool(checked.denied)
    if out and not denied:
        save_plan(result, out)
    color = fmt == "text" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    echo_plan_with_policy(result, checked, fmt, color, review)
    if out and denied:
        echo(f"Plan not saved to {out}: a policy denies it.", err=True)
    elif out:
        echo(f"Plan saved to {out}; apply it with: reconciler apply {out}", err=True)
    rehearsal_failed = result.rehearsal is not None and result.rehearsal.failed
    if rehearsal_failed and allow_rehearsal_failure:
        echo("The rehearsal failed; exit 0 because of --allow-rehearsal-failure.", err=True)
    if result.errors or denied or (rehearsal_failed and not allow_rehearsal_failure):
        sys.exit(1)
    if detailed_exitcode and result.has_changes:
        sys.exit(2)


def echo_plan_with_policy(
    result: Plan, checked: PolicyResult | None, fmt: str, color: bool, review: ReviewOptions
) -> None:
    """The plan, with the policy findings where each format's reader looks for them."""
    from reconciler.render import render_plan

    max_chars, link_base = review.resolve(fmt)
    if checked is None:
        echo(
            render_plan(result, fmt, color=color, max_chars=max_chars, link_base=link_base),
            nl=False,
        )
        return
    from reconciler.policy.render import render

    if fmt == "markdown":  # the policy section heads the pull-request comment
        section = render(checked, "markdown")
        body = render_plan(
            result, fmt, max_chars=(max_chars or 0) - len(section) - 1, link_base=link_base
        )
        marker, newline, rest = body.partition("\n")  # the hidden digest line stays first
        if not marker.startswith("<!--"):
            marker, newline, rest = "", "", body
        echo(marker + newline + section + "\n" + rest, nl=False)
    elif fmt == "json":  # stdout stays the plan file; findings go to stderr
        echo(render_plan(result, fmt), nl=False)
        echo(render(checked, "text"), err=True, nl=False)
    else:
        echo(render_plan(result, fmt, color=color), nl=False)
        echo(render(checked, fmt), nl=False)


def plan_all(
    paths: tuple[str, ...],
    fmt: str,
    prune: bool,
    targets: tuple[str, ...],
    detailed_exitcode: bool,
    connection: ConnectionOptions,
    policy: PolicyOptions,
    env: EnvOptions,
    review: ReviewOptions,
    *,
    rehearse: bool,
    allow_rehearsal_failure: bool,
) -> None:
    """`plan --env all`: each environment planned as `--env NAME` would, one report.

    Each environment reads what its own plan needs and nothing more (the same reads
    as planning it alone); manifests are loaded once per environment, because its
    variables fill `${VAR}` differently.
    """
    from reconciler.diagnostics import UserError
    from reconciler.render import render_environments
    from reconciler.workflow import check_plan_policy, each_environment, load_desired, make_plan

    results: list[tuple[str, Plan, PolicyResult | None]] = []
    selections = each_environment(env.config, paths)
    warn_project(selections[0].project if selections else None)
    for selection in selections:
        name = selection.name or ""
        own_policy = policy.within(selection)
        modules = own_policy.load()
        try:
            desired = load_desired(manifest_paths(selection, paths), selection)
        except UserError as exc:
            echo(f"environment {name}:", err=True)
            echo_diagnostics(exc.diagnostics, fmt if fmt == "github" else "text")
            sys.exit(1)
        connected = connection.within(selection)
        client = connected.open(on_wait=lambda message: echo(message, err=True))
        try:
            result = make_plan(
                client,
                desired,
                prune=selection.prune(prune),
                targets=targets,
                environment=selection.name,
                rehearse=rehearse,
                overrides=connected.overrides(),
            )
        finally:
            client.close()
        checked = (
            check_plan_policy(modules, result, own_policy.namespaces)
            if modules is not None
            else None
        )
        results.append((name, result, checked))
    color = fmt == "text" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    max_chars, link_base = review.resolve(fmt)
    echo(
        render_environments(results, fmt, color=color, max_chars=max_chars, link_base=link_base),
        nl=False,
    )
    rehearsal_failed = any(r.rehearsal is not None and r.rehearsal.failed for _, r, _ in results)
    if rehearsal_failed and allow_rehearsal_failure:
        echo("A rehearsal failed; exit 0 because of --allow-rehearsal-failure.", err=True)
    failed = any(r.errors or (c is not None and c.denied) for _, r, c in results) or (
        rehearsal_failed and not allow_rehearsal_failure
    )
    if failed:
        sys.exit(1)
    if detailed_exitcode and any(r.has_changes for _, r, _ in results):
        sys.exit(2)
