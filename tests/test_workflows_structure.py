"""The GitHub workflows and caller templates: they parse, pin every action by commit
SHA, grant least privilege, keep expressions out of shell scripts, and the reusable
workflows do what docs/ci.md says (checked on their structure, and by running their
inline Python steps)."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
CALLERS = sorted((REPO / "examples" / "github").glob("*.yml"))
REUSABLE = {
    name: REPO / ".github" / "workflows" / f"reconciler-{name}.yml"
    for name in ("plan", "apply", "drift")
}
SHA = re.compile(r"^[0-9a-f]{40}$")


@functools.cache
def load(path: Path) -> dict[str, Any]:
    """Parsed once per file (callers only read it)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    assert isinstance(document, dict), f"{path.name} is not a YAML mapping"
    if True in document:  # YAML 1.1 reads the key `on` as a boolean
        document["on"] = document.pop(True)
    return document


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def step(workflow: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [s for s in steps(workflow) if s.get("name") == name]
    return found


def uses_lines(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.match(r"\s*(- )?uses:", line)
    ]


ALL = [*WORKFLOWS, *CALLERS]


def test_the_expected_files_exist() -> None:
    names = {path.name for path in WORKFLOWS}
    assert {
        "ci.yml",
        "reconciler-plan.yml",
        "reconciler-apply.yml",
        "reconciler-drift.yml",
    } <= names
    assert {path.name for path in CALLERS} >= {
        "plan-on-pull-request.yml",
        "apply-on-merge.yml",
        "drift-detection.yml",
        "several-organizations.yml",
    }


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_workflow_parses_with_triggers_jobs_and_permissions(path: Path) -> None:
    workflow = load(path)
    assert workflow.get("on"), f"{path.name} has no trigger"
    assert workflow.get("jobs"), f"{path.name} has no jobs"
    assert "permissions" in workflow, f"{path.name} must set top-level permissions"
    top = workflow["permissions"]
    assert top in ({}, {"contents": "read"}), f"{path.name}: top-level permissions too broad: {top}"
    for job_id, job in workflow["jobs"].items():
        granted = job.get("permissions", top)
        assert granted != "write-all" and granted != "read-all"
        extra = {k: v for k, v in (granted or {}).items() if v == "write"}
        assert set(extra) <= {"pull-requests"}, f"{path.name}:{job_id} writes {extra}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_remote_action_and_workflow_is_pinned_by_commit_sha(path: Path) -> None:
    lines = uses_lines(path)
    assert lines, f"{path.name} uses nothing"
    for line in lines:
        match = re.match(r"(- )?uses:\s*(\S+)\s*(#.*)?$", line)
        assert match, line
        target, comment = match.group(2), match.group(3)
        if target.startswith("./"):
            continue  # this repository's own reusable workflow
        name, _, ref = target.partition("@")
        assert re.match(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?$", name), line
        assert SHA.match(ref), f"{path.name}: {target} is not pinned to a 40-hex commit SHA"
        assert comment, f"{path.name}: {target} needs a comment naming the version"


def test_pinned_actions_agree_across_workflows() -> None:
    """One version of each action everywhere, so an update cannot be half done."""
    seen: dict[str, set[str]] = {}
    for path in WORKFLOWS:
        for line in uses_lines(path):
            target = line.split("uses:", 1)[1].split("#")[0].strip()
            if "@" in target and not target.startswith("./"):
                name, ref = target.split("@")
                seen.setdefault(name, set()).add(ref)
    assert {"actions/checkout", "actions/setup-python"} <= set(seen)
    assert all(len(refs) == 1 for refs in seen.values()), seen


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_checkout_never_persists_credentials(path: Path) -> None:
    for s in steps(load(path)):
        if str(s.get("uses", "")).startswith("actions/checkout@"):
            assert s.get("with", {}).get("persist-credentials") is False, path.name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_expanded_inside_a_script(path: Path) -> None:
    """Inputs and context reach scripts through env, so nothing can inject shell or Python."""
    for s in steps(load(path)):
        script = s.get("run", "")
        assert "${{" not in script, f"{path.name}: step {s.get('name')!r} expands ${{{{ }}}} in run"
        # A secret is only ever handed to the reconciler, never echoed.
        assert not re.search(r"\$\{?AMIGO_API_KEY\b", script), s.get("name")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_only_reach_steps_that_call_the_api(path: Path) -> None:
    for s in steps(load(path)):
        env = s.get("env", {})
        secret_env = {k for k, v in env.items() if "secrets." in str(v)}
        if secret_env - {"HAS_API_KEY"}:
            assert "reconciler" in s.get("run", ""), s.get("name")


def test_ci_runs_the_project_checks_on_every_supported_python() -> None:
    ci = load(REPO / ".github" / "workflows" / "ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    assert ci["permissions"] == {"contents": "read"}
    checks = ci["jobs"]["checks"]
    assert checks["strategy"]["matrix"]["python-version"] == ["3.11", "3.12", "3.13"]
    assert any(s.get("run") == "bash .ci/run" for s in checks["steps"])


def reusable_interface(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    call = load(REUSABLE[name])["on"]["workflow_call"]
    return call["inputs"], call.get("secrets", {})


@pytest.mark.parametrize("name", sorted(REUSABLE))
def test_reusable_workflows_share_one_interface(name: str) -> None:
    inputs, secrets = reusable_interface(name)
    assert inputs["reconciler-requirement"]["required"] is True
    assert {"path", "environment", "manifest-vars", "prune", "emulator-seed"} <= set(inputs)
    assert set(secrets) == {"AMIGO_API_KEY", "AMIGO_API_KEY_ID", "AMIGO_USER_ID"}
    workflow = load(REUSABLE[name])
    assert workflow["permissions"] == {}
    (job,) = workflow["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}"
    install = step(workflow, "Install the reconciler")
    assert install["env"]["RECONCILER_REQUIREMENT"] == "${{ inputs.reconciler-requirement }}"


def test_plan_workflow_validates_comments_summarizes_and_uploads() -> None:
    workflow = load(REUSABLE["plan"])
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "reconciler validate --format github" in step(workflow, "Validate manifests")["run"]
    plan = step(workflow, "Plan")["run"]
    assert "--format markdown --out plan.json --detailed-exitcode" in plan
    sticky = step(workflow, "Post or update the sticky plan comment")
    assert sticky["uses"].startswith("marocchino/sticky-pull-request-comment@")
    assert "head.repo.full_name == github.repository" in sticky["if"]  # forks: no comment
    upload = step(workflow, "Upload the full plan")
    assert "plan.json" in upload["with"]["path"]
    skipped = step(workflow, "Note the skipped plan in the summary")["run"]
    assert "GITHUB_STEP_SUMMARY" in skipped and "fork" in skipped


def test_apply_workflow_never_overlaps_and_checks_convergence() -> None:
    workflow = load(REUSABLE["apply"])
    (job,) = workflow["jobs"].values()
    assert job["concurrency"]["cancel-in-progress"] is False
    assert "inputs.environment" in job["concurrency"]["group"]
    assert reusable_interface("apply")[0]["environment"]["required"] is True
    assert "--auto-approve" in step(workflow, "Apply")["run"]
    assert "--detailed-exitcode" in step(workflow, "Check convergence")["run"]
    assert "exit 1" in step(workflow, "Fail unless applied and converged")["run"]


def test_drift_workflow_fails_on_exit_code_two() -> None:
    workflow = load(REUSABLE["drift"])
    assert "--detailed-exitcode" in step(workflow, "Plan with --detailed-exitcode")["run"]
    fail = step(workflow, "Fail on drift")["run"]
    assert re.search(r"2\)[^;]*;\s*exit 1", fail)


@pytest.mark.parametrize("path", CALLERS, ids=lambda p: p.name)
def test_caller_templates_pass_what_the_reusable_workflows_declare(path: Path) -> None:
    for job_id, job in load(path)["jobs"].items():
        match = re.search(r"/\.github/workflows/reconciler-(\w+)\.yml@", job["uses"])
        assert match, f"{path.name}:{job_id} calls no reconciler workflow"
        inputs, secrets = reusable_interface(match.group(1))
        given = job.get("with", {})
        assert set(given) <= set(inputs), f"{path.name}:{job_id}: unknown inputs"
        required = {k for k, v in inputs.items() if v.get("required")}
        assert required <= set(given), f"{path.name}:{job_id}: missing {required - set(given)}"
        assert set(job.get("secrets", {})) <= set(secrets)
        assert job.get("secrets") != "inherit", "pass only the secrets the workflow needs"
        placeholder = "0" * 40
        assert job["uses"].endswith(placeholder) or SHA.search(job["uses"])
        assert given["reconciler-requirement"].endswith("@" + placeholder)


def test_several_organizations_template_is_a_matrix_of_environments() -> None:
    workflow = load(REPO / "examples" / "github" / "several-organizations.yml")
    for job in workflow["jobs"].values():
        assert job["strategy"]["matrix"]["organization"] == ["staging", "production"]
        assert "matrix.organization" in job["with"]["environment"]
    assert workflow["jobs"]["apply"]["strategy"]["max-parallel"] == 1


def test_pre_commit_and_workflow_lint_are_wired_into_ci_run() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "actionlint" in script and "zizmor --offline" in script
    assert "examples/github/*.yml" in script and ".github/workflows/*.yml" in script


# --- the inline Python steps, run for real ---------------------------------------------


@dataclass
class StepResult:
    returncode: int
    stdout: str
    stderr: str


def run_python_step(workflow: Path, name: str, env: dict[str, str], cwd: Path) -> StepResult:
    """Run a `shell: python` step's script in-process, as the runner would (env and cwd)."""
    script = step(load(workflow), name)
    assert script.get("shell") == "python"
    code = compile(script["run"], f"{workflow.name}:{name}", "exec")
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    out, err = io.StringIO(), io.StringIO()
    returncode = 0
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                exec(code, {"__name__": "__main__"})
            except SystemExit as exc:  # raise SystemExit("msg") prints msg, exits 1
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                    returncode = 1
                else:
                    returncode = exc.code or 0
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return StepResult(returncode, out.getvalue(), err.getvalue())


def comment_env(tmp_path: Path, exit_code: str) -> dict[str, str]:
    return {
        "EXIT_CODE": exit_code,
        "ENVIRONMENT_NAME": "production",
        "RUN_URL": "https://github.example/acme/manifests/actions/runs/1",
        "HEAD_SHA": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


def test_plan_comment_stays_under_githubs_limit_and_points_to_the_artifact(
    tmp_path: Path,
) -> None:
    row = "| update | `Service {}` | description changed |\n"
    (tmp_path / "plan.md").write_text("".join(row.format(i) for i in range(3000)), "utf-8")
    result = run_python_step(
        REUSABLE["plan"], "Write the plan comment", comment_env(tmp_path, "2"), tmp_path
    )
    assert result.returncode == 0, result.stderr
    comment = (tmp_path / "comment.md").read_text(encoding="utf-8")
    assert len(comment) <= 65_536
    assert "too long for a comment" in comment and "reconciler-plan-production" in comment
    kept = comment.split("\n\n> **The plan is too long", 1)[0]
    assert kept.endswith("description changed |"), "the cut must fall between table rows"
    assert comment.startswith("**amigo-reconciler · `production`** · Merging this pull request")
    assert (tmp_path / "summary.md").read_text(encoding="utf-8") == comment


def test_plan_comment_carries_a_short_plan_whole_and_reports_failures(tmp_path: Path) -> None:
    (tmp_path / "plan.md").write_text("| create | `Meet & Greet` |\n", encoding="utf-8")
    ok = run_python_step(
        REUSABLE["plan"], "Write the plan comment", comment_env(tmp_path, "2"), tmp_path
    )
    assert ok.returncode == 0, ok.stderr
    comment = (tmp_path / "comment.md").read_text(encoding="utf-8")
    assert "| create | `Meet & Greet` |" in comment and "cut" not in comment

    (tmp_path / "plan.md").write_text("", encoding="utf-8")
    (tmp_path / "plan.err").write_text("error: get-services failed: HTTP 401\n", "utf-8")
    failed = run_python_step(
        REUSABLE["plan"], "Write the plan comment", comment_env(tmp_path, "1"), tmp_path
    )
    assert failed.returncode == 0, failed.stderr
    comment = (tmp_path / "comment.md").read_text(encoding="utf-8")
    assert "The plan failed" in comment and "HTTP 401" in comment


@pytest.mark.parametrize("name", sorted(REUSABLE))
def test_manifest_vars_are_exported_one_line_each(name: str, tmp_path: Path) -> None:
    github_env = tmp_path / "github_env"
    env = {
        "VARIABLE_NAMES": "CONCIERGE_AGENT\nREGION  MISSING",
        "CONFIGURATION_VARIABLES": json.dumps(
            {"CONCIERGE_AGENT": "Concierge EU", "REGION": "eu", "OTHER": "x"}
        ),
        "GITHUB_ENV": str(github_env),
        "ENVIRONMENT_NAME": "staging",
    }
    result = run_python_step(REUSABLE[name], "Export manifest variables", env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert github_env.read_text(encoding="utf-8") == "CONCIERGE_AGENT=Concierge EU\nREGION=eu\n"
    assert "::warning::configuration variable MISSING" in result.stdout

    github_env.unlink()
    env["CONFIGURATION_VARIABLES"] = json.dumps({"CONCIERGE_AGENT": "a\nEVIL=1"})
    env["VARIABLE_NAMES"] = "CONCIERGE_AGENT"
    refused = run_python_step(REUSABLE[name], "Export manifest variables", env, tmp_path)
    assert refused.returncode != 0
    assert "line break" in refused.stderr
    assert "EVIL" not in (github_env.read_text("utf-8") if github_env.exists() else "")


@pytest.mark.parametrize(
    ("exit_code", "expected"),
    [("0", "No drift"), ("2", "Drift found"), ("1", "drift check failed")],
)
def test_drift_summary_says_what_happened(exit_code: str, expected: str, tmp_path: Path) -> None:
    (tmp_path / "plan.md").write_text("| update | `Triage` | agent changed |\n", "utf-8")
    (tmp_path / "plan.err").write_text("error: HTTP 503\n", encoding="utf-8")
    env = {
        "EXIT_CODE": exit_code,
        "ENVIRONMENT_NAME": "production",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    result = run_python_step(REUSABLE["drift"], "Summarize", env, tmp_path)
    assert result.returncode == 0, result.stderr
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert expected in summary
    assert ("agent changed" in summary) == (exit_code == "2")


@pytest.mark.parametrize(
    ("apply_code", "converge_code", "expected"),
    [
        ("0", "0", "live state matches"),
        ("0", "2", "changes remain"),
        ("1", "0", "The apply failed"),
    ],
)
def test_apply_report_says_whether_it_converged(
    apply_code: str, converge_code: str, expected: str, tmp_path: Path
) -> None:
    (tmp_path / "apply.log").write_text("done  update-service  Meet & Greet\n", "utf-8")
    (tmp_path / "remaining.md").write_text("| update | `Meet & Greet` |\n", "utf-8")
    env = {
        "APPLY_EXIT_CODE": apply_code,
        "CONVERGE_EXIT_CODE": converge_code,
        "ENVIRONMENT_NAME": "production",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    result = run_python_step(REUSABLE["apply"], "Write the apply report", env, tmp_path)
    assert result.returncode == 0, result.stderr
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert expected in summary
    assert "done  update-service  Meet & Greet" in summary
