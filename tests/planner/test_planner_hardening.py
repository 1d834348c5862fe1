"""Planner hardening (issue 12): --target across a rename, activation order and checks."""

from __future__ import annotations

from typing import Any

import pytest
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
    from reconciler.applier import apply_plan
    from reconciler.manifests import load_manifests
    from reconciler.workflow import check_convergence

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


# --- item 4: an activation runs after the version-set changes that make it legal ----------

DEPRECATED_LLM = "azure_gpt-4.1-2025-04-14"
CURRENT_LLM = "openai_gpt-5.1-2025-11-13"


def _greeter_on(make: Any, llm: str, sets: tuple[str, ...], *, active: bool = False) -> Any:
    """Greeter (pinned id ID_A, owned) whose `sets` prefer `llm`, deprecated in the seed."""
    prefs = {"llm_model_preferences": {"conversation": {"llm_name": llm}}}
    return make(
        [
            svc(
                "Greeter",
                id=ID_A,
                is_active=active,
                tags=OWNED,
                version_sets=dict.fromkeys(sets, prefs),
            )
        ],
        deprecated_llms=[llm],
    )


def _inactive_on_deprecated_llm(make: Any) -> Any:
    # Still in LLMType, so no plan can know it is deprecated.
    return _greeter_on(make, DEPRECATED_LLM, ("canary", "old"))


def _greeter_on_current_llm() -> str:
    """Greeter's manifest: active, its canary set on a current LLM ('old' undeclared)."""
    return manifest(
        "Greeter",
        f"""
        description: Greeter service
        agent: Concierge
        service_hierarchical_state_machine: Flow
        version_sets:
          canary:
            llm_model_preferences:
              conversation: {{llm_name: {CURRENT_LLM}}}
        """,
    )


def _apply_once(s: Any, plan: Any) -> None:
    from reconciler.applier import apply_plan

    assert plan.errors == (), plan.errors
    report = apply_plan(s.client, plan, max_workers=1)
    assert report.ok, [(r.key, r.status, r.message) for r in report.results]


def test_the_emulator_refuses_an_activation_sent_first(make: Any) -> None:
    """What the old order did: the activation first is a 400 (the emulator's documented rule)."""
    from reconciler.api.errors import BadRequest

    s = _inactive_on_deprecated_llm(make)
    with pytest.raises(BadRequest, match="deprecated LLM"):
        s.client.update_service(ID_A, {"is_active": True}, service="Greeter")


def test_activation_runs_after_the_version_set_changes_of_its_service(make: Any) -> None:
    s = _inactive_on_deprecated_llm(make)
    doc = _greeter_on_current_llm()
    # Without --prune the undeclared 'old' set (deprecated LLM) stays: activation is refused
    # whatever the order, but the plan cannot know the LLM is deprecated (the API exposes no
    # list); with --prune it is deleted first.
    plan = s.plan(doc, prune=True)
    assert ops(plan) == [
        ("update", "Greeter", "canary"),
        ("delete", "Greeter", "old"),
        ("activate", "Greeter", None),
    ]
    activate = plan.operations[-1]
    assert set(activate.depends_on) == {op.key for op in plan.operations[:2]}
    _apply_once(s, plan)
    assert s.emulator.request_counts.get("update-service") == 1
    assert s.plan(doc, prune=True).operations == ()


def test_activation_with_an_agent_move_is_split_around_the_version_set_changes(
    make: Any,
) -> None:
    """Pins must follow the agent move (upserts after it) and the activation must follow
    the upserts: the update is sent as two calls, fields first, activation last."""
    s = _inactive_on_deprecated_llm(make)
    doc = manifest(
        "Greeter",
        f"""
        description: Greeter service
        agent: Helper
        service_hierarchical_state_machine: Flow
        version_sets:
          canary:
            agent_version_number: 2
            llm_model_preferences:
              conversation: {{llm_name: {CURRENT_LLM}}}
        """,
    )
    plan = s.plan(doc, prune=True)
    assert ops(plan) == [
        ("update", "Greeter", None),
        ("update", "Greeter", "canary"),
        ("delete", "Greeter", "old"),
        ("activate", "Greeter", None),
    ]
    move, *_, activate = plan.operations
    assert "is_active" not in move.request and "agent_id" in move.request
    assert activate.request == {"is_active": True}
    _apply_once(s, plan)
    assert s.plan(doc, prune=True).operations == ()


