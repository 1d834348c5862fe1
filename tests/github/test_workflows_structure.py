"""The GitHub workflows and caller templates: they parse, pin every action by commit
SHA, grant least privilege, keep expressions out of shell scripts, and the reusable
workflows do what docs/ci.md says (checked on their structure, and by running their
inline Python steps)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.paths import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
CALLERS = sorted((REPO / "examples" / "github").glob("*.yml"))
REUSABLE = {
    name: REPO / ".github" / "workflows" / f"reconciler-{name}.yml"
    for name in ("plan", "apply", "drift", "verify")
}
SHA = re.compile(r"^[0-9a-f]{40}$")
CONTENTS_WRITERS = {("reconciler-verify.yml", "promote"), ("apply-on-merge.yml", "verify")}


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
    """The step of that name (one, or the same step repeated in each job)."""
    found = [s for s in steps(workflow) if s.get("name") == name]
    assert found and all(s == found[0] for s in found), f"{len(found)} different steps {name!r}"
    return found[0]


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
        "reconciler-verify.yml",
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
        # Pushing the promotion branch is the one write to code (issue 18): that job, and
        # the caller job that grants it, alone. issues: only the drift check, which keeps
        # one issue per environment.
        may_push = (path.name, job_id) in CONTENTS_WRITERS
        allowed = {"pull-requests", "contents"} if may_push else {"pull-requests"}
        if "drift" in str(job.get("uses", path.name)) or "drift" in job_id:
            allowed = allowed | {"issues"}
        assert set(extra) <= allowed, f"{path.name}:{job_id} writes {extra}"


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
        if secret_env - {"HAS_API_KEY", "HAS_CREDENTIALS"}:
            runs_reconciler = "reconciler" in s.get("run", "")
            assert runs_reconciler or s.get("uses", "").startswith("./.amigo-reconciler"), s["name"]


def test_ci_runs_the_project_checks_on_every_supported_python() -> None:
    ci = load(REPO / ".github" / "workflows" / "ci.yml")
    assert set(ci["on"]) == {"push", "pull_request", "merge_group"}
    assert ci["permissions"] == {"contents": "read"}
    checks = ci["jobs"]["checks"]
    assert checks["strategy"]["matrix"]["python-version"] == ["3.11", "3.12", "3.13"]
    assert any(s.get("run") == "bash .ci/run" for s in checks["steps"])


def reusable_interface(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    call = load(REUSABLE[name])["on"]["workflow_call"]
    return call["inputs"], call.get("secrets", {})


ACTION = "./.amigo-reconciler"


def jobs(name: str) -> dict[str, Any]:
    return load(REUSABLE[name])["jobs"]


def step_index(job: dict[str, Any], predicate: Any) -> int:
    (found,) = [i for i, s in enumerate(job["steps"]) if predicate(s)]
    return found


@pytest.mark.parametrize("name", sorted(REUSABLE))
def test_reusable_workflows_share_one_interface(name: str) -> None:
    inputs, secrets = reusable_interface(name)
    assert "reconciler-requirement" not in inputs  # one pin: the caller's `uses:` line
    assert inputs["runs-on"]["default"] == "ubuntu-latest"
    shared = {"path", "environment", "manifest-vars", "emulator-seed"}
    assert shared | ({"prune"} if name != "verify" else set()) <= set(inputs)
    assert set(secrets) == {"AMIGO_API_KEY", "AMIGO_API_KEY_ID", "AMIGO_USER_ID"}
    assert load(REUSABLE[name])["permissions"] == {}
    for job in jobs(name).values():
        assert job["runs-on"] == "${{ inputs.runs-on }}"
        # The reconciler comes from this repository at the commit the caller pinned,
        # installed by the composite action (hash-locked), never from a second pin.
        checkout = job["steps"][
            step_index(job, lambda s: s.get("name", "").startswith("Check out the reconciler"))
        ]
        # The job context names this workflow's own commit; empty, the checkout fails
        # (an invalid name) instead of fetching the caller's repository.
        assert checkout["with"]["repository"] == (
            "${{ job.workflow_repository || 'job.workflow_repository-is-not-set/x' }}"
        )
        assert checkout["with"]["ref"] == "${{ job.workflow_sha || 'job.workflow_sha-is-not-set' }}"
        assert checkout["with"]["path"] == ".amigo-reconciler"
        assert any(s.get("uses") == ACTION for s in job["steps"])
        assert "actions" not in job["permissions"]  # nothing reads the Actions API any more
        assert not any(s.get("shell") == "python" for s in job["steps"])  # logic is in `ci`


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_reconciler_step_accepts_only_documented_exit_codes(path: Path) -> None:
    for s in steps(load(path)):
        if s.get("uses") == ACTION and s.get("with", {}).get("command"):
            codes = set(str(s["with"]["ok-exit-codes"]).split())
            command = s["with"]["command"]
            assert codes == ({"0", "2"} if command == "plan" else {"0"}), s["name"]
        script = s.get("run", "")
        assert "|| true" not in script.replace("2>/dev/null || true", ""), s.get("name")


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_a_cancelled_run_never_reports_a_failure(path: Path) -> None:
    """`always()` would also run on cancel and post "the plan failed"; `!cancelled()` does not."""
    text = path.read_text(encoding="utf-8")
    assert "always()" not in text, path.name


def test_plan_workflow_decides_then_validates_plans_comments_and_uploads() -> None:
    workflow = load(REUSABLE["plan"])
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    decide = step(workflow, "Plan or skip")
    assert "reconciler ci decide" in decide["run"]  # forks, Dependabot, no manifest changes
    assert "secrets.AMIGO_API_KEY" in decide["env"]["HAS_CREDENTIALS"]
    plan = step(workflow, "Plan")
    assert plan["if"] == "steps.decide.outputs.decision == 'plan'"
    assert plan["uses"] == ACTION and plan["with"]["plan-file"] == "plan.json"
    assert "--format markdown --detailed-exitcode" in plan["with"]["args"]
    order = [s["name"] for s in job["steps"]]
    assert order.index("Plan or skip") < order.index("Plan")
    # A pull request without credentials (fork, Dependabot) is still validated.
    validate = step(workflow, "Validate manifests")
    assert validate["if"] == "steps.decide.outputs.label != 'no manifest changes'"
    comment = step(workflow, "Write the plan comment")
    assert "!cancelled()" in comment["if"] and "reconciler ci comment" in comment["run"]
    sticky = step(workflow, "Post or update the sticky plan comment")
    assert sticky["uses"].startswith("marocchino/sticky-pull-request-comment@")
    assert "!cancelled()" in sticky["if"]
    assert "head.repo.full_name == github.repository" in sticky["if"]  # forks: no comment
    upload = step(workflow, "Upload the full plan")
    assert "plan.json" in upload["with"]["path"] and "!cancelled()" in upload["if"]


def test_apply_workflow_has_two_stages_and_applies_the_reviewed_plan_file() -> None:
    workflow = load(REUSABLE["apply"])
    stage1, stage2 = workflow["jobs"]["plan"], workflow["jobs"]["apply"]
    # The environment (its reviewers) only on stage 2; stage 1 at most a reviewer-less one.
    assert stage2["environment"] == "${{ inputs.environment }}"
    assert stage1.get("environment", "") in ("", "${{ inputs.plan-environment }}")
    assert stage2["needs"] == "plan"
    assert stage2["if"] == "needs.plan.outputs.has-changes == 'true'"
    # Stage 1: tip guard, then plan --out, summary with the comparison, upload.
    names = [s["name"] for s in stage1["steps"]]
    tip = names.index("Refuse unless this commit is the tip of the default branch")
    assert step(workflow, "Refuse unless this commit is the tip of the default branch")["run"] == (
        "reconciler ci check-tip"
    )
    plan = step(workflow, "Plan the merged commit")
    assert tip < names.index("Plan the merged commit")
    assert plan["with"]["command"] == "plan" and plan["with"]["plan-file"] == "plan.json"
    assert "--auto-approve" not in str(plan)
    compare = step(workflow, "Compare with the plan shown on the pull request")["run"]
    assert compare.split() == [
        "reconciler", "ci", "compare", "plan.json", "--markdown", "plan.md",
        "--environment", '"$PR_ENVIRONMENT"', "--apply-environment", '"$ENVIRONMENT_NAME"',
    ]  # fmt: skip
    upload = step(workflow, "Upload the plan for stage 2")
    artifact = upload["with"]["name"]
    assert "plan.json" in upload["with"]["path"]
    # Stage 2: the same artifact, the digest the approver saw, then `apply PLANFILE`.
    names = [s["name"] for s in stage2["steps"]]
    download = step(workflow, "Download stage 1's plan")
    assert download["uses"].startswith("actions/download-artifact@")
    assert artifact == "${{ env.ARTIFACT_NAME }}"
    assert download["with"]["name"] == "${{ needs.plan.outputs.artifact-name }}"
    assert "--expect-digest" in step(workflow, "Check that it is the plan the approver saw")["run"]
    apply = step(workflow, "Apply the reviewed plan")
    assert apply["with"]["command"] == "apply"
    assert apply["with"]["args"].split()[:2] == ["plan.json", "--auto-approve"]
    assert inputs_not_manifests(apply["with"]["args"])
    guard2 = names.index("Refuse unless this commit is still the tip of the default branch")
    assert guard2 < names.index("Download stage 1's plan") < names.index("Apply the reviewed plan")
    report = step(workflow, "Write the apply report")
    assert "!cancelled()" in report["if"] and "reconciler ci apply-report" in report["run"]
    # Two quick merges never interleave: one run per environment, never cancelled.
    assert workflow["concurrency"]["group"] == "amigo-reconciler-apply-${{ inputs.environment }}"
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert reusable_interface("apply")[0]["environment"]["required"] is True


def inputs_not_manifests(args: str) -> bool:
    """Stage 2 never re-plans from manifests: no path input in its apply arguments."""
    return "inputs.path" not in args and "--prune" not in args


def test_drift_workflow_fails_on_exit_code_two() -> None:
    workflow = load(REUSABLE["drift"])
    assert "--detailed-exitcode" in step(workflow, "Plan with --detailed-exitcode")["run"]
    fail = step(workflow, "Fail on drift")["run"]
    assert re.search(r"2\)[^;]*;\s*exit 1", fail)


def caller_triggers(path: Path) -> dict[str, Any]:
    on = load(path)["on"]
    return {k: (v or {}) for k, v in on.items()}


@pytest.mark.parametrize("path", CALLERS, ids=lambda p: p.name)
def test_callers_have_no_paths_filter_and_plan_in_the_merge_queue(path: Path) -> None:
    triggers = caller_triggers(path)
    for name, trigger in triggers.items():
        assert "paths" not in trigger and "paths-ignore" not in trigger, f"{path.name}: {name}"
    if "pull_request" in triggers:
        assert "merge_group" in triggers, path.name
    assert "pull_request_target" not in triggers  # would run fork code with secrets


@pytest.mark.parametrize("path", CALLERS, ids=lambda p: p.name)
def test_caller_templates_pass_what_the_reusable_workflows_declare(path: Path) -> None:
    for job_id, job in load(path)["jobs"].items():
        if "steps" in job:  # a job of its own (several-organizations lists the environments)
            continue
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
        # One pin: nothing in `with:` names a reconciler version.
        assert not any("amigo-reconciler" in str(v) for v in given.values())


def test_several_organizations_template_is_a_matrix_of_environments() -> None:
    """The matrix comes from reconciler.yaml; staging is applied (and converges) first."""
    workflow = load(REPO / "examples" / "github" / "several-organizations.yml")
    jobs_ = workflow["jobs"]
    listing = "\n".join(s.get("run", "") for s in jobs_["environments"]["steps"])
    assert "reconciler environments --format json --names-only" in listing
    assert "--except staging" in listing
    for job_id in ("plan", "drift"):
        matrix = jobs_[job_id]["strategy"]["matrix"]["environment"]
        assert matrix == "${{ fromJSON(needs.environments.outputs.all) }}"
        assert jobs_[job_id]["with"]["reconciler-env"] == "${{ matrix.environment }}"
    assert jobs_["apply-staging"]["with"]["reconciler-env"] == "staging"
    apply = jobs_["apply"]
    assert "apply-staging" in apply["needs"]
    assert apply["strategy"]["matrix"]["environment"] == (
        "${{ fromJSON(needs.environments.outputs.after-staging) }}"
    )
    assert apply["strategy"]["max-parallel"] == 1
    for job in jobs_.values():  # no organization, prune or ${VAR} repeated in YAML
        assert "manifest-vars" not in job.get("with", {})
        assert "prune" not in job.get("with", {})


def test_pre_commit_and_workflow_lint_are_wired_into_ci_run() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "actionlint" in script and "zizmor --offline" in script
    assert "examples/github/*.yml" in script and ".github/workflows/*.yml" in script


@pytest.mark.parametrize("name", sorted(REUSABLE))
def test_manifest_vars_and_the_drift_report_are_ci_subcommands(name: str) -> None:
    export = step(load(REUSABLE[name]), "Export manifest variables")
    assert export["run"] == 'reconciler ci export-vars --environment "$ENVIRONMENT_NAME"'
    assert export["env"] == {
        "VARIABLE_NAMES": "${{ inputs.manifest-vars }}",
        "CONFIGURATION_VARIABLES": "${{ toJSON(vars) }}",
    }
    if name == "drift":
        summary = step(load(REUSABLE[name]), "Summarize")
        assert summary["run"].startswith("reconciler ci drift-report ")


@pytest.mark.parametrize("doc", [REPO / "README.md", REPO / "docs" / "ci.md"], ids=lambda p: p.name)
def test_the_documented_copy_and_sed_name_the_templates_that_exist(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    groups = re.findall(r"\{([a-z,-]+)\}\.yml", text)
    assert groups, f"{doc.name} shows no cp/sed of the templates"
    for group in groups:
        for name in group.split(","):
            assert (REPO / "examples" / "github" / f"{name}.yml").is_file(), name
    # The placeholders the sed replaces are the ones the templates hold.
    for path in CALLERS:
        template = path.read_text(encoding="utf-8")
        assert "your-org/amigo-reconciler/" in template and "0" * 40 in template
        assert "# v0.1.0" in template


def test_ci_doc_draws_the_flow_and_says_what_to_do_when_a_stage_refuses() -> None:
    text = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")
    diagram = text.split("```mermaid", 1)[1].split("```", 1)[0]
    for word in ("pull request", "review", "approve", "stage 1", "stage 2", "refused"):
        assert word in diagram
    for refusal in ("not the tip of the default branch", "the plan is stale", "no credentials"):
        assert refusal in text
    assert "Re-run all jobs" in text
    assert '"Re-run jobs" button' not in text  # the old advice re-applied an old commit


# --- re-runs and the stage-2 tip guard (review of issue 13) ---------------------------------


@pytest.mark.parametrize("name", sorted(REUSABLE))
def test_every_artifact_name_is_unique_per_attempt(name: str) -> None:
    """upload-artifact v4 never overwrites: a fixed name makes "Re-run all jobs" fail (409)."""
    for job in jobs(name).values():
        for s in job["steps"]:
            if str(s.get("uses", "")).startswith("actions/upload-artifact@"):
                assert s["with"]["name"] == "${{ env.ARTIFACT_NAME }}", s["name"]
                assert "${{ github.run_attempt }}" in job["env"]["ARTIFACT_NAME"], s["name"]
                assert s["with"].get("overwrite") in (None, False)


def test_stage_two_downloads_the_artifact_stage_one_names() -> None:
    stage1, stage2 = jobs("apply")["plan"], jobs("apply")["apply"]
    assert stage1["outputs"]["artifact-name"] == "${{ env.ARTIFACT_NAME }}"
    download = stage2["steps"][
        step_index(
            stage2, lambda s: str(s.get("uses", "")).startswith("actions/download-artifact@")
        )
    ]
    # Not recomputed from github.run_attempt: "Re-run failed jobs" re-runs stage 2 alone.
    assert download["with"]["name"] == "${{ needs.plan.outputs.artifact-name }}"


@pytest.mark.parametrize(
    ("job_id", "name"),
    [
        ("plan", "Refuse unless this commit is the tip of the default branch"),
        ("apply", "Refuse unless this commit is still the tip of the default branch"),
    ],
)
def test_each_stage_runs_the_tip_guard_unconditionally(job_id: str, name: str) -> None:
    job = jobs("apply")[job_id]
    guard = job["steps"][step_index(job, lambda s: s.get("name") == name)]
    assert guard["run"] == "reconciler ci check-tip"
    assert "if" not in guard and "continue-on-error" not in guard
    assert "continue-on-error" not in job


def test_the_plan_comment_is_written_after_any_failure_but_a_cancel() -> None:
    """Decide or validation failing must replace an older plan comment, never leave it up."""
    workflow = load(REUSABLE["plan"])
    comment = step(workflow, "Write the plan comment")
    assert comment["if"] == "${{ !cancelled() }}"
    assert comment["env"]["VALIDATION"] == "${{ steps.validate.outcome }}"
    assert step(workflow, "Validate manifests")["id"] == "validate"
    assert '--validation "$VALIDATION"' in comment["run"]
    assert 'reconciler ci comment "${paths[@]}"' in comment["run"]


def test_the_docs_say_what_a_runner_needs_and_what_dependabot_gets() -> None:
    """One statement of a self-hosted runner's needs (nothing runs curl; git runs `ci
    decide`'s diff and the checkouts; setup-python's Python makes the venv)."""
    descriptions = {reusable_interface(n)[0]["runs-on"]["description"] for n in REUSABLE}
    (description,) = descriptions
    needs = description.split("(a self-hosted runner ", 1)[1].rstrip(").")
    assert "curl" not in needs and "bash and git" in needs
    docs = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")
    assert f"(a self-hosted runner {needs})" in docs
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert "plan check then exercises" not in readme
    assert "Dependabot's pull requests no repository secrets, so its plan check is labelled" in (
        readme
    )


def test_verify_workflow_verifies_the_applied_plan_then_promotes_what_passed() -> None:
    """Issue 18 item 4: after apply on merge, verify the plan stage 2 applied (by the
    artifact the apply workflow names), post the result, then open the promotion PR."""
    apply_outputs = load(REUSABLE["apply"])["on"]["workflow_call"]["outputs"]
    assert apply_outputs["plan-artifact"]["value"] == "${{ jobs.plan.outputs.artifact-name }}"
    verify, promote = jobs("verify")["verify"], jobs("verify")["promote"]
    download = step(load(REUSABLE["verify"]), "Download the applied plan")
    assert download["with"]["name"] == "${{ inputs.plan-artifact }}"
    run = step(load(REUSABLE["verify"]), "Verify the changed version sets and post the result")
    assert "reconciler ci verify plan.json" in run["run"]
    assert verify["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert verify["outputs"]["promote"] == "${{ steps.verify.outputs.promote }}"
    assert promote["needs"] == "verify"
    assert "!cancelled()" in promote["if"] and "needs.verify.outputs.promote" in promote["if"]
    assert promote["permissions"] == {"contents": "write", "pull-requests": "write"}
    pr = step(load(REUSABLE["verify"]), "Open or update the promotion pull request")
    assert "reconciler ci promotion-pr" in pr["run"]
    assert "AMIGO_API_KEY" not in pr.get("env", {})  # the promotion needs no API key
    caller = load(REPO / "examples" / "github" / "apply-on-merge.yml")["jobs"]["verify"]
    assert caller["needs"] == "apply"
    assert caller["with"]["plan-artifact"] == "${{ needs.apply.outputs.plan-artifact }}"


def test_results_and_drift_come_back_to_people() -> None:
    """Issue 14: annotations from the saved plan, the apply result on the merged pull
    request, one drift issue per environment."""
    plan = load(REUSABLE["plan"])
    annotate = step(plan, "Annotate each planned change on its manifest line")
    assert annotate["run"] == "reconciler show plan.json --format github"
    apply = load(REUSABLE["apply"])
    applied = step(apply, "Apply the reviewed plan")["with"]
    assert "--format json" in applied["args"] and applied["output-file"].startswith("apply.json")
    report = step(apply, "Write the apply report")
    assert "--report apply.json --comment-pr" in report["run"]
    assert report["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    assert apply["jobs"]["apply"]["permissions"]["pull-requests"] == "write"
    drift = load(REUSABLE["drift"])
    issue = step(drift, "Open, edit or close the drift issue")
    assert issue["run"].startswith("reconciler ci drift-issue ")
    assert drift["jobs"]["drift"]["permissions"]["issues"] == "write"
    for template in ("drift-detection.yml", "several-organizations.yml"):
        text = (REPO / "examples" / "github" / template).read_text(encoding="utf-8")
        assert "issues: write" in text, template


def test_no_workflow_cuts_the_plan() -> None:
    for path in REUSABLE.values():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"head -c|cut -c|60000|60_000|\[:6", text), path.name


@pytest.mark.parametrize("name", sorted(REUSABLE))
def test_a_job_that_exports_reconciler_env_checks_out_reconciler_yaml(name: str) -> None:
    """AMIGO_RECONCILER_ENV makes every command look for reconciler.yaml: a job exporting it
    must check the repository out whenever reconciler-env is set (stage 2 once did only for an
    emulator seed, so `apply plan.json` exited 1 with "no reconciler.yaml found")."""
    for job_name, job in jobs(name).items():
        if "AMIGO_RECONCILER_ENV" not in job.get("env", {}):
            continue
        manifests = [
            s
            for s in job["steps"]
            if str(s.get("uses", "")).startswith("actions/checkout@")
            and "path" not in s.get("with", {})
        ]
        assert manifests, f"{name}/{job_name}: exports AMIGO_RECONCILER_ENV, checks nothing out"
        condition = str(manifests[0].get("if", ""))
        assert not condition or "inputs.reconciler-env != ''" in condition, (
            f"{name}/{job_name}: the repository is checked out only `if: {condition}`"
        )
