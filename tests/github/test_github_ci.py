"""`reconciler ci ...` and reconciler/github.py under a faked GitHub: GITHUB_* variables,
an event JSON file, a fake REST API on 127.0.0.1, and a real git repository for changed
files. Also the plan digest (issue 13, point 2) and the usage-error exit code (point 4)."""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from _github_fake import FakeGitHub
from click.testing import CliRunner
from support.paths import REPO

from reconciler.cli import main
from reconciler.cli.shared import EXIT_USAGE
from reconciler.diagnostics import SourcePos
from reconciler.github import (
    BOT_LOGIN,
    NO_MANIFEST_CHANGES,
    PR_PLAN_MARKER,
    SKIPPED_NO_CREDENTIALS,
    STALE_PLAN_TEXT,
    apply_summary,
    manifests_changed,
)
from reconciler.model import DesiredService, DesiredState, LiveService, LiveState, VersionSet
from reconciler.planfile import plan_digest, plan_to_dict, save_plan
from reconciler.planner import plan_against
from reconciler.render import render_plan
from reconciler.workflow import check_saved_plan

OLD = "a" * 40
TIP = "b" * 40
REPO_NAME = "acme/manifests"


# --- a fake GitHub ---------------------------------------------------------------------


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    yield fake
    fake.close()


def run_env(tmp_path: Path, event_name: str, event: dict[str, Any], **extra: str) -> dict[str, str]:
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event), encoding="utf-8")
    env = {
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_REPOSITORY": REPO_NAME,
        "GITHUB_SHA": OLD,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_ACTOR": "alice",
        "GITHUB_TOKEN": "ghs_not_a_real_token_0123456789",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "7",
    }
    env.update(extra)
    return env


def invoke(args: list[str], env: dict[str, str], cwd: Path | None = None) -> Any:
    """Run `reconciler ARGS` in-process with the faked run's environment (and directory)."""
    with contextlib.chdir(cwd or Path.cwd()):
        return CliRunner().invoke(main, args, env=env)


def outputs(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "output"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines)


PUSH_EVENT = {"repository": {"default_branch": "main"}, "after": OLD}


# --- point 3: a re-run never rolls back ---------------------------------------------------


def test_a_rerun_of_an_old_commit_is_refused_naming_both(
    github: FakeGitHub, tmp_path: Path
) -> None:
    github.routes[f"/repos/{REPO_NAME}/git/ref/heads/main"] = {"object": {"sha": TIP}}
    env = run_env(tmp_path, "push", PUSH_EVENT, GITHUB_API_URL=github.url)
    result = invoke(["ci", "check-tip"], env)
    assert result.exit_code == 1, result.output
    assert OLD in result.output and TIP in result.output
    assert "nothing was planned or applied" in result.output
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "Refused: not the tip" in summary and TIP in summary
    assert "Traceback" not in result.output
    # The token is sent to the API and never shown.
    assert github.seen[0][1] == "Bearer ghs_not_a_real_token_0123456789"
    assert "ghs_not_a_real_token" not in result.output + summary


def test_the_tip_passes(github: FakeGitHub, tmp_path: Path) -> None:
    github.routes[f"/repos/{REPO_NAME}/git/ref/heads/main"] = {"object": {"sha": OLD}}
    env = run_env(tmp_path, "push", PUSH_EVENT, GITHUB_API_URL=github.url)
    result = invoke(["ci", "check-tip"], env)
    assert result.exit_code == 0, result.output
    assert f"commit {OLD} is the tip of main" in result.output


def test_a_run_on_another_branch_is_refused(github: FakeGitHub, tmp_path: Path) -> None:
    env = run_env(
        tmp_path,
        "workflow_dispatch",
        PUSH_EVENT,
        GITHUB_API_URL=github.url,
        GITHUB_REF="refs/heads/feature",
    )
    result = invoke(["ci", "check-tip"], env)
    assert result.exit_code == 1
    assert "not the default branch main" in result.output
    assert github.seen == []


