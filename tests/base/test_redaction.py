"""Issue 12, item 2: the API key never leaves through a manifest, a renderer or a file.

Two layers, each tested with the canary key: variable filling refuses the
reconciler's own credentials (and any value holding the key) at file:line:col
without echoing the value; and every renderer and every file the reconciler
writes passes through one redaction (reconciler/redaction.py), proven here with
the key planted in live state, where no manifest rule can stop it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _reliability import CANARY_API_KEY, realistic_seed, write_manifests
from click.testing import CliRunner, Result

from reconciler import cli
from reconciler.diagnostics import UserError
from reconciler.emulator import Emulator, EmulatorServer
from reconciler.manifests import load_manifests
from reconciler.redaction import REDACTED, redact

KEY_ENV = {"AMIGO_API_KEY": CANARY_API_KEY}


def manifest(description: str) -> str:
    return (
        "apiVersion: amigo.ai/v1\nkind: Service\nmetadata:\n  name: Svc\nspec:\n"
        f"  description: {description}\n"
        "  agent: Concierge\n  service_hierarchical_state_machine: Intake\n"
    )


def load_errors(tmp_path: Path, description: str, env: dict[str, str]) -> list[str]:
    path = tmp_path / "svc.yaml"
    path.write_text(manifest(description), encoding="utf-8")
    with pytest.raises(UserError) as info:
        load_manifests([path], env=env)
    return [str(d) for d in info.value.diagnostics]


# --- layer 1: variable filling -------------------------------------------------------


@pytest.mark.parametrize("name", ["AMIGO_API_KEY", "AMIGO_API_KEY_ID", "AMIGO_USER_ID"])
def test_the_reconcilers_own_credentials_are_refused_at_their_position(
    tmp_path: Path, name: str
) -> None:
    env = {**KEY_ENV, "AMIGO_API_KEY_ID": "kid-12345678", "AMIGO_USER_ID": "uid-12345678"}
    (error,) = load_errors(tmp_path, f"before ${{{name}}} after", env)
    assert error.startswith(f"{tmp_path / 'svc.yaml'}:6:23: error: spec.description: ")
    assert f"${{{name}}} is the reconciler's own" in error and "may not use it" in error
    assert ("a secret" in error) == (name == "AMIGO_API_KEY")
    for value in env.values():
        assert value not in error


@pytest.mark.parametrize(
    "description",
    ["${COPY}", "x ${COPY_WITH_MORE} y", "${HALF_A}${HALF_B}"],
    ids=["equal", "contains", "pieced together"],
)
def test_any_variable_holding_the_key_is_refused_without_echoing_it(
    tmp_path: Path, description: str
) -> None:
    env = {
        **KEY_ENV,
        "COPY": CANARY_API_KEY,
        "COPY_WITH_MORE": f"prefix-{CANARY_API_KEY}-suffix",
        "HALF_A": CANARY_API_KEY[:10],
        "HALF_B": CANARY_API_KEY[10:],
    }
    (error,) = load_errors(tmp_path, description, env)
    assert "holds the API key (AMIGO_API_KEY)" in error
    assert ":6:" in error and CANARY_API_KEY not in error and CANARY_API_KEY[10:] not in error


def test_settings_that_are_not_credentials_may_be_used(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text(manifest("for ${AMIGO_ORGANIZATION_ID}"), encoding="utf-8")
    env = {**KEY_ENV, "AMIGO_ORGANIZATION_ID": "acme"}
    (service,) = load_manifests([path], env=env).services
    assert service.description == "for acme"


def test_a_manifest_naming_the_key_fails_plan_before_any_request(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text(manifest("${AMIGO_API_KEY}").replace("name: Svc", "name: K"), "utf-8")
    env = {**KEY_ENV, "AMIGO_API_KEY_ID": "k", "AMIGO_USER_ID": "u"}
    env |= {"AMIGO_ORGANIZATION_ID": "o", "AMIGO_BASE_URL": "https://127.0.0.1:9"}
    for fmt in ("text", "github", "markdown", "json"):
        result = CliRunner().invoke(cli.main, ["plan", str(path), "--format", fmt], env=env)
        assert result.exit_code == 1
        assert "${AMIGO_API_KEY} is the reconciler's own API key" in result.output + result.stderr
        assert CANARY_API_KEY not in result.output + result.stderr


# --- layer 2: one redaction for every renderer and file ------------------------------


def test_redact_finds_the_key_in_every_spelling_a_renderer_uses() -> None:
    key = 'k3y_with*odd"chars%&<>:,'
    env = {"AMIGO_API_KEY": key}
    spellings = [
        key,
        json.dumps(key)[1:-1],  # JSON (plan files, --format json)
        key.replace("_", "\\_").replace("*", "\\*"),  # Markdown
        key.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),  # HTML
        key.replace("%", "%25").replace(":", "%3A").replace(",", "%2C"),  # GitHub
    ]
    for spelled in spellings:
        assert redact(f"before {spelled} after", env) == f"before {REDACTED} after", spelled
    assert redact("nothing here", env) == "nothing here"
    assert redact(f"short {key}", {"AMIGO_API_KEY": "abc"}) == f"short {key}"  # no key: as is
    assert redact(f"none {key}", {}) == f"none {key}"


@pytest.fixture
def leaky() -> Emulator:
    """An organization where the key already sits in live state (an earlier leak)."""
    seed = realistic_seed()
    seed["services"][0]["description"] = f"Owned 1, leaked {CANARY_API_KEY} before"
    return Emulator.from_seed(seed, window_seconds=1.0)


@pytest.fixture
def server(leaky: Emulator) -> Iterator[EmulatorServer]:
    with leaky.serve() as running:
        yield running


def test_every_renderer_and_file_redacts_the_key(
    leaky: Emulator,
    server: EmulatorServer,
    tmp_path: Path,
    secrets_guard: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = leaky.credentials(server.base_url)
    assert env["AMIGO_API_KEY"] == CANARY_API_KEY
    manifests = write_manifests(tmp_path / "services")
    plan_file = tmp_path / "plan.json"
    schema_file = tmp_path / "schema.json"
    # The schema cannot hold the key; make it, to prove `schema --out` is redacted too.
    monkeypatch.setattr(
        "reconciler.schema.render_schema", lambda: json.dumps({"x": CANARY_API_KEY}) + "\n"
    )

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli.main, list(args), env=env, catch_exceptions=False)

    with secrets_guard.expect_leaks() as caught:
        results = {
            "plan text": run("plan", str(manifests), "--prune"),
            "plan markdown": run("plan", str(manifests), "--prune", "--format", "markdown"),
            "plan github": run("plan", str(manifests), "--prune", "--format", "github"),
            "plan json": run("plan", str(manifests), "--prune", "--format", "json"),
            "plan --out": run("plan", str(manifests), "--prune", "--out", str(plan_file)),
            "export": run("export"),
            "export --out": run("export", "--out", str(tmp_path / "exported")),
            "schema --out": run("schema", "--out", str(schema_file)),
            "apply saved": run("apply", str(plan_file), "--auto-approve"),
        }
    # In memory, the plan holds live state as read (the key included); only outputs matter.
    assert {c.split(" in ", 1)[1] for c in caught} <= {"a Plan", "an ApplyReport"}, caught
    for what, result in results.items():
        assert result.exit_code == 0, (what, result.output)
        shown = result.stdout + result.stderr
        assert CANARY_API_KEY not in shown, what
    for what in ("plan text", "plan markdown", "plan json", "export", "apply saved"):
        assert REDACTED in results[what].stdout + results[what].stderr, what
    files = [p for p in tmp_path.rglob("*") if p.is_file() and "services" not in p.parts]
    assert {plan_file, schema_file} <= set(files) and len(files) > 3
    for path in files:
        assert CANARY_API_KEY not in path.read_text(encoding="utf-8"), path
    assert REDACTED in plan_file.read_text(encoding="utf-8")
    assert REDACTED in schema_file.read_text(encoding="utf-8")
    assert any(REDACTED in p.read_text(encoding="utf-8") for p in files if p.suffix == ".yaml")
    # The redacted plan is still a valid plan: its checksum covers what was written.
    assert json.loads(results["plan json"].stdout)["checksum"].startswith("sha256:")


def test_the_apply_report_json_is_redacted(
    leaky: Emulator, server: EmulatorServer, tmp_path: Path, secrets_guard: Any
) -> None:
    env = leaky.credentials(server.base_url)
    manifests = write_manifests(tmp_path / "services")
    with secrets_guard.expect_leaks() as caught:
        result = CliRunner().invoke(
            cli.main,
            ["apply", str(manifests), "--auto-approve", "--format", "json"],
            env=env,
            catch_exceptions=False,
        )
    assert {c.split(" in ", 1)[1] for c in caught} <= {"a Plan", "an ApplyReport"}, caught
    assert result.exit_code == 0, result.output
    assert CANARY_API_KEY not in result.stdout + result.stderr
    assert REDACTED in result.stderr  # the plan shown before applying
    assert json.loads(result.stdout)["outcome"] == "converged"


def test_a_key_written_in_a_default_is_named_as_such(tmp_path: Path) -> None:
    """`${EMPTY:-<key>}`: the key sits in the file, not in the variable's value."""
    key = "not-the-canary-0123456789"  # the file holds it: the guard would flag the canary
    (error,) = load_errors(tmp_path, f"x ${{EMPTY:-{key}}}", {"AMIGO_API_KEY": key})
    assert "the default of ${EMPTY:-...} holds the API key" in error
    assert "written literally in the manifest" in error and "remove it from the file" in error
    assert "the value of ${EMPTY}" not in error and key not in error
    assert ":6:27:" in error  # at the default, not at the reference


