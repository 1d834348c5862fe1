"""Seeds are user input: every mistake is named with file:line:column and what would be valid."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.paths import REPO

from reconciler.cli import main
from reconciler.diagnostics import UserError
from reconciler.emulator import Emulator, load_seed
from reconciler.emulator.seed import default_seed_path

EXAMPLE = REPO / "examples" / "emulator-seed.yaml"

GOOD = """\
organization: acme
credentials: {api_key: k, api_key_id: kid, user_id: u}
agents:
  - {name: Concierge, latest_version: 3}
state_machines:
  - {name: Flow, latest_version: 2}
services:
  - name: Greeter
    description: Hello
    agent: Concierge
    service_hierarchical_state_machine: Flow
    version_sets:
      canary: {agent_version_number: 3}
unit_tests:
  - {name: t, service: Greeter, version_set: canary}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "seed.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(UserError) as caught:
        load_seed(path)
    return [str(d) for d in caught.value.diagnostics]


def test_a_good_seed_loads_with_edge_release_and_reproducible_ids(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    first, second = Emulator.from_seed(path), Emulator.from_seed(path)
    assert first.services() == second.services()
    (service,) = first.services()
    assert set(service["version_sets"]) == {"edge", "release", "canary"}
    assert service["version_sets"]["release"] == service["version_sets"]["edge"]
    assert first.unit_tests()[0]["service_version_set_name"] == "canary"
    assert "k" not in repr(load_seed(path)).replace("unit_tests", "")


@pytest.mark.parametrize(
    ("mutation", "where", "words"),
    [
        (("agent: Concierge", "agent: Concierg"), ":10:", "known agents: Concierge"),
        (("{agent_version_number: 3}", "{agent_version_number: 4}"), ":13:", "valid: 1..3"),
        (("    description: Hello", "    descripton: Hello"), ":9:", "unknown key 'descripton'"),
        (("version_set: canary}", "version_set: beta}"), ":15:", "has no version set 'beta'"),
        (("      canary:", "      edge:"), ":13:", "created automatically"),
        (("organization: acme", "organization: a/b"), ":1:", "organization"),
    ],
)
def test_seed_mistakes_point_at_the_line(
    tmp_path: Path, mutation: tuple[str, str], where: str, words: str
) -> None:
    old, new = mutation
    assert old in GOOD
    messages = errors_of(write(tmp_path, GOOD.replace(old, new)))
    assert any(where in m and words in m and "seed.yaml" in m for m in messages), messages


def test_two_active_services_of_one_name_are_refused(tmp_path: Path) -> None:
    doubled = GOOD.replace(
        "unit_tests:",
        "  - {name: Greeter, description: again, agent: Concierge, "
        "service_hierarchical_state_machine: Flow}\nunit_tests:",
    )
    messages = errors_of(write(tmp_path, doubled))
    assert any("only one active service may hold a name" in m for m in messages)
    inactive = doubled.replace("description: again,", "description: again, is_active: false,")
    messages = errors_of(write(tmp_path, inactive))
    assert any("2 services are named 'Greeter'" in m for m in messages)


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    broken = GOOD.replace("latest_version: 3", "latest_version: zero").replace(
        "api_key: k,", "apikey: k,"
    )
    messages = errors_of(write(tmp_path, broken))
    assert len(messages) >= 3  # unknown apikey, missing api_key, bad latest_version


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    assert "no such file" in errors_of(tmp_path / "absent.yaml")[0]
    message = errors_of(write(tmp_path, "organization: [unclosed\n"))[0]
    assert "seed.yaml:2:1" in message and "not valid YAML" in message


def test_the_example_seed_is_a_realistic_organization() -> None:
    assert default_seed_path() == EXAMPLE
    emulator = Emulator.from_seed(EXAMPLE)
    services = emulator.services()
    owned = [s for s in services if {"key": "managed_by", "value": "amigo_reconciler"} in s["tags"]]
    assert 5 <= len(services) <= 7
    assert 0 < len(owned) < len(services)
    assert any(not s["is_active"] for s in services)
    assert any(set(s["version_sets"]) - {"edge", "release"} for s in services)
    assert emulator.unit_tests()
    assert {a["name"] for a in emulator.agents()} >= {
        "Concierge",
        "Triage Nurse",
        "Billing Assistant",
    }


def test_cli_reports_a_bad_seed_without_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("agent: Concierge", "agent: Nobody"))
    result = CliRunner().invoke(main, ["emulator", "--port", "0", "--seed", str(path)])
    assert result.exit_code == 1
    assert "seed.yaml:10:" in result.output and "Nobody" in result.output
    assert "Traceback" not in result.output


def test_a_large_copy_resolves_references_by_index_not_by_scanning() -> None:
    """5,000 services and 2,500 unit tests by name: linear, not services x tests (was 1.5 s)."""
    import time

    services = [
        {
            "name": f"svc {i}",
            "description": "d",
            "agent": f"Agent {i % 200}",
            "service_hierarchical_state_machine": f"SM {i % 200}",
        }
        for i in range(5000)
    ]
    seed = {
        "organization": "big",
        "credentials": {"api_key": "k", "api_key_id": "i", "user_id": "u"},
        "agents": [{"name": f"Agent {i}"} for i in range(200)],
        "state_machines": [{"name": f"SM {i}"} for i in range(200)],
        "services": services,
        "unit_tests": [{"name": f"t{i}", "service": f"svc {i}"} for i in range(0, 5000, 2)],
    }
    started = time.process_time()
    loaded = load_seed(seed)
    assert len(loaded.unit_tests) == 2500
    assert time.process_time() - started < 1.0
