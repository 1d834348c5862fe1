"""Planner scenarios: seed the in-process emulator, load manifests, plan, assert the operations."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from reconciler.api.client import AmigoClient
from reconciler.connect import emulator_config
from reconciler.diagnostics import UserError
from reconciler.emulator import Emulator
from reconciler.manifests import load_manifests
from reconciler.plan import Action, Kind, Plan
from reconciler.workflow import make_plan

ID_A = "a" * 23 + "1"
ID_B = "b" * 23 + "2"
ID_C = "c" * 23 + "3"
OWNED = {"managed_by": "amigo_reconciler"}


def base_seed(services: Sequence[Mapping[str, Any]] = (), **extra: Any) -> dict[str, Any]:
    return {
        "organization": "acme",
        "credentials": {"api_key": "k-not-secret", "api_key_id": "kid", "user_id": "u1"},
        "agents": [
            {"name": "Concierge", "latest_version": 4},
            {"name": "Helper", "latest_version": 2},
            {"name": "Old Bot", "latest_version": 1, "deprecated": True},
        ],
        "state_machines": [
            {"name": "Flow", "latest_version": 6},
            {"name": "Flow Two", "latest_version": 3},
        ],
        "services": list(services),
        **extra,
    }


def svc(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": fields.pop("description", f"{name} service"),
        "agent": fields.pop("agent", "Concierge"),
        "service_hierarchical_state_machine": fields.pop("sm", "Flow"),
        **fields,
    }


def manifest(name: str, spec: str = "", *, meta: str = "") -> str:
    body = (
        spec
        or "description: {name} service\nagent: Concierge\nservice_hierarchical_state_machine: Flow"
    )
    body = body.replace("{name}", name)
    return (
        "apiVersion: amigo.ai/v1\nkind: Service\nmetadata:\n"
        f"  name: {name}\n"
        + textwrap.indent(textwrap.dedent(meta).strip(), "  ")
        + ("\n" if meta else "")
        + "spec:\n"
        + textwrap.indent(textwrap.dedent(body).strip(), "  ")
        + "\n"
    )


class Scenario:
    def __init__(self, tmp_path: Path, seed: Mapping[str, Any]) -> None:
        self.emulator = Emulator.from_seed(dict(seed))
        self.client = AmigoClient(
            emulator_config(self.emulator), transport=self.emulator.transport()
        )
        self.dir = tmp_path / "services"
        self.dir.mkdir()

    def plan(self, *docs: str, prune: bool = False, targets: Sequence[str] = ()) -> Plan:
        (self.dir / "services.yaml").write_text("---\n".join(docs), encoding="utf-8")
        desired = load_manifests([self.dir])
        return make_plan(self.client, desired, prune=prune, targets=targets)

    def service_id(self, name: str, *, active: bool = True) -> str:
        ids = [
            s["id"]
            for s in self.emulator.services()
            if s["name"] == name and s["is_active"] is active
        ]
        assert len(ids) == 1, ids
        return str(ids[0])


def ops(plan: Plan) -> list[tuple[str, str, str | None]]:
    return [(op.kind.value, op.service, op.version_set) for op in plan.operations]


@pytest.fixture
def make(tmp_path: Path) -> Any:
    def build(services: Sequence[Mapping[str, Any]] = (), **extra: Any) -> Scenario:
        return Scenario(tmp_path, base_seed(services, **extra))

    return build


def test_create_with_release_inline_is_one_call(make: Any) -> None:
    s = make()
    plan = s.plan(
        manifest(
            "Greeter",
            """
            description: Says hello
            agent: Concierge
            service_hierarchical_state_machine: Flow
            tags: {team: growth}
            keyterms: [hello there]
            version_sets:
              release:
                agent_version_number: 3
            """,
        )
    )
    assert plan.errors == ()
    assert [op.action for op in plan.operations] == [Action.CREATE_SERVICE]
    request = plan.operations[0].request
    assert request["release_version_set"] == {
        "agent_version_number": 3,
        "service_hierarchical_state_machine_version_number": None,
        "llm_model_preferences": {},
    }
    assert request["tags"] == {"team": "growth", **OWNED}
    assert request["keyterms"] == ["hello there"]
    assert request["agent_id"] == next(
        a["id"] for a in s.emulator.agents() if a["name"] == "Concierge"
    )


def test_other_version_sets_of_a_new_service_depend_on_its_create(make: Any) -> None:
    s = make()
    plan = s.plan(
        manifest(
            "Greeter",
            """
            description: Says hello
            agent: Concierge
            service_hierarchical_state_machine: Flow
            version_sets:
              canary: {agent_version_number: 4}
            """,
        )
    )
    create, canary = plan.operations
    assert (create.action, canary.action) == (Action.CREATE_SERVICE, Action.UPSERT_VERSION_SET)
    assert canary.service_from == create.key and create.key in canary.depends_on
    assert canary.service_id is None


def test_converged_state_plans_no_writes(make: Any) -> None:
    s = make(
        [
            svc(
                "Greeter",
                tags={**OWNED, "team": "growth"},
                keyterms=["hello"],
                version_sets={"release": {"agent_version_number": 3}},
            )
        ]
    )
    plan = s.plan(
        manifest(
            "Greeter",
            """
            description: Greeter service
            agent: Concierge
            service_hierarchical_state_machine: Flow
            tags: {team: growth}
            keyterms: [hello]
            version_sets:
              release: {agent_version_number: 3}
            """,
        )
    )
    assert plan.errors == () and plan.operations == ()
    assert not plan.has_changes


def test_unowned_existing_service_is_adopted(make: Any) -> None:
    s = make([svc("Greeter", tags={"team": "growth"})])
    plan = s.plan(manifest("Greeter"))
    assert ops(plan) == [("adopt", "Greeter", None)]
    assert plan.operations[0].request == {"tags": {"team": "growth", **OWNED}}


def test_adopting_a_service_with_twenty_tags_is_a_plan_error_not_a_422(make: Any) -> None:
    """The ownership tag would be the 21st: the API caps tags at 20, so say so at plan time."""
    twenty = {f"k{i}": "v" for i in range(20)}
    s = make([svc("Greeter", tags=twenty)])
    plan = s.plan(manifest("Greeter"))
    assert len(plan.errors) == 1
    err = plan.errors[0]
    assert err.field == "spec.tags" and "21 tags" in err.message and "at most 19" in err.message
    assert err.pos is not None and err.pos.file.endswith("services.yaml")


def test_nineteen_tags_plus_ownership_fit(make: Any) -> None:
    nineteen = {f"k{i}": "v" for i in range(19)}
    s = make([svc("Greeter", tags=nineteen)])
    plan = s.plan(manifest("Greeter"))
    assert not plan.errors
    assert ops(plan) == [("adopt", "Greeter", None)]


INACTIVE_ALPHA = (
    "description: Alpha service\nis_active: false\nagent: Concierge\n"
    "service_hierarchical_state_machine: Flow"
)


def test_deactivating_beside_an_owned_inactive_namesake_asks_for_an_id_pin(make: Any) -> None:
    """Two owned inactive services of one name could not be told apart by the next plan."""
    s = make([svc("Alpha", is_active=False, tags=OWNED), svc("Alpha")])
    inactive, active = s.service_id("Alpha", active=False), s.service_id("Alpha")
    plan = s.plan(manifest("Alpha", INACTIVE_ALPHA))
    assert ops(plan) == [] and len(plan.errors) == 1
    message = plan.errors[0].message
    assert f"metadata.id: {active}" in message and f"metadata.id: {inactive}" in message

    pinned = s.plan(manifest("Alpha", INACTIVE_ALPHA, meta=f"id: {active}"))
    assert not pinned.errors
    assert ops(pinned) == [("deactivate", "Alpha", None)]


def test_adopting_with_prune_deletes_undeclared_sets_after_the_tag_lands(make: Any) -> None:
    """One apply converges: the adoption's deletions are planned now, ordered after the tag."""
    from reconciler.applier import apply_plan

    s = make([svc("Greeter", version_sets={"experiment": {"agent_version_number": 2}})])
    plan = s.plan(manifest("Greeter"), prune=True)
    assert ops(plan) == [("adopt", "Greeter", None), ("delete", "Greeter", "experiment")]
    adopt, delete = plan.operations
    assert delete.depends_on == (adopt.key,)
    assert apply_plan(s.client, plan).ok
    assert s.plan(manifest("Greeter"), prune=True).operations == ()


