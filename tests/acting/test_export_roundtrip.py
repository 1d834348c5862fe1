"""Export from a seeded emulator, then the manifests validate, load back as the live state,
plan as nothing but "adopt", and after one apply plan as nothing at all."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from support.paths import REPO
from support.paths import SEED as EXAMPLE_SEED

from reconciler.api.client import AmigoClient
from reconciler.applier import apply_plan
from reconciler.connect import emulator_config
from reconciler.emulator import Emulator
from reconciler.export import export_manifests, read_organization, write_export
from reconciler.manifests import load_manifests
from reconciler.model import EDGE, OWNERSHIP_TAG_KEY, LiveService
from reconciler.plan import Kind
from reconciler.workflow import make_plan

SCHEMA = REPO / "schemas" / "service.schema.json"

TWIN_AGENT_1, TWIN_AGENT_2 = "aa" * 12, "ab" * 12
TWIN_SM_1, TWIN_SM_2 = "ba" * 12, "bb" * 12
DUP_IDS = ("d0" * 12, "d1" * 12, "d2" * 12)

TRICKY_NAMES = [
    "yes",
    "null",
    "1.0",
    "*star",
    "&anchor",
    "key: value",
    "# not a comment",
    "Café ✓",
    "CON",
    "con",
    "'quoted'",
    "cost ${HOME}",
    "- dash",
]


class Clock:
    """Time that moves only when the client sleeps (pacing without real waiting)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)


def rich_seed() -> dict[str, Any]:
    """The example organization plus what makes export hard: duplicates, tricky strings, pages."""
    seed = yaml.safe_load(EXAMPLE_SEED.read_text(encoding="utf-8"))
    seed["agents"] += [
        {"name": "Twin", "id": TWIN_AGENT_1, "latest_version": 2},
        {"name": "Twin", "id": TWIN_AGENT_2, "latest_version": 2, "deprecated": True},
        {"name": "yes", "latest_version": 1},
    ]
    seed["state_machines"] += [
        {"name": "Twin flow", "id": TWIN_SM_1, "latest_version": 3},
        {"name": "Twin flow", "id": TWIN_SM_2, "latest_version": 3},
        {"name": "1.0", "latest_version": 1},
    ]
    services: list[dict[str, Any]] = seed["services"]
    services += [
        {
            "name": "Dup",
            "id": DUP_IDS[0],
            "description": "the active one",
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Onboarding flow",
        },
        {
            "name": "Dup",
            "id": DUP_IDS[1],
            "is_active": False,
            "description": "an inactive duplicate, owned",
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Onboarding flow",
            "tags": {"managed_by": "amigo_reconciler"},
        },
        {
            "name": "Dup",
            "id": DUP_IDS[2],
            "is_active": False,
            "description": "an inactive duplicate, not owned",
            "agent": TWIN_AGENT_2,
            "service_hierarchical_state_machine": TWIN_SM_2,
        },
        {
            "name": "Twins",
            "description": "uses agents and state machines whose names are not unique",
            "agent": TWIN_AGENT_1,
            "service_hierarchical_state_machine": TWIN_SM_1,
            "version_sets": {
                "release": {
                    "agent_version_number": 2,
                    "llm_model_preferences": {
                        "conversation": {
                            "llm_name": "openai_gpt-5.1-2025-11-13",
                            "params": {
                                "temperature": 0.2,
                                "stop": ["yes", "null", "1.0"],
                                "nested": {"b": None, "a": "${NOT_A_VAR}"},
                            },
                        },
                        "summary": {"llm_name": "google_gemini-2.5-flash"},
                    },
                },
                "canary": {"service_hierarchical_state_machine_version_number": 1},
                "stable_2": {},
            },
            "tags": {"team": "x y", "empty": None, "ON": "yes", "1": "0"},
            "keyterms": ["on", "meet and greet", "no"],
        },
        {
            "name": "Multi",
            "description": "line one\nline two: with colon\n  indented # hash",
            "agent": "yes",
            "service_hierarchical_state_machine": "1.0",
        },
    ]
    for index, name in enumerate(TRICKY_NAMES):
        services.append(
            {
                "name": name,
                "description": f"{name} — described",
                "agent": "Billing Assistant",
                "service_hierarchical_state_machine": "Billing support",
                "is_active": index % 3 != 0,
                "tags": {"k": name} if name.isalnum() else {},
            }
        )
    services += [  # enough for several pages of 20
        {
            "name": f"Filler {i:02d}",
            "description": "padding for pagination",
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Onboarding flow",
            "tags": {"managed_by": "amigo_reconciler"} if i % 2 else {},
        }
        for i in range(22)
    ]
    return seed


@pytest.fixture
def org() -> tuple[Emulator, AmigoClient]:
    clock = Clock()
    emulator = Emulator.from_seed(rich_seed(), clock=clock)
    client = AmigoClient(
        emulator_config(emulator), transport=emulator.transport(), sleep=clock.sleep, clock=clock
    )
    return emulator, client


def export_to(client: AmigoClient, out: Path, **options: Any) -> list[Path]:
    organization = read_organization(client)
    result = export_manifests(
        organization.services, organization.agents, organization.state_machines, **options
    )
    assert result.warnings == ()
    return write_export(result.files, out, force=False)


