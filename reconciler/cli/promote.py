"""`reconciler promote`: copy one version set's contents to another, in the manifests."""

from __future__ import annotations

import click

from reconciler.cli.shared import EnvOptions, echo, env_options, fail, handle_errors

# Exit code when there is nothing to promote (0 written, 1 error, 64 usage error; 2 means
# "changes" under plan --detailed-exitcode, so it is not reused).
PROMOTE_NOTHING_TO_DO = 3


@click.command()
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
@env_options
@handle_errors
def promote(
    services: tuple[str, ...],
    paths: tuple[str, ...],
    source: str,
    target: str,
    all_services: bool,
    dry_run: bool,
    env: EnvOptions,
) -> None:
    """Copy one version set's contents to another in the manifests, in place, and print the diff.

    Only the target set's text changes: comments, key order, quoting and every
    other byte stay. Exit 0 promoted, 1 on any error, 3 when there is nothing
    to promote (the target already equals the source), 64 on a usage error.
    With --env, only the services declared for that environment are seen
    (`metadata.environments`), and `${VAR}` is filled from its variables.
    """
    import functools
    import os

    from reconciler.promote import (
        NothingToPromote,
        PromotionUsage,
        plan_promotion,
        write_promotion,
    )
    from reconciler.workflow import select_services

    selection = env.select(paths)
    try:
        promotion = plan_promotion(
            paths,
            services,
            source=source,
            target=target,
            all_services=all_services,
            env=selection.variables(os.environ),
            select=functools.partial(select_services, selection=selection)
            if selection.name is not None
            else None,
        )
    except PromotionUsage as exc:
        raise click.UsageError(exc.diagnostics[0].message) from None
    except NothingToPromote as exc:
        fail(str(exc), PROMOTE_NOTHING_TO_DO)
    for change in promotion.changes:
        echo(change.diff(), nl=False)
    if not dry_run:
        write_promotion(promotion)
    for name in promotion.unchanged:
        echo(f"'{name}': '{target}' already equals '{source}'; left as it is", err=True)
    verb = "Would promote" if dry_run else "Promoted"
    names = ", ".join(promotion.promoted)
    echo(
        f"{verb} '{source}' to '{target}' for {names} in {len(promotion.changes)} file(s)",
        err=True,
    )