def test_update_sends_only_changed_fields(make: Any) -> None:
    s = make([svc("Greeter", tags=OWNED, keyterms=["a"])])
    plan = s.plan(
        manifest(
            "Greeter",
            "description: New words\nagent: Concierge\nservice_hierarchical_state_machine: Flow",
        )
    )
    (op,) = plan.operations
    assert op.kind is Kind.UPDATE and op.request == {"description": "New words"}
    assert [(c.path, c.old, c.new) for c in op.changes] == [
        ("description", "Greeter service", "New words")
    ]


def test_rename_through_id_pin(make: Any) -> None:
    s = make([svc("Old Name", id=ID_A, tags=OWNED, description="Kept")])
    plan = s.plan(
        manifest(
            "New Name",
            "description: Kept\nagent: Concierge\nservice_hierarchical_state_machine: Flow",
            meta=f"id: {ID_A}",
        )
    )
    (op,) = plan.operations
    assert (op.action, op.service_id, dict(op.request)) == (
        Action.UPDATE_SERVICE,
        ID_A,
        {"name": "New Name"},
    )


def test_swapping_which_service_holds_an_active_name(make: Any) -> None:
    s = make(
        [
            svc("Greeter", id=ID_A, tags=OWNED, description="v1"),
            svc("Greeter", id=ID_B, is_active=False, tags=OWNED, description="v2"),
        ]
    )
    plan = s.plan(
        manifest(
            "Greeter",
            "description: v2\nis_active: true\nagent: Concierge\nservice_hierarchical_state_machine: Flow",
            meta=f"id: {ID_B}",
        ),
        manifest(
            "Greeter v1",
            "description: v1\nis_active: false\nagent: Concierge\nservice_hierarchical_state_machine: Flow",
            meta=f"id: {ID_A}",
        ),
    )
    assert plan.errors == ()
    first, second = plan.operations
    assert (first.service_id, first.kind) == (ID_A, Kind.DEACTIVATE)
    assert (second.service_id, second.kind) == (ID_B, Kind.ACTIVATE)
    assert first.key in second.depends_on


