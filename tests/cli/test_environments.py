"""Environments (issue 16): reconciler.yaml, --env, metadata.environments, the
environments command, plan --env all, and the x-mongo-cluster-name header over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.paths import REPO

from reconciler.cli import main
from reconciler.diagnostics import UserError
from reconciler.emulator import Emulator
from reconciler.emulator.server import EmulatorServer
from reconciler.project import find_project, load_project

EXAMPLES = REPO / "examples"

SEED: dict[str, Any] = {
    "organization": "acme",
    "credentials": {"api_key": "seed-key-not-secret", "api_key_id": "kid", "user_id": "u1"},
    "agents": [{"name": "Concierge", "latest_version": 4}],
    "state_machines": [{"name": "Flow", "latest_version": 2}],
    "services": [],
}

SERVICE = """\
apiVersion: amigo.ai/v1
kind: Service
metadata:
  name: {name}
{extra}spec:
  description: {description}
  agent: Concierge
  service_hierarchical_state_machine: Flow
"""

PROJECT = """\
version: 1
paths: [services]
variables:
  GREETING: hello
environments:
  staging:
    organization: acme
    base_url: {base_url}
    credentials: {{api_key: STAGING_KEY, api_key_id: STAGING_KEY_ID, user_id: STAGING_USER}}
    mongo_cluster: cluster-7
    variables: {{GREETING: hi from staging}}
  production:
    organization: acme
    base_url: {base_url}
    credentials: {{api_key: PROD_KEY, api_key_id: PROD_KEY_ID, user_id: PROD_USER}}
