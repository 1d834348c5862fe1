"""Bad input: each gets exit 1 and one clear message with its position, never a traceback."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.diagnostics import UserError
from reconciler.manifests import MAX_FILE_BYTES, load_manifests

GOOD_SPEC = """\
spec:
  description: A service
  agent: Concierge
  service_hierarchical_state_machine: Onboarding flow
"""


def manifest(name: str = "Svc", spec_lines: str = "", head: str = "", meta: str = "") -> str:
    """A valid manifest unless the arguments break it (spec_lines are added to spec)."""
    top = head or "apiVersion: amigo.ai/v1\nkind: Service\n"
    return f"{top}metadata:\n  name: {name}\n{meta}{GOOD_SPEC}{spec_lines}"


@dataclass
class Case:
    files: dict[str, str | bytes]
    at: tuple[str, int, int] | None  # file, line, column of the one error
    says: tuple[str, ...]  # substrings of the message
    path_arg: str | None = None  # what to pass instead of the temp directory


TWENTY_ONE_TAGS = "".join(f"    t{i}: v\n" for i in range(21))

CASES: dict[str, Case] = {
    "not yaml": Case(
        {"a.yaml": "apiVersion: amigo.ai/v1\nkind: [Service\n"},
        ("a.yaml", 3, 1),
        ("not valid YAML",),
    ),
    "top-level list": Case(
        {"a.yaml": "- apiVersion: amigo.ai/v1\n"},
        ("a.yaml", 1, 1),
        ("not a service manifest", "is a mapping with apiVersion", "not a list"),
    ),
    "top-level scalar": Case(
        {"a.yaml": "just some words\n"},
        ("a.yaml", 1, 1),
        ("not a service manifest", "not a string"),
    ),
    "wrong apiVersion": Case(
        {"a.yaml": manifest(head="apiVersion: amigo.ai/v2\nkind: Service\n")},
        ("a.yaml", 1, 13),
        ("apiVersion", "must be 'amigo.ai/v1'", "'amigo.ai/v2'"),
    ),
    "wrong kind": Case(
        {"a.yaml": manifest(head="apiVersion: amigo.ai/v1\nkind: Services\n")},
        ("a.yaml", 2, 7),
        ("kind", "must be 'Service'"),
    ),
    "missing name": Case(
        {"a.yaml": "apiVersion: amigo.ai/v1\nkind: Service\nmetadata: {}\n" + GOOD_SPEC},
        ("a.yaml", 3, 11),
        ("metadata.name", "required field 'name' is missing"),
    ),
    "empty description": Case(
        {"a.yaml": manifest().replace("description: A service", "description: ''")},
        ("a.yaml", 6, 16),
        ("spec.description", "must not be empty"),
    ),
    "blank description": Case(
        {"a.yaml": manifest().replace("description: A service", "description: '   '")},
        ("a.yaml", 6, 16),
        ("spec.description", "must not be empty or only whitespace"),
    ),
    "malformed id": Case(
        {"a.yaml": manifest(meta="  id: 6618791275130B73714E8D1C\n")},
        ("a.yaml", 5, 7),
        ("metadata.id", "24 lowercase hexadecimal characters"),
    ),
    "tag key with a hyphen": Case(
        {"a.yaml": manifest(spec_lines="  tags: {team-name: growth}\n")},
        ("a.yaml", 9, 10),
        ("spec.tags.team-name", "letters, digits, underscores and spaces"),
    ),
    "21 tags": Case(
        {"a.yaml": manifest(spec_lines="  tags:\n" + TWENTY_ONE_TAGS)},
        ("a.yaml", 10, 5),
        ("spec.tags", "has 21 entries", "at most 20"),
    ),
    "reserved ownership tag": Case(
        {"a.yaml": manifest(spec_lines="  tags: {managed_by: me}\n")},
        ("a.yaml", 9, 10),
        ("spec.tags.managed_by", "reserved", "managed_by: amigo_reconciler"),
    ),
    "keyterm with capitals": Case(
        {"a.yaml": manifest(spec_lines="  keyterms: [amigo, Meet and Greet]\n")},
        ("a.yaml", 9, 21),
        ("spec.keyterms.1", "lowercase words"),
    ),
    "version set name of 41 characters": Case(
        {"a.yaml": manifest(spec_lines="  version_sets:\n    " + "a" * 41 + ": {}\n")},
        ("a.yaml", 10, 5),
        ("41 characters", "at most 40"),
    ),
    "version set name with a dot": Case(
        {"a.yaml": manifest(spec_lines="  version_sets:\n    canary.v2: {}\n")},
        ("a.yaml", 10, 5),
        ("spec.version_sets.canary.v2", "letters, digits, '_' and '-'"),
    ),
    "edge declared": Case(
        {"a.yaml": manifest(spec_lines="  version_sets:\n    edge: {agent_version_number: 2}\n")},
        ("a.yaml", 10, 5),
        ("spec.version_sets.edge", "read-only"),
    ),
    "agent and agent_id together": Case(
        {"a.yaml": manifest(spec_lines="  agent_id: 6618791275530b73714e9d18\n")},
        ("a.yaml", 9, 3),
        ("spec.agent_id", "either agent", "not both"),
    ),
    "neither state machine nor its id": Case(
        {
            "a.yaml": manifest().replace(
                "  service_hierarchical_state_machine: Onboarding flow\n", ""
            )
        },
        ("a.yaml", 6, 3),
        ("service_hierarchical_state_machine", "missing"),
    ),
    "misspelled description": Case(
        {"a.yaml": manifest().replace("description:", "descripton:")},
        ("a.yaml", 6, 3),
        ("unknown field 'descripton'", "did you mean 'description'"),
    ),
    "version number zero": Case(
        {"a.yaml": manifest(spec_lines="  version_sets:\n    canary: {agent_version_number: 0}\n")},
        ("a.yaml", 10, 36),
        ("version numbers start at 1", "null"),
    ),
    "tag value that YAML reads as a number": Case(
        {"a.yaml": manifest(spec_lines="  tags: {tier: 1}\n")},
        ("a.yaml", 9, 16),
        ("expected a string", 'quotes ("1")'),
    ),
    "duplicate key": Case(
        {"a.yaml": manifest(spec_lines="  description: Again\n")},
        ("a.yaml", 9, 3),
        ("duplicate key 'description'", "first at line 6"),
    ),
    "the same service in two files": Case(
        {"a.yaml": manifest("Desk"), "b.yaml": manifest("Desk")},
        ("b.yaml", 4, 9),
        ("'Desk' is also declared at", "a.yaml:4:9"),
    ),
    "the same pinned id twice": Case(
        {
            "a.yaml": manifest("One", meta="  id: 6618791275130b73714e8d1c\n"),
            "b.yaml": manifest("Two", meta="  id: 6618791275130b73714e8d1c\n"),
        },
        ("b.yaml", 5, 7),
        ("id 6618791275130b73714e8d1c is also pinned by 'One'",),
    ),
    "two active services pinned apart but sharing a name": Case(
        {
            "a.yaml": manifest("Desk", meta="  id: 6618791275130b73714e8d1c\n"),
            "b.yaml": manifest("Desk", meta="  id: 6618791275130b73714e8d1d\n"),
        },
        ("b.yaml", 4, 9),
        ("only one active service may hold a name",),
    ),
    "an undefined variable": Case(
        {"a.yaml": manifest("Greeter ${AMIGO_TEST_SURELY_UNSET}")},
        ("a.yaml", 4, 17),
        ("AMIGO_TEST_SURELY_UNSET is not set", "${AMIGO_TEST_SURELY_UNSET:-value}"),
    ),
    "a malformed variable reference": Case(
        {"a.yaml": manifest("Greeter ${9LIVES}")},
        ("a.yaml", 4, 17),
        ("not a variable reference", "$${"),
    ),
    "a file that is not UTF-8": Case(
        {"a.yaml": manifest("Caf\xe9").encode("latin-1")},
        ("a.yaml", 4, 12),
        ("not UTF-8", "the byte at byte offset"),
    ),
    "a control character": Case(
        {"a.yaml": manifest("Gree\x01ter")},
        ("a.yaml", 4, 13),
        ("not valid YAML", "control characters are not allowed", "#x0001"),
    ),
    "a tab in the indentation": Case(
        {"a.yaml": manifest().replace("  agent:", "\tagent:")},
        ("a.yaml", 7, 1),
        ("not valid YAML", "tab"),
    ),
    "an unsupported tag": Case(
        {"a.yaml": manifest("!!python/name:os.system x")},
        ("a.yaml", 4, 9),
        ("unsupported YAML tag",),
    ),
}


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["validate", *args])
    return result.exit_code, result.stdout, result.stderr


def write_files(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_bad_input_gets_one_clear_positioned_message(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AMIGO_TEST_SURELY_UNSET", raising=False)
    write_files(tmp_path, case.files)
    code, out, err = run([str(tmp_path)])
    assert code == 1, out + err
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    (line,) = errors
    if case.at is not None:
        file, row, column = case.at
        assert line.startswith(f"{tmp_path / file}:{row}:{column}: error: "), line
    for text in case.says:
        assert text in line, line
    assert err.rstrip().endswith("1 error: manifests are invalid")


def test_a_path_that_does_not_exist(tmp_path: Path) -> None:
    code, out, err = run([str(tmp_path / "nowhere")])
    assert code == 1 and "Traceback" not in out + err
    assert f"error: {tmp_path / 'nowhere'}: no such file or directory" in err


def test_a_directory_with_no_manifests(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hello")
    code, _out, err = run([str(tmp_path)])
    assert code == 1
    assert "the directory holds no manifests (*.yaml or *.yml files" in err


def test_files_without_documents_are_no_manifests(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    code, _out, err = run([str(tmp_path)])
    assert code == 1
    assert "no service manifests found in" in err


def test_a_50_mb_file_is_refused_by_size_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:  # sparse: quick to make
        handle.truncate(50 * 1024 * 1024)
    start = time.perf_counter()
    code, _out, err = run([str(big)])
    assert time.perf_counter() - start < 2
    assert code == 1
    assert f"{big}:1:1: error: the file is 50.0 MiB; a manifest file may be at most 5 MiB" in err
    assert MAX_FILE_BYTES == 5 * 1024 * 1024


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 12):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    code, _out, err = run([str(bomb)])
    assert time.perf_counter() - start < 2
    assert code == 1
    assert f"{bomb}:1:1: error: the document is too large" in err
    assert "alias bomb" in err


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text(manifest(spec_lines="  tags: " + "[" * 200 + "]" * 200 + "\n"))
    code, _out, err = run([str(deep)])
    assert code == 1
    assert "too large or too deeply nested" in err


def test_every_error_in_every_file_in_one_run(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "a.yaml": manifest(spec_lines="  tags: {team-name: x}\n  keyterms: [Bad]\n"),
            "b.yaml": manifest("Other", meta="  id: nope\n"),
            "c.yaml": "kind: [\n",
        },
    )
    with pytest.raises(UserError) as caught:
        load_manifests([tmp_path], env={})
    where = [(d.pos.file.rsplit("/", 1)[-1], d.pos.line) for d in caught.value.diagnostics if d.pos]
    assert where == [("a.yaml", 9), ("a.yaml", 10), ("b.yaml", 5), ("c.yaml", 2)]


def test_github_format_prints_annotations(tmp_path: Path) -> None:
    write_files(tmp_path, {"a.yaml": manifest().replace("description:", "descripton:")})
    code, out, _err = run(["--format", "github", str(tmp_path / "a.yaml")])
    assert code == 1
    (annotation,) = [line for line in out.splitlines() if line.startswith("::")]
    assert annotation.startswith(
        f"::error file={tmp_path / 'a.yaml'},line=6,col=3::spec.descripton:"
    )
    assert "did you mean 'description'" in annotation