def test_activating_over_an_unmanaged_active_service_is_an_error(make: Any) -> None:
    s = make(
        [
            svc("Greeter", id=ID_A, tags={"team": "x"}),
            svc("Greeter", id=ID_B, is_active=False, tags=OWNED),
        ]
    )
    plan = s.plan(manifest("Greeter", meta=f"id: {ID_B}"))
    (error,) = plan.errors
    assert "already exists" in error.message and ID_A in error.message
    assert error.pos is not None and error.pos.file.endswith("services.yaml")


def test_agent_change_runs_before_the_new_version_pins(make: Any) -> None:
    s = make([svc("Greeter", tags=OWNED, version_sets={"canary": {"agent_version_number": 4}})])
    plan = s.plan(
        manifest(
            "Greeter",
            """
            description: Greeter service
            agent: Helper
            service_hierarchical_state_machine: Flow
            version_sets:
              canary: {agent_version_number: 2}
            """,
        )
    )
    assert plan.errors == ()
    update, upsert = plan.operations
    assert update.action is Action.UPDATE_SERVICE and "agent_id" in update.request
    assert upsert.action is Action.UPSERT_VERSION_SET and upsert.version_set == "canary"
    assert update.key in upsert.depends_on


def test_version_pin_above_latest_is_a_plan_error_at_the_manifest_position(make: Any) -> None:
    s = make([svc("Greeter", tags=OWNED)])
    plan = s.plan(
        manifest(
            "Greeter",
            """
            description: Greeter service
            agent: Helper
            service_hierarchical_state_machine: Flow
            version_sets:
              canary: {agent_version_number: 3}
            """,
        )
    )
    (error,) = plan.errors
    assert error.field == "spec.version_sets.canary.agent_version_number"
    assert "latest version is 2" in error.message
    assert error.pos is not None and error.pos.line > 1


def test_unknown_agent_name_suggests_the_close_one(make: Any) -> None:
    s = make()
    plan = s.plan(
        manifest(
            "Greeter",
            "description: x\nagent: Concierg\nservice_hierarchical_state_machine: Flow",
        )
    )
    (error,) = plan.errors
    assert error.field == "spec.agent" and "did you mean 'Concierge'" in error.message


def test_removed_version_set_is_drift_without_prune_and_deleted_with_it(make: Any) -> None:
    s = make([svc("Greeter", tags=OWNED, version_sets={"old": {"agent_version_number": 1}})])
    doc = manifest("Greeter")
    plain = s.plan(doc)
    assert plain.operations == ()
    assert [(d.service, d.version_set) for d in plain.drift] == [("Greeter", "old")]
    pruned = s.plan(doc, prune=True)
    assert ops(pruned) == [("delete", "Greeter", "old")]
    assert pruned.drift == ()


