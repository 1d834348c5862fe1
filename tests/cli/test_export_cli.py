"""`reconciler export` end to end through the command line, on the in-process emulator."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from support.paths import REPO, SEED

from reconciler import cli

SEED_KEY = yaml.safe_load(SEED.read_text(encoding="utf-8"))["credentials"]["api_key"]
SEED_SERVICES = yaml.safe_load(SEED.read_text(encoding="utf-8"))["services"]


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    assert "Traceback" not in result.output
    assert SEED_KEY not in result.output  # secrets never in any output
    return result


def test_export_to_a_directory_then_validate_and_plan(tmp_path: Path) -> None:
    out = tmp_path / "services"
    result = run("export", "--emulator", str(SEED), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"Wrote {len(SEED_SERVICES)} manifest(s) to {out}" in result.stderr
    assert result.stdout == ""
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(
        f"{name.lower().replace(' & ', '-').replace(' ', '-')}.yaml"
        for name in (s["name"] for s in SEED_SERVICES)
    )
    for path in out.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "managed_by" not in text
        assert "edge:" not in text
        assert not text.startswith("# yaml-language-server")  # tmp is outside any schema tree

    assert run("validate", str(out)).exit_code == 0

    plan = run("plan", str(out), "--emulator", str(SEED), "--detailed-exitcode")
    assert plan.exit_code == 2, plan.output  # changes: the adoptions
    unowned = [
        s["name"]
        for s in SEED_SERVICES
        if (s.get("tags") or {}).get("managed_by") != "amigo_reconciler"
    ]
    assert unowned  # the example seed has services made by hand
    for name in unowned:
        assert f'adopt service "{name}"' in plan.stdout
    assert plan.stdout.count("adopt service") == len(unowned)
    assert "0 to create" in plan.stdout and "0 to delete" in plan.stdout


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "services"
    assert run("export", "--emulator", str(SEED), "--out", str(out)).exit_code == 0
    (out / "front-desk.yaml").write_text("edited by hand\n", encoding="utf-8")
    again = run("export", "--emulator", str(SEED), "--out", str(out))
    assert again.exit_code == 1
    assert str(out / "front-desk.yaml") in again.stderr
    assert str(out / "meet-greet.yaml") in again.stderr
    assert "--force" in again.stderr
    assert (out / "front-desk.yaml").read_text(encoding="utf-8") == "edited by hand\n"
    forced = run("export", "--emulator", str(SEED), "--out", str(out), "--force")
    assert forced.exit_code == 0
    assert "edited by hand" not in (out / "front-desk.yaml").read_text(encoding="utf-8")


def test_stdout_stream_with_filters() -> None:
    result = run("export", "--emulator", str(SEED), "--active-only")
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    active = sorted(s["name"] for s in SEED_SERVICES if s.get("is_active", True))
    assert sorted(d["metadata"]["name"] for d in documents) == active
    assert all(d["spec"]["is_active"] is True for d in documents)

    result = run(
        "export", "--emulator", str(SEED), "--target", "Front Desk", "--target", "Meet & Greet"
    )
    assert result.exit_code == 0
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["metadata"]["name"] for d in documents] == ["Front Desk", "Meet & Greet"]


def test_stdout_inside_the_repository_carries_the_schema_modeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO / "examples")
    result = run("export", "--emulator", str(SEED), "--target", "Front Desk")
    assert result.stdout.startswith(
        "# yaml-language-server: $schema=../schemas/service.schema.json\n"
    )


def test_unknown_target_is_one_clear_error() -> None:
    result = run("export", "--emulator", str(SEED), "--target", "Front Dsk")
    assert result.exit_code == 1
    assert "--target" in result.stderr and "'Front Dsk'" in result.stderr
    assert result.stdout == ""


def test_missing_credentials_name_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AMIGO_API_KEY",
        "AMIGO_API_KEY_ID",
        "AMIGO_USER_ID",
        "AMIGO_ORGANIZATION_ID",
        "AMIGO_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    result = run("export")
    assert result.exit_code == 1
    assert "AMIGO_API_KEY" in result.stderr