def test_the_marker_reads_back_as_a_plain_string() -> None:
    """The marker lands in YAML (export), JSON and Markdown: it must stay one plain scalar."""
    import yaml

    text = redact(f"name: {CANARY_API_KEY}\ntags: [{CANARY_API_KEY}]", KEY_ENV)
    assert yaml.safe_load(text) == {"name": REDACTED, "tags": [REDACTED]}
    assert json.loads(json.dumps(REDACTED)) == REDACTED
    assert REDACTED.isalnum()  # nothing Markdown, YAML or a shell reads specially


def test_export_file_names_never_carry_the_key_in_any_case(tmp_path: Path) -> None:
    """A service named after the key (in any case, any punctuation): its file name is
    built from a lower-cased slug, which exact redaction of text would not match."""
    seed = realistic_seed()
    seed["services"] += [
        {
            "name": CANARY_API_KEY,
            "description": "d",
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Intake",
        },
        {
            "name": f"Copy of {CANARY_API_KEY.upper().replace('-', '_')}",
            "description": "d",
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Intake",
        },
    ]
    emulator = Emulator.from_seed(seed, window_seconds=1.0)
    out = tmp_path / "exported"
    with emulator.serve() as running:
        env = emulator.credentials(running.base_url)
        result = CliRunner().invoke(
            cli.main, ["export", "--out", str(out)], env=env, catch_exceptions=False
        )
    assert result.exit_code == 0, result.output
    key_forms = {CANARY_API_KEY.lower(), CANARY_API_KEY.lower().replace("-", "")}
    names = [p.name.lower() for p in out.rglob("*")]
    assert len(names) > 2
    for name in names:
        assert not any(form in name.replace("-", "") or form in name for form in key_forms), name
    assert "redacted.yaml" in names and "copy-of-redacted.yaml" in names
    for path in out.rglob("*.yaml"):
        assert CANARY_API_KEY not in path.read_text(encoding="utf-8")


