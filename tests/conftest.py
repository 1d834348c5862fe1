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


# --- API contract: every exchange with any Emulator is validated (tests/contract.py) ---

_CONTRACT_SKIPPED = (
    "API contract validation of emulator traffic is OFF: the Amigo OpenAPI document is "
    "absent (put it at ../shared/amigo-openapi.json or set AMIGO_OPENAPI_SPEC)"
)


def pytest_report_header(config: pytest.Config) -> str:
    if openapi_spec_path() is None:
        return _CONTRACT_SKIPPED
    return f"API contract validation of emulator traffic: {openapi_spec_path()}"


@pytest.fixture(scope="session", autouse=True)
def _contract_recorder() -> Any:
    """Session-wide: registers the contract checker as an observer of every Emulator."""
    path = openapi_spec_path()
    if path is None:
        yield None
        return
    from contract import ContractRecorder

    from reconciler.emulator import EXCHANGE_OBSERVERS

    recorder = ContractRecorder.from_path(path)
    EXCHANGE_OBSERVERS.append(recorder)
    try:
        yield recorder
    finally:
        EXCHANGE_OBSERVERS.remove(recorder)


@pytest.fixture(autouse=True)
def _contract_check(request: pytest.FixtureRequest, _contract_recorder: Any) -> Any:
    """Fails the test whose emulator traffic broke the API contract (request or answer)."""
    if _contract_recorder is None:
        yield
        return
    _contract_recorder.begin(
        allow_invalid_requests="allow_invalid_requests" in request.fixturenames
    )
    yield
    problems = _contract_recorder.end()
    if problems:
        shown = "\n  ".join(dict.fromkeys(problems))
        pytest.fail(f"API contract violations in emulator traffic:\n  {shown}", pytrace=False)


@pytest.fixture
def allow_invalid_requests() -> None:
    """Declares that a test sends requests that break the contract on purpose (401, 422...).

    The emulator's answers are still validated; only the request-side checks are off.
    """
