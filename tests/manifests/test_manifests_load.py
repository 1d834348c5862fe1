"""Loading valid manifests: values, defaults, positions, `${VAR}` filling, digest, file discovery."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.paths import REPO

from reconciler.diagnostics import Severity, SourcePos, UserError
from reconciler.manifests import load_manifests
from reconciler.model import LLMConfig, VersionSet

FULL = """\
# yaml-language-server: $schema=../../schemas/service.schema.json
apiVersion: amigo.ai/v1
kind: Service
metadata:
  name: Meet & Greet
  id: 6618791275130b73714e8d1c
spec:
  description: Onboarding conversations for new users
  agent: Concierge
  service_hierarchical_state_machine: Onboarding flow
  tags: {team: growth, tier: null}
  keyterms: [amigo, meet and greet]
  version_sets:
    release:
      agent_version_number: 3
      service_hierarchical_state_machine_version_number: 5
      llm_model_preferences:
        conversation: {llm_name: openai_gpt-5.1-2025-11-13, params: {temperature: 0.2}}
    canary:
      agent_version_number: 4
"""


def minimal(name: str = "Svc", extra_spec: str = "", metadata: str = "") -> str:
    """A valid manifest; `metadata` / `extra_spec` are extra lines, already indented."""
    return (
        "apiVersion: amigo.ai/v1\n"
        "kind: Service\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"{metadata}"
        "spec:\n"
        "  description: A service\n"
        "  agent: Concierge\n"
        "  service_hierarchical_state_machine: Onboarding flow\n"
        f"{extra_spec}"
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_full_manifest_loads_every_field(tmp_path: Path) -> None:
    file = write(tmp_path / "svc.yaml", FULL)
    state = load_manifests([file], env={})
    (service,) = state.services
    assert service.name == "Meet & Greet"
    assert service.id == "6618791275130b73714e8d1c"
    assert service.is_active is True
    assert service.agent == "Concierge" and service.agent_id is None
    assert service.service_hierarchical_state_machine == "Onboarding flow"
    assert service.tags == {"team": "growth", "tier": None}
    assert service.keyterms == ("amigo", "meet and greet")
    assert service.version_sets == {
        "release": VersionSet(
            agent_version_number=3,
            service_hierarchical_state_machine_version_number=5,
            llm_model_preferences={
                "conversation": LLMConfig("openai_gpt-5.1-2025-11-13", {"temperature": 0.2})
            },
        ),
        "canary": VersionSet(agent_version_number=4),
    }
    assert state.warnings == ()
    assert len(state.digest) == 64


def test_positions_point_at_values_and_fall_back_to_parents(tmp_path: Path) -> None:
    file = write(tmp_path / "svc.yaml", FULL)
    (service,) = load_manifests([file], env={}).services
    shown = str(file)
    assert service.source == SourcePos(shown, 2, 1)
    assert service.pos("metadata.name") == SourcePos(shown, 5, 9)
    assert service.pos("spec.agent") == SourcePos(shown, 9, 10)
    assert service.pos("spec.tags.team") == SourcePos(shown, 11, 16)
    assert service.pos("spec.version_sets.canary.agent_version_number") == SourcePos(shown, 20, 29)
    # Not declared: the nearest declared parent.
    assert service.pos(
        "spec.version_sets.canary.service_hierarchical_state_machine_version_number"
    ) == SourcePos(shown, 20, 7)
    assert service.pos("spec.agent_id") == SourcePos(shown, 8, 3)
    assert "spec.keyterms.1" in service.positions
    assert dict(service.positions)["spec.keyterms.1"] == SourcePos(shown, 12, 21)


def test_defaults_and_unmanaged_fields(tmp_path: Path) -> None:
    file = write(tmp_path / "svc.yaml", minimal())
    (service,) = load_manifests([file], env={}).services
    assert service.is_active is True
    assert service.tags is None and service.keyterms is None  # not managed
    assert service.version_sets == {}


def test_empty_tags_and_keyterms_mean_clear(tmp_path: Path) -> None:
    file = write(tmp_path / "svc.yaml", minimal(extra_spec="  tags: {}\n  keyterms: []\n"))
    (service,) = load_manifests([file], env={}).services
    assert service.tags == {} and service.keyterms == ()


def test_inactive_service_and_ids(tmp_path: Path) -> None:
    text = minimal(extra_spec="  is_active: false\n").replace(
        "agent: Concierge", "agent_id: 6618791275530b73714e9d18"
    )
    (service,) = load_manifests([write(tmp_path / "a.yaml", text)], env={}).services
    assert service.is_active is False
    assert service.agent is None and service.agent_id == "6618791275530b73714e9d18"


def test_strings_are_stripped_like_the_api_strips_them(tmp_path: Path) -> None:
    text = minimal(name='"  Padded  "', extra_spec='  tags: {" team ": " growth "}\n')
    (service,) = load_manifests([write(tmp_path / "a.yaml", text)], env={}).services
    assert service.name == "Padded"
    assert service.tags == {"team": "growth"}


def test_env_values_are_filled_with_defaults_and_escapes(tmp_path: Path) -> None:
    text = minimal(name="${PREFIX:-Dev} Greeter").replace(
        "description: A service", "description: 'Costs $$5 and uses $${LITERAL} for ${TEAM}'"
    )
    file = write(tmp_path / "a.yaml", text)
    (service,) = load_manifests([file], env={"TEAM": "growth"}).services
    assert service.name == "Dev Greeter"
    assert service.description == "Costs $$5 and uses ${LITERAL} for growth"
    (service,) = load_manifests([file], env={"TEAM": "growth", "PREFIX": "Prod"}).services
    assert service.name == "Prod Greeter"
    # ${VAR:-default} takes the default when the variable is set but empty (as in a shell).
    (service,) = load_manifests([file], env={"TEAM": "x", "PREFIX": ""}).services
    assert service.name == "Dev Greeter"


def test_digest_follows_bytes_and_filled_values(tmp_path: Path) -> None:
    file = write(tmp_path / "a.yaml", minimal(extra_spec="  tags: {team: '${TEAM:-growth}'}\n"))
    first = load_manifests([file], env={}).digest
    assert load_manifests([file], env={}).digest == first
    assert load_manifests([file], env={"TEAM": "care"}).digest != first
    write(tmp_path / "a.yaml", minimal(extra_spec="  tags: {team: '${TEAM:-growth}'}  \n"))
    assert load_manifests([file], env={}).digest != first


def test_directories_are_read_recursively_in_order_skipping_hidden(tmp_path: Path) -> None:
    write(tmp_path / "b" / "two.yml", minimal("Two"))
    write(tmp_path / "a" / "deep" / "one.yaml", minimal("One"))
    write(tmp_path / "notes.txt", "not a manifest")
    write(tmp_path / ".github" / "workflows" / "ci.yml", "on: push\n")
    state = load_manifests([tmp_path], env={})
    assert [s.name for s in state.services] == ["One", "Two"]


def test_several_documents_per_file_and_empty_documents(tmp_path: Path) -> None:
    text = "---\n" + minimal("One") + "---\n# only a comment\n---\n" + minimal("Two") + "---\n"
    state = load_manifests([write(tmp_path / "a.yaml", text)], env={})
    assert [s.name for s in state.services] == ["One", "Two"]
    assert state.services[1].source.line > state.services[0].source.line


def test_a_file_named_twice_is_read_once(tmp_path: Path) -> None:
    file = write(tmp_path / "a.yaml", minimal())
    assert len(load_manifests([file, tmp_path, str(file)], env={}).services) == 1


def test_same_name_with_distinct_pinned_ids_and_one_active_is_allowed(tmp_path: Path) -> None:
    old = minimal(
        "Desk", metadata="  id: 6618791275130b73714e8d1c\n", extra_spec="  is_active: false\n"
    )
    new = minimal("Desk", metadata="  id: 6618791275130b73714e8d1d\n")
    state = load_manifests([write(tmp_path / "a.yaml", old + "---\n" + new)], env={})
    assert [s.is_active for s in state.services] == [False, True]


def test_small_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    text = minimal(
        extra_spec="""\
  version_sets:
    release: &base
      agent_version_number: 2
      llm_model_preferences:
        conversation: {llm_name: openai_gpt-4.1-2025-04-14}
    canary:
      <<: *base
      agent_version_number: 3
