"""Where the repository's files are, computed once (test files move between folders)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
PACKAGE = REPO / "reconciler"
EXAMPLES = REPO / "examples"
EXAMPLE_SERVICES = EXAMPLES / "services"
SEED = EXAMPLES / "emulator-seed.yaml"  # the example organization the emulator starts from
