"""Simulation unit test sets and their runs, as the OpenAPI document describes them.

The seed declares, per unit test, the metrics it checks (success criteria,
each a boolean metric) and its outcomes: pass, fail on named metrics, or error,
optionally only `when` the version set under test pins given version numbers
(so a canary with a bad agent version fails and the release passes), and how
long a run takes. Unit test sets group tests with a run count. A run snapshots
each test's outcome when it is created (the version set as it was then) and
completes `duration_seconds` later on the emulator's clock; until then its
`unit_test_run_results` entries are null. The documented rules: one unfinished
run per user and set (409), unknown or deleted set (404), `failed_metrics` true
as soon as any finished test failed, `errored` when any finished test errored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from reconciler.emulator import models as m

_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class SeedOutcomeWhen(BaseModel):
    """The version numbers (resolved: null means the latest) the version set must pin."""

    model_config = ConfigDict(extra="forbid")

    agent_version_number: int | None = None
    service_hierarchical_state_machine_version_number: int | None = None


class SeedOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    when: SeedOutcomeWhen | None = None
    result: Literal["pass", "fail", "error"] = "pass"
    failed_metrics: list[_Name] = Field(default_factory=list)  # empty with fail: every metric
    error: str = "the simulated conversation could not be run"


class SeedUnitTestSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: _Name
    id: Annotated[str, StringConstraints(pattern=r"^[a-f0-9]{24}$")] | None = None
    description: str | None = None
    unit_tests: list[_Name] = Field(min_length=1)  # names or ids of seed unit tests
    run_count: Annotated[int, Field(ge=1, le=10)] = 1
    is_deleted: bool = False
    updated_at: AwareDatetime | None = None


@dataclass
class UnitTestSetRecord:
    id: str
    name: str
    description: str | None
    unit_test_runs: list[tuple[str, int]]  # (unit test id, run count)
    is_deleted: bool
    created_at: str
    creator: dict[str, str]
    last_triggered_run_id: str | None = None
    updated_at: str = ""

    def __post_init__(self) -> None:
        self.updated_at = self.updated_at or self.created_at


@dataclass(frozen=True)
class _PlannedResult:
    unit_test_id: str
    done_at: float
    runs: int
    result: str
    failed_metric_ids: frozenset[str]
    metric_ids: tuple[str, ...]
    error: str


@dataclass
class _Run:
    id: str
    set_id: str
    user_id: str
    created: float
    specs: list[dict[str, Any]]
    planned: list[_PlannedResult] = field(default_factory=list)

    def done_at(self) -> float:
        return max((p.done_at for p in self.planned), default=self.created)


@dataclass(frozen=True)
class QueryRules:
    """The emulator core's documented query rules, shared so every endpoint reads them alike."""

    page: Callable[[list[Any], int, int], tuple[list[Any], bool, int | None]]
    tag_filters: Callable[[str, Sequence[str]], list[tuple[str, str]]]
    tag_matches: Callable[[Mapping[str, str | None], str, str], bool]
    sort_keys: Callable[[Sequence[str], Sequence[str]], list[tuple[str, bool]]]
    creators: Callable[[Sequence[str]], set[tuple[str, str]]]


class GetUnitTestSetsQuery(m._Query):
    id: list[m.ObjectId] = Field(default_factory=list)
    unit_test_id: list[m.ObjectId] = Field(default_factory=list)
    is_deleted: bool | None = None
    creator: list[str] = Field(default_factory=list)
    tag: list[str] = Field(default_factory=list)
    sort_by: list[str] = Field(default_factory=list)
    limit: Annotated[int, Field(ge=0, le=20)] = 20
    continuation_token: int = 0


class GetRunsQuery(m._Query):
    id: list[m.ObjectId] = Field(default_factory=list)
    simulation_unit_test_set_id: list[m.ObjectId] = Field(default_factory=list)
    is_completed: bool | None = None
    failed_metrics: bool | None = None
    errored: bool | None = None
    creator: list[str] = Field(default_factory=list)
    sort_by: list[str] = Field(default_factory=list)
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None
    limit: Annotated[int, Field(ge=0, le=50)] = 50
    continuation_token: int = 0


class CreateRunRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    simulation_unit_test_set_id: m.ObjectId


# Route templates (method, path segments, operation id), spliced into the core's table.
_ORG_SIMULATION = ("v1", "{organization}", "simulation")
SIMULATION_ROUTES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("GET", (*_ORG_SIMULATION, "unit_test_set", ""), "get-simulation-unit-test-sets"),
    ("GET", (*_ORG_SIMULATION, "unit_test_set_run", ""), "get-simulation-unit-test-set-runs"),
    ("POST", (*_ORG_SIMULATION, "unit_test_set_run", ""), "create-simulation-unit-test-set-run"),
)


class HttpProblem(Exception):
    """An answer other than success (the core turns it into its own error answer)."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(detail)


def metric_id(organization: str, unit_test_id: str, name: str) -> str:
    """A stable metric id for a unit test's named success criterion."""
    return hashlib.sha256(f"{organization}/metric/{unit_test_id}/{name}".encode()).hexdigest()[:24]


class Simulations:
    """Sets and runs over the emulator's own records (passed in, shared, never copied).

    `unit_tests` values need `.id`, `.service_id`, `.version_set`, `.is_deleted`,
    `.metrics` (names), `.outcomes` (SeedOutcome list) and `.duration_seconds`;
    `version_set_of(service_id, name)` answers the set's pinned (agent, state
    machine) version numbers, resolved to the latest where null, and its LLM
    preferences, or None when the set does not exist.
    """

    def __init__(
        self,
        organization: str,
        unit_tests: Mapping[str, Any],
        sets: Sequence[UnitTestSetRecord],
        version_set_of: Callable[[str, str], tuple[int, int, dict[str, Any]] | None],
        clock: Callable[[], float],
        new_id: Callable[[str, int], str],
        queries: QueryRules,
    ) -> None:
        self.organization = organization
        self.unit_tests = unit_tests
        self.sets: dict[str, UnitTestSetRecord] = {s.id: s for s in sets}
        self.runs: dict[str, _Run] = {}
        self._version_set_of = version_set_of
        self._clock = clock
        self._new_id = new_id
        self._q = queries

    # --- shapes ------------------------------------------------------------------

    def set_instance(self, record: UnitTestSetRecord) -> dict[str, Any]:
        return {
            "id": record.id,
            "org_id": self.organization,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "name": record.name,
            "description": record.description,
            "unit_test_runs": [
                {"unit_test_id": test_id, "run_count": count}
                for test_id, count in record.unit_test_runs
            ],
            "last_triggered_run_id": record.last_triggered_run_id,
            "is_deleted": record.is_deleted,
            "tags": [],
            "creator": dict(record.creator),
            "updated_by": dict(record.creator),
        }

    def run_instance(self, run: _Run) -> dict[str, Any]:
        now = self._clock()
        results: list[dict[str, Any] | None] = []
        failed = errored = False
        for planned in run.planned:
            if planned.done_at > now:
                results.append(None)
                continue
            if planned.result == "error":
                errored = True
                results.append(
                    {
                        "unit_test_id": planned.unit_test_id,
                        "metric_evaluation_results": [],
                        "run_errors": [planned.error] * planned.runs,
                    }
                )
                continue
            evaluations = []
            for index, metric in enumerate(planned.metric_ids):
                passed = metric not in planned.failed_metric_ids
                failed = failed or not passed
                evaluations.append(
                    {
                        "metric_id": metric,
                        "results": [
                            [_eval_id(run.id, planned.unit_test_id, index, i), passed]
                            for i in range(planned.runs)
                        ],
                    }
                )
            results.append(
                {
                    "unit_test_id": planned.unit_test_id,
                    "metric_evaluation_results": evaluations,
                    "run_errors": [None] * planned.runs,
                }
            )
        return {
            "org_id": self.organization,
            "id": run.id,
            "is_completed": run.done_at() <= now,
            "simulation_unit_test_set_id": run.set_id,
            "failed_metrics": failed,
            "errored": errored,
            "artifacts_generated": False,
            "unit_test_run_specs": run.specs,
            "unit_test_run_results": results,
            "created_at": _iso(run.created),
            "creator": {"org_id": self.organization, "user_id": run.user_id},
        }

    def metric_ids(self, test: Any) -> set[str]:
        """The metric ids of a unit test's success criteria."""
        return {metric_id(self.organization, test.id, name) for name in test.metrics}

    def success_criteria(self, test: Any) -> list[dict[str, Any]]:
        """A unit test's `success_criterions`: one boolean metric per declared name."""
        return [
            {
                "name": name,
                "metric_id": metric_id(self.organization, test.id, name),
                "criterion": {"type": "boolean", "expected_value": True},
            }
            for name in test.metrics
        ]

    # --- operations ----------------------------------------------------------------

    def get_sets(self, query: Sequence[tuple[str, str]]) -> tuple[int, Any]:
        q = m.parse_query(GetUnitTestSetsQuery, query)
        tags = self._q.tag_filters("tag", q.tag)
        order = self._q.sort_keys(q.sort_by, ("updated_at",))
        sets = list(self.sets.values())
        if q.id:
            sets = [s for s in sets if s.id in set(q.id)]
        if q.unit_test_id:
            wanted = set(q.unit_test_id)
            sets = [s for s in sets if wanted & {t for t, _ in s.unit_test_runs}]
        if q.is_deleted is not None:
            sets = [s for s in sets if s.is_deleted == q.is_deleted]
        if q.creator:
            creators = self._q.creators(q.creator)
            sets = [s for s in sets if (s.creator["org_id"], s.creator["user_id"]) in creators]
        for key, value in tags:  # the emulator's sets carry no tags
            sets = [s for s in sets if self._q.tag_matches({}, key, value)]
        for name, descending in reversed(order):
            sets.sort(key=lambda s, n=name: getattr(s, n), reverse=descending)  # type: ignore[misc]
        page, has_more, token = self._q.page(sets, q.continuation_token, q.limit)
        filter_values = None
        if q.continuation_token == 0:
            creators_seen = {(s.creator["org_id"], s.creator["user_id"]) for s in sets}
            filter_values = {
                "creators": [{"org_id": o, "user_id": u} for o, u in sorted(creators_seen)],
                "unit_test_ids": sorted({t for s in sets for t, _ in s.unit_test_runs}),
                "tags": [],
            }
        return 200, {
            "simulation_unit_test_sets": [self.set_instance(s) for s in page],
            "has_more": has_more,
            "continuation_token": token,
            "filter_values": filter_values,
        }

    def get_runs(self, query: Sequence[tuple[str, str]]) -> tuple[int, Any]:
        q = m.parse_query(GetRunsQuery, query)
        order = self._q.sort_keys(q.sort_by, ("created_at",))
        runs = list(self.runs.values())
        if q.id:
            runs = [r for r in runs if r.id in set(q.id)]
        if q.simulation_unit_test_set_id:
            runs = [r for r in runs if r.set_id in set(q.simulation_unit_test_set_id)]
        if q.creator:
            creators = self._q.creators(q.creator)
            runs = [r for r in runs if (self.organization, r.user_id) in creators]
        if q.created_after is not None:
            runs = [r for r in runs if r.created >= q.created_after.timestamp()]
        if q.created_before is not None:
            runs = [r for r in runs if r.created <= q.created_before.timestamp()]
        for _field, descending in reversed(order):  # `created_at`, the only documented field
            runs.sort(key=lambda r: r.created, reverse=descending)
        shaped = [self.run_instance(r) for r in runs]
        for name in ("is_completed", "failed_metrics", "errored"):
            wanted = getattr(q, name)
            if wanted is not None:
                shaped = [r for r in shaped if r[name] == wanted]
        page, has_more, token = self._q.page(shaped, q.continuation_token, q.limit)
        filter_values = None
        if q.continuation_token == 0:
            filter_values = {
                "creators": [
                    {"org_id": self.organization, "user_id": u}
                    for u in sorted({r["creator"]["user_id"] for r in shaped})
                ],
                "simulation_unit_test_set_ids": sorted(
                    {r["simulation_unit_test_set_id"] for r in shaped}
                ),
                "tags": [],
            }
        return 200, {
            "simulation_unit_test_set_runs": page,
            "has_more": has_more,
            "continuation_token": token,
            "filter_values": filter_values,
        }

    def create_run(self, body: bytes, user: str) -> tuple[int, Any]:
        request = m.parse_body(CreateRunRequest, body)
        record = self.sets.get(request.simulation_unit_test_set_id)
        if record is None or record.is_deleted:
            raise HttpProblem(
                404,
                f"Simulation unit test set {request.simulation_unit_test_set_id} not found.",
            )
        now = self._clock()
        for run in self.runs.values():
            if run.set_id == record.id and run.user_id == user and run.done_at() > now:
                raise HttpProblem(
                    409, "The user already has an unfinished run for this simulation unit test set."
                )
        run = _Run(self._new_id("unit_test_set_runs", len(self.runs)), record.id, user, now, [])
        for test_id, count in record.unit_test_runs:
            test = self.unit_tests.get(test_id)
            if test is None or test.is_deleted:
                continue
            pinned = self._version_set_of(test.service_id, test.version_set)
            prefs: dict[str, Any]
            if pinned is None:
                outcome = SeedOutcome(result="error", error="the version set under test is gone")
                agent, machine, prefs = 0, 0, {}
            else:
                agent, machine, prefs = pinned
                outcome = _outcome_for(test.outcomes, agent, machine)
            metric_ids = tuple(metric_id(self.organization, test.id, n) for n in test.metrics)
            failed = frozenset(
                metric_id(self.organization, test.id, n)
                for n in (outcome.failed_metrics or test.metrics)
            )
            run.specs.append(
                {
                    "unit_test_id": test.id,
                    "run_count": count,
                    "service_hierarchical_state_machine_version_info": [
                        test.service_id,
                        machine,
                    ],
                    "agent_version_info": [test.service_id, agent],
                    "scenario_version_info": [test.scenario_id, 1],
                    "persona_version_info": [test.persona_id, 1],
                    "llm_model_preferences": prefs,
                    "max_interactions": 10,
                    "metrics_to_evaluate": [
                        {
                            "metric_id": ident,
                            "success_criterion_name": name,
                            "success_criterion": {"type": "boolean", "expected_value": True},
                        }
                        for ident, name in zip(metric_ids, test.metrics, strict=True)
                    ],
                }
            )
            run.planned.append(
                _PlannedResult(
                    unit_test_id=test.id,
                    done_at=now + test.duration_seconds,
                    runs=count,
                    result=outcome.result,
                    failed_metric_ids=failed if outcome.result == "fail" else frozenset(),
                    metric_ids=metric_ids,
                    error=outcome.error,
                )
            )
        self.runs[run.id] = run
        record.last_triggered_run_id = run.id
        return 201, {"simulation_unit_test_set_run_id": run.id}


def _outcome_for(outcomes: Sequence[SeedOutcome], agent: int, machine: int) -> SeedOutcome:
    """The first outcome whose `when` matches the pinned versions; pass when none does."""
    for outcome in outcomes:
        when = outcome.when
        if when is None:
            return outcome
        if when.agent_version_number not in (None, agent):
            continue
        if when.service_hierarchical_state_machine_version_number not in (None, machine):
            continue
        return outcome
    return SeedOutcome()


def _eval_id(run_id: str, test_id: str, metric: int, index: int) -> str:
    return hashlib.sha256(f"{run_id}/{test_id}/{metric}/{index}".encode()).hexdigest()[:24]


def _iso(epoch: float) -> str:
    import datetime as dt

    moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