"""
    )
    file = write(tmp_path / "a.yaml", text)
    (service,) = load_manifests([file], env={}).services
    assert service.version_sets["release"].agent_version_number == 2
    # Positions: the explicit key where it overrides, the anchor where it is merged in.
    assert service.pos("spec.version_sets.canary.agent_version_number") == SourcePos(
        str(file), 16, 29
    )
    assert service.pos(
        "spec.version_sets.canary.llm_model_preferences.conversation.llm_name"
    ) == SourcePos(str(file), 13, 34)
    assert service.version_sets["canary"].agent_version_number == 3
    assert service.version_sets["canary"].llm_model_preferences == {
        "conversation": LLMConfig("openai_gpt-4.1-2025-04-14")
    }


def test_unknown_llm_name_is_a_warning_not_an_error(tmp_path: Path) -> None:
    text = minimal(
        extra_spec="""\
  version_sets:
    release:
      llm_model_preferences:
        conversation: {llm_name: openai_gpt-5.1-2025-11-14}
"""
    )
    state = load_manifests([write(tmp_path / "a.yaml", text)], env={})
    (warning,) = state.warnings
    assert warning.severity is Severity.WARNING
    assert warning.field == "spec.version_sets.release.llm_model_preferences.conversation.llm_name"
    assert warning.pos is not None and (warning.pos.line, warning.pos.column) == (12, 34)
    assert "did you mean 'openai_gpt-5.1-2025-11-13'" in warning.message


def test_yaml_11_booleans_and_numbers_in_params_keep_their_types(tmp_path: Path) -> None:
    text = minimal(
        extra_spec="""\
  version_sets:
    release:
      llm_model_preferences:
        conversation:
          llm_name: openai_gpt-4.1-2025-04-14
          params: {temperature: 0.5, max_tokens: 0x10, n: 017, k: 1_000, stream: yes, stop: [END, ~]}
