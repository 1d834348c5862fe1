"""`reconciler schema`: print (or write) the manifest's JSON Schema."""

from __future__ import annotations

import click

from reconciler.cli.shared import echo, fail, handle_errors


@click.command()
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
        echo(text, nl=False)
        return
    try:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(redact(text))
    except OSError as exc:
        fail(f"error: cannot write {out}: {exc.strerror}")
    echo(f"wrote {out}", err=True)
