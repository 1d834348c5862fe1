"""`reconciler export --seed` (issue 19 item 3): the live organization as an emulator seed.

The round trip: emulator A seeded -> `export --seed` over the CLI -> emulator B from that
seed -> `plan` of the example manifests against A and against B gives the same plan (only
the plan's creation time, and so its checksum, and the base URL over HTTP may differ), in
process and over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from support.paths import REPO
from test_export_roundtrip import DUP_IDS, rich_seed

from reconciler import cli
from reconciler.diagnostics import UserError
from reconciler.emulator import Emulator, load_seed
from reconciler.emulator.seed_writer import EXPORT_CREDENTIALS, dump_seed, seed_from_live
from reconciler.export import Organization, export_seed
from reconciler.live import references_from_api, services_from_api, unit_tests_from_api
from reconciler.model import Agent, LiveService, UnitTest, VersionSet

EXAMPLES = REPO / "examples" / "services"
SOURCE_KEY = "source-org-key-never-exported"
RETIRED_LLM = "openai_gpt-3.5-turbo"
DEPRECATED_IN_ENUM = "openai_gpt-4.1-2025-04-14"


def source_seed() -> dict[str, Any]:
    """The rich export organization, plus unit tests on several sets and deprecated LLMs."""
    seed = rich_seed()
    seed["credentials"]["api_key"] = SOURCE_KEY
    seed["deprecated_llms"] = [RETIRED_LLM, DEPRECATED_IN_ENUM]
    seed["services"].append(
        {
            "name": "Retired model line",
            "description": "a side set still names a retired LLM",
            "is_active": False,
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Onboarding flow",
            "version_sets": {
                "legacy": {"llm_model_preferences": {"conversation": {"llm_name": RETIRED_LLM}}}
            },
        }
    )
    seed["unit_tests"] += [
        {"name": "experiment pin", "service": "Symptom Checker", "version_set": "experiment"},
        {"name": "dup pin", "service": DUP_IDS[0]},
        {"name": "gone", "service": "Billing Questions", "is_deleted": True},
    ]
    return seed


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli.main, list(args), env=env, catch_exceptions=False)
    assert "Traceback" not in result.output
    assert SOURCE_KEY not in result.output
    return result


def comparable(plan_json: str) -> dict[str, Any]:
    plan: dict[str, Any] = json.loads(plan_json)
    for key in ("created_at", "checksum", "base_url"):
        plan.pop(key)
    return plan


def state(emulator: Emulator) -> dict[str, Any]:
    """What a plan can see of an organization (who created or last changed a thing aside)."""
    services = sorted(
        (
            {k: v for k, v in s.items() if k not in ("creator", "updated_by")}
            for s in emulator.services()
        ),
        key=lambda s: s["id"],
    )
    tests = sorted(
        (
            (t["id"], t["name"], t["service_id"], t["service_version_set_name"])
            for t in emulator.unit_tests()
            if not t["is_deleted"]
        ),
    )
    return {
        "services": services,
        "agents": sorted(emulator.agents(), key=lambda a: a["id"]),
        "state_machines": sorted(emulator.state_machines(), key=lambda a: a["id"]),
        "unit_tests": tests,
    }


# --- the pure function -----------------------------------------------------------------


def test_the_copy_reloads_as_the_same_organization() -> None:
    source = Emulator.from_seed(source_seed())
    exported = seed_from_live(
        source.organization,
        services_from_api(source.services()),
        references_from_api(source.agents()),
        references_from_api(source.state_machines()),
        unit_tests_from_api(source.unit_tests()),
        deprecated_llms=[DEPRECATED_IN_ENUM],
    )
    copy_ = Emulator(load_seed(exported.document))
    assert state(copy_) == state(source)
    assert copy_.deprecated_llms == source.deprecated_llms
    assert exported.document["credentials"] == dict(EXPORT_CREDENTIALS)
    assert SOURCE_KEY not in dump_seed(exported.document)
    # The retired LLM (outside the enum) is found and declared, with a warning.
    assert [w.service for w in exported.warnings] == ["Retired model line"]
    assert RETIRED_LLM in exported.warnings[0].message
    # The text form reloads the same way (quoting of yes / null / 1.0 ...).
    reread = Emulator(load_seed(yaml.safe_load(dump_seed(exported.document))))
    assert state(reread) == state(source)


def _service(name: str, ident: str, agent: str, **sets: VersionSet) -> LiveService:
    return LiveService(
        id=ident,
        name=name,
        description=f"{name} service",
        is_active=True,
        agent_id=agent,
        service_hierarchical_state_machine_id="5" * 24,
        tags={},
        keyterms=(),
        version_sets={"edge": VersionSet(), "release": VersionSet(), **sets},
    )


def test_unread_references_become_placeholders_and_orphan_tests_are_left_out() -> None:
    services = [
        _service("A", "1" * 24, "7" * 24, canary=VersionSet(agent_version_number=3)),
        _service("B", "2" * 24, "8" * 24),
    ]
    agents = [Agent("8" * 24, "Known", False, 2)]
    tests = [
        UnitTest("a" * 24, "orphan", "9" * 24, "release"),
        UnitTest("b" * 24, "no such set", "1" * 24, "beta"),
        UnitTest("c" * 24, "kept", "1" * 24, "canary"),
    ]
    exported = seed_from_live("acme", services, agents, [], tests)
    seed = load_seed(exported.document)
    placeholder = next(a for a in seed.agents if a.id == "7" * 24)
    assert (placeholder.name, placeholder.latest_version, placeholder.deprecated) == (
        "7" * 24,
        3,
        False,
    )
    assert [t.name for t in seed.unit_tests] == ["kept"]
    messages = " / ".join(w.message for w in exported.warnings)
    assert "agent 7777" in messages and "state machine 5555" in messages
    assert "'orphan'" in messages and "'no such set'" in messages
    # release equal to edge is left out; edge never written.
    written = exported.document["services"][0]
    assert set(written["version_sets"]) == {"canary"}


def test_names_that_are_not_unique_or_look_like_ids_are_written_as_ids() -> None:
    twin = "3" * 24
    services = [_service("A", "1" * 24, "7" * 24), _service("B", "2" * 24, "8" * 24)]
    agents = [Agent("7" * 24, "Same", False, 1), Agent("8" * 24, "Same", False, 1)]
    sms = [Agent("5" * 24, twin, False, 1), Agent(twin, "other", False, 1)]
    document = seed_from_live("acme", services, agents, sms).document
    assert [s["agent"] for s in document["services"]] == ["7" * 24, "8" * 24]
    assert document["services"][0]["service_hierarchical_state_machine"] == "5" * 24
    load_seed(document)


# --- over the command line ---------------------------------------------------------------


def _write(path: Path, seed: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(seed, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("prune", [False, True])
def test_export_seed_then_plan_gives_the_same_plan_in_process(tmp_path: Path, prune: bool) -> None:
    source = _write(tmp_path / "a.yaml", source_seed())
    copy_file = tmp_path / "b.yaml"
    result = run("export", "--seed", str(copy_file), "--emulator", str(source))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # no manifests without --out
    assert f"to {copy_file}" in result.stderr
    text = copy_file.read_text(encoding="utf-8")
    assert SOURCE_KEY not in text and "id_token" not in text
    extra = ["--prune"] if prune else []
    plan_a = run("plan", str(EXAMPLES), "--format", "json", "--emulator", str(source), *extra)
    plan_b = run("plan", str(EXAMPLES), "--format", "json", "--emulator", str(copy_file), *extra)
    assert plan_a.exit_code == plan_b.exit_code
    assert comparable(plan_a.stdout) == comparable(plan_b.stdout)
    assert json.loads(plan_a.stdout)["operations"]  # a plan with something in it


def test_export_seed_then_plan_gives_the_same_plan_over_http(tmp_path: Path) -> None:
    source = Emulator.from_seed(source_seed())
    copy_file = tmp_path / "copy.yaml"
    with source.serve() as server:
        env = source.credentials(server.base_url)
        result = run("export", "--seed", str(copy_file), env=env)
        assert result.exit_code == 0, result.output
        plan_a = run("plan", str(EXAMPLES), "--format", "json", env=env)
    copied = Emulator.from_seed(copy_file)
    with copied.serve() as server:
        plan_b = run(
            "plan", str(EXAMPLES), "--format", "json", env=copied.credentials(server.base_url)
        )
    assert plan_a.exit_code == plan_b.exit_code
    assert comparable(plan_a.stdout) == comparable(plan_b.stdout)
    assert state(copied) == state(source)


def test_export_seed_refuses_to_overwrite_and_filters_without_out(tmp_path: Path) -> None:
    source = _write(tmp_path / "a.yaml", source_seed())
    existing = tmp_path / "copy.yaml"
    existing.write_text("keep me\n", encoding="utf-8")
    result = run("export", "--seed", str(existing), "--emulator", str(source))
    assert result.exit_code == 1
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert existing.read_text(encoding="utf-8") == "keep me\n"
    assert (
        run("export", "--seed", str(existing), "--force", "--emulator", str(source)).exit_code == 0
    )
    load_seed(existing)
    filtered = run("export", "--seed", str(existing), "--target", "Dup", "--emulator", str(source))
    assert filtered.exit_code == 64 and "whole organization" in filtered.stderr
    out = tmp_path / "manifests"
    both = run(
        "export", "--seed", str(tmp_path / "s.yaml"), "--out", str(out), "--emulator", str(source)
    )
    assert both.exit_code == 0, both.output
    assert (tmp_path / "s.yaml").is_file() and any(out.iterdir())


def test_a_seed_that_would_not_load_is_an_error_not_a_file() -> None:
    services = (_service("A", "1" * 24, "7" * 24, beta=VersionSet(agent_version_number=9)),)
    organization = Organization(
        services=services,
        agents=(Agent("7" * 24, "Small", False, 2),),
        state_machines=(Agent("5" * 24, "S", False, 1),),
    )
    with pytest.raises(UserError) as caught:
        export_seed("acme", organization, ())
    message = str(caught.value)
    assert "cannot be copied as an emulator seed" in message and "no version 9" in message
