"""Command line: parse, call the workflow, render. No logic lives here.

One module per command (`validate.py`, `plan.py`, `apply.py`, ...); `group.py`
holds the `reconciler` group and which module each command lives in;
`shared.py` the output, error handling, runtime (the client factory on the
click context object) and options every command shares.
"""

from reconciler.cli.group import main

__all__ = ["main"]
