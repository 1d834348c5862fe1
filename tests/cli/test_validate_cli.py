"""`reconciler validate`: summary and exit 0 when valid, warnings in both formats."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.paths import REPO

from reconciler.cli import main

MANIFEST = """\
apiVersion: amigo.ai/v1
kind: Service
metadata:
  name: {name}
spec:
  description: A service
  agent: Concierge
  service_hierarchical_state_machine: Onboarding flow
  version_sets:
    release:
      llm_model_preferences:
        conversation: {{llm_name: {llm}}}
"""


def write(path: Path, name: str, llm: str = "openai_gpt-4.1-2025-04-14") -> Path:
    path.write_text(MANIFEST.format(name=name, llm=llm), encoding="utf-8")
    return path


def test_valid_manifests_exit_0_with_a_summary(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "One")
    (tmp_path / "b.yaml").write_text(
        MANIFEST.format(name="Two", llm="openai_gpt-4.1-2025-04-14")
        + "---\n"
        + MANIFEST.format(name="Three", llm="openai_gpt-4.1-2025-04-14"),
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "3 services valid in 2 files\n"
    assert result.stderr == ""


def test_warnings_are_shown_but_do_not_fail(tmp_path: Path) -> None:
    file = write(tmp_path / "a.yaml", "One", llm="openai_gpt-7")
    result = CliRunner().invoke(main, ["validate", str(file)])
    assert result.exit_code == 0
    assert result.stdout == "1 service valid in 1 file, 1 warning\n"
    assert f"{file}:12:34: warning: spec.version_sets.release" in result.stderr
    assert "'openai_gpt-7' is not in the API's LLMType list" in result.stderr
    # the list is closed: no "may" about it, and what the plan does is said
    assert "may reject" not in result.stderr
    assert "the plan refuses this name whenever it sends this version set" in result.stderr


def test_github_format_prints_warning_annotations(tmp_path: Path) -> None:
    file = write(tmp_path / "a.yaml", "One", llm="openai_gpt-7")
    result = CliRunner().invoke(main, ["validate", "--format", "github", str(file)])
    assert result.exit_code == 0
    first, summary = result.stdout.splitlines()
    assert first.startswith(f"::warning file={file},line=12,col=34::spec.version_sets.release")
    assert summary == "1 service valid in 1 file, 1 warning"


def test_the_examples_validate() -> None:
    result = CliRunner().invoke(main, ["validate", str(REPO / "examples" / "services")])
    assert result.exit_code == 0, result.output
    assert "services valid in" in result.stdout


def test_validate_needs_a_path() -> None:
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 64
    assert "Missing argument 'PATHS...'" in result.output


def test_python_dash_m_runs_validate(tmp_path: Path) -> None:
    file = write(tmp_path / "a.yaml", "One")
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1 service valid in 1 file\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert f"{bad}:2:1: error: not valid YAML" in done.stderr
    assert "Traceback" not in done.stderr


def test_paths_are_shown_normalized_for_annotations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "bad.yaml").write_text("kind: [\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "--format", "github", "./services/"])
    assert result.exit_code == 1
    assert result.stdout.startswith("::error file=services/bad.yaml,line=2,col=1::")
