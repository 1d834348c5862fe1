"""The CLI as its users meet it: colour, messages that say what would be right, plan files.

Each test here pins a fix found by using the tool end to end against the emulator.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from support.paths import REPO

from reconciler import cli
from reconciler.cli.shared import Runtime

SEED = str(REPO / "examples" / "emulator-seed.yaml")
EXAMPLES = str(REPO / "examples" / "services")


def run(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.main, args, env=env)


# --- colour ----------------------------------------------------------------------


@pytest.fixture
def terminal() -> Runtime:
    """Pretend stdout and stderr are a terminal (so apply would colour its output)."""
    return Runtime(stream_is_terminal=lambda err: True)


def test_apply_colours_on_a_terminal(terminal: Runtime) -> None:
    result = CliRunner().invoke(
        cli.main,
        ["apply", EXAMPLES, "--emulator", SEED, "--auto-approve"],
        env={"NO_COLOR": ""},
        color=True,
        obj=terminal,
    )
    assert result.exit_code == 0, result.output
    assert "\x1b[" in result.output  # the control: colour is on without NO_COLOR


def test_apply_respects_no_color(terminal: Runtime) -> None:
    result = CliRunner().invoke(
        cli.main,
        ["apply", EXAMPLES, "--emulator", SEED, "--auto-approve"],
        env={"NO_COLOR": "1"},
        color=True,
        obj=terminal,
    )
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.output


# --- messages say what would be right -----------------------------------------------


def _manifest(tmp_path: Path, agent: str) -> str:
    path = tmp_path / "svc.yaml"
    path.write_text(
        "apiVersion: amigo.ai/v1\nkind: Service\nmetadata: {name: Night Line}\nspec:\n"
        f"  description: after hours\n  agent: {agent}\n"
        "  service_hierarchical_state_machine: Onboarding flow\n",
        encoding="utf-8",
    )
    return str(path)


def test_unknown_agent_lists_the_agents_that_exist(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.main, ["plan", _manifest(tmp_path, "Zzyzx"), "--emulator", SEED]
    )
    assert result.exit_code == 1
    assert "svc.yaml:6:10: error: spec.agent: no agent named 'Zzyzx'" in result.output
    assert "the organization's agents are 'Billing Assistant', 'Concierge'" in result.output


def test_unknown_target_is_said_once(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.main, ["plan", EXAMPLES, "--emulator", SEED, "--target", "front desk"]
    )
    assert result.exit_code == 1
    assert result.output.count("--target") == 1, result.output
    assert "no service named 'front desk'" in result.output
    assert "did you mean 'Front Desk'?" in result.output


# --- plan files --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["plan.out", "p.yaml"])  # by content: even a manifest's suffix
def test_apply_reads_a_saved_plan_whatever_its_suffix(tmp_path: Path, name: str) -> None:
    saved = tmp_path / name
    made = run(["plan", EXAMPLES, "--emulator", SEED, "--out", str(saved)])
    assert made.exit_code == 0, made.output
    assert f"reconciler apply {saved}" in made.stderr
    result = CliRunner().invoke(
        cli.main, ["apply", str(saved), "--emulator", SEED, "--auto-approve"]
    )
    assert result.exit_code == 0, result.output
    assert "Converged." in result.output
    assert "unknown field" not in result.output  # not read as a manifest


def test_apply_of_a_foreign_json_object_says_it_is_no_plan(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text('{"hello": 1}\n', encoding="utf-8")
    result = CliRunner().invoke(cli.main, ["apply", str(other), "--emulator", SEED])
    assert result.exit_code == 1
    assert "is not a reconciler plan" in result.output


# --- the text plan names what the manifest named -----------------------------------


def test_plan_shows_agent_and_state_machine_names_beside_ids(tmp_path: Path) -> None:
    result = run(["plan", _manifest(tmp_path, "Concierge"), "--emulator", SEED])
    assert result.exit_code == 0, result.output
    agent_line = next(line for line in result.output.splitlines() if "agent_id:" in line)
    assert agent_line.endswith('(named "Concierge")'), agent_line
    assert '(named "Onboarding flow")' in result.output


def test_an_agent_change_names_both_agents(tmp_path: Path) -> None:
    manifest = tmp_path / "front-desk.yaml"
    original = (REPO / "examples" / "services" / "front-desk.yaml").read_text(encoding="utf-8")
    assert "agent: Concierge" in original
    manifest.write_text(original.replace("agent: Concierge", "agent: Triage Nurse"), "utf-8")
    result = run(["plan", str(manifest), "--emulator", SEED, "--format", "markdown"])
    assert result.exit_code == 0, result.output
    # markdown shows the change as diff lines: the old agent removed, the new one added
    assert re.search(r'\n- agent_id: "\w+" \(named "Concierge"\)\n', result.output)
    assert re.search(r'\n\+ agent_id: "\w+" \(named "Triage Nurse"\)\n', result.output)


def test_saved_plan_keeps_the_names_and_older_plans_still_load(tmp_path: Path) -> None:
    import json

    from reconciler.planfile import checksum, load_plan

    saved = tmp_path / "plan.json"
    assert run(["plan", _manifest(tmp_path, "Concierge"), "--emulator", SEED, "--out", str(saved)])
    data = json.loads(saved.read_text(encoding="utf-8"))
    assert "Concierge" in data["reference_names"].values()
    assert "Concierge" in load_plan(saved).reference_names.values()

    del data["reference_names"]  # a plan written before the field existed
    data["checksum"] = checksum(data)
    saved.write_text(json.dumps(data), encoding="utf-8")
    assert load_plan(saved).reference_names == {}


# --- an unreachable API is named ---------------------------------------------------


def test_a_connection_failure_names_the_api_it_tried() -> None:
    from _api_fake import FakeApi, FakeClock, config

    from reconciler.api.errors import TransportError

    clock = FakeClock()
    api = FakeApi(clock=clock)
    client = api.client(clock, config=config(base_url="https://api.example.test:8443/v0"))
    api.fault("sign-in-with-api-key", *[httpx.ConnectError] * 5)
    with pytest.raises(TransportError) as info:
        client.list_services()
    message = str(info.value)
    assert "could not connect to https://api.example.test:8443 (" in message
    assert "/v0" not in message  # scheme, host and port only


# --- the README documents the apply report as it is ---------------------------------


def test_readme_documents_every_apply_report_key_and_outcome() -> None:
    import json
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The apply report (`apply --format json`)", 1)[1]
    section = section.split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z_]+)`", section))
    result = run(["apply", EXAMPLES, "--emulator", SEED, "--auto-approve", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    keys = set(report) | set(report["operations"][0]) | set(report["summary"])
    assert keys <= documented, sorted(keys - documented)
    outcomes = {"converged", "failed", "not_converged", "unchecked", "cancelled"}
    assert report["outcome"] in outcomes and outcomes <= documented


def test_a_saved_plan_among_manifests_or_validated_says_what_it_is(tmp_path: Path) -> None:
    saved = tmp_path / "p.yml"
    assert run(["plan", EXAMPLES, "--emulator", SEED, "--out", str(saved)]).exit_code == 0
    mixed = CliRunner().invoke(cli.main, ["apply", str(saved), EXAMPLES, "--emulator", SEED])
    assert mixed.exit_code == 64 and "is a saved plan" in mixed.output
    checked = CliRunner().invoke(cli.main, ["validate", str(saved)])
    assert checked.exit_code == 1
    assert "this is a saved plan" in checked.stderr and "unknown field" not in checked.stderr


def test_a_manifest_written_as_json_is_not_taken_for_a_plan(tmp_path: Path) -> None:
    import json

    manifest = tmp_path / "svc.json"
    manifest.write_text(
        json.dumps(
            {
                "apiVersion": "amigo.ai/v1",
                "kind": "Service",
                "metadata": {"name": "Json Desk"},
                "spec": {
                    "description": "From JSON",
                    "agent": "Concierge",
                    "service_hierarchical_state_machine": "Onboarding flow",
                },
            }
        ),
        encoding="utf-8",
    )
    from reconciler.planfile import looks_like_saved_plan

    assert not looks_like_saved_plan(manifest)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    assert not looks_like_saved_plan(fifo)  # returns at once: never opens it blocking


def test_plan_keys_nested_in_a_json_manifest_do_not_make_it_a_plan(tmp_path: Path) -> None:
    """A tag named `checksum` (or any plan key) inside a JSON manifest is not a plan marker."""
    import json

    from reconciler.planfile import looks_like_saved_plan

    for key in ("checksum", "api_reads", "format_version", "live_fingerprint"):
        manifest = tmp_path / f"{key}.json"
        manifest.write_text(
            json.dumps(
                {
                    "metadata": {"name": "Json Desk", "tags": {key: "x"}},
                    "apiVersion": "amigo.ai/v1",
                    "kind": "Service",
                }
            ),
            encoding="utf-8",
        )
        assert not looks_like_saved_plan(manifest), key
    # kind alone is a manifest's key, even beside a plan key at the top level
    odd = tmp_path / "odd.json"
    odd.write_text('{"checksum": "x", "kind": "Service"}', encoding="utf-8")
    assert not looks_like_saved_plan(odd)
    # a saved plan still is one, whatever its name, even when cut inside a string
    saved = tmp_path / "p.yaml"
    assert run(["plan", EXAMPLES, "--emulator", SEED, "--out", str(saved)]).exit_code == 0
    assert looks_like_saved_plan(saved)
    escaped = tmp_path / "escaped.yaml"
    escaped.write_text('{"a\\"": {"b": "}"}, "api_reads": []}', encoding="utf-8")
    assert looks_like_saved_plan(escaped)
