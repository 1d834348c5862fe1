"""The console-script entry: answers `--version` before click is imported.

`reconciler --version` is what install checks and CI images run; click and what
it imports (inspect, typing, enum) cost about three bare interpreter starts, so
the static version string is printed without them. Everything else, `-V`-style
variants included, goes to the click application in reconciler/cli/.
"""

from __future__ import annotations

import sys

from reconciler import __version__


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"reconciler, version {__version__}\n")
        return
    from reconciler.cli import main as cli_main

    cli_main()