def test_prune_deactivates_owned_absent_services_and_never_touches_unowned(make: Any) -> None:
    s = make(
        [
            svc("Keep", tags=OWNED),
            svc("Retire Me", tags=OWNED),
            svc("Hand Made", tags={"team": "ops"}),
        ]
    )
    plain = s.plan(manifest("Keep"))
    assert plain.operations == ()
    assert [d.service for d in plain.drift] == ["Retire Me"]
    pruned = s.plan(manifest("Keep"), prune=True)
    assert ops(pruned) == [("deactivate", "Retire Me", None)]
    assert pruned.operations[0].request == {"is_active": False}
    assert all(op.service != "Hand Made" for op in pruned.operations)


def test_unit_test_blocked_delete_is_reported_at_plan_time(make: Any) -> None:
    s = make(
        [svc("Greeter", tags=OWNED, version_sets={"old": {}})],
        unit_tests=[{"name": "Says hi", "service": "Greeter", "version_set": "old"}],
    )
    plan = s.plan(manifest("Greeter"), prune=True)
    assert ops(plan) == [("delete", "Greeter", "old")]
    (error,) = plan.errors
    assert "'Says hi'" in error.message and "version set 'old'" in error.message
    assert plan.api_reads.get("get-simulation-unit-tests") == 1


def test_unit_test_blocked_deactivation_names_the_manifest_field(make: Any) -> None:
    s = make(
        [svc("Greeter", tags=OWNED)],
        unit_tests=[{"name": "Smoke", "service": "Greeter"}],
    )
    plan = s.plan(
        manifest(
            "Greeter",
            "description: Greeter service\nis_active: false\nagent: Concierge\n"
            "service_hierarchical_state_machine: Flow",
        )
    )
    (error,) = plan.errors
    assert error.field == "spec.is_active" and "'Smoke'" in error.message


def test_ambiguous_inactive_duplicates_ask_for_an_id_pin(make: Any) -> None:
    s = make(
        [
            svc("Greeter", id=ID_A, is_active=False),
            svc("Greeter", id=ID_B, is_active=False),
        ]
    )
    plan = s.plan(manifest("Greeter"))
    (error,) = plan.errors
    assert "metadata.id" in error.message and ID_A in error.message and ID_B in error.message
    assert plan.operations == ()


def test_owned_inactive_duplicate_wins(make: Any) -> None:
    s = make(
        [
            svc("Greeter", id=ID_A, is_active=False),
            svc("Greeter", id=ID_B, is_active=False, tags=OWNED),
        ]
    )
    plan = s.plan(manifest("Greeter"))
    (op,) = plan.operations
    assert (op.kind, op.service_id) == (Kind.ACTIVATE, ID_B)


def test_pinned_id_that_does_not_exist_is_an_error(make: Any) -> None:
    s = make()
    plan = s.plan(manifest("Greeter", meta=f"id: {ID_C}"))
    (error,) = plan.errors
    assert error.field == "metadata.id" and ID_C in error.message


def test_45_services_are_read_in_three_pages(make: Any) -> None:
    s = make([svc(f"Service {i:02d}", tags=OWNED) for i in range(45)])
    agent = next(a["id"] for a in s.emulator.agents() if a["name"] == "Concierge")
    flow = next(m["id"] for m in s.emulator.state_machines() if m["name"] == "Flow")
    by_id = f"description: {{name}} service\nagent_id: {agent}\nservice_hierarchical_state_machine_id: {flow}"
    plan = s.plan(*(manifest(f"Service {i:02d}", by_id) for i in range(45)))
    assert plan.operations == () and plan.errors == ()
    assert plan.api_reads == {"get-services": 3}
    counts = dict(s.emulator.request_counts)
    assert counts.get("get-services") == 3
    assert sum(counts.values()) == 4  # three pages + one sign-in, nothing per service


def test_reads_agents_only_when_a_manifest_needs_them(make: Any) -> None:
    s = make([svc("Greeter", tags=OWNED)])
    s.plan(
        manifest(
            "Greeter",
            "description: Greeter service\nagent: Concierge\n"
            "service_hierarchical_state_machine: Flow",
        )
    )
    counts = dict(s.emulator.request_counts)
    assert counts.get("get-agents") == 1
    assert counts.get("get-service-hierarchical-state-machines") == 1
    assert "get-simulation-unit-tests" not in counts


def test_target_limits_the_plan(make: Any) -> None:
    s = make()
    plan = s.plan(manifest("One"), manifest("Two"), targets=["Two"])
    assert ops(plan) == [("create", "Two", None)]
    assert plan.targets == ("Two",)


def test_unknown_target_is_a_clear_error(make: Any) -> None:
    s = make()
    with pytest.raises(UserError) as caught:
        s.plan(manifest("Greeter"), targets=["Greter"])
    message = str(caught.value)
    assert "--target: no service named 'Greter'" in message and "'Greeter'" in message


