"""Shared fixtures: the OpenAPI contract, read from ../shared (never copied into the project)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def openapi_spec_path() -> Path | None:
    env = os.environ.get("AMIGO_OPENAPI_SPEC")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "amigo-openapi.json")
    for path in candidates:
        if path.is_file():
            return path
    return None


@pytest.fixture(scope="session")
def openapi_spec() -> dict[str, Any]:
    path = openapi_spec_path()
    if path is None:
        pytest.skip(
            "the Amigo OpenAPI document is absent: put it at ../shared/amigo-openapi.json "
            "or set AMIGO_OPENAPI_SPEC to its path"
        )
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
