"""The README tells the truth: its manifest reference matches the schema, its commands
and flags exist in the CLI, its quickstart runs, and its links resolve."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from support.paths import REPO

from reconciler.cli import main

README = REPO / "README.md"
SCHEMA = REPO / "schemas" / "service.schema.json"
DOCS = sorted((REPO / "docs").glob("*.md"))

# Options every API-facing command shares (documented once, above the command table).
CONNECTION_OPTIONS = {
    "--organization",
    "--base-url",
    "--api-key-id",
    "--user-id",
    "--emulator",
    "--mongo-cluster",
    "--env",  # with --config: on every command that reads manifests or talks to the API
    "--config",
}


def readme() -> str:
    return README.read_text(encoding="utf-8")


def section(text: str, name: str) -> str:
    """The text between <!-- NAME:start --> and <!-- NAME:end -->."""
    match = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert match, f"README.md lacks the <!-- {name}:start --> ... <!-- {name}:end --> markers"
    return match.group(1)


def table_rows(markdown: str) -> list[list[str]]:
    """Cells of a markdown table's body rows (header and rule skipped); `\\|` stays in a cell."""
    rows = []
    for line in markdown.strip().splitlines()[2:]:
        cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
        rows.append([cell.strip().replace("\\|", "|") for cell in cells])
    return rows


def generic(path: str) -> str:
    """`spec.version_sets.<set>.x` and `...<name>.x` name the same schema path."""
    return re.sub(r"<[^>]+>", "<*>", path)


# --- manifest reference <-> schema ---------------------------------------------------