def test_identical_inputs_give_identical_plans(make: Any) -> None:
    s = make([svc("A", tags=OWNED), svc("B", tags={"x": "y"}), svc("Gone", tags=OWNED)])
    docs = [
        manifest("C"),
        manifest("B"),
        manifest("A", "description: new\nagent: Helper\nservice_hierarchical_state_machine: Flow"),
    ]
    first = s.plan(*docs, prune=True)
    second = s.plan(*reversed(docs), prune=True)
    assert ops(first) == ops(second)
    assert [op.key for op in first.operations] == [f"op-{i:03d}" for i in range(1, 5)]
    assert ops(first)[-1] == ("deactivate", "Gone", None)


def test_deprecated_agent_blocks_activation(make: Any) -> None:
    s = make([svc("Greeter", is_active=False, agent="Old Bot", tags=OWNED)])
    plan = s.plan(
        manifest(
            "Greeter",
            "description: Greeter service\nagent: Old Bot\nservice_hierarchical_state_machine: Flow",
        )
    )
    (error,) = plan.errors
    assert error.field == "spec.agent" and "deprecated" in error.message
    assert ops(plan) == [("activate", "Greeter", None)]


def test_moving_an_active_service_to_a_deprecated_agent_by_id_is_caught(make: Any) -> None:
    s = make([svc("Greeter", tags=OWNED)])
    old_bot = next(a["id"] for a in s.emulator.agents() if a["name"] == "Old Bot")
    flow = next(m["id"] for m in s.emulator.state_machines() if m["name"] == "Flow")
    plan = s.plan(
        manifest(
            "Greeter",
            f"description: Greeter service\nagent_id: {old_bot}\n"
            f"service_hierarchical_state_machine_id: {flow}",
        )
    )
    (error,) = plan.errors
    assert error.field == "spec.agent_id" and "deprecated" in error.message
    assert plan.api_reads.get("get-agents") == 1


def test_agent_change_checks_unchanged_declared_pins_against_the_new_agent(make: Any) -> None:
    """A declared set whose numbers stay the same still pins them in the *new* agent after
    the move: Helper has no version 4, so the plan must say so, not apply a dangling pin."""
    s = make([svc("Greeter", tags=OWNED, version_sets={"release": {"agent_version_number": 4}})])
    plan = s.plan(
        manifest(
            "Greeter",
            """
            description: Greeter service
            agent: Helper
            service_hierarchical_state_machine: Flow
            version_sets:
              release: {agent_version_number: 4}
            """,
        )
    )
    (error,) = plan.errors
    assert error.field == "spec.version_sets.release.agent_version_number"
    assert "'Helper' has no version 4" in error.message


def test_a_plan_with_deletions_is_planned_once(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit-test read slots into the one planning pass instead of a second full pass."""
    import reconciler.planner as planner

    calls: list[str] = []
    plan_service = planner._plan_service

    def counting(b: Any, match: Any, *a: Any, **k: Any) -> None:
        calls.append(match.desired.name)
        plan_service(b, match, *a, **k)

    monkeypatch.setattr(planner, "_plan_service", counting)
    s = make(
        [svc("Greeter", tags=OWNED, version_sets={"old": {}})],
        unit_tests=[{"name": "Says hi", "service": "Greeter", "version_set": "old"}],
    )
    plan = s.plan(manifest("Greeter"), prune=True)
    assert calls == ["Greeter"]
    assert ops(plan) == [("delete", "Greeter", "old")] and len(plan.errors) == 1
    assert plan.api_reads.get("get-simulation-unit-tests") == 1


def test_moving_the_agent_of_a_service_on_a_deprecated_state_machine_is_caught(
    make: Any,
) -> None:
    """Changing either reference of an active service has the API check both: a deprecated
    state machine that stays blocks an agent move (400 at apply time otherwise)."""
    s = make(
        [svc("Greeter", tags=OWNED, sm="Old Flow")],
        state_machines=[{"name": "Old Flow", "latest_version": 2, "deprecated": True}],
    )
    helper = next(a["id"] for a in s.emulator.agents() if a["name"] == "Helper")
    old_flow = next(m["id"] for m in s.emulator.state_machines() if m["name"] == "Old Flow")
    plan = s.plan(
        manifest(
            "Greeter",
            f"description: Greeter service\nagent_id: {helper}\n"
            f"service_hierarchical_state_machine_id: {old_flow}",
        )
    )
    (error,) = plan.errors
    assert error.field == "spec.service_hierarchical_state_machine_id"
    assert "'Old Flow' is deprecated" in error.message