def test_export_plans_as_adopt_only_and_converges_after_one_apply(
    org: tuple[Emulator, AmigoClient], tmp_path: Path
) -> None:
    emulator, client = org
    live_before = {s["id"]: s for s in emulator.services()}
    assert len(live_before) > 40  # several pages

    emulator.reset_counts()
    written = export_to(client, tmp_path / "services")
    assert len(written) == len(live_before)
    pages = -(-len(live_before) // 20)
    reads = {k: v for k, v in emulator.request_counts.items() if k.startswith("get-")}
    assert reads == {
        "get-services": pages,
        "get-agents": 1,
        "get-service-hierarchical-state-machines": 1,
    }

    desired = load_manifests([tmp_path / "services"])
    plan = make_plan(client, desired)
    assert plan.errors == ()
    assert plan.drift == ()
    assert {op.kind for op in plan.operations} == {Kind.ADOPT}
    unowned = {i for i, s in live_before.items() if not LiveService.from_api(s).owned}
    assert {op.service_id for op in plan.operations} == unowned
    for op in plan.operations:  # adopt sends the live tags plus the ownership tag, nothing else
        assert list(op.request) == ["tags"]
        live_tags = {t["key"]: t["value"] for t in live_before[op.service_id]["tags"]}
        assert op.request["tags"] == {**live_tags, OWNERSHIP_TAG_KEY: "amigo_reconciler"}

    report = apply_plan(client, plan)
    assert report.ok, report.counts

    after = make_plan(client, desired)
    assert after.errors == ()
    assert after.operations == ()
    assert after.drift == ()
    # Apply only added the ownership tag: everything else is as before.
    for service in emulator.services():
        before = dict(live_before[service["id"]])
        service = dict(service)
        for record in (before, service):
            record["tags"] = sorted(
                (t["key"], t["value"]) for t in record["tags"] if t["key"] != OWNERSHIP_TAG_KEY
            )
            record.pop("updated_by", None)
        assert service == before

    # A second export of the adopted organization says the same thing, byte for byte.
    again = export_to(client, tmp_path / "again")
    for first, second in zip(written, again, strict=True):
        assert first.name == second.name
        assert first.read_bytes() == second.read_bytes()


def test_exported_manifests_load_back_as_exactly_the_live_services(
    org: tuple[Emulator, AmigoClient], tmp_path: Path
) -> None:
    emulator, client = org
    export_to(client, tmp_path)
    desired = load_manifests([tmp_path], env={"HOME": "/should/not/be/used"})
    assert desired.warnings == ()
    agents = {a["id"]: a["name"] for a in emulator.agents()}
    machines = {m["id"]: m["name"] for m in emulator.state_machines()}
    live = {s["id"]: LiveService.from_api(s) for s in emulator.services()}
    assert len(desired.services) == len(live)
    by_name: dict[str, list[LiveService]] = {}
    for service in live.values():
        by_name.setdefault(service.name, []).append(service)
    for want in desired.services:
        if want.id is None:
            (have,) = by_name[want.name]  # unpinned only where the name is unique
        else:
            have = live[want.id]
            assert len(by_name[have.name]) > 1
        assert want.name == have.name
        assert want.description == have.description
        assert want.is_active == have.is_active
        if want.agent is not None:
            assert agents[have.agent_id] == want.agent
            assert list(agents.values()).count(want.agent) == 1
        else:
            assert want.agent_id == have.agent_id
        if want.service_hierarchical_state_machine is not None:
            sm_name = machines[have.service_hierarchical_state_machine_id]
            assert sm_name == want.service_hierarchical_state_machine
        else:
            assert want.service_hierarchical_state_machine_id == (
                have.service_hierarchical_state_machine_id
            )
        assert want.tags == {k: v for k, v in have.tags.items() if k != OWNERSHIP_TAG_KEY}
        assert want.keyterms == have.keyterms
        assert dict(want.version_sets) == {k: v for k, v in have.version_sets.items() if k != EDGE}
    names = {s.name for s in desired.services}
    assert set(TRICKY_NAMES) <= names  # "cost ${HOME}" came back literally
    twins = next(s for s in desired.services if s.name == "Twins")
    assert twins.agent_id == TWIN_AGENT_1 and twins.service_hierarchical_state_machine_id == (
        TWIN_SM_1
    )
    assert {s.id for s in desired.services if s.name == "Dup"} == set(DUP_IDS)


def test_every_exported_file_passes_the_json_schema(
    org: tuple[Emulator, AmigoClient], tmp_path: Path
) -> None:
    _, client = org
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    files = export_to(client, tmp_path)
    assert files
    for path in files:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        errors = [e.message for e in validator.iter_errors(document)]
        assert errors == [], (path.name, errors)


def test_active_only_and_targets_round_trip_too(
    org: tuple[Emulator, AmigoClient], tmp_path: Path
) -> None:
    emulator, client = org
    export_to(client, tmp_path / "active", active_only=True)
    export_to(client, tmp_path / "dup", targets=["Dup", "yes"])
    for directory, expected in (
        (tmp_path / "active", {s["id"] for s in emulator.services() if s["is_active"]}),
        (
            tmp_path / "dup",
            {s["id"] for s in emulator.services() if s["name"] in ("Dup", "yes")},
        ),
    ):
        desired = load_manifests([directory])
        plan = make_plan(client, desired)
        assert plan.errors == ()
        assert {op.kind for op in plan.operations} <= {Kind.ADOPT}
        live = {s["id"]: LiveService.from_api(s) for s in emulator.services()}
        assert {op.service_id for op in plan.operations} == {
            i for i in expected if not live[i].owned
        }
