"""`reconciler validate`: check manifests offline (and against policies)."""

from __future__ import annotations

import os
import sys

import click

from reconciler.cli.shared import (
    EnvOptions,
    PolicyOptions,
    echo,
    echo_diagnostics,
    env_options,
    format_option,
    handle_errors,
    manifest_paths,
    policy_options,
    warn_project,
)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@format_option(
    ["text", "github"],
    "github: print ::error annotations so problems show inline on a pull request.",
)
@click.option(
    "--manifests-only",
    is_flag=True,
    help="Skip given files that are not Amigo manifests (no `apiVersion: amigo.ai/...` "
    "line), except the project file (reconciler.yaml, or `version:` and `environments:` "
    "at the top level), which is validated: for the pre-commit hook, which passes every "
    "changed YAML file.",
)
@policy_options
@env_options
@handle_errors
def validate(
    paths: tuple[str, ...], fmt: str, manifests_only: bool, policy: PolicyOptions, env: EnvOptions
) -> None:
    """Check manifests offline: exit 0 when valid, 1 with every problem found.

    A reconciler.yaml found beside the manifests is validated too; with --env its
    variables fill ${VAR} and only that environment's services are checked.
    """
    from reconciler.diagnostics import Severity, UserError
    from reconciler.workflow import check_manifests_policy, load_desired

    if manifests_only:
        from reconciler.workflow import find_and_load_project, manifest_files, project_files

        projects = project_files(paths)
        for project in projects:  # the project file is checked, never skipped
            try:
                warn_project(find_and_load_project(project, ()))
            except UserError as exc:
                echo_diagnostics(exc.diagnostics, fmt)
                echo(f"{project}: the project file is invalid", err=True)
                sys.exit(1)
        kept = [p for p in manifest_files(paths) if p not in projects]
        if not kept:
            valid = f"{', '.join(projects)} valid; " if projects else ""
            echo(f"{valid}no Amigo manifests among {len(paths)} file(s): nothing to validate")
            return
        paths = tuple(kept)
    try:
        selection = env.select(paths)
        paths = manifest_paths(selection, paths)
    except UserError as exc:
        echo_diagnostics(exc.diagnostics, fmt)
        sys.exit(1)
    policy = policy.within(selection)
    modules = policy.load()
    try:
        desired = load_desired(paths, selection)
    except UserError as exc:
        echo_diagnostics(exc.diagnostics, fmt)
        errors = sum(1 for d in exc.diagnostics if d.severity is Severity.ERROR)
        echo(f"{errors} error{'s' if errors != 1 else ''}: manifests are invalid", err=True)
        sys.exit(1)
    echo_diagnostics(desired.warnings, fmt)
    services = len(desired.services)
    files = len({service.source.file for service in desired.services})
    count = len(desired.warnings)
    warned = f", {count} warning{'s' if count != 1 else ''}" if count else ""
    echo(
        f"{services} service{'s' if services != 1 else ''} valid in "
        f"{files} file{'s' if files != 1 else ''}{warned}"
    )
    if modules is not None:
        from reconciler.policy.render import render

        checked = check_manifests_policy(
            modules,
            desired,
            policy.namespaces,
            organization=os.environ.get("AMIGO_ORGANIZATION_ID")
            or (selection.environment.organization if selection.environment else None),
            environment=selection.name,
        )
        echo(render(checked, fmt), nl=False)
        if checked.denied:
            sys.exit(1)
