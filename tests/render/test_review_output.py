"""Plan review output (issue 14): one valid comment at any size, every change on its
manifest line, diffs people can scan, saved plans and reports rendered again."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.paths import REPO
from support.plans import balanced, big_plan

from reconciler.cli import main
from reconciler.diagnostics import SourcePos
from reconciler.model import DesiredService, DesiredState, LiveService, LiveState, VersionSet
from reconciler.plan import Change, Plan
from reconciler.planfile import save_plan
from reconciler.planner import plan_against
from reconciler.render import MARKDOWN_MAX_CHARS, render_markdown, render_plan

AGENT = "1" * 24
FLOW = "2" * 24
BASE = "https://github.com/acme/services/blob/" + "c" * 40


# 10,000 operations: in the slow suite (which .ci/run also runs).
@pytest.mark.parametrize("n", [1, 100, 1_000, pytest.param(10_000, marks=pytest.mark.slow)])
def test_any_size_is_one_valid_comment_within_the_cap_with_every_error(n: int) -> None:
    plan = big_plan(n)
    md = render_plan(plan, "markdown", link_base=BASE)
    assert len(md) <= MARKDOWN_MAX_CHARS
    balanced(md)
    for error in plan.errors:
        assert "problem number" in md and error.message.split(":")[0] in md
        assert f"services/e{error.message.split()[2][:-1]}.yaml" in md
    assert md.startswith("<!-- amigo-reconciler plan-digest: sha256:")
    assert f"Plan: 0 to create, {n - n // 4} to update" in md or n == 1
    whole = render_markdown(plan, limit=10**9, link_base=BASE)
    assert (n >= 100) == (len(whole) > MARKDOWN_MAX_CHARS)
    if n >= 100:  # too long: says what was left out and where the full plan is
        tail = md.rstrip().rsplit("\n\n", 2)[-2]
        assert tail.startswith("> **Not shown here") and "reconciler show plan.json" in tail
        assert "the details of" in tail
    else:
        assert "Not shown here" not in md


@pytest.mark.parametrize("cap", [2_000, 5_000, 20_000])
def test_small_caps_compact_the_table_but_keep_errors(cap: int) -> None:
    plan = big_plan(10_000)
    md = render_markdown(plan, limit=cap)
    assert len(md) <= cap
    balanced(md)
    assert all(e.message in md for e in plan.errors)
    assert "more services |" in md and "service rows" in md


def test_errors_come_before_the_table_and_details() -> None:
    md = render_markdown(big_plan(8), link_base=BASE)
    assert md.index("#### Errors") < md.index("| Service |") < md.index("<details>")


def test_a_service_value_cannot_close_the_fence_or_open_details() -> None:
    plan = big_plan(4)
    evil = replace(
        plan.operations[0],
        changes=(Change("description", "a", "```\n</details><details>\n````````"),),
    )
    md = render_markdown(replace(plan, operations=(evil, *plan.operations[1:])))
    balanced(md)


# --- diffs and banner ----------------------------------------------------------------


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
        "version_sets": {"edge": VersionSet(), "release": VersionSet()},
    }
    fields.update(changes)
    return LiveService(**fields)  # type: ignore[arg-type]


# Line numbers as a manifest would have them: metadata.name on 4, spec on 6, ...
LINES = {
    "metadata.name": 4,
    "metadata.id": 5,
    "spec": 6,
    "spec.description": 7,
    "spec.is_active": 8,
    "spec.agent_id": 9,
    "spec.service_hierarchical_state_machine_id": 10,
    "spec.tags": 11,
    "spec.tags.team": 12,
    "spec.version_sets": 13,
    "spec.version_sets.canary": 14,
    "spec.version_sets.canary.agent_version_number": 15,
}


def wanted(name: str, **changes: object) -> DesiredService:
    file = f"services/{name}.yaml"
    fields: dict[str, object] = {
        "name": name,
        "description": f"{name} service",
        "source": SourcePos(file, 1, 1),
        "agent_id": AGENT,
        "service_hierarchical_state_machine_id": FLOW,
        "tags": {"team": "a"},
        "positions": {path: SourcePos(file, line, 3) for path, line in LINES.items()},
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
        api_reads={"get-services": 2},
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def every_kind() -> Plan:
    """One operation of every kind, each from its own manifest."""
    canary = {"canary": VersionSet(agent_version_number=3)}
    return make(
        [
            wanted("Created"),
            wanted("Updated", description="new words"),
            wanted("Renamed", id=f"{3:024x}"),
            wanted("Paused", is_active=False),
            wanted("Resumed"),
            wanted("Adopted"),
            wanted("Versioned", version_sets={"canary": VersionSet(agent_version_number=4)}),
            wanted("NewSet", version_sets=canary),
            wanted("Pruned"),
        ],
        [
            owned("Updated", 2),
            owned("Old name", 3),
            owned("Paused", 4),
            owned("Resumed", 5, is_active=False),
            owned("Adopted", 6, tags={"team": "a"}),
            owned("Versioned", 7, version_sets={"edge": VersionSet(), **canary}),
            owned("NewSet", 8),
            owned("Pruned", 9, version_sets={"edge": VersionSet(), "old": VersionSet(1)}),
            owned("Undeclared", 10),
        ],
        prune=True,
    )


def test_every_operation_kind_is_annotated_on_its_manifest_line(every_kind: Plan) -> None:
    notices = [
        line
        for line in render_plan(every_kind, "github").splitlines()
        if "title=reconciler plan%3A " in line
    ]
    got = {}
    for line in notices:
        props, _, message = line.removeprefix("::notice ").partition("::")
        fields = dict(p.split("=", 1) for p in props.split(","))
        got[fields["title"].removeprefix("reconciler plan%3A ")] = (
            fields.get("file"),
            int(fields["line"]) if "line" in fields else None,
            message,
        )
    expect = {
        "Created": ("services/Created.yaml", 1, "+ create: "),
        "Updated": (
            "services/Updated.yaml",
            7,
            '~ update: description "Updated service" → "new words"',
        ),
        "Renamed": ("services/Renamed.yaml", 4, '~ update: name "Old name" → "Renamed"'),
        "Paused": ("services/Paused.yaml", 8, "- deactivate: is_active true → false"),
        "Resumed": ("services/Resumed.yaml", 8, "~ activate: is_active false → true"),
        "Adopted": ("services/Adopted.yaml", 1, "~ adopt"),
        "Versioned": (
            "services/Versioned.yaml",
            15,
            "~ update version set canary: agent_version_number 3 → 4",
        ),
        "NewSet": ("services/NewSet.yaml", 14, "+ create version set canary: "),
        "Pruned": ("services/Pruned.yaml", 1, "- delete version set old: "),
        "Undeclared": (None, None, "- deactivate: is_active true → false"),
    }
    assert set(got) == set(expect)
    for service, (file, line, message) in expect.items():
        assert got[service][:2] == (file, line), service
        assert got[service][2].startswith(message), (service, got[service][2])


def test_markdown_links_each_service_and_operation_to_its_line(every_kind: Plan) -> None:
    md = render_markdown(every_kind, link_base=BASE)
    assert f"[Versioned]({BASE}/services/Versioned.yaml#L15)" in md
    assert f"[services/Renamed.yaml:4]({BASE}/services/Renamed.yaml#L4)" in md
    assert "no manifest line" in md  # the undeclared service's deactivation
    assert "](" not in render_markdown(every_kind)  # no base: no links


def test_markdown_diffs_are_minus_and_plus_lines_with_a_banner(every_kind: Plan) -> None:
    md = render_markdown(every_kind)
    assert '```diff\n~ update version set "canary" of service "Versioned"' in md
    assert "- agent_version_number: 3\n+ agent_version_number: 4" in md
    assert '- name: "Old name"\n+ name: "Renamed"' in md
    banner = md.split("\n\n")[1]
    assert banner.startswith("> [!CAUTION]\n> **This plan deletes 1 version set and deactivates 2")
    assert "`Pruned` version set `old`" in banner and "`Paused`" in banner


def test_no_banner_without_deletions() -> None:
    md = render_markdown(make([wanted("Created")], []))
    assert "[!CAUTION]" not in md


def test_links_refuse_paths_outside_the_tree() -> None:
    from reconciler.render import source_link

    assert source_link(BASE, SourcePos("../x.yaml", 1, 1)) is None
    assert source_link(BASE, SourcePos("./a b.yaml", 2, 1)) == f"{BASE}/a%20b.yaml#L2"
    assert source_link(None, SourcePos("a.yaml", 2, 1)) is None


def test_link_base_from_the_github_environment(tmp_path: Path) -> None:
    from reconciler.github import link_base_from_env

    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"sha": "d" * 40}}}))
    env = {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/services",
        "GITHUB_SHA": "e" * 40,
        "GITHUB_EVENT_PATH": str(event),
    }
    assert link_base_from_env(env) == "https://github.com/acme/services/blob/" + "d" * 40
    assert link_base_from_env({**env, "GITHUB_EVENT_PATH": ""}).endswith("e" * 40)  # type: ignore[union-attr]
    assert link_base_from_env({}) is None


# --- show ----------------------------------------------------------------------------


def test_show_renders_a_saved_plan_in_every_format(every_kind: Plan, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    save_plan(every_kind, saved)
    runner = CliRunner()
    for fmt in ("text", "markdown", "json", "github"):
        result = runner.invoke(main, ["show", str(saved), "--format", fmt, "--link-base", BASE])
        assert result.exit_code == 0, result.output
        assert result.output == render_plan(every_kind, fmt, link_base=BASE)
    capped = runner.invoke(
        main, ["show", str(saved), "--format", "markdown", "--max-chars", "2000"]
    )
    assert capped.exit_code == 0 and len(capped.output) <= 2000


def test_show_refuses_what_is_neither_and_max_chars_off_markdown(tmp_path: Path) -> None:
    other = tmp_path / "x.json"
    other.write_text('{"apiVersion": "amigo/v1"}')
    result = CliRunner().invoke(main, ["show", str(other)])
    assert result.exit_code == 1 and "neither a saved plan" in result.output
    assert "Traceback" not in result.output
    broken = tmp_path / "y.json"
    broken.write_text("{\n  nope")
    result = CliRunner().invoke(main, ["show", str(broken)])
    assert result.exit_code == 1 and "y.json is not JSON (line 2, column 3" in result.output
    result = CliRunner().invoke(main, ["show", str(broken), "--max-chars", "5000"])
    assert result.exit_code == 64 and "--max-chars applies to --format markdown" in result.output


def test_plan_takes_max_chars_and_links_from_the_github_environment(tmp_path: Path) -> None:
    repo = REPO
    seed = str(repo / "examples" / "emulator-seed.yaml")
    args = ["plan", "examples/services", "--emulator", seed, "--prune", "--format", "markdown"]
    github_env = {
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_REPOSITORY": "acme/services",
        "GITHUB_SHA": "f" * 40,
        "GITHUB_EVENT_PATH": "",
    }
    import contextlib

    with contextlib.chdir(repo):
        linked = CliRunner().invoke(main, args, env=github_env)
        explicit = CliRunner().invoke(main, [*args, "--link-base", BASE, "--max-chars", "2000"])
        plain = CliRunner().invoke(
            main, args, env={"GITHUB_SERVER_URL": "", "GITHUB_REPOSITORY": ""}
        )
        refused = CliRunner().invoke(main, [*args[:-1], "json", "--max-chars", "5000"])
    url = "https://github.example/acme/services/blob/" + "f" * 40 + "/examples/services/"
    assert linked.exit_code == 0 and url in linked.stdout
    assert explicit.exit_code == 0 and len(explicit.stdout) <= 2000 and BASE in explicit.stdout
    balanced(explicit.stdout)
    assert "Not shown here" in explicit.stdout
    assert plain.exit_code == 0 and "](" not in plain.stdout
    assert refused.exit_code == 64 and "--max-chars applies to --format markdown" in refused.output


def test_show_renders_plan_env_all_output_in_every_format(every_kind: Plan, tmp_path: Path) -> None:
    from reconciler.render import render_environments

    results = [("staging", every_kind, None), ("production", every_kind, None)]
    saved = tmp_path / "all.json"
    saved.write_text(render_environments(results, "json"))
    for fmt in ("text", "markdown", "json", "github"):
        shown = CliRunner().invoke(main, ["show", str(saved), "--format", fmt])
        assert shown.exit_code == 0, shown.output
        assert shown.output == render_environments(results, fmt)
    assert "=== environment production ===" in CliRunner().invoke(main, ["show", str(saved)]).output


def test_show_refuses_a_malformed_apply_report_and_exits_as_apply_did(tmp_path: Path) -> None:
    from reconciler.report import cancelled_report_json

    good = cancelled_report_json("acme", "https://api.example")
    path = tmp_path / "report.json"
    path.write_text(json.dumps({**good, "outcome": "converged", "converged": True}))
    shown = CliRunner().invoke(main, ["show", str(path)])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("Applied, and the live state converged.")

    path.write_text(json.dumps(good))  # a cancelled apply exited non-zero
    assert CliRunner().invoke(main, ["show", str(path)]).exit_code == 1

    for bad, named in (
        ({"outcome": 5}, "`outcome`"),
        ({"converged": "yes"}, "`converged`"),
        ({"summary": {**good["summary"], "done": -1}}, "`summary.done`"),
        ({"format_version": 2}, "`format_version`"),
        ({"verification": {"passed": "no"}}, "`verification"),
    ):
        path.write_text(json.dumps({**good, **bad}))
        refused = CliRunner().invoke(main, ["show", str(path)])
        assert refused.exit_code == 1, (bad, refused.output)
        assert "malformed apply report" in refused.output and named in refused.output, (
            bad,
            refused.output,
        )
        assert "Traceback" not in refused.output and "Outcome: 5" not in refused.output
