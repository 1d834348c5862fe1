"""Shared fixtures: the OpenAPI contract, read from ../shared (never copied into the project)."""

from __future__ import annotations

from typing import Any

import pytest
from support import openapi


@pytest.fixture(scope="session")
def openapi_spec() -> dict[str, Any]:
    """The OpenAPI document (tests/support/openapi.py: skip when absent, fail when required)."""
    return openapi.load()


# --- observers of every Emulator a test builds ---------------------------------------


@pytest.fixture(scope="session", autouse=True)
def session_observers() -> Any:
    """Observers every Emulator built during the session gets (contract checker, secrets guard).

    The emulator takes observers only through its constructor. The session wraps
    the constructor once, here, so that emulators built out of a test's reach
    (the CLI's --emulator, helpers) are observed too; a test that wants its own
    observer passes `observers=` as production code would.
    """
    from reconciler.emulator import Emulator

    observers: list[Any] = []
    original = Emulator.__init__

    def observed(self: Emulator, seed: Any, **options: Any) -> None:
        options["observers"] = (*observers, *options.get("observers", ()))
        original(self, seed, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Emulator, "__init__", observed)
        yield observers


# --- API contract: every exchange with any Emulator is validated (tests/contract.py) ---


def pytest_report_header(config: pytest.Config) -> str:
    path = openapi.spec_path()
    if path is None:
        return f"API contract validation of emulator traffic is OFF: {openapi.ABSENT}"
    return f"API contract validation of emulator traffic: {path}"


def pytest_sessionstart(session: pytest.Session) -> None:
    """With AMIGO_REQUIRE_OPENAPI set (.ci/run), a missing document stops the run at once."""
    if openapi.required() and openapi.spec_path() is None:
        raise pytest.UsageError(f"{openapi.ABSENT} ({openapi.ENV_REQUIRE} is set)")


@pytest.fixture(scope="session", autouse=True)
def _contract_recorder(session_observers: list[Any]) -> Any:
    """Session-wide: registers the contract checker as an observer of every Emulator."""
    path = openapi.spec_path()
    if path is None:
        yield None
        return
    from contract import ContractRecorder

    recorder = ContractRecorder.from_path(path)
    session_observers.append(recorder)
    try:
        yield recorder
    finally:
        session_observers.remove(recorder)


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


# --- secrets guard (issue 8): no API key or token in any output, log, file or report ---
# See tests/_secrets_guard.py for what is scanned and why.


@pytest.fixture(scope="session", autouse=True)
def secrets_guard(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    session_observers: list[Any],
) -> Any:
    """Session-wide: learns every issued token and scans everything tests can see."""
    from _api_fake import API_KEY as FAKE_API_KEY
    from _reliability import CANARY_API_KEY
    from _secrets_guard import SecretsGuard, install, uninstall

    guard = SecretsGuard([CANARY_API_KEY, FAKE_API_KEY])
    session_observers.append(guard.observe)
    request.session._amigo_secrets_guard = guard  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as patch:
        install(guard, patch)
        try:
            yield guard
        finally:
            uninstall(guard)
            session_observers.remove(guard.observe)
    guard.check_tree(tmp_path_factory.getbasetemp())
    leaks = guard.take_leaks()
    if leaks:
        pytest.fail("secrets leaked (session end):\n  " + "\n  ".join(leaks), pytrace=False)


@pytest.fixture(autouse=True)
def _secrets_check(request: pytest.FixtureRequest, secrets_guard: Any) -> Any:
    """Fails the test that leaked a secret (its files under tmp_path included)."""
    secrets_guard.take_leaks()
    # Asked for now, so that tmp_path is torn down after this check reads it.
    tmp = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if tmp is not None:
        secrets_guard.check_tree(tmp)
    leaks = secrets_guard.take_leaks()
    if leaks:
        pytest.fail("secrets leaked:\n  " + "\n  ".join(dict.fromkeys(leaks)), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Also scan what pytest captured for the test (stdout, stderr, log records)."""
    outcome = yield
    report = outcome.get_result()
    guard = getattr(item.session, "_amigo_secrets_guard", None)
    if guard is None or report.when != "call":
        return
    with guard.expect_leaks() as found:
        for name, content in report.sections:
            guard.check(content, f"captured {name}")
    if found and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = "secrets leaked:\n  " + "\n  ".join(dict.fromkeys(found))
