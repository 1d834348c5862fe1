"""`reconciler environments`: list the environments of reconciler.yaml (a CI matrix)."""

from __future__ import annotations

import json

import click

from reconciler.cli.shared import EnvOptions, echo, env_options, format_option, handle_errors


@click.command()
@format_option(
    ["text", "json"],
    "json: a list for a GitHub Actions matrix (`fromJSON`), one object per environment.",
)
@click.option(
    "--names-only",
    is_flag=True,
    help="With --format json: a list of names only (`matrix: {environment: ...}`).",
)
@click.option(
    "--except",
    "excluded",
    multiple=True,
    metavar="NAME",
    help="Leave this environment out (repeatable), e.g. the one a workflow applies first.",
)
@env_options
@handle_errors
def environments(fmt: str, names_only: bool, excluded: tuple[str, ...], env: EnvOptions) -> None:
    """List the environments of the project file, in file order (no secrets: it holds none).

    With --env NAME, only that one (did-you-mean when unknown).
    """
    from reconciler.diagnostics import UserError

    selection = EnvOptions(None, env.config).select()
    project = selection.project
    if project is None:
        raise UserError(
            "no reconciler.yaml at or above the current directory (up to the repository "
            "root); pass --config FILE (docs/environments.md)"
        )
    for name in excluded:
        project.environment(name)  # an unknown name is a mistake, not a no-op
    chosen = [project.environment(env.name)] if env.name else list(project.environments)
    chosen = [e for e in chosen if e.name not in excluded]
    if fmt == "json":
        listed = [e.name for e in chosen] if names_only else [e.summary() for e in chosen]
        echo(json.dumps(listed))
        return
    for e in chosen:
        extra = [f"organization {e.organization}"]
        if e.prune:
            extra.append("prune")
        if e.mongo_cluster:
            extra.append(f"mongo cluster {e.mongo_cluster}")
        echo(f"{e.name}\t{', '.join(extra)}")