def test_activating_a_service_whose_agent_has_no_versions_is_a_plan_error(make: Any) -> None:
    """Refused whatever the order (update-service: 'uses an invalid agent'): say so at plan
    time, at the manifest, instead of a 400 mid-apply."""
    s = make([svc("Greeter", is_active=False, tags=OWNED, agent="Helper")])
    s.emulator.set_latest_version("Helper", None)  # its versions withdrawn since
    plan = s.plan(
        manifest(
            "Greeter",
            "description: Greeter service\nagent: Helper\nservice_hierarchical_state_machine: Flow",
        )
    )
    (error,) = plan.errors
    assert error.field == "spec.agent"
    assert "'Helper' has no versions" in error.message and "activate" in error.message


# --- item 11: an unknown llm_name is refused at plan time; a 422 names the user's field --------


@pytest.mark.parametrize(
    ("services", "set_name", "llm", "hint"),
    [
        # an upsert on an existing service: the closest name is offered
        (
            [svc("Greeter", tags=OWNED)],
            "canary",
            "openai_gpt-5.1-2025-11-31",
            "did you mean 'openai_gpt-5.1-2025-11-13'",
        ),
        # the release set inside a create: nothing close, the accepted names are listed
        ([], "release", "zz", "the accepted names are 'azure_gpt-4.1-2025-04-14'"),
    ],
)
def test_an_llm_name_outside_the_apis_closed_list_is_a_plan_error(
    make: Any, services: list[Any], set_name: str, llm: str, hint: str
) -> None:
    """The document makes llm_name the closed enum LLMType: the plan refuses a name outside
    it (it warned "the API may reject it", then apply got a 422 blamed on the reconciler)."""
    s = make(services)
    plan = s.plan(
        manifest(
            "Greeter",
            f"""
            description: Greeter service
            agent: Concierge
            service_hierarchical_state_machine: Flow
            version_sets:
              {set_name}:
                llm_model_preferences:
                  conversation: {{llm_name: {llm}}}
            """,
        )
    )
    (error,) = plan.errors
    path = f"spec.version_sets.{set_name}.llm_model_preferences.conversation.llm_name"
    assert error.field == path
    assert error.pos is not None and error.pos.line > 1
    assert f"{llm!r} is not an LLM the API accepts" in error.message
    assert hint in error.message
    assert not [w for w in plan.warnings if "may reject" in w.message]


RETIRED_LLM = "openai_gpt-4-0613"  # outside LLMType: a retired LLM (the emulator's reading)


def _on_retired_llm(make: Any) -> Any:
    return _greeter_on(make, RETIRED_LLM, ("old",))


GREETER = "description: Greeter service\nagent: Concierge\nservice_hierarchical_state_machine: Flow"


def test_a_retired_llm_a_live_service_still_uses_is_not_accepted_for_a_new_set(
    make: Any,
) -> None:
    """A stored name the enum no longer lists proves nothing: sending it is a 422."""
    s = _on_retired_llm(make)
    doc = manifest(
        "Greeter",
        GREETER + f"\nis_active: false\nversion_sets:\n  canary:\n    llm_model_preferences:\n"
        f"      conversation: {{llm_name: {RETIRED_LLM}}}",
    )
    (error,) = s.plan(doc).errors
    assert error.field == "spec.version_sets.canary.llm_model_preferences.conversation.llm_name"
    assert f"'{RETIRED_LLM}' is not an LLM the API accepts" in error.message


def test_activating_a_service_that_keeps_a_retired_llm_is_a_plan_error(make: Any) -> None:
    """Refused whatever the order (the set stays): a plan error at spec.is_active; with
    --prune the set is deleted first and the activation goes through."""
    s = _on_retired_llm(make)
    doc = manifest("Greeter", GREETER)
    (error,) = s.plan(doc).errors
    assert error.field == "spec.is_active"
    assert f"version set 'old' prefers '{RETIRED_LLM}'" in error.message
    assert "refuses to activate" in error.message and "--prune" in error.message
    plan = s.plan(doc, prune=True)
    assert ops(plan) == [("delete", "Greeter", "old"), ("activate", "Greeter", None)]
    _apply_once(s, plan)
    assert s.plan(doc, prune=True).operations == ()


