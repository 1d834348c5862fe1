"""The shape of every API answer the client parses, checked before anything reads it.

Each model lists only the fields the reconciler reads, after the OpenAPI
document's response schemas: lenient to extra fields, strict about the types of
those it reads, and requiring those whose absence would be misread as a default.
An answer that does not fit raises one `MalformedAnswer` naming the operation
and the field (`services[3].name: missing`), instead of a KeyError deep in the
planner, or a listing that silently ends early (`has_more: true` with no
continuation token). Values are never echoed: an answer may carry anything.

Covered: every list the client reads (services, agents, state machines, unit
tests, unit test sets and their runs), sign-in, create-service and the start of
a unit test set run. The answers of update-service, the version-set PUT and
DELETE are not read (their status says it all).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reconciler.api.errors import ApiError, MalformedAnswer, OutcomeUnknown
from reconciler.api.operations import (
    CREATE_SERVICE,
    CREATE_UNIT_TEST_SET_RUN,
    GET_AGENTS,
    GET_SERVICES,
    GET_STATE_MACHINES,
    GET_UNIT_TEST_SET_RUNS,
    GET_UNIT_TEST_SETS,
    GET_UNIT_TESTS,
    SIGN_IN,
)

# Errors listed in one message; the rest are counted.
ERRORS_SHOWN = 3

NonEmpty = Annotated[str, Field(min_length=1)]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class _Tag(_Answer):
    key: str
    value: str | None = None


class _LLMConfig(_Answer):
    llm_name: str
    params: dict[str, Any] | None = None


class _VersionSet(_Answer):
    # Required though nullable: a missing number must not be read as "latest".
    agent_version_number: int | None
    service_hierarchical_state_machine_version_number: int | None
    llm_model_preferences: dict[str, _LLMConfig]


class _Service(_Answer):
    """`ServiceInstance`: what `LiveService.from_api` reads."""

    id: NonEmpty
    name: str
    description: str
    is_active: bool
    agent_id: str
    service_hierarchical_state_machine_id: str
    # Required: a missing list must not be read as "none" (ownership, diffs, pruning).
    tags: list[_Tag]
    keyterms: list[str]
    version_sets: dict[str, _VersionSet]


class _Versioned(_Answer):
    """An agent or state machine instance."""

    id: NonEmpty
    name: str
    # Required: the plan's deprecation and "no versions" checks read them.
    deprecated: bool
    latest_version: int | None


class _UnitTest(_Answer):
    id: NonEmpty
    name: str
    service_id: str
    service_version_set_name: str
    is_deleted: bool = False


class _TestRunDescriptor(_Answer):
    unit_test_id: str


class _UnitTestSet(_Answer):
    id: NonEmpty
    name: str
    unit_test_runs: list[_TestRunDescriptor]


class _MetricToEvaluate(_Answer):
    metric_id: str
    success_criterion_name: str


class _RunSpec(_Answer):
    unit_test_id: str
    metrics_to_evaluate: list[_MetricToEvaluate]


class _MetricResult(_Answer):
    metric_id: str
    # (evaluation id, passed) pairs; JSON has no tuples, so a two-item list is one.
    results: list[Annotated[tuple[str, bool], Field(strict=False)]]


class _RunResult(_Answer):
    unit_test_id: str
    metric_evaluation_results: list[_MetricResult]
    run_errors: list[str | None]


class _UnitTestSetRun(_Answer):
    """Required flags: a run without `errored` or `failed_metrics` must not read as passed."""

    id: NonEmpty
    is_completed: bool
    failed_metrics: bool
    errored: bool
    unit_test_run_specs: list[_RunSpec]
    unit_test_run_results: list[_RunResult | None]


class _Page(_Answer):
    """A page of a list endpoint: a token must come with `has_more: true`."""

    has_more: bool
    continuation_token: int | None = None

    @model_validator(mode="after")
    def _token_with_more(self) -> _Page:
        if self.has_more and self.continuation_token is None:
            raise ValueError(
                "has_more is true but continuation_token is null (the rest of the list "
                "cannot be read; stopping here would plan against part of it)"
            )
        return self


class _ServicesPage(_Page):
    services: list[_Service]


class _AgentsPage(_Page):
    agents: list[_Versioned]


class _StateMachinesPage(_Page):
    service_hierarchical_state_machines: list[_Versioned]


class _UnitTestsPage(_Page):
    simulation_unit_tests: list[_UnitTest]


class _UnitTestSetsPage(_Page):
    simulation_unit_test_sets: list[_UnitTestSet]


class _UnitTestSetRunsPage(_Page):
    simulation_unit_test_set_runs: list[_UnitTestSetRun]


class _SignIn(_Answer):
    id_token: NonEmpty
    expires_at: Any = None


class _Created(_Answer):
    id: NonEmpty


class _RunCreated(_Answer):
    simulation_unit_test_set_run_id: NonEmpty


_PAGES: dict[str, tuple[type[_Page], str]] = {
    GET_SERVICES: (_ServicesPage, "services"),
    GET_AGENTS: (_AgentsPage, "agents"),
    GET_STATE_MACHINES: (_StateMachinesPage, "service_hierarchical_state_machines"),
    GET_UNIT_TESTS: (_UnitTestsPage, "simulation_unit_tests"),
    GET_UNIT_TEST_SETS: (_UnitTestSetsPage, "simulation_unit_test_sets"),
    GET_UNIT_TEST_SET_RUNS: (_UnitTestSetRunsPage, "simulation_unit_test_set_runs"),
}


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problems(exc: ValidationError) -> str:
    """'services[3].name: missing; ...' — locations and reasons, never the values."""
    rendered = []
    for error in exc.errors(include_input=False, include_url=False):
        where = _where(tuple(error["loc"]))
        reason = "missing" if error["type"] == "missing" else error["msg"]
        rendered.append(f"{where}: {reason}" if where else reason)
    shown = "; ".join(rendered[:ERRORS_SHOWN])
    more = len(rendered) - ERRORS_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def _check(
    model: type[_Answer],
    operation_id: str,
    payload: Any,
    status: int,
    service: str | None,
    error: type[ApiError] = MalformedAnswer,
    hint: str | None = None,
) -> _Answer:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise error(
            operation_id,
            status=status,
            detail=f"the answer is not in the documented shape: {_problems(exc)}",
            service=service,
            hint=hint,
        ) from None


def check_page(
    operation_id: str, payload: Any, status: int
) -> tuple[list[dict[str, Any]], int | None]:
    """A list page's items (as the API sent them) and the next token (None: last page)."""
    model, items_key = _PAGES[operation_id]
    page = _check(model, operation_id, payload, status, None)
    assert isinstance(page, _Page)  # for mypy: _PAGES holds pages only
    items: list[dict[str, Any]] = payload[items_key]
    return items, page.continuation_token if page.has_more else None


