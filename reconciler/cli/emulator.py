"""`reconciler emulator`: serve the local Amigo API emulator on 127.0.0.1."""

from __future__ import annotations

import sys

import click

from reconciler.cli.shared import echo, fail, handle_errors


@click.command("emulator")
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
        fail(
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
        echo(
            f"# Amigo API emulator for organization {emulated.organization!r} at "
            f"{server.base_url} (seed: {seed_file}, rate-limit window {window_seconds:g}s). "
            "Ctrl-C stops it.",
            err=True,
        )
        try:
            server.wait()
        except KeyboardInterrupt:
            echo("emulator stopped", err=True)
