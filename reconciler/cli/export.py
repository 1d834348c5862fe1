"""`reconciler export`: write manifests (or an emulator seed) for the live organization."""

from __future__ import annotations

import click

from reconciler.cli.shared import (
    ConnectionOptions,
    EnvOptions,
    connection_options,
    echo,
    env_options,
    handle_errors,
)


@click.command("export")
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
@env_options
@connection_options
@handle_errors
def export(
    out_dir: str | None,
    active_only: bool,
    targets: tuple[str, ...],
    force: bool,
    seed_file: str | None,
    connection: ConnectionOptions,
    env: EnvOptions,
) -> None:
    """Write a manifest for every live service, to adopt an organization as it stands.

    With --seed, write the organization as an emulator seed instead (and the
    manifests as well when --out is given).

    Exit 0 written (warnings on stderr), 1 on any error; nothing is written when a
    file would be overwritten without --force.
    """
    from reconciler.workflow import (
        export_manifests,
        export_seed,
        manifests_text,
        read_for_export,
        write_manifests,
        write_seed,
    )

    if seed_file is not None and out_dir is None and (active_only or targets):
        raise click.UsageError(
            "--active-only and --target choose manifests; a seed always copies the whole "
            "organization (add --out DIR to write the chosen manifests too)"
        )
    # The project file is looked for from DIR (or here); --env picks the organization.
    connection = connection.within(env.select([out_dir] if out_dir else []))
    client = connection.open(on_wait=lambda message: echo(message, err=True))
    try:
        organization, unit_tests = read_for_export(client, with_unit_tests=bool(seed_file))
    finally:
        client.close()
    if seed_file is not None:
        text, warnings = export_seed(client.config.organization, organization, unit_tests)
        for warning in warnings:
            prefix = f"{warning.service}: " if warning.service else ""
            echo(f"{prefix}{warning}", err=True)
        write_seed(text, seed_file, force=force)
        echo(
            f"Wrote an emulator seed of {len(organization.services)} service(s) and "
            f"{len(unit_tests)} unit test(s) to {seed_file}",
            err=True,
        )
        if out_dir is None:
            return
    exported = export_manifests(
        organization, out_dir=out_dir, active_only=active_only, targets=targets
    )
    for warning in exported.result.warnings:
        echo(f"{warning.service}: {warning}", err=True)
    if out_dir is None:
        echo(manifests_text(exported), nl=False)
    else:
        written = write_manifests(exported, out_dir, force=force)
        echo(f"Wrote {len(written)} manifest(s) to {out_dir}", err=True)
    if not exported.result.files:
        echo("No services to export.", err=True)