"""
    )
    (service,) = load_manifests([write(tmp_path / "a.yaml", text)], env={}).services
    params = service.version_sets["release"].llm_model_preferences["conversation"].params
    assert params == {
        "temperature": 0.5,
        "max_tokens": 16,
        "n": 15,
        "k": 1000,
        "stream": True,
        "stop": ["END", None],
    }


def test_examples_load_and_cover_the_documented_cases() -> None:
    state = load_manifests([REPO / "examples" / "services"], env={})
    services = state.services
    assert len(services) >= 4
    assert any({"release", "canary"} <= set(s.version_sets) for s in services)
    assert any(vs.llm_model_preferences for s in services for vs in s.version_sets.values())
    assert any(s.agent and s.service_hierarchical_state_machine for s in services)
    assert any(not s.is_active for s in services)
    texts = [p.read_text() for p in (REPO / "examples" / "services").glob("*.y*ml")]
    assert any("${" in t for t in texts)
    for text in texts:
        assert text.startswith(
            "# yaml-language-server: $schema=../../schemas/service.schema.json\n"
        )


def test_env_default_example_follows_the_environment() -> None:
    state = load_manifests([REPO / "examples" / "services"], env={"BILLING_AGENT": "Cashier"})
    assert "Cashier" in {s.agent for s in state.services}


def test_no_paths_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no manifest paths"):
        load_manifests([], env={})


def test_plain_scalars_yaml_gives_special_meaning_stay_text(tmp_path: Path) -> None:
    text = minimal(name="<<").replace("description: A service", "description: =")
    (service,) = load_manifests([write(tmp_path / "a.yaml", text)], env={}).services
    assert (service.name, service.description) == ("<<", "=")
