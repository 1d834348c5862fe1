"""Mutated manifests never crash the loader: valid, or a UserError whose every error has a position."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.diagnostics import Severity, UserError
from reconciler.manifests import load_manifests

VALID = """\
apiVersion: amigo.ai/v1
kind: Service
metadata:
  name: Meet & Greet
  id: 6618791275130b73714e8d1c
spec:
  description: Onboarding for ${TEAM:-new} users
  agent: Concierge
  service_hierarchical_state_machine: Onboarding flow
  tags: {team: growth, tier: null}
  keyterms: [amigo, meet and greet]
  version_sets:
    release: &rel
      agent_version_number: 3
      llm_model_preferences:
        conversation: {llm_name: openai_gpt-5.1-2025-11-13, params: {temperature: 0.2}}
    canary:
      <<: *rel
      service_hierarchical_state_machine_version_number: 5
"""

NOISE = st.sampled_from(
    [*":-[]{}&*!$|>#'\"\t\n ,?%@`~0x1.", "\x00", "é", "${", "!!binary ", "<<: ", "null"]
)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = VALID
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["replace", "insert", "delete_line", "duplicate_line"]))
        lines = text.splitlines(keepends=True)
        if action in ("delete_line", "duplicate_line"):
            i = draw(st.integers(0, len(lines) - 1))
            lines[i : i + 1] = [] if action == "delete_line" else [lines[i], lines[i]]
            text = "".join(lines)
        else:
            i = draw(st.integers(0, len(text) - 1))
            end = i + 1 if action == "replace" else i
            text = text[:i] + draw(NOISE) + text[end:]
    return text


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=mutated())
def test_mutated_manifests_load_or_fail_with_positions(tmp_path: Path, text: str) -> None:
    file = tmp_path / "m.yaml"
    file.write_text(text, encoding="utf-8")
    try:
        state = load_manifests([file], env={})
    except UserError as exc:
        errors = [d for d in exc.diagnostics if d.severity is Severity.ERROR]
        assert errors
        for diagnostic in errors:
            assert diagnostic.pos is not None and diagnostic.pos.file == str(file), diagnostic
            assert diagnostic.pos.line >= 1 and diagnostic.pos.column >= 1
            assert diagnostic.message
    else:
        for service in state.services:
            assert service.name and service.description
