"""Results and drift come back to people (issue 14, item 5), against the fake GitHub API:
the apply result on the merged pull request, one drift issue per environment."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _github_fake import FakeGitHub
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.github import (
    DRIFT_MARKER,
    GitHubApi,
    RunContext,
    apply_result_comment,
    drift_label,
    sync_drift_issue,
)

SHA = "a" * 40
REPO = "acme/manifests"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    yield fake
    fake.close()


def env(tmp_path: Path, github: FakeGitHub) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"repository": {"default_branch": "main"}}), encoding="utf-8")
    return {
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_SHA": SHA,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_TOKEN": "ghs_not_a_real_token_0123456789",
        "GITHUB_API_URL": github.url,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "9",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


def invoke(args: list[str], environ: dict[str, str], cwd: Path) -> Any:
    with contextlib.chdir(cwd):
        return CliRunner().invoke(main, args, env=environ)


def report(outcome: str, **statuses: int) -> dict[str, Any]:
    counts = {"done": 0, "failed": 0, "outcome_unknown": 0, "skipped": 0, "not_started": 0}
    counts.update(statuses)
    operations = [
        {
            "key": f"op-{i}",
            "action": "update_service",
            "kind": "update",
            "service": f"svc-{i}",
            "service_id": f"{i:024x}",
            "version_set": None,
            "status": status,
            "api_status": 500 if status == "failed" else None,
            "error": None,
            "detail": None,
            "message": "HTTP 500: boom" if status == "failed" else None,
            "duration_seconds": 0.1,
        }
        for i, status in enumerate(s for s, n in counts.items() for _ in range(n))
    ]
    return {
        "format_version": 1,
        "organization": "acme",
        "base_url": "https://api.example.test",
        "outcome": outcome,
        "converged": outcome == "converged" or None,
        "convergence_error": None,
        "differences": [],
        "summary": counts,
        "elapsed_seconds": 1.5,
        "operations": operations,
    }


def merged(github: FakeGitHub, number: int = 12) -> None:
    github.routes[f"/repos/{REPO}/commits/{SHA}/pulls"] = [
        {"number": 99, "merged_at": None, "merge_commit_sha": None},  # open, contains it
        {"number": number, "merged_at": "2025-01-01T00:00:00Z", "merge_commit_sha": SHA},
    ]


@pytest.mark.parametrize(
    ("outcome", "statuses", "exit_code", "says"),
    [
        ("converged", {"done": 3}, "0", "Done, and the live state converged"),
        ("failed", {"done": 1, "failed": 1, "not_started": 1}, "1", "Failed:"),
        ("outcome_unknown", {"outcome_unknown": 1}, "1", "Outcome unknown"),
        ("not_converged", {"done": 1}, "1", "not converged"),
    ],
)
def test_the_apply_result_is_commented_on_the_merged_pull_request(
    github: FakeGitHub,
    tmp_path: Path,
    outcome: str,
    statuses: dict[str, int],
    exit_code: str,
    says: str,
) -> None:
    merged(github)
    (tmp_path / "apply.json").write_text(json.dumps(report(outcome, **statuses)))
    (tmp_path / "apply.log").write_text("log\n")
    result = invoke(
        [
            "ci",
            "apply-report",
            "--environment",
            "production",
            "--exit-code",
            exit_code,
            "--comment-pr",
        ],
        env(tmp_path, github),
        tmp_path,
    )
    assert result.exit_code == (0 if exit_code == "0" else 1), result.output
    assert "apply result commented on #12" in result.output
    [(method, path, body)] = github.writes
    assert (method, path) == ("POST", f"/repos/{REPO}/issues/12/comments")
    assert says in body["body"] and "`production`" in body["body"]
    if statuses.get("failed"):
        assert "op-1 update service 'svc-1': HTTP 500: boom" in body["body"]
        assert "Not started:" in body["body"]
    assert "ghs_not_a_real_token" not in result.output + body["body"]


def test_a_refused_apply_says_not_started(github: FakeGitHub, tmp_path: Path) -> None:
    merged(github)
    (tmp_path / "apply.log").write_text(
        "error: live state changed since the plan was made: service X changed\n"
    )
    result = invoke(
        ["ci", "apply-report", "--exit-code", "1", "--comment-pr"], env(tmp_path, github), tmp_path
    )
    assert result.exit_code == 1
    body = github.writes[0][2]["body"]
    assert "Not started: refused, the plan is stale" in body


def test_no_merged_pull_request_no_comment(github: FakeGitHub, tmp_path: Path) -> None:
    github.routes[f"/repos/{REPO}/commits/{SHA}/pulls"] = []
    (tmp_path / "apply.json").write_text(json.dumps(report("converged", done=1)))
    result = invoke(
        ["ci", "apply-report", "--exit-code", "0", "--comment-pr"], env(tmp_path, github), tmp_path
    )
    assert result.exit_code == 0 and "no merged pull request" in result.output
    assert github.writes == []


def test_a_github_failure_to_comment_is_a_warning_not_the_apply_result(
    github: FakeGitHub, tmp_path: Path
) -> None:
    merged(
        github, number=404_404
    )  # the fake has no such issue: POST answers 404? no: comments work
    github.close()  # GitHub unreachable
    (tmp_path / "apply.json").write_text(json.dumps(report("converged", done=1)))
    result = invoke(
        ["ci", "apply-report", "--exit-code", "0", "--comment-pr"], env(tmp_path, github), tmp_path
    )
    assert result.exit_code == 0
    assert "::warning::could not comment the apply result" in result.output


def test_comment_text_is_bounded_with_many_failures() -> None:
    body = apply_result_comment(
        environment="p",
        exit_code="1",
        report=report("failed", failed=20_000),
        log="",
        commit=SHA,
        run_url="u",
    )
    assert len(body) <= 65_536 and "more lines: see the run" in body


# --- drift ----------------------------------------------------------------------------


def sync(github: FakeGitHub, tmp_path: Path, exit_code: str, digest: str = "") -> Any:
    context = RunContext.from_env(env(tmp_path, github))
    api = GitHubApi(context)
    try:
        return sync_drift_issue(
            context,
            api,
            environment="production",
            exit_code=exit_code,
            digest=digest,
            markdown=f"plan {digest}",
            run_url="https://run",
        )
    finally:
        api.close()


def test_one_drift_issue_opens_edits_updates_and_closes(github: FakeGitHub, tmp_path: Path) -> None:
    assert sync(github, tmp_path, "0").action == "none"  # no drift, no issue
    opened = sync(github, tmp_path, "2", "sha256:one")
    assert opened.action == "opened" and opened.number is not None
    issue = github.issues[opened.number]
    assert issue["labels"] == [{"name": drift_label("production")}]
    assert issue["body"].startswith(
        DRIFT_MARKER.format(environment="production", digest="sha256:one")
    )
    # Unchanged drift on the next run: the body is edited, nobody is notified again.
    assert sync(github, tmp_path, "2", "sha256:one").action == "edited"
    assert len(github.issues) == 1 and github.comments.get(opened.number) is None
    # The drift changed: edited and one comment saying so.
    assert sync(github, tmp_path, "2", "sha256:two").action == "updated"
    assert "sha256:two" in github.issues[opened.number]["body"]
    assert len(github.comments[opened.number]) == 1
    # A failed check changes nothing.
    assert sync(github, tmp_path, "1").action == "none"
    assert github.issues[opened.number]["state"] == "open"
    # Drift cleared: closed with a comment.
    closed = sync(github, tmp_path, "0")
    assert closed.action == "closed" and github.issues[opened.number]["state"] == "closed"
    # Drift again later: a new issue (the closed one stays closed).
    again = sync(github, tmp_path, "2", "sha256:three")
    assert again.action == "opened" and again.number != opened.number


def test_environments_keep_separate_issues_and_foreign_issues_are_ignored(
    github: FakeGitHub, tmp_path: Path
) -> None:
    # Someone else's issue with the label and a forged marker is not ours.
    github.issues[1] = {
        "number": 1,
        "title": "x",
        "body": DRIFT_MARKER.format(environment="production", digest="sha256:one"),
        "state": "open",
        "labels": [{"name": drift_label("production")}],
        "user": {"login": "mallory"},
    }
    first = sync(github, tmp_path, "2", "sha256:one")
    assert first.action == "opened" and first.number != 1
    context = RunContext.from_env(env(tmp_path, github))
    api = GitHubApi(context)
    staging = sync_drift_issue(
        context,
        api,
        environment="staging",
        exit_code="2",
        digest="sha256:one",
        markdown="m",
        run_url="r",
    )
    api.close()
    assert staging.action == "opened" and staging.number not in (1, first.number)


def test_drift_issue_command(github: FakeGitHub, tmp_path: Path) -> None:
    from reconciler.plan import Plan
    from reconciler.planfile import save_plan

    save_plan(
        Plan(
            organization="acme",
            base_url="https://api.example.test",
            manifests_digest="sha256:d",
            live_fingerprint="sha256:l",
            created_at="2025-01-01T00:00:00+00:00",
        ),
        tmp_path / "plan.json",
    )
    (tmp_path / "plan.md").write_text("the plan")
    environ = env(tmp_path, github)
    result = invoke(
        ["ci", "drift-issue", "--environment", "production", "--exit-code", "2"], environ, tmp_path
    )
    assert result.exit_code == 0 and "drift issue: opened #1" in result.output, result.output
    result = invoke(
        ["ci", "drift-issue", "--environment", "production", "--exit-code", "0"], environ, tmp_path
    )
    assert "drift issue: closed #1" in result.output


def test_drift_labels_stay_unique_per_environment_when_cut_to_50() -> None:
    long_a = "production-" + "x" * 40 + "-eu"
    long_b = "production-" + "x" * 40 + "-us"
    labels = {drift_label(long_a), drift_label(long_b)}
    assert len(labels) == 2 and all(len(label) <= 50 for label in labels)
    assert drift_label(long_a) == drift_label(long_a)  # stable across runs
    assert drift_label("production") == "reconciler-drift:production"  # short: unchanged
