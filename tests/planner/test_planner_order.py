"""Ordering rules on hand-built state: name freeing, cycles, destructive work last."""

from __future__ import annotations

from reconciler.diagnostics import SourcePos
from reconciler.model import DesiredService, DesiredState, LiveService, LiveState, VersionSet
from reconciler.plan import Kind, Plan
from reconciler.planner import plan_against

AGENT, FLOW = "1" * 24, "2" * 24
OWNED = {"managed_by": "amigo_reconciler"}


def live(index: int, name: str, **changes: object) -> LiveService:
    fields: dict[str, object] = {
        "id": f"{index:024x}",
        "name": name,
        "description": "d",
        "is_active": True,
        "agent_id": AGENT,
        "service_hierarchical_state_machine_id": FLOW,
        "tags": dict(OWNED),
        "keyterms": (),
        "version_sets": {},
    }
    fields.update(changes)
    return LiveService(**fields)  # type: ignore[arg-type]


def want(name: str, **changes: object) -> DesiredService:
    fields: dict[str, object] = {
        "name": name,
        "description": "d",
        "source": SourcePos(f"{name}.yaml", 1, 1),
        "agent_id": AGENT,
        "service_hierarchical_state_machine_id": FLOW,
    }
    fields.update(changes)
    return DesiredService(**fields)  # type: ignore[arg-type]


def plan(desired: list[DesiredService], services: list[LiveService], **kw: object) -> Plan:
    return plan_against(
        DesiredState(tuple(desired), "d"),
        LiveState(tuple(services), unit_tests=()),
        organization="o",
        base_url="u",
        **kw,  # type: ignore[arg-type]
    )


def test_rename_that_frees_a_name_runs_before_the_create_that_takes_it() -> None:
    p = plan([want("Old", id=f"{1:024x}"), want("Greeter")], [live(1, "Greeter")])
    rename, create = p.operations
    assert rename.request == {"name": "Old"} and create.request["name"] == "Greeter"
    assert rename.key in create.depends_on and p.errors == ()


def test_pruned_deactivation_that_frees_a_name_is_not_left_for_last() -> None:
    p = plan(
        [want("Greeter", id=f"{2:024x}"), want("Zed", description="changed")],
        [live(1, "Greeter"), live(2, "Greeter", is_active=False), live(3, "Zed")],
        prune=True,
    )
    kinds = [(op.kind, op.service_id) for op in p.operations]
    assert kinds[0] == (Kind.DEACTIVATE, f"{1:024x}")
    assert kinds[1] == (Kind.ACTIVATE, f"{2:024x}")
    assert p.operations[0].key in p.operations[1].depends_on


def test_two_active_services_swapping_names_is_a_cycle_error() -> None:
    p = plan(
        [want("B", id=f"{1:024x}"), want("A", id=f"{2:024x}")],
        [live(1, "A"), live(2, "B")],
    )
    assert len(p.errors) == 2 and all("cycle" in e.message for e in p.errors)
    assert len(p.operations) == 2


def test_deletions_come_after_other_work() -> None:
    p = plan(
        [want("A"), want("B", description="new")],
        [live(1, "A", version_sets={"x": VersionSet()}), live(2, "B")],
        prune=True,
    )
    assert [op.kind for op in p.operations] == [Kind.UPDATE, Kind.DELETE]


def test_unmanaged_tags_keep_live_values_plus_ownership() -> None:
    p = plan([want("A")], [live(1, "A", tags={"team": "x"})])
    (op,) = p.operations
    assert op.kind is Kind.ADOPT and op.request == {"tags": {"team": "x", **OWNED}}


def test_declared_empty_tags_clear_all_but_ownership() -> None:
    p = plan([want("A", tags={})], [live(1, "A", tags={"team": "x", **OWNED})])
    (op,) = p.operations
    assert op.kind is Kind.UPDATE and op.request == {"tags": dict(OWNED)}