def test_the_api_failing_is_a_clear_error(github: FakeGitHub, tmp_path: Path) -> None:
    env = run_env(tmp_path, "push", PUSH_EVENT, GITHUB_API_URL=github.url)
    result = invoke(["ci", "check-tip"], env)  # no route: 404
    assert result.exit_code == 1
    assert "GitHub API GET /repos/acme/manifests/git/ref/heads/main: HTTP 404: Not Found" in (
        result.output
    )


# --- point 5: plan, or a labelled skip ---------------------------------------------------


def pr_event(head_repo: str = REPO_NAME, user: str = "alice", base: str = "") -> dict[str, Any]:
    return {
        "repository": {"default_branch": "main"},
        "pull_request": {
            "number": 5,
            "user": {"login": user},
            "base": {"sha": base},
            "head": {"sha": "c" * 40, "repo": {"full_name": head_repo}},
        },
    }


def test_a_fork_without_credentials_is_labelled_skipped(tmp_path: Path) -> None:
    env = run_env(tmp_path, "pull_request", pr_event(head_repo="mallory/manifests"))
    result = invoke(["ci", "decide", "services", "--no-credentials"], env, cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert outputs(tmp_path) == {"decision": "skip", "label": SKIPPED_NO_CREDENTIALS}
    comment = (tmp_path / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith("**amigo-reconciler · `default`** · **Plan skipped: no credentials")
    assert "a fork" in comment and "This is not a clean plan" in comment
    assert "No changes" not in comment
    assert (tmp_path / "summary.md").read_text(encoding="utf-8").strip() == comment.strip()


def test_a_dependabot_pull_request_is_labelled_skipped(tmp_path: Path) -> None:
    env = run_env(
        tmp_path, "pull_request", pr_event(user="dependabot[bot]"), GITHUB_ACTOR="dependabot[bot]"
    )
    result = invoke(["ci", "decide", "services", "--no-credentials"], env, cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert outputs(tmp_path)["label"] == SKIPPED_NO_CREDENTIALS
    assert "Dependabot" in (tmp_path / "comment.md").read_text(encoding="utf-8")


def test_missing_credentials_on_our_own_branch_fail(tmp_path: Path) -> None:
    env = run_env(tmp_path, "pull_request", pr_event())
    result = invoke(["ci", "decide", "services", "--no-credentials"], env, cwd=tmp_path)
    assert result.exit_code == 1
    assert "AMIGO_API_KEY is not set" in result.output
    assert outputs(tmp_path)["decision"] == "fail"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.test", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.mark.parametrize(
    ("changed", "decision", "label"),
    [("README.md", "skip", NO_MANIFEST_CHANGES), ("services/a.yaml", "plan", "plan")],
)
def test_the_job_itself_finds_whether_manifests_changed(
    tmp_path: Path, changed: str, decision: str, label: str
) -> None:
    repo = tmp_path / "repo"
    (repo / "services").mkdir(parents=True)
    (repo / "services" / "a.yaml").write_text("a: 1\n", encoding="utf-8")
    (repo / "README.md").write_text("hello\n", encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    (repo / changed).write_text("changed\n", encoding="utf-8")
    git(repo, "commit", "-q", "-am", "change")
    for event_name, event in (
        ("pull_request", pr_event(base=base)),
        ("merge_group", {"merge_group": {"base_sha": base}, "repository": {}}),
    ):
        (tmp_path / "output").unlink(missing_ok=True)
        env = run_env(tmp_path, event_name, event)
        result = invoke(["ci", "decide", "services", "--credentials"], env, cwd=repo)
        assert result.exit_code == 0, result.output
        assert outputs(tmp_path) == {"decision": decision, "label": label}, event_name
    if decision == "skip":
        assert "nothing new to plan" in (repo / "comment.md").read_text(encoding="utf-8")


def test_manifest_paths_match_whole_path_segments() -> None:
    assert manifests_changed(["services/x.yaml"], ["./services/"])
    assert not manifests_changed(["services-old/x.yaml"], ["services"])
    assert manifests_changed([".github/workflows/reconciler.yml"], ["services"])
    assert manifests_changed(["anything"], ["."])


# --- point 2: the plan digest ----------------------------------------------------------

AGENT = "1" * 24
FLOW = "2" * 24


def make_plan(description: str = "new", created_at: str = "2025-01-01T00:00:00+00:00") -> Any:
    live = LiveService(
        id="f" * 24,
        name="Triage",
        description="old",
        is_active=True,
        agent_id=AGENT,
        service_hierarchical_state_machine_id=FLOW,
        tags={"managed_by": "amigo_reconciler"},
        keyterms=(),
        version_sets={"edge": VersionSet(), "release": VersionSet()},
    )
    desired = DesiredService(
        name="Triage",
        description=description,
        source=SourcePos("services/t.yaml", 1, 1),
        agent_id=AGENT,
        service_hierarchical_state_machine_id=FLOW,
        tags={},
    )
    return plan_against(
        DesiredState((desired,), digest="sha256:d"),
        LiveState((live,)),
        organization="acme",
        base_url="https://api.example.test",
        created_at=created_at,
        api_reads={"get-services": 1},
    )


def test_the_digest_covers_what_the_plan_does_and_not_when() -> None:
    plan = make_plan()
    assert plan.operations
    digest = plan_digest(plan)
    assert digest.startswith("sha256:") and len(digest) == 71
    later = make_plan(created_at="2030-01-01T00:00:00+00:00")
    assert plan_digest(later) == digest
    assert plan_digest(replace(plan, api_reads={"get-services": 9}, live_fingerprint="x")) == digest
    moved = replace(plan.operations[0], source=SourcePos("services/t.yaml", 40, 3))
    assert plan_digest(replace(plan, operations=(moved,))) == digest
    assert plan_digest(make_plan(description="other")) != digest
    assert plan_digest(replace(plan, organization="other")) != digest
    assert plan_digest(replace(plan, targets=("Triage",))) != digest


def test_the_digest_is_shown_in_every_format() -> None:
    plan = make_plan()
    digest = plan_digest(plan)
    for fmt in ("text", "markdown", "json", "github"):
        assert digest in render_plan(plan, fmt), fmt
    assert json.loads(render_plan(plan, "json"))["plan_digest"] == digest
    assert render_plan(plan, "markdown").startswith(f"<!-- amigo-reconciler plan-digest: {digest}")


# --- point 2: the merge-time plan against the pull request's --------------------------------


def marker(digest: str, manifests: str = "sha256:d", live: str = "sha256:l") -> str:
    return PR_PLAN_MARKER.format(
        environment="production", commit="c" * 40, digest=digest, manifests=manifests, live=live
    )


def serve_pr(github: FakeGitHub, comments: list[dict[str, Any]]) -> None:
    github.routes[f"/repos/{REPO_NAME}/commits/{OLD}/pulls"] = [
        {"number": 9, "merge_commit_sha": "d" * 40, "merged_at": "2026-01-01T00:00:00Z"},
        {"number": 5, "merge_commit_sha": OLD, "merged_at": "2026-01-02T00:00:00Z"},
    ]
    github.routes[f"/repos/{REPO_NAME}/issues/5/comments?per_page=100&page=1"] = comments


def compare(
    github: FakeGitHub, tmp_path: Path, plan: Any = None
) -> tuple[Any, str, dict[str, str]]:
    plan = plan or make_plan()
    save_plan(plan, tmp_path / "plan.json")
    env = run_env(tmp_path, "push", PUSH_EVENT, GITHUB_API_URL=github.url)
    result = invoke(
        ["ci", "compare", str(tmp_path / "plan.json"), "--environment", "production"], env
    )
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    return result, summary, outputs(tmp_path)


def test_a_digest_mismatch_is_reported_loudly_and_why(github: FakeGitHub, tmp_path: Path) -> None:
    plan = plan_to_dict(make_plan())
    other = "sha256:" + "0" * 64
    serve_pr(
        github,
        [
            # Someone typed the right digest into a comment: not the bot, so not trusted.
            {"user": {"login": "mallory"}, "body": marker(plan["plan_digest"])},
            {
                "user": {"login": BOT_LOGIN},
                "body": marker(other, manifests="sha256:older", live=plan["live_fingerprint"])
                + "\nplan",
                "html_url": "https://github.example/acme/manifests/pull/5#c1",
            },
        ],
    )
    result, summary, out = compare(github, tmp_path)
    assert result.exit_code == 0, result.output
    assert "::warning title=plan differs" in result.output
    assert out["match"] == "differs" and out["pr-digest"] == other
    assert out["digest"] == plan["plan_digest"]
    assert "[!CAUTION]" in summary and "differs from the one reviewed on pull request #5" in summary
    assert "The manifests differ" in summary and "live organization changed" not in summary


def test_a_dashboard_edit_is_named_as_the_cause(github: FakeGitHub, tmp_path: Path) -> None:
    plan = plan_to_dict(make_plan())
    serve_pr(
        github,
        [{"user": {"login": BOT_LOGIN}, "body": marker("sha256:x", plan["manifests_digest"])}],
    )
    _, summary, out = compare(github, tmp_path)
    assert out["match"] == "differs"
    assert "live organization changed" in summary and "The manifests differ" not in summary


def test_the_same_plan_says_so(github: FakeGitHub, tmp_path: Path) -> None:
    plan = plan_to_dict(make_plan())
    serve_pr(github, [{"user": {"login": BOT_LOGIN}, "body": marker(plan["plan_digest"])}])
    result, summary, out = compare(github, tmp_path)
    assert out["match"] == "same", result.output
    assert "The plan digest matches the marker on #5" in summary
    assert "convenience, not a proof" in summary
    assert "is the one shown" not in summary


def test_no_pull_request_plan_is_a_warning(github: FakeGitHub, tmp_path: Path) -> None:
    github.routes[f"/repos/{REPO_NAME}/commits/{OLD}/pulls"] = []
    _, summary, out = compare(github, tmp_path)
    assert out["match"] == "unknown"
    assert "No plan from a pull request was found" in summary


def test_the_comment_carries_the_marker_the_compare_reads(tmp_path: Path) -> None:
    plan = make_plan()
    save_plan(plan, tmp_path / "plan.json")
    (tmp_path / "plan.md").write_text(render_plan(plan, "markdown"), encoding="utf-8")
    env = run_env(tmp_path, "pull_request", pr_event())
    result = invoke(
        [
            "ci",
            "comment",
            "--environment",
            "production",
            "--exit-code",
            "2",
            "--commit",
            "c" * 40,
            "--run-url",
            "https://github.example/run",
        ],
        env,
        cwd=tmp_path,
    )
    assert result.exit_code == 0, result.output
    comment = (tmp_path / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith(
        marker(plan_digest(plan), plan.manifests_digest, plan.live_fingerprint)
    )
    assert "Merging this pull request applies the changes below." in comment


# --- point 1: stage 2's report --------------------------------------------------------------


def test_a_stale_refusal_applies_nothing_and_says_what_to_do() -> None:
    assert STALE_PLAN_TEXT in inspect.getsource(check_saved_plan)  # the text we recognize
    text, ok = apply_summary(
        environment="production",
        exit_code="1",
        commit=OLD,
        log=f'error: {STALE_PLAN_TEXT}; run plan again\n  changed: "Triage"\n',
    )
    assert not ok
    assert "Refused: the plan is stale. Nothing was applied." in text
    assert "re-run all jobs" in text and "Triage" in text
    failed, ok = apply_summary(environment="production", exit_code="1", commit=OLD, log="boom")
    assert not ok and "The apply failed" in failed and "stale" not in failed
    done, ok = apply_summary(environment="production", exit_code="0", commit=OLD, log="")
    assert ok and "Applied the reviewed plan" in done


def test_apply_report_fails_the_step_unless_applied(tmp_path: Path) -> None:
    (tmp_path / "apply.log").write_text(f"error: {STALE_PLAN_TEXT}\n", encoding="utf-8")
    env = run_env(tmp_path, "push", PUSH_EVENT)
    result = invoke(["ci", "apply-report", "--exit-code", "1"], env, cwd=tmp_path)
    assert result.exit_code == 1
    assert "stale" in (tmp_path / "summary.md").read_text(encoding="utf-8")


# --- point 4: usage errors are not "changes present" ----------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "services", "--no-such-flag"],  # unknown flag
        ["plan"],  # missing argument
        ["plan", "services", "--format", "yaml"],  # bad option value
        ["apply"],
        ["ci", "comment", "--exit-code", "2"],  # a missing required option, one group down
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_64_never_2(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == EXIT_USAGE == 64, result.output
    assert "Traceback" not in result.output


def test_a_usage_error_exits_64_as_a_real_process() -> None:
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", "services", "--detailed-exitcode", "--bogus"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 64, result.stderr
    assert "No such option" in result.stderr


def test_the_comment_never_cuts_the_renderers_markdown() -> None:
    """A 10,000-operation plan, fitted by the renderer, goes into the comment whole."""
    from support.plans import balanced, big_plan

    from reconciler.github import plan_comment
    from reconciler.render import render_plan

    plan = big_plan(10_000)
    markdown = render_plan(plan, "markdown")
    comment = plan_comment(
        environment="production",
        exit_code="2",
        commit="c" * 40,
        markdown=markdown,
        errors="",
        run_url="https://github.example/run",
        plan=plan_to_dict(plan),
    )
    assert len(comment) <= 65_536 - 1_000  # room for the sticky action's key line
    assert markdown.strip() in comment
    balanced(comment)
    assert comment.splitlines()[0].startswith(
        "<!-- amigo-reconciler pr-plan environment=production"
    )
    assert all(error.message in comment for error in plan.errors)


def test_markdown_rendered_too_large_is_left_out_whole_never_cut() -> None:
    from support.plans import balanced

    from reconciler.github import plan_comment

    markdown = "```diff\n" + "+ x\n" * 30_000 + "```\n"
    comment = plan_comment(
        environment="production",
        exit_code="2",
        commit="c" * 40,
        markdown=markdown,
        errors="",
        run_url="https://github.example/run",
        plan=plan_to_dict(make_plan()),
    )
    assert len(comment) <= 65_536 and "+ x" not in comment
    assert "does not fit in a comment" in comment and "reconciler-plan-production" in comment
    balanced(comment)


def test_long_failure_output_keeps_whole_lines_in_a_closed_fence() -> None:
    from support.plans import balanced

    from reconciler.github import failure_comment, plan_comment

    errors = "".join(
        f"services/s{i}.yaml:3:5: error: spec.agent: no agent ```\n" for i in range(5_000)
    )
    for comment in (
        failure_comment(
            environment="p",
            label="validation failed",
            detail="d",
            errors=errors,
            commit="c" * 40,
            run_url="u",
        ),
        plan_comment(
            environment="p",
            exit_code="1",
            commit="c" * 40,
            markdown="",
            errors=errors,
            run_url="u",
            plan=None,
        ),
    ):
        assert len(comment) <= 65_536
        balanced(comment)
        assert re.search(r"\[\.\.\. and \d+ more lines: see the workflow run's log\]", comment)
        kept = [line for line in comment.splitlines() if line.startswith("services/")]
        assert kept and all(line.endswith("no agent ```") for line in kept)


def test_a_failed_plan_comment_carries_the_error_and_no_digest() -> None:
    from reconciler.github import plan_comment

    comment = plan_comment(
        environment="production",
        exit_code="1",
        commit="c" * 40,
        markdown="",
        errors="error: get-services failed: HTTP 401\n",
        run_url="https://x",
        plan=None,
    )
    assert "The plan failed" in comment and "HTTP 401" in comment
    assert "pr-plan" not in comment  # a failed plan is nothing to compare with


def test_stage_two_applies_stage_ones_plan_file_and_only_that(tmp_path: Path) -> None:
    """The hand-over the apply workflow makes, against the emulator from one seed."""
    repo = REPO
    seed = str(repo / "examples" / "emulator-seed.yaml")
    services = str(repo / "examples" / "services")
    plan_file = str(tmp_path / "plan.json")
    env = run_env(tmp_path, "push", PUSH_EVENT)
    stage1 = invoke(
        ["plan", services, "--out", plan_file, "--detailed-exitcode", "--emulator", seed], env
    )
    assert stage1.exit_code == 2, stage1.output
    info = invoke(["ci", "plan-info", plan_file], env)
    digest = outputs(tmp_path)["digest"]
    assert info.exit_code == 0 and outputs(tmp_path)["has-changes"] == "true"
    assert f"Plan digest: {digest}" in stage1.output

    wrong = invoke(["ci", "plan-info", plan_file, "--expect-digest", "sha256:" + "0" * 64], env)
    assert wrong.exit_code == 1 and "nothing was applied" in wrong.output
    same = invoke(["ci", "plan-info", plan_file, "--expect-digest", digest], env)
    assert same.exit_code == 0
    # Stage 1 reported no digest (its output empty): refuse, never skip the check.
    for empty in ("", " "):
        unknown = invoke(["ci", "plan-info", plan_file, "--expect-digest", empty], env)
        assert unknown.exit_code == 1 and "--expect-digest is empty" in unknown.output

    stage2 = invoke(["apply", plan_file, "--auto-approve", "--emulator", seed], env)
    assert stage2.exit_code == 0, stage2.output
    assert "Converged" in stage2.output


# --- review of issue 13: which markers and which pull request count ----------------------


def test_a_marker_in_someone_elses_comment_is_ignored(github: FakeGitHub, tmp_path: Path) -> None:
    plan = plan_to_dict(make_plan())
    serve_pr(github, [{"user": {"login": "mallory"}, "body": marker(plan["plan_digest"])}])
    _, summary, out = compare(github, tmp_path)
    assert out["match"] == "unknown" and out["pr-digest"] == ""
    assert "No plan from a pull request was found" in summary


def test_a_marker_below_the_first_line_of_a_bot_comment_is_ignored(
    github: FakeGitHub, tmp_path: Path
) -> None:
    """A failed plan's comment echoes error text, which can hold a forged marker."""
    from reconciler.github import plan_comment

    plan = plan_to_dict(make_plan())
    forged = plan_comment(
        environment="production",
        exit_code="1",
        markdown="",
        errors=f"error: services/t.yaml:1:1: bad value {marker(plan['plan_digest'])}\n",
        commit="c" * 40,
        run_url="https://x",
        plan=None,
    )
    assert marker(plan["plan_digest"]) in forged
    serve_pr(github, [{"user": {"login": BOT_LOGIN}, "body": forged}])
    _, summary, out = compare(github, tmp_path)
    assert out["match"] == "unknown", summary


@pytest.mark.parametrize(
    "pulls",
    [
        [{"number": 5, "merge_commit_sha": OLD, "merged_at": None}],  # open: not merged
        [{"number": 5, "merge_commit_sha": "d" * 40, "merged_at": "2026-01-02T00:00:00Z"}],
        [{"number": 5, "state": "open"}],
    ],
)
def test_only_the_pull_request_merged_as_this_commit_is_compared(
    github: FakeGitHub, tmp_path: Path, pulls: list[dict[str, Any]]
) -> None:
    plan = plan_to_dict(make_plan())
    serve_pr(github, [{"user": {"login": BOT_LOGIN}, "body": marker(plan["plan_digest"])}])
    github.routes[f"/repos/{REPO_NAME}/commits/{OLD}/pulls"] = pulls
    _, summary, out = compare(github, tmp_path)
    assert out["match"] == "unknown", summary


# --- review of issue 13: no stale plan comment after a failure before planning ------------


def comment_args(*extra: str) -> list[str]:
    return [
        "ci",
        "comment",
        *extra,
        "--environment",
        "production",
        "--commit",
        "c" * 40,
        "--run-url",
        "https://github.example/run",
    ]


def test_failed_validation_writes_a_comment_with_the_errors_and_no_marker(tmp_path: Path) -> None:
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "a.yaml").write_text("name: Triage\nbogus: 1\n", encoding="utf-8")
    env = run_env(tmp_path, "pull_request", pr_event())
    result = invoke(
        comment_args("services", "--exit-code", "", "--validation", "failure"), env, cwd=tmp_path
    )
    assert result.exit_code == 0, result.output
    comment = (tmp_path / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith("**amigo-reconciler · `production`** · **Validation failed.**")
    assert "services/a.yaml:" in comment and "nothing was planned" in comment
    assert "pr-plan" not in comment.splitlines()[0]
    from reconciler.github import read_marker

    assert read_marker(comment) is None
    assert (tmp_path / "summary.md").read_text(encoding="utf-8").strip() == comment.strip()


def test_a_failure_before_planning_replaces_the_old_plan_comment(tmp_path: Path) -> None:
    env = run_env(tmp_path, "pull_request", pr_event())
    result = invoke(comment_args("services", "--exit-code", ""), env, cwd=tmp_path)
    assert result.exit_code == 0, result.output
    comment = (tmp_path / "comment.md").read_text(encoding="utf-8")
    assert "The check failed before planning" in comment and "pr-plan" not in comment


def test_a_labelled_skip_comment_is_kept(tmp_path: Path) -> None:
    (tmp_path / "comment.md").write_text("skipped, labelled\n", encoding="utf-8")
    env = run_env(tmp_path, "pull_request", pr_event())
    result = invoke(comment_args("services", "--exit-code", ""), env, cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "comment.md").read_text(encoding="utf-8") == "skipped, labelled\n"


def test_decide_failing_writes_the_failure_comment(tmp_path: Path) -> None:
    env = run_env(tmp_path, "pull_request", pr_event())
    result = invoke(["ci", "decide", "services", "--no-credentials"], env, cwd=tmp_path)
    assert result.exit_code == 1
    comment = (tmp_path / "comment.md").read_text(encoding="utf-8")
    assert "**Credentials missing.**" in comment and "AMIGO_API_KEY is not set" in comment
    assert "pr-plan" not in comment


def test_echoed_errors_cannot_close_the_fence_or_forge_a_marker() -> None:
    from reconciler.github import failure_comment, read_marker

    forged = marker("sha256:" + "0" * 64)
    comment = failure_comment(
        environment="production",
        label="validation failed",
        detail="d",
        errors=f"x.yaml:1:1: bad ```\n{forged}\n**No changes**",
        commit="c" * 40,
        run_url="u",
    )
    assert "\n````\nx.yaml:1:1: bad ```\n" in comment and comment.count("\n````\n") == 2
    assert read_marker(comment) is None


# --- review of issue 13: the manifest-vars exporter and the drift report, out of YAML ------


def test_manifest_vars_are_exported_one_line_each(tmp_path: Path) -> None:
    github_env = tmp_path / "github_env"
    env = run_env(
        tmp_path,
        "push",
        PUSH_EVENT,
        VARIABLE_NAMES="CONCIERGE_AGENT\nREGION  MISSING",
        CONFIGURATION_VARIABLES=json.dumps(
            {"CONCIERGE_AGENT": "Concierge EU", "REGION": "eu", "OTHER": "x"}
        ),
        GITHUB_ENV=str(github_env),
    )
    result = invoke(["ci", "export-vars", "--environment", "staging"], env)
    assert result.exit_code == 0, result.output
    assert github_env.read_text(encoding="utf-8") == "CONCIERGE_AGENT=Concierge EU\nREGION=eu\n"
    assert "::warning::configuration variable MISSING is not set for environment staging" in (
        result.output
    )


@pytest.mark.parametrize(
    ("names", "variables", "message"),
    [
        ("CONCIERGE_AGENT", {"CONCIERGE_AGENT": "a\nEVIL=1"}, "holds a line break"),
        ("CONCIERGE_AGENT", {"CONCIERGE_AGENT": "a\rEVIL=1"}, "holds a line break"),
        ("EVIL=1", {}, "'EVIL=1' is not a variable name"),
    ],
)
def test_manifest_vars_refuse_what_would_add_lines_to_github_env(
    tmp_path: Path, names: str, variables: dict[str, str], message: str
) -> None:
    github_env = tmp_path / "github_env"
    env = run_env(
        tmp_path,
        "push",
        PUSH_EVENT,
        VARIABLE_NAMES=names,
        CONFIGURATION_VARIABLES=json.dumps(variables),
        GITHUB_ENV=str(github_env),
    )
    result = invoke(["ci", "export-vars"], env)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output
    assert "EVIL" not in (github_env.read_text("utf-8") if github_env.exists() else "")


@pytest.mark.parametrize(
    ("exit_code", "expected"),
    [("0", "No drift"), ("2", "Drift found"), ("1", "drift check failed"), ("", "unknown")],
)
def test_drift_report_says_what_happened(exit_code: str, expected: str, tmp_path: Path) -> None:
    (tmp_path / "plan.md").write_text("| update | `Triage` | agent changed |\n", "utf-8")
    (tmp_path / "plan.err").write_text("error: HTTP 503\n", encoding="utf-8")
    env = run_env(tmp_path, "schedule", PUSH_EVENT)
    result = invoke(
        ["ci", "drift-report", "--environment", "production", "--exit-code", exit_code],
        env,
        cwd=tmp_path,
    )
    assert result.exit_code == 0, result.output
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("### amigo-reconciler drift check: `production`")
    assert expected in summary
    assert ("agent changed" in summary) == (exit_code == "2")
    assert ("HTTP 503" in summary) == (exit_code not in ("0", "2"))


@pytest.mark.parametrize("description", ["new", "old"])
def test_stage_one_says_what_stage_two_will_do(
    github: FakeGitHub, tmp_path: Path, description: str
) -> None:
    """A plan with no changes is not "applied once approved": stage 2 is skipped."""
    plan = make_plan(description=description)
    assert bool(plan.operations) == (description == "new")
    (tmp_path / "plan.md").write_text("PLAN TABLE\n", encoding="utf-8")
    github.routes[f"/repos/{REPO_NAME}/commits/{OLD}/pulls"] = []
    save_plan(plan, tmp_path / "plan.json")
    env = run_env(tmp_path, "push", PUSH_EVENT, GITHUB_API_URL=github.url)
    result = invoke(
        ["ci", "compare", "plan.json", "--environment", "production-plan",
         "--apply-environment", "production"],
        env,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("### amigo-reconciler: the plan to approve for `production`")
    assert "PLAN TABLE" in summary
    if plan.operations:
        assert "Stage 2 applies exactly this plan file" in summary
        assert "Nothing to apply" not in summary
    else:
        assert "Nothing to apply" in summary and "stage 2 is skipped" in summary
        assert "Stage 2 applies" not in summary


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("", "\n<!-- Sticky Pull Request Commentamigo-reconciler-plan-production -->"),
        ("<!-- Sticky Pull Request Commentamigo-reconciler-plan-production -->\n", ""),
    ],
)
def test_the_marker_is_read_wherever_the_sticky_action_puts_its_key(
    github: FakeGitHub, tmp_path: Path, before: str, after: str
) -> None:
    plan = plan_to_dict(make_plan())
    body = f"{before}{marker(plan['plan_digest'])}\n**amigo-reconciler** plan{after}"
    serve_pr(github, [{"user": {"login": BOT_LOGIN}, "body": body}])
    _, _, out = compare(github, tmp_path)
    assert out["match"] == "same"
