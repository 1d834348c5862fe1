"""Shared by the reliability suites (fault matrix, crash, load, properties, secrets).

A realistic organization and a manifest tree whose plan has 32 operations of
every kind (create, create + dependent upsert, update, adopt, activate,
deactivate, upsert of a new and of an existing version set, delete), and the
checks that turn "it converged and lost nothing" into assertions:

* `effect_holds` says whether one operation's effect is visible in live state,
  so an apply report can be held against what really happened;
* `assert_report_true` does that for every result of a report;
* `snapshot` / `assert_nothing_lost` compare whole organizations by name.

Each (endpoint, service) pair occurs at most once in the plan, so a fault
injected with `Emulator.inject(endpoint, fault, service_name=op.service)` hits
exactly the operation it is meant for.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.api.client import AmigoClient
from reconciler.api.config import ApiConfig
from reconciler.api.retry import RetryPolicy
from reconciler.applier import ENDPOINT, ApplyReport, Status, update_holds
from reconciler.connect import emulator_config
from reconciler.emulator import Emulator
from reconciler.model import VersionSet
from reconciler.plan import Action, Operation, Plan

# Canary credentials: distinctive values that must never show anywhere (see
# tests/_secrets_guard.py, which scans every test's output for them).
CANARY_API_KEY = "CANARY-api-key-0f9c2d7e4b1a8c3d"
CANARY_API_KEY_ID = "canary-key-id-51"
CANARY_USER_ID = "canary-user-7"
CANARY_CREDENTIALS = {
    "api_key": CANARY_API_KEY,
    "api_key_id": CANARY_API_KEY_ID,
    "user_id": CANARY_USER_ID,
}

OWNED = {"managed_by": "amigo_reconciler"}
WRITES = tuple(ENDPOINT.values())


def _service(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": fields.pop("description", f"{name} (as it was)"),
        "agent": fields.pop("agent", "Concierge"),
        "service_hierarchical_state_machine": fields.pop("sm", "Intake"),
        **fields,
    }


def realistic_seed(organization: str = "reliability-org", **extra: Any) -> dict[str, Any]:
    """A clinic network's organization: owned, hand-made, retired and drifting services."""
    services: list[dict[str, Any]] = []
    for i in range(1, 7):
        version_sets: dict[str, Any] = {"release": {"agent_version_number": 3}}
        if i <= 3:
            version_sets["old"] = {"agent_version_number": 2}
        else:
            version_sets["canary"] = {"agent_version_number": 2}
        services.append(
            _service(
                f"Owned {i}",
                tags={**OWNED, "team": "care"},
                keyterms=["clinic"],
                version_sets=version_sets,
            )
        )
    services += [
        _service("Hand Made", tags={"team": "ops"}),
        _service("Retired", is_active=False, tags=dict(OWNED)),
        _service("Leftover", tags=dict(OWNED)),
        _service("Unowned Extra", tags={"team": "lab"}, version_sets={"lab": {}}),
    ]
    return {
        "organization": organization,
        "credentials": dict(CANARY_CREDENTIALS),
        "agents": [
            {"name": "Concierge", "latest_version": 5},
            {"name": "Triage", "latest_version": 7},
        ],
        "state_machines": [
            {"name": "Intake", "latest_version": 6},
            {"name": "Billing flow", "latest_version": 3},
        ],
        "services": services,
        # A unit test on a version set nothing touches: realistic, and never in the way.
        "unit_tests": [{"name": "smoke", "service": "Owned 1", "version_set": "release"}],
        **extra,
    }


def manifest(name: str, spec: str) -> str:
    return (
        "apiVersion: amigo.ai/v1\nkind: Service\nmetadata:\n"
        f"  name: {name}\nspec:\n" + textwrap.indent(textwrap.dedent(spec).strip(), "  ") + "\n"
    )


def realistic_manifests() -> str:
    """Desired state for `realistic_seed`: with --prune, a plan of 32 operations."""
    docs = []
    for i in range(1, 7):
        docs.append(
            manifest(
                f"Owned {i}",
                f"""
                description: Owned service {i}, now documented
                agent: Concierge
                service_hierarchical_state_machine: Intake
                version_sets:
                  release: {{agent_version_number: 3}}
                  canary: {{agent_version_number: 5, service_hierarchical_state_machine_version_number: {i}}}
                """,
            )
        )
    docs.append(
        manifest(
            "Hand Made",
            """
            description: Hand Made (as it was)
            agent: Concierge
            service_hierarchical_state_machine: Intake
            version_sets:
              canary: {agent_version_number: 4}
            """,
        )
    )
    docs.append(
        manifest(
            "Retired",
            """
            description: Retired (as it was)
            agent: Concierge
            service_hierarchical_state_machine: Intake
            """,
        )
    )
    for i in range(1, 9):
        canary = "canary: {agent_version_number: 6}" if i <= 5 else "# release only"
        docs.append(
            manifest(
                f"New {i}",
                f"""
                description: New service {i}
                agent: Triage
                service_hierarchical_state_machine: Billing flow
                tags: {{team: new}}
                keyterms: [new service]
                version_sets:
                  release: {{agent_version_number: {i % 7 + 1}}}
                  {canary}
                """,
            )
        )
    return "---\n".join(docs)


def write_manifests(directory: Path, text: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "services.yaml").write_text(text or realistic_manifests(), encoding="utf-8")
    return directory


