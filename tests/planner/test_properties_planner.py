"""Property-based: random live and desired organizations, planned, applied and planned again.

For any organization hypothesis makes up (services active or not, owned or not,
sharing names, with version sets and unit tests pinning them) and any manifests
(matching some of those names, new ones, other agents, version numbers in and out
of range, tags and keyterms managed or not), with or without --prune:

* a plan is deterministic: planning twice gives the same JSON (but `created_at`);
* a plan without errors is executable: the emulator, which enforces the API's
  rules, accepts every operation (the planner never emits one it rejects);
* after applying it, a fresh plan is empty (converged).

The default suite runs a modest number of examples; `-m slow` runs many more.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from support.cli import emulator_client

from reconciler.applier import Status, apply_plan
from reconciler.emulator import Emulator
from reconciler.manifests import load_manifests
from reconciler.plan import Plan
from reconciler.planfile import plan_to_dict
from reconciler.workflow import make_plan

NAMES = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon"]
AGENTS = {"Concierge": 4, "Helper": 2}
STATE_MACHINES = {"Flow": 6, "Flow Two": 3}
OWNED = {"managed_by": "amigo_reconciler"}
SET_NAMES = ["canary", "beta", "old"]


def _version_numbers(agent: str, sm: str, *, overshoot: bool) -> st.SearchStrategy[dict[str, Any]]:
    top_agent = AGENTS.get(agent, 1) + (1 if overshoot else 0)
    top_sm = STATE_MACHINES[sm] + (1 if overshoot else 0)
    return st.fixed_dictionaries(
        {},
        optional={
            "agent_version_number": st.none() | st.integers(1, top_agent),
            "service_hierarchical_state_machine_version_number": st.none() | st.integers(1, top_sm),
            "llm_model_preferences": st.dictionaries(
                st.sampled_from(["conversation", "summary"]),
                st.fixed_dictionaries(
                    {"llm_name": st.just("openai_gpt-5.1-2025-11-13")},
                    optional={
                        "params": st.fixed_dictionaries(
                            {"temperature": st.sampled_from([0.1, 0.5])}
                        )
                    },
                ),
                max_size=1,
            ),
        },
    )


_tags = st.dictionaries(
    st.sampled_from(["team", "tier", "region"]),
    st.none() | st.sampled_from(["growth", "care", "eu"]),
    max_size=2,
)
_keyterms = st.lists(
    st.sampled_from(["clinic", "meet and greet", "refill"]), max_size=2, unique=True
)


@st.composite
def live_services(draw: st.DrawFn) -> list[dict[str, Any]]:
    services: list[dict[str, Any]] = []
    active_names: set[str] = set()
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from(NAMES))
        active = draw(st.booleans()) and name not in active_names
        if active:
            active_names.add(name)
        agent = draw(st.sampled_from(sorted(AGENTS)))
        sm = draw(st.sampled_from(sorted(STATE_MACHINES)))
        sets = draw(st.lists(st.sampled_from(SET_NAMES), max_size=2, unique=True))
        owned = draw(st.booleans())
        services.append(
            {
                "name": name,
                "description": draw(st.sampled_from([f"{name} service", "other"])),
                "is_active": active,
                "agent": agent,
                "service_hierarchical_state_machine": sm,
                "tags": {**draw(_tags), **(OWNED if owned else {})},
                "keyterms": draw(_keyterms),
                "version_sets": {
                    s: draw(_version_numbers(agent, sm, overshoot=False))
                    for s in ["release", *sets]
                },
            }
        )
    return services


@st.composite
def organizations(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]], bool]:
    services = draw(live_services())
    unit_tests = []
    for service in services:
        for set_name in service["version_sets"]:
            if draw(st.integers(0, 9)) == 0:
                unit_tests.append(
                    {
                        "name": f"t{len(unit_tests)}",
                        "service": service["name"],
                        "version_set": set_name,
                    }
                )
    # Unit tests name services by name: keep only unambiguous ones.
    counts = {s["name"]: sum(1 for t in services if t["name"] == s["name"]) for s in services}
    unit_tests = [t for t in unit_tests if counts[t["service"]] == 1]
    seed = {
        "organization": "props",
        "credentials": {"api_key": "props-key-not-secret", "api_key_id": "kid", "user_id": "u"},
        "agents": [
            *({"name": n, "latest_version": v} for n, v in AGENTS.items()),
            {"name": "Old Bot", "latest_version": 1, "deprecated": True},
        ],
        "state_machines": [{"name": n, "latest_version": v} for n, v in STATE_MACHINES.items()],
        "services": services,
        "unit_tests": unit_tests,
    }
    desired = []
    for name in draw(st.lists(st.sampled_from([*NAMES, "Zeta", "Eta"]), max_size=5, unique=True)):
        agent = draw(st.sampled_from([*sorted(AGENTS), "Old Bot"]))
        sm = draw(st.sampled_from(sorted(STATE_MACHINES)))
        spec: dict[str, Any] = {
            "description": draw(st.sampled_from([f"{name} service", "changed"])),
            "is_active": draw(st.booleans() | st.just(True)),
            "agent": agent,
            "service_hierarchical_state_machine": sm,
        }
        if draw(st.booleans()):
            spec["tags"] = draw(_tags)
        if draw(st.booleans()):
            spec["keyterms"] = draw(_keyterms)
        overshoot = draw(st.integers(0, 9)) == 0  # now and then a version that does not exist
        sets = draw(
            st.lists(st.sampled_from(["release", "canary", "beta"]), max_size=3, unique=True)
        )
        if sets:
            spec["version_sets"] = {
                s: draw(_version_numbers(agent, sm, overshoot=overshoot)) for s in sets
            }
        desired.append(
            {
                "apiVersion": "amigo.ai/v1",
                "kind": "Service",
                "metadata": {"name": name},
                "spec": spec,
            }
        )
    return seed, desired, draw(st.booleans())


def _comparable(plan: Plan) -> dict[str, Any]:
    data = plan_to_dict(plan)
    data.pop("created_at")
    data.pop("checksum")
    return data


def check(seed: dict[str, Any], desired: list[dict[str, Any]], prune: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "services.yaml"
        path.write_text(yaml.safe_dump_all(desired, sort_keys=False), encoding="utf-8")
        manifests = load_manifests([path]) if desired else None
    assume(manifests is not None)
    assert manifests is not None
    emulator = Emulator.from_seed(seed)
    client = emulator_client(emulator)
    try:
        plan = make_plan(client, manifests, prune=prune)
        again = make_plan(client, manifests, prune=prune)
        assert _comparable(plan) == _comparable(again), "planning twice differed"
        note(f"plan: {[(o.key, o.kind.value, o.service, o.version_set) for o in plan.operations]}")
        note(f"errors: {[str(e) for e in plan.errors]}")
        if plan.errors:
            return
        report = apply_plan(client, plan)
        rejected = [(r.key, r.message) for r in report.results if r.status is not Status.DONE]
        assert rejected == [], "the emulator rejected planned operations"
        fresh = make_plan(client, manifests, prune=prune)
        assert fresh.errors == (), [str(e) for e in fresh.errors]
        assert fresh.operations == (), [
            (o.kind.value, o.service, o.version_set, o.changes) for o in fresh.operations
        ]
    finally:
        client.close()


_COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}


@settings(max_examples=10, **_COMMON)
@given(organizations())
def test_random_organizations_plan_deterministically_apply_cleanly_and_converge(
    case: tuple[dict[str, Any], list[dict[str, Any]], bool],
) -> None:
    check(*case)


@pytest.mark.slow
@settings(max_examples=1000, **_COMMON)
@given(organizations())
def test_many_random_organizations_converge(
    case: tuple[dict[str, Any], list[dict[str, Any]], bool],
) -> None:
    check(*case)


def test_deactivating_next_to_an_owned_inactive_namesake_stays_identifiable() -> None:
    """Found by the property above: deactivating the active service of a name that already
    has an owned inactive one would leave two owned inactive namesakes the next plan cannot
    tell apart. The plan must say so up front (asking for an id pin), not apply and then
    fail to converge."""
    service = {
        "name": "Alpha",
        "description": "Alpha service",
        "agent": "Concierge",
        "service_hierarchical_state_machine": "Flow",
    }
    seed = {
        "organization": "props",
        "credentials": {"api_key": "props-key-not-secret", "api_key_id": "kid", "user_id": "u"},
        "agents": [{"name": "Concierge", "latest_version": 4}],
        "state_machines": [{"name": "Flow", "latest_version": 6}],
        "services": [
            {**service, "is_active": False, "tags": dict(OWNED)},
            {**service, "is_active": True},
        ],
    }
    desired = {
        "apiVersion": "amigo.ai/v1",
        "kind": "Service",
        "metadata": {"name": "Alpha"},
        "spec": {
            "description": "Alpha service",
            "is_active": False,
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Flow",
        },
    }
    emulator = Emulator.from_seed(seed)
    client = emulator_client(emulator)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alpha.yaml"
        path.write_text(yaml.safe_dump(desired), encoding="utf-8")
        manifests = load_manifests([path])
        plan = make_plan(client, manifests)
        if plan.errors:
            assert any("metadata.id" in str(e) for e in plan.errors), plan.errors
            assert all(s["is_active"] for s in emulator.services() if not s["tags"])
            client.close()
            return
        assert apply_plan(client, plan).ok
        fresh = make_plan(client, manifests)
    client.close()
    assert fresh.errors == (), [str(e) for e in fresh.errors]
    assert fresh.operations == ()
