"""Rendering a plan: text, markdown (PR comment within GitHub's limit), json, github."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from reconciler.diagnostics import Diagnostic, Severity, SourcePos
from reconciler.model import DesiredService, DesiredState, LiveService, LiveState, VersionSet
from reconciler.plan import Plan
from reconciler.planfile import plan_from_dict
from reconciler.planner import plan_against
from reconciler.render import GITHUB_COMMENT_LIMIT, NO_CHANGES, render_markdown, render_plan

AGENT = "1" * 24
FLOW = "2" * 24


def owned(name: str, index: int, **changes: object) -> LiveService:
    fields: dict[str, object] = {
        "id": f"{index:024x}",
        "name": name,
        "description": f"{name} service",
        "is_active": True,
        "agent_id": AGENT,
        "service_hierarchical_state_machine_id": FLOW,
        "tags": {"managed_by": "amigo_reconciler", "team": "a"},
        "keyterms": (),
        "version_sets": {"edge": VersionSet(), "release": VersionSet(), "old": VersionSet(1)},
    }
    fields.update(changes)
    return LiveService(**fields)  # type: ignore[arg-type]


def wanted(name: str, **changes: object) -> DesiredService:
    fields: dict[str, object] = {
        "name": name,
        "description": f"{name} service",
        "source": SourcePos(f"services/{name}.yaml", 1, 1),
        "agent_id": AGENT,
        "service_hierarchical_state_machine_id": FLOW,
        "tags": {"team": "a"},
    }
    fields.update(changes)
    return DesiredService(**fields)  # type: ignore[arg-type]


def make(desired: list[DesiredService], live: list[LiveService], **kwargs: object) -> Plan:
    return plan_against(
        DesiredState(tuple(desired), digest="sha256:d"),
        LiveState(tuple(live)),
        organization="acme",
        base_url="https://api.example.test",
        created_at="2025-01-01T00:00:00+00:00",
        api_reads={"get-services": 2, "get-agents": 1},
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def plan() -> Plan:
    return make(
        [
            wanted("Kept", description="changed", tags={"team": "b"}),
            wanted("Fresh", version_sets={"canary": VersionSet(agent_version_number=2)}),
        ],
        [owned("Kept", 1), owned("Gone", 2)],
        prune=True,
    )


def test_text_shows_symbols_field_changes_summary_and_reads(plan: Plan) -> None:
    text = render_plan(plan, "text")
    assert '+ create service "Fresh"' in text
    assert '~ update service "Kept"' in text
    assert 'description: "Kept service" -> "changed"' in text
    assert 'tags.team: "a" -> "b"' in text
    assert '- delete version set "old" of service "Kept"' in text
    assert '- deactivate service "Gone"' in text
    assert "managed_by" not in text  # bookkeeping, never a user change
    assert "Plan: 2 to create, 1 to update, 1 to delete, 1 to deactivate." in text
    assert "API reads: 3 (get-agents 1, get-services 2)" in text
    assert "\x1b[" not in text


def test_text_colour_only_when_asked(plan: Plan) -> None:
    assert "\x1b[" in render_plan(plan, "text", color=True)


def test_text_no_changes_message() -> None:
    plan = make([wanted("Kept")], [owned("Kept", 1, version_sets={})])
    assert plan.operations == ()
    assert NO_CHANGES in render_plan(plan, "text")


def test_adoption_is_shown_as_adopt() -> None:
    plan = make([wanted("Hand")], [owned("Hand", 1, tags={"team": "a"}, version_sets={})])
    text = render_plan(plan, "text")
    assert '~ adopt service "Hand"' in text and "adds the ownership tag" in text


def test_text_lists_errors_and_warnings() -> None:
    plan = make([wanted("X")], [])
    plan = replace(
        plan,
        errors=(Diagnostic("bad thing", pos=SourcePos("f.yaml", 3, 4), field="spec.agent"),),
        warnings=(Diagnostic("odd thing", severity=Severity.WARNING),),
    )
    text = render_plan(plan, "text")
    assert "f.yaml:3:4: error: spec.agent: bad thing" in text
    assert "warning: odd thing" in text
    assert "cannot be applied" in text


def test_service_names_cannot_inject_terminal_escapes() -> None:
    plan = make([wanted("Evil\x1b[31m")], [])
    assert "\x1b" not in render_plan(plan, "text")


def test_json_is_the_saved_form(plan: Plan) -> None:
    data = json.loads(render_plan(plan, "json"))
    assert data["format_version"] == 1 and data["summary"]["create"] == 2
    assert plan_from_dict(data).operations == plan.operations


def test_markdown_has_table_details_and_summary(plan: Plan) -> None:
    md = render_plan(plan, "markdown")
    assert "| Service | Operations |" in md
    assert "<details><summary>Kept (2 operations)</summary>" in md
    assert "Plan: 2 to create, 1 to update, 1 to delete, 1 to deactivate." in md


def test_markdown_escapes_markup_in_names() -> None:
    md = render_plan(make([wanted("a|b <script>")], []), "markdown")
    outside_code = re.sub(r"```diff\n.*?\n```", "", md, flags=re.S)
    assert "<script>" not in outside_code and "a\\|b" in outside_code


def test_markdown_stays_under_the_comment_limit_with_a_notice() -> None:
    many = [wanted(f"Service {i:03d}", description="x" * 400) for i in range(400)]
    plan = make(many, [])
    full = render_markdown(plan, limit=10**9)
    assert len(full) > GITHUB_COMMENT_LIMIT
    md = render_plan(plan, "markdown")
    assert len(md) <= GITHUB_COMMENT_LIMIT
    assert "too long for one comment" in md and "artifact" in md
    assert "Plan: 400 to create" in md


def test_github_annotations_for_errors_and_warnings() -> None:
    plan = replace(
        make([wanted("X")], []),
        errors=(Diagnostic("no such agent", pos=SourcePos("s.yaml", 5, 3), field="spec.agent"),),
        warnings=(Diagnostic("deprecated", severity=Severity.WARNING),),
    )
    lines = render_plan(plan, "github").splitlines()
    assert lines[0] == "::error file=s.yaml,line=5,col=3::spec.agent: no such agent"
    assert lines[1] == "::warning::deprecated"
    assert lines[-1].startswith("::notice title=reconciler plan::Plan: 1 to create")


def test_unknown_format_is_rejected(plan: Plan) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render_plan(plan, "yaml")


@pytest.mark.parametrize("fmt", ["text", "markdown", "github"])
def test_a_plan_whose_only_content_is_an_error_never_says_no_changes(fmt: str) -> None:
    plan = replace(
        make([wanted("Kept")], [owned("Kept", 1, version_sets={})]),
        errors=(Diagnostic("no such agent", pos=SourcePos("s.yaml", 5, 3)),),
    )
    assert plan.operations == ()
    shown = render_plan(plan, fmt)
    assert NO_CHANGES not in shown and "Live state matches" not in shown
    assert "No operations were planned because the plan has errors" in shown


def test_github_escapes_properties_and_messages_by_the_workflow_command_rules() -> None:
    plan = replace(
        make([wanted("X")], []),
        errors=(
            Diagnostic(
                "100% wrong\r\nnext: line",
                pos=SourcePos("dir,a:b%c\r\nd.yaml", 5, 3),
                field="spec.agent",
            ),
        ),
    )
    first = render_plan(plan, "github").splitlines()[0]
    assert first == (
        "::error file=dir%2Ca%3Ab%25c%0D%0Ad.yaml,line=5,col=3::"
        "spec.agent: 100%25 wrong%0D%0Anext: line"
    )