def http_client(
    emulator: Emulator,
    base_url: str,
    *,
    timeout: float = 5.0,
    window_seconds: float = 60.0,
    retry_policy: RetryPolicy | None = None,
) -> AmigoClient:
    """A client over real HTTP, as the CLI builds one, with a test-sized timeout and window."""
    base = emulator_config(emulator)
    config = ApiConfig(
        organization=base.organization,
        api_key=base.api_key,
        api_key_id=base.api_key_id,
        user_id=base.user_id,
        base_url=base_url,
        timeout=timeout,
        rate_window_seconds=window_seconds,
    )
    return AmigoClient(config, retry_policy=retry_policy)


# --- what happened, checked against live state ------------------------------------


def _version_set_equal(live: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    return live is not None and VersionSet.from_api(live) == VersionSet.from_api(wanted)


def _target(
    op: Operation, plan: Plan, report: ApplyReport | None, services: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The live service an operation concerns (a created one found by its id, else by name)."""
    by_id = {s["id"]: s for s in services}
    if op.service_id:
        return by_id.get(op.service_id)
    create_key = op.service_from or op.key
    if report is not None and create_key in report.created_ids:
        return by_id.get(report.created_ids[create_key])
    create = next(o for o in plan.operations if o.key == create_key)
    named = [
        s
        for s in services
        if s["name"] == create.request["name"]
        and s["is_active"] == create.request.get("is_active", True)
    ]
    return named[0] if len(named) == 1 else None


def effect_holds(
    op: Operation,
    plan: Plan,
    services: Sequence[Mapping[str, Any]],
    report: ApplyReport | None = None,
) -> bool:
    """Whether `op`'s effect is visible in `services` (the API's ServiceInstance dicts)."""
    service = _target(op, plan, report, services)
    if service is None:
        return False
    version_sets = service.get("version_sets") or {}
    if op.action is Action.CREATE_SERVICE:
        expected = {k: op.request[k] for k in ("name", "description", "is_active", "tags")}
        release = op.request.get("release_version_set")
        return update_holds(service, expected) and (
            release is None or _version_set_equal(version_sets.get("release"), release)
        )
    if op.action is Action.UPDATE_SERVICE:
        return update_holds(service, op.request)
    if op.action is Action.UPSERT_VERSION_SET:
        return _version_set_equal(version_sets.get(op.version_set or ""), op.request)
    return op.version_set not in version_sets


def assert_report_true(
    plan: Plan, report: ApplyReport, services: Sequence[Mapping[str, Any]], context: str = ""
) -> None:
    """Every result says what really happened: done took effect, the rest did not.

    An operation reported `outcome_unknown` (its answer was lost and no look-up
    could tell) may or may not have taken effect; `failed`, `skipped` and
    `not_started` mean it did not.
    """
    problems = []
    for result in report.results:
        op = next(o for o in plan.operations if o.key == result.key)
        holds = effect_holds(op, plan, services, report)
        label = f"{result.key} {op.kind.value} {op.service!r} {op.version_set or ''}".strip()
        if result.status is Status.DONE:
            if not holds:
                problems.append(f"{label}: reported done but did not take effect")
        elif result.status is Status.OUTCOME_UNKNOWN:
            if result.error_class != "OutcomeUnknown" or not result.message:
                problems.append(f"{label}: outcome unknown without saying why")
        elif holds:
            problems.append(
                f"{label}: reported {result.status.value} ({result.message}) but took effect"
            )
        if result.status is Status.FAILED and not result.message:
            problems.append(f"{label}: failed without a message")
    assert not problems, f"{context}: report not true to what happened:\n  " + "\n  ".join(problems)


_COMPARED = (
    "name",
    "description",
    "is_active",
    "agent_id",
    "service_hierarchical_state_machine_id",
    "keyterms",
)


def snapshot(services: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """An organization as sorted plain data, without ids (re-created ids may differ)."""
    rows = []
    for s in services:
        tags = tuple(sorted((t["key"], t.get("value") or "") for t in s.get("tags") or []))
        sets = tuple(
            sorted(
                (name, repr(VersionSet.from_api(vs)))
                for name, vs in (s.get("version_sets") or {}).items()
            )
        )
        rows.append((*(repr(s.get(k)) for k in _COMPARED), tags, sets))
    return sorted(rows)


def assert_no_duplicates(
    services: Sequence[Mapping[str, Any]], expected_names: Mapping[str, int], context: str = ""
) -> None:
    """Each name occurs exactly as often as expected (a re-sent create would add one)."""
    counts = Counter(s["name"] for s in services)
    extra = {n: c for n, c in counts.items() if c > expected_names.get(n, 0)}
    assert not extra, f"{context}: duplicate services {extra}"
    active = Counter(s["name"] for s in services if s["is_active"])
    assert all(c == 1 for c in active.values()), f"{context}: active names twice {active}"


def assert_nothing_lost(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    plan: Plan,
    context: str = "",
) -> None:
    """Every service still exists, with every version set the plan did not delete."""
    deleted = {
        (op.service_id, op.version_set)
        for op in plan.operations
        if op.action is Action.DELETE_VERSION_SET
    }
    now = {s["id"]: s for s in after}
    lost = []
    for service in before:
        current = now.get(service["id"])
        if current is None:
            lost.append(f"service {service['name']!r}")
            continue
        for name in service.get("version_sets") or {}:
            if (service["id"], name) not in deleted and name not in current["version_sets"]:
                lost.append(f"version set {service['name']!r}/{name}")
    assert not lost, f"{context}: lost {lost}"


def endpoint_of(op: Operation) -> str:
    return ENDPOINT[op.action]
