"""The published JSON Schemas (schemas/*.v1.schema.json) hold real outputs: plans and
apply reports made against the emulator from the example organization (issue 14, item 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.paths import REPO

from reconciler.cli import main

jsonschema = pytest.importorskip("jsonschema")

SEED = str(REPO / "examples" / "emulator-seed.yaml")
SERVICES = REPO / "examples" / "services"


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPO / "schemas" / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code in (0, 2), result.output
    return result.stdout


def changed_services(tmp_path: Path) -> Path:
    """The example manifests with edits, so the plan has updates and version-set changes."""
    target = tmp_path / "services"
    target.mkdir()
    for source in SERVICES.glob("*.yaml"):
        text = source.read_text(encoding="utf-8")
        text = text.replace("agent: Concierge", "agent: Triage Nurse", 1)
        (target / source.name).write_text(text, encoding="utf-8")
    return target


@pytest.mark.parametrize("edit", [False, True])
def test_real_plans_match_the_plan_schema(tmp_path: Path, edit: bool) -> None:
    services = changed_services(tmp_path) if edit else SERVICES
    for extra in ((), ("--prune",)):
        plan = json.loads(
            run("plan", str(services), "--emulator", SEED, "--format", "json", *extra)
        )
        jsonschema.validate(plan, schema("plan.v1.schema.json"))
        assert plan["format_version"] == 1


def test_the_schema_refuses_what_a_plan_is_not(tmp_path: Path) -> None:
    plan = json.loads(run("plan", str(SERVICES), "--emulator", SEED, "--format", "json"))
    for broken in (
        {**plan, "format_version": 2},
        {**plan, "surprise": 1},
        {k: v for k, v in plan.items() if k != "checksum"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema("plan.v1.schema.json"))


def test_real_apply_reports_match_the_report_schema(tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    run("plan", str(changed_services(tmp_path)), "--emulator", SEED, "--out", str(saved))
    result = CliRunner().invoke(
        main, ["apply", str(saved), "--emulator", SEED, "--auto-approve", "--format", "json"]
    )
    report = json.loads(result.stdout)
    jsonschema.validate(report, schema("apply-report.v1.schema.json"))
    assert report["format_version"] == 1 and report["operations"]
    # the same report through `show`, in every format
    (tmp_path / "apply.json").write_text(result.stdout, encoding="utf-8")
    for fmt in ("text", "markdown", "github", "json"):
        shown = CliRunner().invoke(main, ["show", str(tmp_path / "apply.json"), "--format", fmt])
        assert shown.exit_code == 0, shown.output
    assert (
        json.loads(
            CliRunner()
            .invoke(main, ["show", str(tmp_path / "apply.json"), "--format", "json"])
            .stdout
        )
        == report
    )


def test_a_nothing_to_do_apply_report_matches_too() -> None:
    result = CliRunner().invoke(
        main, ["apply", str(SERVICES), "--emulator", SEED, "--auto-approve", "--format", "json"]
    )
    jsonschema.validate(json.loads(result.stdout), schema("apply-report.v1.schema.json"))


def test_a_cancelled_before_sending_apply_report_matches_too() -> None:
    """Declining the prompt with --format json still writes a report (outcome cancelled)."""
    from reconciler.cli.shared import Runtime

    result = CliRunner().invoke(
        main,
        ["apply", str(SERVICES), "--emulator", SEED, "--format", "json"],
        input="no\n",
        obj=Runtime(stdin_is_terminal=lambda: True),
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["outcome"] == "cancelled" and report["operations"] == []
    jsonschema.validate(report, schema("apply-report.v1.schema.json"))