def test_a_422_on_a_manifest_field_names_it_and_does_not_blame_the_reconciler(
    make: Any, allow_invalid_requests: None
) -> None:
    from reconciler.api.errors import RequestInvalid

    s = make([svc("Greeter", id=ID_A, tags=OWNED)])
    with pytest.raises(RequestInvalid) as caught:
        s.client.upsert_version_set(
            ID_A,
            "canary",
            {
                "agent_version_number": None,
                "service_hierarchical_state_machine_version_number": None,
                "llm_model_preferences": {"conversation": {"llm_name": "nope", "params": {}}},
            },
            service="Greeter",
        )
    message = str(caught.value)
    assert "upsert-service-version-set for service 'Greeter' failed: HTTP 422" in message
    assert "body.version_set.llm_model_preferences.conversation.llm_name" in message
    assert "spec.version_sets.<set>.llm_model_preferences.conversation.llm_name" in message
    assert "reconciler bug" not in message
    assert "nope" not in message  # the refused value itself is never echoed


def test_a_422_on_the_path_is_still_a_reconciler_bug() -> None:
    from reconciler.api.failures import error_for_status

    payload = {"detail": [{"loc": ["path", "service_id"], "msg": "bad id", "type": "x"}]}
    error = error_for_status(
        "update-service", 422, "path.service_id: bad id", service="G", payload=payload
    )
    assert "reconciler bug" in str(error)
    missing = {
        "detail": [
            {
                "loc": ["body", "version_set", "agent_version_number"],
                "msg": "Field required",
                "type": "missing",
            }
        ]
    }
    error = error_for_status("upsert-service-version-set", 422, "x", service="G", payload=missing)
    assert "reconciler bug" in str(error) and "manifest" not in str(error)


def test_a_split_activation_still_waits_for_the_name_it_takes(make: Any) -> None:
    """Swap in a new version by pin: the inactive one moves agent, gets a set, is renamed
    and activated; the active holder of the name is deactivated. The split activation
    (not the field update) is the call that takes the name."""
    from test_planner_scenarios import ID_B

    s = make(
        [
            svc("Greeter", id=ID_A, tags=OWNED),
            svc("Greeter next", id=ID_B, is_active=False, tags=OWNED),
        ]
    )
    docs = (
        manifest(
            "Greeter",
            "description: Greeter next service\nagent: Helper\n"
            "service_hierarchical_state_machine: Flow\n"
            "version_sets:\n  canary: {agent_version_number: 2}",
            meta=f"id: {ID_B}",
        ),
        manifest("Greeter", GREETER + "\nis_active: false", meta=f"id: {ID_A}").replace(
            "name: Greeter", "name: Greeter old"
        ),
    )
    plan = s.plan(*docs)
    assert plan.errors == ()
    kinds = [(op.kind.value, op.service_id, op.version_set) for op in plan.operations]
    activate = kinds.index(("activate", ID_B, None))
    assert kinds.index(("deactivate", ID_A, None)) < activate
    assert kinds.index(("create", ID_B, "canary")) < activate
    _apply_once(s, plan)
    assert s.plan(*docs).operations == ()


def test_a_retired_llm_declared_as_it_is_live_is_not_sent_and_not_an_error(make: Any) -> None:
    """Why validate only warns: a set declared exactly as it is live is never sent, so the
    API never sees its name (export writes such manifests for a service on a retired LLM)."""
    s = _greeter_on(make, RETIRED_LLM, ("old",), active=True)
    doc = manifest(
        "Greeter",
        GREETER + f"\nversion_sets:\n  old:\n    llm_model_preferences:\n"
        f"      conversation: {{llm_name: {RETIRED_LLM}}}",
    )
    plan = s.plan(doc)
    assert plan.errors == () and plan.operations == ()
    assert [w.field for w in plan.warnings] == [
        "spec.version_sets.old.llm_model_preferences.conversation.llm_name"
    ]


def test_a_deprecated_llm_caught_only_by_the_api_gets_no_retry_advice(make: Any) -> None:
    """The undeclared 'old' set stays on an LLM the API deprecated but still lists: no plan
    can know, the activation gets the API's 400, and the report says what to change
    instead of "run apply again to retry" (which would get the same 400)."""
    from reconciler.applier import apply_plan
    from reconciler.report import Convergence, render_apply_text

    s = _inactive_on_deprecated_llm(make)
    doc = _greeter_on_current_llm()
    plan = s.plan(doc)
    assert plan.errors == ()
    report = apply_plan(s.client, plan, max_workers=1)
    (refused,) = [r for r in report.results if r.api_status == 400]
    text = render_apply_text(report, Convergence(False, ("activate 'Greeter'",)))
    assert "retry" not in text.lower()
    assert f"The API refused {refused.key} (HTTP 400)" in text and "llm_name" in text
