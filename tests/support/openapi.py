"""The Amigo OpenAPI document: read from ../shared (never copied into the project).

`$AMIGO_OPENAPI_SPEC` names another path. Tests that need the document skip when it is
absent, unless `$AMIGO_REQUIRE_OPENAPI=1` (.ci/run sets it): then they fail, so CI
cannot pass with the contract checks silently off.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from support.paths import REPO

ENV_SPEC = "AMIGO_OPENAPI_SPEC"
ENV_REQUIRE = "AMIGO_REQUIRE_OPENAPI"
ABSENT = (
    "the Amigo OpenAPI document is absent: put it at ../shared/amigo-openapi.json "
    f"or set {ENV_SPEC} to its path"
)


def spec_path() -> Path | None:
    env = os.environ.get(ENV_SPEC)
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "amigo-openapi.json")
    for path in candidates:
        if path.is_file():
            return path
    return None


def required() -> bool:
    return os.environ.get(ENV_REQUIRE, "") not in ("", "0")


def require_path() -> Path:
    """The document's path; skips the test when it is absent (fails when it is required)."""
    path = spec_path()
    if path is None:
        if required():
            pytest.fail(f"{ABSENT} ({ENV_REQUIRE} is set)", pytrace=False)
        pytest.skip(ABSENT)
    return path


def load() -> dict[str, Any]:
    return json.loads(require_path().read_text(encoding="utf-8"))  # type: ignore[no-any-return]