def schema_fields(schema: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """Every dotted field path of the schema, the required ones, and the one-of-required ones."""
    defs = schema.get("$defs", {})

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def variants(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        node = resolve(node)
        yield node
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                yield from variants(sub)

    fields: set[str] = set()
    required: set[str] = set()
    one_of: set[str] = set()

    def walk(node: dict[str, Any], prefix: str) -> None:
        for variant in variants(node):
            for group in variant.get("allOf", []):
                for option in group.get("oneOf", []):
                    one_of.update(prefix + name for name in option.get("required", []))
            required.update(prefix + name for name in variant.get("required", []))
            for name, sub in variant.get("properties", {}).items():
                fields.add(prefix + name)
                walk(sub, f"{prefix}{name}.")
            extra = variant.get("additionalProperties")
            if isinstance(extra, dict) and extra:
                walk(extra, f"{prefix}<*>.")

    walk(schema, "")
    return fields, required - one_of, one_of


def readme_reference() -> dict[str, str]:
    """Field path -> the README's `required` cell."""
    rows = table_rows(section(readme(), "manifest-reference"))
    reference = {}
    for row in rows:
        match = re.fullmatch(r"`([^`]+)`", row[0])
        assert match, f"reference row does not start with a `field`: {row}"
        reference[generic(match.group(1))] = row[1]
    return reference


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_every_schema_field_is_in_the_readme_reference_and_no_other(
    schema: dict[str, Any],
) -> None:
    fields, _, _ = schema_fields(schema)
    documented = set(readme_reference())
    assert not fields - documented, f"schema fields missing from the README: {fields - documented}"
    assert not documented - fields, f"README fields not in the schema: {documented - fields}"


def test_readme_reference_says_which_fields_are_required(schema: dict[str, Any]) -> None:
    _, required, one_of = schema_fields(schema)
    reference = readme_reference()
    said_required = {field for field, cell in reference.items() if cell == "yes"}
    said_one_of = {field for field, cell in reference.items() if cell == "one of"}
    assert said_required == required
    assert said_one_of == one_of
    assert set(reference.values()) <= {"yes", "no", "one of"}


def test_schema_walker_sees_nested_and_conditional_fields() -> None:
    """Guard the walker itself, so a reference test cannot pass by seeing nothing."""
    toy = {
        "$defs": {"Inner": {"properties": {"x": {}}, "required": ["x"]}},
        "properties": {
            "a": {"anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}]},
            "m": {"additionalProperties": {"$ref": "#/$defs/Inner"}},
            "b": {
                "allOf": [{"oneOf": [{"required": ["p"]}, {"required": ["q"]}]}],
                "properties": {"p": {}, "q": {}},
            },
        },
        "required": ["a"],
    }
    fields, required, one_of = schema_fields(toy)
    assert fields == {"a", "a.x", "m", "m.<*>.x", "b", "b.p", "b.q"}
    assert required == {"a", "a.x", "m.<*>.x"}
    assert one_of == {"b.p", "b.q"}


# --- commands <-> CLI ------------------------------------------------------------------


def cli_help(*args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def documented_commands() -> dict[str, set[str]]:
    """Command name -> the --flags its row of the README's command table shows."""
    commands = {}
    for row in table_rows(section(readme(), "commands")):
        usage = re.fullmatch(r"`reconciler (\w+)(.*)`", row[0])
        assert usage, f"command row does not start with `reconciler COMMAND ...`: {row}"
        commands[usage.group(1)] = set(re.findall(r"--[a-z][a-z-]*", usage.group(2)))
    return commands


def test_every_documented_command_exists_and_every_command_is_documented() -> None:
    documented = set(documented_commands())
    registered = set(main.commands)
    assert not documented - registered, (
        f"README documents missing commands: {documented - registered}"
    )
    assert not registered - documented, (
        f"commands missing from the README: {registered - documented}"
    )
    listing = cli_help()
    for name in registered:
        assert re.search(rf"^\s+{name}\b", listing, re.M), (
            f"`reconciler --help` does not list {name}"
        )


def test_a_command_groups_row_lists_exactly_its_subcommands() -> None:
    """`reconciler ci a|b|c ...`: the row once missed promotion-pr and verify."""
    import click

    groups = {name: cmd for name, cmd in main.commands.items() if isinstance(cmd, click.Group)}
    rows = {}
    for row in table_rows(section(readme(), "commands")):
        usage = re.fullmatch(r"`reconciler (\w+) ([\w-]+(?:\|[\w-]+)*)\b.*`", row[0])
        if usage and usage.group(1) in groups:
            rows[usage.group(1)] = set(usage.group(2).split("|"))
    assert set(rows) == set(groups), f"group rows {sorted(rows)}, groups {sorted(groups)}"
    for name, group in groups.items():
        assert rows[name] == set(group.commands), f"`reconciler {name}` row: {sorted(rows[name])}"


def test_documented_flags_match_each_commands_options() -> None:
    for name, flags in documented_commands().items():
        if name not in main.commands:
            continue  # reported by the test above
        command = main.commands[name]
        options = (
            {
                opt
                for param in command.params
                for opt in getattr(param, "opts", [])
                if opt.startswith("--")
            }
            - CONNECTION_OPTIONS
            - {"--help"}
        )
        assert flags == options, (
            f"reconciler {name}: README shows {sorted(flags)}, the CLI has {sorted(options)}"
        )
        help_text = cli_help(name)
        for flag in flags:
            assert flag in help_text


def test_connection_options_the_readme_names_exist() -> None:
    help_text = cli_help("plan")
    for flag in CONNECTION_OPTIONS:
        assert flag in readme(), f"README does not mention {flag}"
        assert flag in help_text, f"`reconciler plan --help` lacks {flag}"
    assert "--api-key " not in help_text, "the API key must never be a flag"


def code_text(markdown: str) -> str:
    """Only what is in code blocks and code spans: where commands are written."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", markdown, re.S)
    rest = re.sub(r"```.*?```", "", markdown, flags=re.S)
    return "\n".join(blocks + re.findall(r"`([^`\n]+)`", rest))


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_commands_written_in_the_docs_exist(doc: Path) -> None:
    words = set(re.findall(r"(?<![\w/-])reconciler (\w[\w-]*)", code_text(doc.read_text("utf-8"))))
    assert words, f"{doc.name} shows no reconciler command at all"
    missing = words - set(main.commands)
    assert not missing, f"{doc.name} uses commands the CLI lacks: {sorted(missing)}"


# --- quickstart ------------------------------------------------------------------------

QUICKSTART_RUN = (
    "pip install . && reconciler plan examples/services --emulator examples/emulator-seed.yaml"
)
QUICKSTART_TEST = "pip install '.[test]' && python -m pytest"


def test_readme_shows_the_two_setup_commands() -> None:
    text = readme()
    assert QUICKSTART_RUN in text
    assert QUICKSTART_TEST in text


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"""pip install (--quiet )?["']\.\[test\]["']""", ci)
    assert re.search(r"^python -m pytest\b", ci, re.M)


def test_quickstart_plan_runs_against_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AMIGO_API_KEY", "AMIGO_API_KEY_ID", "AMIGO_USER_ID", "AMIGO_ORGANIZATION_ID"):
        monkeypatch.delenv(name, raising=False)  # proves it needs no credentials
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(
        main, ["plan", "examples/services", "--emulator", "examples/emulator-seed.yaml"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip()


# --- links and the pre-commit hook -----------------------------------------------------


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path) -> None:
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    broken = [
        target
        for target in targets
        if not re.match(r"[a-z]+:|#", target)
        and not (doc.parent / target.split("#", 1)[0]).exists()
    ]
    assert not broken, f"{doc.name} links to missing files: {broken}"


def test_pre_commit_hook_works_with_no_args(tmp_path: Path) -> None:
    """pre-commit passes the changed YAML files (`types: [yaml]`); the hook validates the
    manifests among them and skips other YAML, so it needs no `args`."""
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (hook,) = [h for h in hooks if h["id"] == "reconciler-validate"]
    assert hook["language"] == "python"
    assert hook["entry"] == "reconciler validate --manifests-only"
    assert hook["entry"].split()[1] in main.commands
    assert hook.get("pass_filenames", True) is True and "args" not in hook
    assert hook["types"] == ["yaml"] and "files" not in hook
    # What pre-commit would pass on a commit touching a manifest, a workflow and its config.
    good = REPO / "examples" / "services" / "billing-questions.yaml"
    workflow = REPO / ".github" / "workflows" / "ci.yml"
    config = tmp_path / ".pre-commit-config.yaml"
    config.write_text("repos: []\n", encoding="utf-8")
    args = hook["entry"].split()[1:]
    result = CliRunner().invoke(main, [*args, str(good), str(workflow), str(config)])
    assert result.exit_code == 0, result.output
    assert "1 service valid in 1 file" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: amigo.ai/v1\nkind: Service\nmetadata: {}\n", encoding="utf-8")
    result = CliRunner().invoke(main, [*args, str(bad), str(workflow)])
    assert result.exit_code == 1 and "bad.yaml:" in result.output
    result = CliRunner().invoke(main, [*args, str(workflow), str(config)])
    assert result.exit_code == 0 and "no Amigo manifests among 2 file(s)" in result.output
    assert "id: reconciler-validate" in readme()


# What the README's table of plain values says each form is read as (type matters).
PLAIN_VALUES: dict[str, Any] = {
    "12": 12,
    "+12": 12,
    "-3": -3,
    "1_000": 1000,
    "0.5": 0.5,
    ".5": 0.5,
    "1.5e+3": 1500.0,
    "5e-1": 0.5,
    "1e3": 1000.0,
    "1_0.5": 10.5,
    "017": 15,
    "08": 8.0,
    "09": 9.0,
    "0o17": 15,
    "0x1F": 31,
    "-0x1A": -26,
    "0b11": 3,
    "1:30": 90,
    "190:20:30.15": 685230.15,
    "true": True,
    "yes": True,
    "on": True,
    "True": True,
    "YES": True,
    "false": False,
    "no": False,
    "off": False,
    "False": False,
    "NO": False,
    "y": "y",
    "n": "n",
    "0o8": "0o8",
    "1e": "1e",
    "0b2": "0b2",
    "~": None,
    "null": None,
}
REFUSED_VALUES = (".nan", ".inf", "2025-01-01")


def test_the_readme_table_of_plain_values_is_what_the_loader_reads(tmp_path: Path) -> None:
    """README promised "as YAML 1.2's core schema", while `017` was 15 and `yes` true:
    the table now lists each form, and each is checked against the loader here."""
    from reconciler.diagnostics import UserError
    from reconciler.manifests import load_manifests

    text = readme()
    start = text.index("| written (unquoted) | read as |")
    table = text[start : text.index("\n\n", start)]
    written = {form for row in table_rows(table) for form in re.findall(r"`([^`]*)`", row[0])}
    assert "as YAML 1.2's core schema reads them" not in text
    assert written >= (set(PLAIN_VALUES) - {"True", "YES", "False", "NO"}) | set(REFUSED_VALUES)

    def load(value: str) -> Any:
        path = tmp_path / "svc.yaml"
        path.write_text(
            "apiVersion: amigo.ai/v1\nkind: Service\nmetadata:\n  name: Svc\nspec:\n"
            "  description: d\n  agent: Concierge\n  service_hierarchical_state_machine: I\n"
            "  version_sets:\n    release:\n      llm_model_preferences:\n        c:\n"
            f"          llm_name: openai_gpt-5.1-2025-11-13\n          params: {{v: {value}}}\n",
            encoding="utf-8",
        )
        (service,) = load_manifests([path], env={}).services
        return service.version_sets["release"].llm_model_preferences["c"].params["v"]

    for form, expected in PLAIN_VALUES.items():
        got = load(form)
        assert (got, type(got)) == (expected, type(expected)), form
    for form in REFUSED_VALUES:
        with pytest.raises(UserError):
            load(form)
