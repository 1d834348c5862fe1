"""`reconciler plan`: exit codes, --out, formats, offline errors before connecting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from reconciler.cli import main

SEED = {
    "organization": "acme",
    "credentials": {"api_key": "seed-key-not-secret", "api_key_id": "kid", "user_id": "u1"},
    "agents": [{"name": "Concierge", "latest_version": 4}],
    "state_machines": [{"name": "Flow", "latest_version": 2}],
    "services": [
        {
            "name": "Greeter",
            "description": "Says hello",
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Flow",
            "tags": {"managed_by": "amigo_reconciler"},
        }
    ],
}

GREETER = """\
apiVersion: amigo.ai/v1
kind: Service
metadata:
  name: Greeter
spec:
  description: {description}
  agent: Concierge
  service_hierarchical_state_machine: Flow
"""


@pytest.fixture
def env(tmp_path: Path) -> tuple[Path, Path]:
    seed = tmp_path / "seed.yaml"
    seed.write_text(yaml.safe_dump(SEED))
    services = tmp_path / "services"
    services.mkdir()
    return seed, services


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["plan", *args], env={"AMIGO_API_KEY": None})
    return result.exit_code, result.stdout, result.stderr


def test_converged_exits_0_even_with_detailed_exitcode(env: tuple[Path, Path]) -> None:
    seed, services = env
    (services / "greeter.yaml").write_text(GREETER.format(description="Says hello"))
    code, out, _ = run(str(services), "--emulator", str(seed), "--detailed-exitcode")
    assert code == 0, out
    assert "No changes. Live state matches the manifests." in out
    assert "API reads: 3" in out  # services, agents, state machines (names to resolve)


def test_changes_exit_2_with_detailed_exitcode_and_0_without(env: tuple[Path, Path]) -> None:
    seed, services = env
    (services / "greeter.yaml").write_text(GREETER.format(description="Says hi"))
    code, out, _ = run(str(services), "--emulator", str(seed), "--detailed-exitcode")
    assert code == 2 and 'description: "Says hello" -> "Says hi"' in out
    code, _, _ = run(str(services), "--emulator", str(seed))
    assert code == 0


def test_out_saves_a_loadable_plan_without_secrets(env: tuple[Path, Path], tmp_path: Path) -> None:
    from reconciler.planfile import load_plan

    seed, services = env
    (services / "greeter.yaml").write_text(GREETER.format(description="Says hi"))
    out_file = tmp_path / "plan.json"
    code, _, err = run(str(services), "--emulator", str(seed), "--out", str(out_file))
    assert code == 0 and "reconciler apply" in err
    assert load_plan(out_file).operations[0].request == {"description": "Says hi"}
    assert "seed-key-not-secret" not in out_file.read_text()


def test_plan_errors_exit_1(env: tuple[Path, Path]) -> None:
    seed, services = env
    (services / "new.yaml").write_text(
        GREETER.replace("Greeter", "New").replace("Concierge", "Concierj").format(description="x")
    )
    code, out, _ = run(str(services), "--emulator", str(seed))
    assert code == 1
    assert "did you mean 'Concierge'" in out and "cannot be applied" in out


def test_manifest_errors_come_before_any_connection(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: amigo.ai/v1\nkind: Service\nmetadata: {name: X}\nspec: {bogus: 1}\n"
    )
    # No credentials and no emulator: a connection attempt would fail differently.
    code, _, err = run(str(bad))
    assert code == 1
    assert "bad.yaml:" in err and "AMIGO_" not in err
    assert "Traceback" not in err


def test_json_and_github_formats(env: tuple[Path, Path]) -> None:
    seed, services = env
    (services / "greeter.yaml").write_text(GREETER.format(description="Says hi"))
    code, out, _ = run(str(services), "--emulator", str(seed), "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["update"] == 1
    code, out, _ = run(str(services), "--emulator", str(seed), "--format", "github")
    lines = out.splitlines()
    assert code == 0 and lines[-1].startswith("::notice title=reconciler plan::Plan: 0 to create")
    # the update is annotated on the manifest line that causes it (the description)
    assert lines[0].startswith("::notice file=") and "greeter.yaml,line=" in lines[0]
    assert "~ update: description" in lines[0]
    code, out, _ = run(str(services), "--emulator", str(seed), "--format", "markdown")
    assert code == 0 and "<details>" in out


def test_unknown_target_is_exit_1_with_a_suggestion(env: tuple[Path, Path]) -> None:
    seed, services = env
    (services / "greeter.yaml").write_text(GREETER.format(description="Says hello"))
    code, _, err = run(str(services), "--emulator", str(seed), "--target", "Greeterr")
    assert code == 1 and "did you mean 'Greeter'" in err
