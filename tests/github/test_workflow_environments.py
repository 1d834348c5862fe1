"""The reusable workflows run against the shipped reconciler.yaml as the several-organizations
template calls them: the variables a job sets (its secrets and vars, with `reconciler-env`)
must be the ones the example's environments read, and no leftover repository variable may
send an environment's plan to another organization."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from support.paths import EXAMPLES, REPO

from reconciler.project import Selection, load_project

REUSABLE = [
    REPO / ".github" / "workflows" / f"reconciler-{n}.yml" for n in ("plan", "apply", "drift")
]
EXPR = re.compile(r"^\$\{\{\s*(.*?)\s*\}\}$")


def evaluate(expression: str, context: dict[str, dict[str, str]]) -> str:
    """The few expression forms the workflows use for the AMIGO_* variables, evaluated as
    GitHub does (`a == '' && b || ''` included); anything else fails the test."""
    ref = r"(secrets|vars|inputs)\.([\w-]+)"
    if m := re.fullmatch(ref, expression):
        return context[m[1]].get(m[2], "")
    if m := re.fullmatch(ref + r" == '' && " + ref + r" \|\| ''", expression):
        return context[m[3]].get(m[4], "") if context[m[1]].get(m[2], "") == "" else ""
    if m := re.fullmatch(ref + r" \|\| '([^']*)'", expression):
        return context[m[1]].get(m[2], "") or m[3]
    raise AssertionError(f"unexpected expression for an AMIGO_* variable: {expression}")


def job_environments(context: dict[str, dict[str, str]]) -> list[tuple[str, dict[str, str]]]:
    """Per job step that runs with AMIGO_API_KEY: the AMIGO_* variables it sees."""
    out = []
    for path in REUSABLE:
        workflow: dict[str, Any] = yaml.safe_load(path.read_text())
        for job_name, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                merged = {**job.get("env", {}), **step.get("env", {})}
                if "AMIGO_API_KEY" not in merged:
                    continue
                seen = {}
                for key, raw in merged.items():
                    if not key.startswith("AMIGO_"):
                        continue
                    m = EXPR.match(str(raw))
                    seen[key] = evaluate(m[1], context) if m else str(raw)
                out.append((f"{path.name}:{job_name}:{step.get('name')}", seen))
    assert out, "no step runs with AMIGO_API_KEY"
    return out


SECRETS = {"AMIGO_API_KEY": "k-test", "AMIGO_API_KEY_ID": "kid", "AMIGO_USER_ID": "u1"}
NO_FLAGS: dict[str, str | None] = dict.fromkeys(
    ["AMIGO_ORGANIZATION_ID", "AMIGO_BASE_URL", "AMIGO_API_KEY_ID", "AMIGO_USER_ID"]
)


@pytest.mark.parametrize("leftover", [{}, {"AMIGO_ORGANIZATION_ID": "someone-else"}])
def test_every_example_environment_runs_on_what_the_workflows_export(
    leftover: dict[str, str],
) -> None:
    project = load_project(EXAMPLES / "reconciler.yaml")
    for env in project.environments:
        context = {
            "secrets": SECRETS,  # each GitHub environment's secrets, standard names
            "vars": {**leftover, "AMIGO_BASE_URL": ""},
            "inputs": {"reconciler-env": env.name},
        }
        for where, process in job_environments(context):
            assert process["AMIGO_RECONCILER_ENV"] == env.name, where
            settings = Selection(project, env).settings(NO_FLAGS, process)
            assert settings["AMIGO_API_KEY"] == "k-test", where
            assert settings["AMIGO_ORGANIZATION_ID"] == env.organization, where


def test_without_reconciler_env_the_workflows_still_export_the_organization_variable() -> None:
    context = {
        "secrets": SECRETS,
        "vars": {"AMIGO_ORGANIZATION_ID": "acme", "AMIGO_BASE_URL": "https://x.test"},
        "inputs": {"reconciler-env": ""},
    }
    for where, process in job_environments(context):
        assert process["AMIGO_ORGANIZATION_ID"] == "acme", where
        assert process["AMIGO_BASE_URL"] == "https://x.test", where