def check_sign_in(payload: Any, status: int) -> tuple[str, Any]:
    """(token, expires_at as sent) from a sign-in answer."""
    answer = _check(_SignIn, SIGN_IN, payload, status, None)
    assert isinstance(answer, _SignIn)
    return answer.id_token, answer.expires_at


def check_created(payload: Any, status: int, service: str) -> str:
    """The new service's id from a create-service answer.

    The create succeeded (2xx) but its id cannot be read: the outcome is known to the
    API only, so the caller looks the service up, as after a lost answer.
    """
    answer = _check(
        _Created,
        CREATE_SERVICE,
        payload,
        status,
        service,
        OutcomeUnknown,
        "the service was created but the answer did not say its id; look before re-sending",
    )
    assert isinstance(answer, _Created)
    return answer.id


def check_run_created(payload: Any, status: int) -> str:
    """The new run's id from a create-simulation-unit-test-set-run answer (as for a create:
    the run was started, so an unreadable id is an unknown outcome)."""
    answer = _check(
        _RunCreated,
        CREATE_UNIT_TEST_SET_RUN,
        payload,
        status,
        None,
        OutcomeUnknown,
        "the run was started but the answer did not say its id",
    )
    assert isinstance(answer, _RunCreated)
    return answer.simulation_unit_test_set_run_id