def test_the_key_is_redacted_in_any_letter_case() -> None:
    upper_and_lower = (
        f"{CANARY_API_KEY.lower()} {CANARY_API_KEY.upper()} {CANARY_API_KEY.swapcase()}"
    )
    assert redact(upper_and_lower, KEY_ENV) == f"{REDACTED} {REDACTED} {REDACTED}"
    markdown = CANARY_API_KEY.lower().replace("-", "\\-")
    assert redact(f"`{markdown}`", KEY_ENV) == f"`{REDACTED}`"


def test_a_service_named_after_the_key_in_lower_case_is_redacted_in_every_file(
    tmp_path: Path, secrets_guard: Any
) -> None:
    """Review: the file was named `redacted.yaml` (slugs are lower-cased) but its
    `metadata.name`, `plan --out` and `export --seed` held the lower-cased key."""
    lowered = CANARY_API_KEY.lower()
    seed = realistic_seed()
    seed["services"].append(
        {
            "name": lowered,
            "description": f"Says {lowered}",
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Intake",
        }
    )
    emulator = Emulator.from_seed(seed, window_seconds=1.0)
    manifests = write_manifests(tmp_path / "services")
    out, plan_file, seed_file = tmp_path / "exported", tmp_path / "plan.json", tmp_path / "s.yaml"
    with emulator.serve() as running, secrets_guard.expect_leaks():
        env = emulator.credentials(running.base_url)

        def run(*args: str) -> Result:
            return CliRunner().invoke(cli.main, list(args), env=env, catch_exceptions=False)

        results = [
            run("export", "--out", str(out)),
            run("export", "--seed", str(seed_file)),
            run("plan", str(manifests), "--prune", "--out", str(plan_file)),
            run("plan", str(manifests), "--prune", "--format", "json"),
        ]
    for result in results:
        assert result.exit_code == 0, result.output
        assert lowered not in (result.stdout + result.stderr).lower()
    exported = out / "redacted.yaml"
    assert exported.exists(), sorted(p.name for p in out.rglob("*"))
    assert "name: REDACTED" in exported.read_text(encoding="utf-8")
    for path in (*out.rglob("*.yaml"), plan_file, seed_file):
        text = path.read_text(encoding="utf-8")
        assert lowered not in text.lower(), path
    assert REDACTED in plan_file.read_text(encoding="utf-8")
    assert REDACTED in seed_file.read_text(encoding="utf-8")
