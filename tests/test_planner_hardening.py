"""Planner hardening (issue 12): --target across a rename, activation order and checks."""

from __future__ import annotations

from typing import Any

from test_planner_scenarios import ID_A, OWNED, make, manifest, ops, svc

__all__ = ["make"]  # the fixture


def test_target_old_name_selects_a_rename_by_id_pin(make: Any) -> None:
    """`--target OLD` while a pinned manifest renames OLD to NEW plans the rename (it said
    "No changes"); the new name selects it too."""
    s = make([svc("Old Name", id=ID_A, tags=OWNED)])
    doc = manifest(
        "New Name",
        "description: Old Name service\nagent: Concierge\nservice_hierarchical_state_machine: Flow",
        meta=f"id: {ID_A}",
    )
    for target in ("Old Name", "New Name"):
        plan = s.plan(doc, targets=[target])
        assert plan.errors == ()
        assert ops(plan) == [("update", "New Name", None)], target
        assert plan.operations[0].request == {"name": "New Name"}


def test_apply_with_target_old_name_converges_after_the_rename(make: Any, tmp_path: Any) -> None:
    """The convergence re-plan after the rename must not refuse `--target OLD` (the old
    name exists nowhere any more) nor call the applied rename unconverged."""
    from reconciler.applier import apply_plan, check_convergence
    from reconciler.manifests import load_manifests

    s = make([svc("Old Name", id=ID_A, tags=OWNED)])
    doc = manifest(
        "New Name",
        "description: Old Name service\nagent: Concierge\nservice_hierarchical_state_machine: Flow",
        meta=f"id: {ID_A}",
    )
    plan = s.plan(doc, targets=["Old Name"])
    report = apply_plan(s.client, plan, max_workers=1)
    assert report.ok
    desired = load_manifests([s.dir])
    result = check_convergence(s.client, plan, report, desired, targets=["Old Name"])
    assert result.converged, (result.differences, result.error)
    assert [x["name"] for x in s.emulator.services()] == ["New Name"]