"""


def write_tree(root: Path, base_url: str = "http://127.0.0.1:9") -> Path:
    (root / "services").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(PROJECT.format(base_url=base_url))
    (root / "services" / "greeter.yaml").write_text(
        SERVICE.format(name="Greeter", extra="", description="${GREETING}")
    )
    (root / "services" / "beta.yaml").write_text(
        SERVICE.format(name="Beta", extra="  environments: [staging]\n", description="beta")
    )
    return root


def credentials_for(emulator: Emulator, prefix: str) -> dict[str, str]:
    creds = emulator.credentials()
    return {
        f"{prefix}_KEY": creds["AMIGO_API_KEY"],
        f"{prefix}_KEY_ID": creds["AMIGO_API_KEY_ID"],
        f"{prefix}_USER": creds["AMIGO_USER_ID"],
    }


CLEAN_ENV = {
    name: None
    for name in (
        "AMIGO_API_KEY",
        "AMIGO_API_KEY_ID",
        "AMIGO_USER_ID",
        "AMIGO_ORGANIZATION_ID",
        "AMIGO_BASE_URL",
        "AMIGO_MONGO_CLUSTER_NAME",
    )
}


# --- the project file ------------------------------------------------------------------


def test_the_example_project_loads_with_defaults_filled_in() -> None:
    project = load_project(EXAMPLES / "reconciler.yaml")
    assert project.names == ("staging", "production")
    staging, production = project.environments
    assert staging.prune and not production.prune
    assert staging.variables["BILLING_AGENT"] == "Billing Assistant"  # the top-level default
    assert staging.credentials == {} == production.credentials  # the standard names (CI)
    assert production.policy == ("policies",) and staging.policy == ()
    assert staging.mongo_cluster and production.mongo_cluster is None


def test_project_errors_name_file_line_column_and_suggest(tmp_path: Path) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text(
        "version: 1\nenvironments:\n  staging:\n    organisation: acme\n    prune: maybe\n"
    )
    with pytest.raises(UserError) as caught:
        load_project(path)
    lines = [str(d) for d in caught.value.diagnostics]
    assert any(f"{path}:4:5" in line and "did you mean 'organization'" in line for line in lines), (
        lines
    )
    assert any(f"{path}:5:12" in line and "true or false" in line for line in lines), lines
    assert any("needs an organization" in line for line in lines), lines


def test_a_pasted_secret_is_refused_and_never_echoed(tmp_path: Path) -> None:
    secret = "sk-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
    path = tmp_path / "reconciler.yaml"
    path.write_text(
        "environments:\n"
        "  staging:\n"
        "    organization: acme\n"
        f"    credentials: {{api_key: {secret}}}\n"
        "    variables:\n"
        f"      BILLING_AGENT: {secret}\n"
        "      STAGING_API_TOKEN: x\n"
    )
    with pytest.raises(UserError) as caught:
        load_project(path)
    text = "\n".join(str(d) for d in caught.value.diagnostics)
    assert secret not in text
    assert "credentials.api_key must name the environment variable" in text
    assert "looks like a secret" in text
    assert "named like a secret" in text


def test_the_project_file_is_found_from_the_manifests_up_to_the_repository(
    tmp_path: Path,
) -> None:
    write_tree(tmp_path / "repo")
    (tmp_path / "repo" / ".git").mkdir()
    found = find_project(None, ["services"], cwd=tmp_path / "repo")
    assert found is not None and found.resolve() == (tmp_path / "repo" / "reconciler.yaml")
    # Not above the repository root:
    (tmp_path / "reconciler.yaml").write_text("environments: {}\n")
    (tmp_path / "repo" / "reconciler.yaml").unlink()
    assert find_project(None, ["services"], cwd=tmp_path / "repo") is None


def test_the_schema_documents_exactly_what_the_loader_accepts() -> None:
    import jsonschema
    import yaml

    from reconciler.project import CREDENTIALS, SETTINGS, TOP_LEVEL

    schema = json.loads((REPO / "schemas" / "project.schema.json").read_text())
    settings = schema["$defs"]["settings"]["properties"]
    assert set(schema["properties"]) == set(TOP_LEVEL)
    assert set(settings) == set(SETTINGS)
    assert set(settings["credentials"]["properties"]) == set(CREDENTIALS)
    example = yaml.safe_load((EXAMPLES / "reconciler.yaml").read_text())
    jsonschema.validate(example, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"environments": {"all": {"organization": "x"}}}, schema)


# --- --env on the commands --------------------------------------------------------------


def run(args: list[str], cwd: Path, env: dict[str, str | None] | None = None) -> Any:
    runner = CliRunner()
    import os

    old = Path.cwd()
    os.chdir(cwd)
    try:
        return runner.invoke(main, args, env={**CLEAN_ENV, **(env or {})})
    finally:
        os.chdir(old)


NAMED = {"verify": ["--service", "Greeter", "--version-set", "release"]}  # what to verify


@pytest.mark.parametrize(
    "command", ["validate", "plan", "apply", "export", "verify", "environments"]
)
def test_an_unknown_environment_is_a_usage_error_with_did_you_mean_and_the_list(
    tmp_path: Path, command: str
) -> None:
    """A flag given a value no environment has: exit 64 (usage), like any bad flag."""
    write_tree(tmp_path)
    result = run([command, "--env", "prodution", *NAMED.get(command, [])], tmp_path)
    assert result.exit_code == 64, result.output
    assert "did you mean 'production'?" in result.output
    assert "known: staging, production" in result.output


@pytest.mark.parametrize("command", ["validate", "apply", "export", "verify"])
def test_env_all_outside_plan_is_a_usage_error(tmp_path: Path, command: str) -> None:
    write_tree(tmp_path)
    result = run([command, "--env", "all", *NAMED.get(command, [])], tmp_path)
    assert result.exit_code == 64, result.output
    assert "--env all is for `reconciler plan` only" in result.output


def test_metadata_environments_selects_services_and_unknown_names_are_errors(
    tmp_path: Path,
) -> None:
    write_tree(tmp_path)
    assert "2 services valid" in run(["validate", "--env", "staging"], tmp_path).output
    assert "1 service valid" in run(["validate", "--env", "production"], tmp_path).output
    # No --env: a service restricted to some environments is left out.
    assert "1 service valid" in run(["validate", "services"], tmp_path).output
    (tmp_path / "services" / "beta.yaml").write_text(
        SERVICE.format(name="Beta", extra="  environments: [stagin]\n", description="b")
    )
    result = run(["validate", "services"], tmp_path)
    assert result.exit_code == 1
    assert "beta.yaml:5:" in result.output and "did you mean 'staging'?" in result.output


def test_one_service_may_be_declared_once_per_environment(tmp_path: Path) -> None:
    write_tree(tmp_path)
    for env in ("staging", "production"):
        (tmp_path / "services" / f"pinned-{env}.yaml").write_text(
            SERVICE.format(name="Pinned", extra=f"  environments: [{env}]\n", description=env)
        )
    assert run(["validate", "--env", "production"], tmp_path).exit_code == 0
    (tmp_path / "services" / "pinned-both.yaml").write_text(
        SERVICE.format(name="Pinned", extra="  environments: [staging]\n", description="x")
    )
    result = run(["validate", "--env", "production"], tmp_path)
    assert result.exit_code == 1 and "also declared" in result.output


def test_environments_command_lists_a_matrix(tmp_path: Path) -> None:
    write_tree(tmp_path)
    result = run(["environments", "--format", "json"], tmp_path)
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [e["name"] for e in listed] == ["staging", "production"]
    assert listed[0]["credentials"]["api_key"] == "STAGING_KEY"  # a name, never a value
    names = run(["environments", "--format", "json", "--names-only"], tmp_path)
    assert json.loads(names.output) == ["staging", "production"]


def test_missing_credentials_name_the_environments_variables(tmp_path: Path) -> None:
    write_tree(tmp_path)
    result = run(["plan", "--env", "production"], tmp_path)
    assert result.exit_code == 1
    assert "PROD_KEY (environment 'production': credentials.api_key)" in result.output


# --- over real HTTP: credentials by name, the cluster header, the plan's environment ----


@pytest.fixture
def server() -> Any:
    emulator = Emulator.from_seed(SEED, window_seconds=1.0)
    with EmulatorServer(emulator) as running:
        yield emulator, running


def test_the_cluster_header_is_sent_exactly_when_configured(tmp_path: Path, server: Any) -> None:
    emulator, running = server
    write_tree(tmp_path, running.base_url)
    creds = {**credentials_for(emulator, "STAGING"), **credentials_for(emulator, "PROD")}

    result = run(["plan", "--env", "staging"], tmp_path, creds)
    assert result.exit_code == 0, result.output
    assert "Environment: staging (organization acme)" in result.output
    assert 'create service "Beta"' in result.output
    assert '"hi from staging"' in result.output  # staging's ${GREETING}
    staging = emulator.mongo_cluster_names
    assert staging and all(value == "cluster-7" for _, value in staging)

    before = len(emulator.mongo_cluster_names)
    result = run(["plan", "--env", "production"], tmp_path, creds)
    assert result.exit_code == 0, result.output
    assert 'create service "Beta"' not in result.output
    assert '"hello"' in result.output  # the top-level default
    production = emulator.mongo_cluster_names[before:]
    assert production and all(value is None for _, value in production)

    before = len(emulator.mongo_cluster_names)
    flagged = run(["plan", "--env", "production", "--mongo-cluster", "c-9"], tmp_path, creds)
    assert flagged.exit_code == 0, flagged.output
    assert {v for _, v in emulator.mongo_cluster_names[before:]} == {"c-9"}

    before = len(emulator.mongo_cluster_names)
    variable = run(
        ["plan", "--env", "staging"], tmp_path, {**creds, "AMIGO_MONGO_CLUSTER_NAME": "c-env"}
    )
    assert variable.exit_code == 0, variable.output
    assert {v for _, v in emulator.mongo_cluster_names[before:]} == {"c-env"}


def test_a_plan_for_staging_is_refused_by_apply_in_production(tmp_path: Path, server: Any) -> None:
    emulator, running = server
    write_tree(tmp_path, running.base_url)
    creds = {**credentials_for(emulator, "STAGING"), **credentials_for(emulator, "PROD")}
    made = run(["plan", "--env", "staging", "--out", "plan.json"], tmp_path, creds)
    assert made.exit_code == 0, made.output
    saved = json.loads((tmp_path / "plan.json").read_text())
    assert saved["environment"] == "staging"

    refused = run(["apply", "plan.json", "--env", "production", "--auto-approve"], tmp_path, creds)
    assert refused.exit_code == 1
    assert "made for environment 'staging'" in refused.output
    assert "--env staging" in refused.output
    assert emulator.mongo_cluster_names[-1][0] != "create-service"  # nothing written

    applied = run(["apply", "plan.json", "--env", "staging", "--auto-approve"], tmp_path, creds)
    assert applied.exit_code == 0, applied.output


def test_plan_env_all_is_one_report_with_a_column_per_environment(
    tmp_path: Path, server: Any
) -> None:
    emulator, running = server
    write_tree(tmp_path, running.base_url)
    creds = {**credentials_for(emulator, "STAGING"), **credentials_for(emulator, "PROD")}
    result = run(["plan", "--env", "all", "--format", "markdown"], tmp_path, creds)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "| Service | Change | staging | production |" in text
    greeter = next(line for line in text.splitlines() if line.startswith("| Greeter |"))
    assert "hi from staging" in greeter and "hello" in greeter  # side by side
    beta = next(line for line in text.splitlines() if line.startswith("| Beta |"))
    assert beta.rstrip().endswith("| · |")  # not in production
    assert "environment staging" in text and "environment production" in text

    as_text = run(["plan", "--env", "all"], tmp_path, creds)
    assert "=== environment staging ===" in as_text.output
    assert "=== environment production ===" in as_text.output
    # Each environment read only what its own plan needs: one services list each.
    reads = [line for line in as_text.output.splitlines() if line.startswith("API reads:")]
    assert len(reads) == 2 and all("get-services 1" in line for line in reads)
    # Each environment's plan is rehearsed, as `--env NAME` would be, unless turned off.
    rehearsed = [line for line in as_text.output.splitlines() if line.startswith("rehearsal:")]
    assert len(rehearsed) == 2 and all("converged" in line for line in rehearsed)
    quiet = run(["plan", "--env", "all", "--no-rehearse"], tmp_path, creds)
    assert quiet.exit_code == 0 and "rehearsal:" not in quiet.output


def test_readme_first_command_is_unchanged_by_the_example_project_file() -> None:
    result = run(["plan", "examples/services", "--emulator", "examples/emulator-seed.yaml"], REPO)
    assert result.exit_code == 0, result.output
    assert "Environment:" not in result.output
    assert "Appointment Reminders" not in result.output and "Lab Results" not in result.output


def test_example_staging_follows_latest_and_production_pins() -> None:
    seed = "examples/emulator-seed.yaml"
    tree = "examples/services"  # examples/reconciler.yaml is found from it
    staging = run(["plan", tree, "--env", "staging", "--emulator", seed], REPO)
    # production's policies (examples/policies) deny the example's unapproved LLM: the
    # namespace nothing uses keeps them loaded and silent, to compare the plans alone.
    production = run(
        ["plan", tree, "--env", "production", "--emulator", seed, "--namespace", "nothing"],
        REPO,
    )
    assert staging.exit_code == 0, staging.output
    assert 'create service "Appointment Reminders"' in staging.output
    assert 'create service "Appointment Reminders"' not in production.output
    assert "release_version_set.agent_version_number: null" in staging.output
    assert "release_version_set.agent_version_number: 3" in production.output


# --- the plan file: environment recorded, checked, outside the digest ----------------------


def test_a_plan_without_environment_applies_anywhere_and_the_digest_ignores_the_label() -> None:
    from dataclasses import replace

    from reconciler.plan import Plan
    from reconciler.planfile import (
        check_plan_target,
        checksum,
        plan_digest,
        plan_from_dict,
        plan_to_dict,
    )

    plan = Plan("acme", "https://api.amigo.ai", "m", "l", "2026-01-01T00:00:00Z")
    for environment in (None, "staging"):
        check_plan_target(
            plan, organization="acme", base_url="https://api.amigo.ai", environment=environment
        )
    staging = replace(plan, environment="staging")
    assert plan_digest(staging) == plan_digest(plan)
    with pytest.raises(UserError, match="made for environment 'staging'"):
        check_plan_target(staging, organization="acme", base_url="https://api.amigo.ai")
    # A plan file from before environments (no `environment` key) still loads, as null.
    old = plan_to_dict(plan)
    del old["environment"], old["checksum"]
    old["checksum"] = checksum(old)
    assert plan_from_dict(old).environment is None


def test_plan_env_all_markdown_keeps_to_max_chars_on_the_example_tree() -> None:
    args = ["plan", "--env", "all", "--format", "markdown", "--emulator"]
    args += ["examples/emulator-seed.yaml", "--config", "examples/reconciler.yaml"]
    capped = run([*args, "--max-chars", "2000", "examples/services"], REPO)
    assert capped.exit_code == 1, capped.output  # the example's policy denies production
    assert "1 policy denial" in capped.output
    assert len(capped.output) <= 2000  # was 12,326: the table and sections were never capped
    assert "Not shown here" in capped.output


# --- the organization is the safety boundary: no silent override with --env -----------


def test_a_stray_organization_variable_is_refused_naming_both_sources(
    tmp_path: Path, server: Any
) -> None:
    emulator, running = server
    write_tree(tmp_path, running.base_url)
    creds = credentials_for(emulator, "STAGING")
    stray = run(
        ["plan", "--env", "staging"], tmp_path, {**creds, "AMIGO_ORGANIZATION_ID": "acme-prod"}
    )
    assert stray.exit_code == 1
    assert "AMIGO_ORGANIZATION_ID='acme-prod' (from the process environment)" in stray.output
    assert "organization 'acme' (from reconciler.yaml, environment 'staging')" in stray.output
    assert "--organization acme-prod" in stray.output
    assert "Traceback" not in stray.output
    url = run(["plan", "--env", "staging"], tmp_path, {**creds, "AMIGO_BASE_URL": "https://x.test"})
    assert url.exit_code == 1 and "AMIGO_BASE_URL='https://x.test'" in url.output
    same = run(["plan", "--env", "staging"], tmp_path, {**creds, "AMIGO_ORGANIZATION_ID": "acme"})
    assert same.exit_code == 0, same.output


def test_an_explicit_organization_flag_overrides_and_every_rendering_says_so(
    tmp_path: Path, server: Any
) -> None:
    emulator, running = server
    write_tree(tmp_path, running.base_url)
    project = tmp_path / "reconciler.yaml"
    project.write_text(
        project.read_text().replace("organization: acme\n", "organization: old\n", 1)
    )
    creds = credentials_for(emulator, "STAGING")
    note = "organization acme (from --organization, overriding reconciler.yaml: old)"
    for fmt in ("text", "markdown", "github"):
        result = run(
            ["plan", "--env", "staging", "--organization", "acme", "--format", fmt], tmp_path, creds
        )
        assert result.exit_code == 0, result.output
        assert note in result.output.replace("\\", ""), fmt
    applied = run(
        ["apply", "--env", "staging", "--organization", "acme", "--auto-approve"], tmp_path, creds
    )
    assert applied.exit_code == 0, applied.output
    assert note in applied.output


def test_with_env_the_files_variables_win_over_a_stray_process_variable(
    tmp_path: Path, server: Any
) -> None:
    emulator, running = server
    write_tree(tmp_path, running.base_url)
    creds = {**credentials_for(emulator, "STAGING"), **credentials_for(emulator, "PROD")}
    stray = {**creds, "GREETING": "stray from the shell"}
    staging = run(["plan", "--env", "staging"], tmp_path, stray)
    assert '"hi from staging"' in staging.output and "stray" not in staging.output
    production = run(["plan", "--env", "production"], tmp_path, stray)
    assert '"hello"' in production.output and "stray" not in production.output


def test_an_unknown_organization_hint_names_the_project_file_too() -> None:
    from reconciler.api.failures import error_for_status
    from reconciler.api.operations import SIGN_IN

    error = error_for_status(SIGN_IN, 404, "no such organization", service=None)
    assert "reconciler.yaml" in str(error) and "AMIGO_ORGANIZATION_ID" in str(error)


def test_the_pre_commit_hook_validates_the_project_file(tmp_path: Path) -> None:
    write_tree(tmp_path)
    hook = ["validate", "--manifests-only"]
    good = run([*hook, "reconciler.yaml", "services/greeter.yaml"], tmp_path)
    assert good.exit_code == 0, good.output
    alone = run([*hook, "reconciler.yaml"], tmp_path)
    assert alone.exit_code == 0 and "reconciler.yaml valid" in alone.output

    project = tmp_path / "reconciler.yaml"
    project.write_text(project.read_text().replace("mongo_cluster:", "mongo_clustr:"))
    bad = run([*hook, "reconciler.yaml", "services/greeter.yaml"], tmp_path)
    assert bad.exit_code == 1, bad.output
    assert "reconciler.yaml:10:" in bad.output and "mongo_cluster" in bad.output
    assert "Traceback" not in bad.output

    # Recognised by its top-level keys under another name too.
    (tmp_path / "envs.yaml").write_text(project.read_text())
    renamed = run([*hook, "envs.yaml"], tmp_path)
    assert renamed.exit_code == 1 and "envs.yaml:10:" in renamed.output


def test_every_project_error_is_reported_even_with_a_duplicated_environment(
    tmp_path: Path,
) -> None:
    (tmp_path / "reconciler.yaml").write_text(
        "version: 1\nenvironments:\n  staging:\n    organization: a\n"
        "  staging:\n    organizaton: b\n    prune: maybe\n"
        "  production:\n    organization: c\n    colour: red\n"
    )
    with pytest.raises(UserError) as caught:
        load_project(tmp_path / "reconciler.yaml")
    found = [str(d) for d in caught.value.diagnostics]
    assert any(":5:3:" in d and "given twice" in d for d in found)
    assert any(":6:5:" in d and "did you mean 'organization'" in d for d in found)
    assert any(":7:12:" in d and "prune must be true or false" in d for d in found)
    assert any(":10:5:" in d and "colour" in d for d in found)


def test_a_credential_named_after_a_runner_variable_is_warned_about(tmp_path: Path) -> None:
    write_tree(tmp_path)
    project = tmp_path / "reconciler.yaml"
    project.write_text(project.read_text().replace("api_key: PROD_KEY", "api_key: GITHUB_TOKEN"))
    loaded = load_project(project)
    (warning,) = loaded.warnings
    assert "environments.production.credentials.api_key names GITHUB_TOKEN" in str(warning)
    assert ":15:28:" in str(warning)
    listed = run(["validate", "--env", "staging", "services"], tmp_path)
    assert listed.exit_code == 0, listed.output
    assert "names GITHUB_TOKEN" in listed.output
    clean = load_project(write_tree(tmp_path / "clean") / "reconciler.yaml")
    assert clean.warnings == ()


def test_a_saved_plan_without_a_project_file_says_where_it_looked(
    tmp_path: Path, server: Any
) -> None:
    """A plan file has no manifests to look beside: the error names the directory searched
    (the current one) and --config, not "the manifests"."""
    emulator, running = server
    write_tree(tmp_path / "repo", running.base_url)
    creds = credentials_for(emulator, "STAGING")
    made = run(["plan", "--env", "staging", "--out", "plan.json"], tmp_path / "repo", creds)
    assert made.exit_code == 0, made.output
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / ".git").mkdir(parents=True)  # the search stops at a repository root
    (tmp_path / "repo" / "plan.json").rename(elsewhere / "plan.json")

    refused = run(["apply", "plan.json", "--env", "staging", "--auto-approve"], elsewhere, creds)
    assert refused.exit_code == 1, refused.output
    assert "at or above the manifests" not in refused.output
    assert f"at or above the current directory ({elsewhere.resolve()})" in refused.output
    assert "--config FILE" in refused.output


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("https://deploy:hunter2pw@api.example.test", "must not carry credentials"),
        ("https://api.example.test/?token=hunter2pw", "must not have a query"),
        ("http://api.example.test", "plain http to a non-loopback host"),
    ],
)
def test_a_base_url_with_a_secret_is_refused_at_its_line_without_echoing_it(
    tmp_path: Path, url: str, what: str
) -> None:
    """validate --env, environments and plan refuse it where it is written (file:line:col,
    naming the key, not AMIGO_BASE_URL / --base-url), and never print the password or query."""
    write_tree(tmp_path, url)
    for args in (
        ["validate", "--env", "staging"],
        ["environments", "--format", "json"],
        ["plan", "--env", "staging"],
    ):
        result = run(args, tmp_path)
        assert result.exit_code == 1, (args, result.output)
        assert "hunter2pw" not in result.output, args
        assert "reconciler.yaml:8:15: error: environments.staging.base_url" in result.output, (
            args,
            result.output,
        )
        assert what in result.output
        assert "AMIGO_BASE_URL" not in result.output


def test_an_apply_report_given_for_a_plan_is_named_for_what_it_is(
    tmp_path: Path, server: Any
) -> None:
    """apply, verify --plan and ci plan-info said "modified (checksum mismatch)" for an
    apply report; they name it and the command that reads it. verify --plan with the
    wrong --env names verify, not apply."""
    emulator, running = server
    write_tree(tmp_path, running.base_url)
    (tmp_path / "services" / "sets.yaml").write_text(
        SERVICE.format(name="Sets", extra="", description="sets")
        + "  version_sets:\n    release:\n      agent_version_number: 4\n"
        + "      service_hierarchical_state_machine_version_number: 2\n"
    )
    creds = credentials_for(emulator, "STAGING")
    made = run(["plan", "--env", "staging", "--out", "st.json"], tmp_path, creds)
    assert made.exit_code == 0, made.output
    report = run(
        ["apply", "st.json", "--env", "staging", "--auto-approve", "--format", "json"],
        tmp_path,
        creds,
    )
    assert report.exit_code == 0, report.output
    (tmp_path / "rep.json").write_text(report.stdout)

    for args in (
        ["apply", "rep.json", "--env", "staging", "--auto-approve"],
        ["verify", "--plan", "rep.json", "--env", "staging"],
        ["ci", "plan-info", "rep.json"],
    ):
        refused = run(args, tmp_path, creds)
        assert refused.exit_code == 1, (args, refused.output)
        assert "checksum" not in refused.output, args
        assert "rep.json is an apply report, not a plan" in refused.output, args
        assert "`reconciler show rep.json`" in refused.output

    sets = tmp_path / "services" / "sets.yaml"
    sets.write_text(sets.read_text().replace("agent_version_number: 4", "agent_version_number: 3"))
    changed = run(["plan", "--env", "staging", "--out", "st.json"], tmp_path, creds)
    assert changed.exit_code == 0, changed.output
    prod = credentials_for(emulator, "PROD")
    other = run(["verify", "--plan", "st.json", "--env", "production"], tmp_path, prod)
    assert other.exit_code == 1, other.output
    assert "apply was given" not in other.output
    assert "but verify --plan was given --env production" in other.output
    assert "with --env staging" in other.output


def test_other_json_without_a_checksum_is_not_called_a_modified_plan(tmp_path: Path) -> None:
    (tmp_path / "seed.json").write_text('{"format_version": 1, "services": []}')
    result = run(["ci", "plan-info", "seed.json"], tmp_path)
    assert result.exit_code == 1
    assert "is not a saved plan (it has no checksum)" in result.output
    assert "modified" not in result.output


def test_a_plan_env_all_or_verify_report_given_for_a_plan_is_named(tmp_path: Path) -> None:
    (tmp_path / "all.json").write_text('{"environments": {}}')
    (tmp_path / "ver.json").write_text('{"passed": true, "targets": [], "test_sets": []}')
    for name, what in (
        ("all.json", "a `plan --env all` report (a plan per environment)"),
        ("ver.json", "a verify report"),
    ):
        result = run(["ci", "plan-info", name], tmp_path)
        assert result.exit_code == 1
        assert f"{name} is {what}, not a plan: `reconciler show {name}`" in result.output
