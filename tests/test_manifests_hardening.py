"""Issue 12 (part B): hostile or surprising manifests get one clear error at file:line:col."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.diagnostics import Diagnostic, UserError
from reconciler.manifests import load_manifests


def minimal(extra_spec: str = "", name: str = "Svc") -> str:
    return (
        "apiVersion: amigo.ai/v1\n"
        "kind: Service\n"
        "metadata:\n"
        f"  name: {name}\n"
        "spec:\n"
        "  description: A service\n"
        "  agent: Concierge\n"
        "  service_hierarchical_state_machine: Onboarding flow\n"
        f"{extra_spec}"
    )


def with_params(params: str) -> str:
    return minimal(
        "  version_sets:\n"
        "    release:\n"
        "      llm_model_preferences:\n"
        "        conversation:\n"
        "          llm_name: openai_gpt-4.1-2025-04-14\n"
        f"          params: {params}\n"
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(paths: list[Path | str], env: dict[str, str] | None = None) -> list[Diagnostic]:
    with pytest.raises(UserError) as info:
        load_manifests(paths, env={} if env is None else env)
    return [d for d in info.value.diagnostics if d.severity.value == "error"]


def where(diag: Diagnostic) -> tuple[str, int, int]:
    assert diag.pos is not None
    return (Path(diag.pos.file).name, diag.pos.line, diag.pos.column)


# --- item 3: every value is JSON-representable at validate time -----------------------


@pytest.mark.parametrize("written", [".nan", ".inf", "-.Inf", "1.0e+400", "+.INF"])
def test_nan_and_infinity_are_refused_at_their_position(tmp_path: Path, written: str) -> None:
    path = write(tmp_path / "a.yaml", with_params(f"{{temperature: {written}}}"))
    (error,) = errors_of([path])
    assert where(error) == ("a.yaml", 14, 33)
    assert "not a finite number" in error.message and "JSON" in error.message
    assert (
        error.field
        == "spec.version_sets.release.llm_model_preferences.conversation.params.temperature"
    )


def test_nan_never_reaches_plan_json_or_the_plan_file(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yaml", with_params("{temperature: .nan}"))
    out = tmp_path / "plan.json"
    seed = Path(__file__).resolve().parent.parent / "examples" / "emulator-seed.yaml"
    result = CliRunner().invoke(
        main,
        ["plan", str(path), "--format", "json", "--out", str(out), "--emulator", str(seed)],
    )
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output + result.stderr
    assert "a.yaml:14:33" in result.stderr
    assert not out.exists()


def test_dates_and_binary_are_refused_not_sent(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yaml", with_params("{at: 2024-01-01, b: !!binary aGVsbG8=}"))
    first, second = errors_of([path])
    assert "a date" in first.message and "binary" in second.message


# --- item 15: numbers written as numbers are numbers (YAML 1.2 core schema) -------------


def test_yaml_12_numbers_are_numbers_and_quoted_ones_stay_text(tmp_path: Path) -> None:
    text = with_params(
        "{temperature: 5e-1, a: 1e3, b: 1.5E+2, c: -2e0, d: 0o17, e: .5, "
        "f: '5e-1', g: \"1e3\", h: 0.2}"
    )
    (service,) = load_manifests([write(tmp_path / "a.yaml", text)], env={}).services
    params = service.version_sets["release"].llm_model_preferences["conversation"].params
    assert params == {
        "temperature": 0.5,
        "a": 1000.0,
        "b": 150.0,
        "c": -2.0,
        "d": 15,
        "e": 0.5,
        "f": "5e-1",
        "g": "1e3",
        "h": 0.2,
    }
    assert isinstance(params["temperature"], float) and isinstance(params["d"], int)


def test_the_plan_shows_and_sends_5e_minus_1_as_a_number(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yaml", with_params("{temperature: 5e-1}"))
    seed = Path(__file__).resolve().parent.parent / "examples" / "emulator-seed.yaml"
    result = CliRunner().invoke(
        main, ["plan", str(path), "--format", "json", "--emulator", str(seed)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    requests = json.dumps([op["request"] for op in data["operations"]])
    assert '"temperature": 0.5' in requests and '"5e-1"' not in requests


# --- item 14: stripped key collisions and nested defaults ----------------------------


@pytest.mark.parametrize(
    ("extra", "first", "second", "line", "column"),
    [
        ("  tags:\n    team: a\n    'team ': b\n", "team", "team ", 11, 5),
        ("  tags: {' team': a, team: b}\n", " team", "team", 9, 22),
        (
            "  version_sets:\n    canary: {}\n    ' canary': {agent_version_number: 2}\n",
            "canary",
            " canary",
            11,
            5,
        ),
    ],
)
def test_keys_equal_after_stripping_are_an_error_naming_both(
    tmp_path: Path, extra: str, first: str, second: str, line: int, column: int
) -> None:
    path = write(tmp_path / "a.yaml", minimal(extra))
    (error,) = errors_of([path])
    assert where(error) == ("a.yaml", line, column)
    assert repr(first) in error.message and repr(second) in error.message
    assert "same key" in error.message


def test_a_merged_key_that_collides_after_stripping_is_an_error(tmp_path: Path) -> None:
    extra = "  tags:\n    <<: {'team ': a}\n    team: b\n"
    (error,) = errors_of([write(tmp_path / "a.yaml", minimal(extra))])
    assert "same key" in error.message


def test_a_nested_reference_in_a_default_is_refused_not_left_as_text(tmp_path: Path) -> None:
    text = minimal().replace("description: A service", "description: ${UNSET:-${SET}}")
    (error,) = errors_of([write(tmp_path / "a.yaml", text)], env={"SET": "value"})
    assert where(error) == ("a.yaml", 6, 25)
    assert "nested references" in error.message and "UNSET" in error.message


def test_a_plain_default_still_fills(tmp_path: Path) -> None:
    text = minimal().replace("description: A service", "description: ${UNSET:-plain text}")
    (service,) = load_manifests([write(tmp_path / "a.yaml", text)], env={}).services
    assert service.description == "plain text"
