"""`reconciler show FILE`: a saved plan or apply report, rendered again (no manifests, no API)."""

from __future__ import annotations

import click

from reconciler.cli.shared import ReviewOptions, echo, format_option, handle_errors, review_options


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@format_option(
    ["text", "markdown", "json", "github"],
    "As for plan (or verify); an apply report (apply --format json) renders its result.",
)
@review_options
@handle_errors
def show(file: str, fmt: str, review: ReviewOptions) -> None:
    """Render a saved plan (`plan --out`, `plan --env all --format json`), apply report
    (`apply --format json`) or verification (`verify --format json`) again, without
    manifests or the API.

    Exit 0 shown; 1 not such a file (or a malformed report), or a report of an apply
    that did not succeed (failed, not converged, cancelled, not verified) or a
    verification that did not pass, as the command that wrote it exited.
    """
    import sys

    from reconciler.show import render_saved, saved_exit_code
    from reconciler.workflow import load_saved_output

    max_chars, link_base = review.resolve(fmt)
    saved = load_saved_output(file)
    echo(render_saved(saved, fmt, max_chars=max_chars, link_base=link_base), nl=False)
    code = saved_exit_code(saved)
    if code:
        sys.exit(code)
