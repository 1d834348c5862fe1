"""Issue 12 (part B): hostile or surprising manifests get one clear error at file:line:col."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.paths import REPO, SEED
from test_manifests_load import minimal, write

from reconciler.cli import main
from reconciler.diagnostics import Diagnostic, UserError
from reconciler.manifests import load_manifests
from reconciler.manifests import positioned as manifests


def with_params(params: str) -> str:
    return minimal(
        extra_spec="  version_sets:\n"
        "    release:\n"
        "      llm_model_preferences:\n"
        "        conversation:\n"
        "          llm_name: openai_gpt-4.1-2025-04-14\n"
        f"          params: {params}\n"
    )


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
    seed = SEED
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
    seed = SEED
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
    path = write(tmp_path / "a.yaml", minimal(extra_spec=extra))
    (error,) = errors_of([path])
    assert where(error) == ("a.yaml", line, column)
    assert repr(first) in error.message and repr(second) in error.message
    assert "same key" in error.message


def test_a_merged_key_that_collides_after_stripping_is_an_error(tmp_path: Path) -> None:
    extra = "  tags:\n    <<: {'team ': a}\n    team: b\n"
    (error,) = errors_of([write(tmp_path / "a.yaml", minimal(extra_spec=extra))])
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


# --- item 5: the manifest walk reads only regular files inside the tree -----------------

SECRET = "hunter2-outside-the-tree"


def validate_in_a_process(*paths: str | Path) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process: a hang fails the test instead of hanging the suite."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )


def test_a_fifo_in_a_manifest_directory_is_refused_without_hanging(tmp_path: Path) -> None:
    write(tmp_path / "services" / "a.yaml", minimal())
    os.mkfifo(tmp_path / "services" / "b.yaml")  # no writer: an open without O_NONBLOCK hangs
    started = time.monotonic()
    result = validate_in_a_process(tmp_path / "services")
    assert time.monotonic() - started < 30
    assert result.returncode == 1, result.stderr
    assert "b.yaml:1:1: error: is a FIFO, not a regular file" in result.stderr


def test_a_link_to_dev_zero_is_refused_before_a_byte_is_read(tmp_path: Path) -> None:
    write(tmp_path / "services" / "a.yaml", minimal())
    (tmp_path / "services" / "zero.yaml").symlink_to("/dev/zero")
    result = validate_in_a_process(tmp_path / "services")
    assert result.returncode == 1, result.stderr
    assert "zero.yaml:1:1: error: is a symbolic link to a file outside" in result.stderr


def test_a_device_named_on_the_command_line_is_refused(tmp_path: Path) -> None:
    result = validate_in_a_process("/dev/zero")
    assert result.returncode == 1
    assert "/dev/zero: not a regular file or directory (a device)" in result.stderr


def test_every_read_is_bounded_whatever_st_size_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manifests, "MAX_FILE_BYTES", 4096)
    fifo = tmp_path / "endless.yaml"
    os.mkfifo(fifo)  # st_size 0, like /dev/zero, and it never ends
    written: list[int] = []

    def endless_writer() -> None:
        with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as pipe:
            for _ in range(10_000):  # 10 MB if the reader kept reading
                pipe.write(b"#" * 1024)
                written.append(1)

    writer = threading.Thread(target=endless_writer, daemon=True)
    writer.start()
    (error,) = errors_of([fifo])  # named on the command line: a FIFO may be read
    writer.join(timeout=30)
    assert "larger than allowed" in error.message
    assert len(written) < 100  # the reader stopped near the limit; the writer got EPIPE


def test_a_link_leaving_the_tree_is_refused_and_its_target_never_shown(tmp_path: Path) -> None:
    outside = write(tmp_path / "private" / "key.yaml", f"token: {SECRET}\n")
    write(tmp_path / "services" / "a.yaml", minimal())
    (tmp_path / "services" / "stolen.yaml").symlink_to(outside)
    (tmp_path / "services" / "up").symlink_to(tmp_path / "private", target_is_directory=True)
    (error,) = errors_of([tmp_path / "services"])
    assert where(error) == ("stolen.yaml", 1, 1)
    assert "outside the manifest directory" in error.message
    assert SECRET not in str(error) and "private" not in str(error)


def test_a_link_inside_the_tree_is_followed(tmp_path: Path) -> None:
    write(tmp_path / "services" / "shared" / "a.yaml", minimal())
    (tmp_path / "services" / "b.yml").symlink_to(tmp_path / "services" / "shared" / "a.yaml")
    state = load_manifests([tmp_path / "services" / "shared"], env={})
    assert len(state.services) == 1
    # Named on the command line, a link may point anywhere: the user chose it.
    (tmp_path / "named.yaml").symlink_to(tmp_path / "services" / "shared" / "a.yaml")
    assert len(load_manifests([tmp_path / "named.yaml"], env={}).services) == 1


@pytest.mark.parametrize(
    "content",
    [
        f"{SECRET}\n",
        f"password: {SECRET}\n",
        f"- {SECRET}\n",
        f"a: *{SECRET}\n",
        f"a: !{SECRET}!x b\n",
        b"abc \xff" + SECRET.encode() + b"\n",
    ],
    ids=["scalar", "foreign mapping", "list", "undefined alias", "tag handle", "not utf-8"],
)
def test_errors_about_a_file_that_is_no_manifest_never_echo_its_content(
    tmp_path: Path, content: str | bytes
) -> None:
    path = tmp_path / "foreign.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    errors = errors_of([path])
    assert errors
    for error in errors:
        assert SECRET not in str(error) and "hunter" not in str(error)
        assert error.pos is not None and error.pos.file == str(path)
