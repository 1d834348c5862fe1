"""The loop after merge (issue 18 item 4): `reconciler ci verify` verifies what the applied plan
changed and posts the result; `reconciler ci promotion-pr` promotes the passed canaries on a
branch, pushes it and opens (then updates) one pull request. Against the emulator, a fake
GitHub API on 127.0.0.1 and a temporary git repository with a bare "origin"."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _github_fake import FakeGitHub
from click.testing import CliRunner, Result
from support.simulation import HEADER, seed

from reconciler.api.client import AmigoClient
from reconciler.cli import main
from reconciler.cli.shared import Runtime
from reconciler.connect import emulator_config
from reconciler.emulator import Emulator

REPO = "acme/manifests"
SHA = "c" * 40
TOKEN = "ghs_not_a_real_token_0123456789"
BRANCH = "amigo-reconciler/promote-canary-to-release"
PULLS = f"/repos/{REPO}/pulls"
OPEN_PRS = f"{PULLS}?state=open&head=acme%3Aamigo-reconciler/promote-canary-to-release"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    # The commit was merged from pull request 9 (another, unmerged one also holds it).
    fake.routes[f"/repos/{REPO}/commits/{SHA}/pulls"] = [
        {"number": 8, "merge_commit_sha": "d" * 40},
        {"number": 9, "merge_commit_sha": SHA},
    ]
    fake.write_routes[("POST", f"/repos/{REPO}/issues/9/comments")] = {
        "html_url": "https://github.example/p/9#c1"
    }
    yield fake
    fake.close()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


SM = "service_hierarchical_state_machine_version_number"


def make_repo(tmp_path: Path, canary: int, *, pinned: bool = True) -> Path:
    """A manifests repository whose `origin` is a bare repository beside it; the canary pins
    its state machine version unless not `pinned` (promote refuses a floating source)."""
    pin = f", {SM}: 3" if pinned else ""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    repo = tmp_path / "repo"
    (repo / "services").mkdir(parents=True)
    (repo / "services" / "front.yaml").write_text(
        HEADER + f"    canary: {{agent_version_number: {canary}{pin}}}  # try here\n"
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "canary")
    git(repo, "push", "-q", "origin", "main")
    return repo


class Loop:
    def __init__(self, tmp_path: Path, github: FakeGitHub, emulator: Emulator) -> None:
        self.tmp_path = tmp_path
        self.emulator = emulator
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"repository": {"default_branch": "main"}}))
        self.env = {
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_SHA": SHA,
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_API_URL": github.url,
            "GITHUB_OUTPUT": str(tmp_path / "output"),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_RUN_ID": "7",
            "AMIGO_RECONCILER_DEBUG": "",
        }

    def __call__(self, cwd: Path, *args: str) -> Result:
        emulator = self.emulator

        def open_client(settings: Any, *, emulator_seed: Any = None, on_wait: Any = None) -> Any:
            return AmigoClient(emulator_config(emulator), transport=emulator.transport())

        (self.tmp_path / "output").unlink(missing_ok=True)
        with contextlib.chdir(cwd):
            return CliRunner().invoke(
                main, list(args), env=self.env, obj=Runtime(open_client=open_client)
            )

    def outputs(self) -> dict[str, str]:
        path = self.tmp_path / "output"
        lines = path.read_text().splitlines() if path.exists() else []
        return dict(line.split("=", 1) for line in lines)


def apply_on_merge(loop: Loop, repo: Path) -> None:
    planned = loop(repo, "plan", "services", "--out", "plan.json")
    assert planned.exit_code == 0, planned.output
    applied = loop(repo, "apply", "plan.json", "--auto-approve")
    assert applied.exit_code == 0, applied.output


def test_a_passing_canary_is_posted_and_its_promotion_pull_request_opened_then_updated(
    tmp_path: Path, github: FakeGitHub
) -> None:
    repo = make_repo(tmp_path, canary=4)
    loop = Loop(tmp_path, github, Emulator.from_seed(seed(canary_agent=3)))
    apply_on_merge(loop, repo)

    verified = loop(
        repo, "ci", "verify", "plan.json", "--manifests", "services", "--poll-seconds", "0"
    )
    assert verified.exit_code == 0, verified.output
    assert loop.outputs() == {"passed": "true", "promote": '["Front Desk"]'}
    [(method, path, body)] = github.writes
    assert (method, path) == ("POST", f"/repos/{REPO}/issues/9/comments")
    assert "https://github.example/p/9#c1" in verified.output
    assert "Verification passed" in body["body"] and "Front Desk" in body["body"]
    assert "get-simulation-unit-test-set-runs" in body["body"]  # the reads are reported

    github.routes[OPEN_PRS] = []
    github.write_routes[("POST", PULLS)] = {"number": 12, "html_url": "https://github.example/p/12"}
    opened = loop(
        repo, "ci", "promotion-pr", "--services", '["Front Desk"]', "--manifests", "services"
    )
    assert opened.exit_code == 0, opened.output
    assert loop.outputs() == {
        "action": "created",
        "number": "12",
        "url": "https://github.example/p/12",
    }
    method, path, pr = github.writes[-1]
    assert (method, path) == ("POST", PULLS)
    assert (pr["head"], pr["base"]) == (BRANCH, "main")
    assert "-    release: {agent_version_number: 3}" in pr["body"]
    assert f"+    release: {{agent_version_number: 4, {SM}: 3}}" in pr["body"]
    # The pushed branch holds one commit changing exactly the release line.
    origin = tmp_path / "origin.git"
    diff = git(origin, "diff", "main", BRANCH)
    changed = [
        line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == [
        "-    release: {agent_version_number: 3}",
        f"+    release: {{agent_version_number: 4, {SM}: 3}}",
    ]
    assert git(origin, "rev-list", "--count", f"main..{BRANCH}").strip() == "1"
    # The promotion's plan shows only the release change.
    git(repo, "checkout", "-q", BRANCH)
    planned = loop(repo, "plan", "services", "--format", "json")
    ops = json.loads(planned.stdout)["operations"]
    assert [(o["action"], o["version_set"]) for o in ops] == [("upsert_version_set", "release")]
    # The token went to git only through the environment: not in the repository's config.
    assert TOKEN not in (repo / ".git" / "config").read_text()
    assert TOKEN not in opened.output

    # The next merge's run updates the same pull request (the branch is rebuilt, force-pushed).
    git(repo, "checkout", "-q", "main")
    github.routes[OPEN_PRS] = [{"number": 12}]
    github.write_routes[("PATCH", f"{PULLS}/12")] = {
        "number": 12,
        "html_url": "https://github.example/p/12",
    }
    updated = loop(
        repo, "ci", "promotion-pr", "--services", '["Front Desk"]', "--manifests", "services"
    )
    assert updated.exit_code == 0, updated.output
    assert loop.outputs()["action"] == "updated"
    assert github.writes[-1][:2] == ("PATCH", f"{PULLS}/12")
    assert git(origin, "rev-list", "--count", f"main..{BRANCH}").strip() == "1"


def test_a_failing_canary_is_posted_and_nothing_is_promoted(
    tmp_path: Path, github: FakeGitHub
) -> None:
    repo = make_repo(tmp_path, canary=5)  # agent 5 fails Politeness
    loop = Loop(tmp_path, github, Emulator.from_seed(seed(canary_agent=3)))
    apply_on_merge(loop, repo)
    verified = loop(repo, "ci", "verify", "plan.json", "--poll-seconds", "0")
    assert verified.exit_code == 1, verified.output
    assert loop.outputs() == {"passed": "false", "promote": "[]"}
    body = github.writes[0][2]["body"]
    assert "Politeness" in body and "Nothing to promote" in body
    nothing = loop(repo, "ci", "promotion-pr", "--services", "[]", "--manifests", "services")
    assert nothing.exit_code == 0 and loop.outputs()["action"] == "nothing"
    assert len(github.writes) == 1  # no pull request


def test_promotion_pr_refuses_a_services_value_that_is_not_a_json_list(
    tmp_path: Path, github: FakeGitHub
) -> None:
    loop = Loop(tmp_path, github, Emulator.from_seed(seed()))
    result = loop(tmp_path, "ci", "promotion-pr", "--services", "Front Desk", "--manifests", "x")
    assert result.exit_code == 64, result.output
    assert "expected a JSON list of service names" in result.output


def test_a_direct_push_has_no_pull_request_to_post_on(tmp_path: Path, github: FakeGitHub) -> None:
    github.routes[f"/repos/{REPO}/commits/{SHA}/pulls"] = []
    repo = make_repo(tmp_path, canary=4)
    loop = Loop(tmp_path, github, Emulator.from_seed(seed(canary_agent=3)))
    apply_on_merge(loop, repo)
    verified = loop(repo, "ci", "verify", "plan.json", "--poll-seconds", "0")
    assert verified.exit_code == 0, verified.output
    assert github.writes == []
    assert "the result is in the job summary" in verified.output
    assert "Verification passed" in (tmp_path / "summary.md").read_text()


def test_a_floating_canary_is_not_promoted_and_the_job_says_why(
    tmp_path: Path, github: FakeGitHub
) -> None:
    """Review of #18: a canary that leaves its state machine at "latest" would make release
    float, not serve what was verified; the promotion pull request is not opened."""
    repo = make_repo(tmp_path, canary=4, pinned=False)
    loop = Loop(tmp_path, github, Emulator.from_seed(seed(canary_agent=3)))
    result = loop(
        repo, "ci", "promotion-pr", "--services", '["Front Desk"]', "--manifests", "services"
    )
    assert result.exit_code == 1, result.output
    assert loop.outputs()["action"] == "refused"
    assert "::warning title=promotion refused::" in result.output
    assert f"leaves {SM} unpinned" in result.output
    assert f"leaves {SM} unpinned" in (tmp_path / "summary.md").read_text()
    assert github.writes == []
    assert BRANCH not in git(tmp_path / "origin.git", "branch", "--list")
    assert "Traceback" not in result.output


def test_promotion_pr_promotes_the_environment_it_runs_for(
    tmp_path: Path, github: FakeGitHub
) -> None:
    """Review: a service declared once per environment (`metadata.environments`) could not be
    promoted ("2 manifests declare ..."). With AMIGO_RECONCILER_ENV the job promotes that
    environment's document only, on a branch of its own (two environments never collide)."""
    repo = make_repo(tmp_path, canary=4)
    front = repo / "services" / "front.yaml"
    one = front.read_text()
    staging = one.replace("{name: Front Desk}", "{name: Front Desk, environments: [staging]}")
    production = one.replace("{name: Front Desk}", "{name: Front Desk, environments: [production]}")
    front.write_text(staging + "---\n" + production)
    (repo / "reconciler.yaml").write_text(
        "version: 1\nenvironments:\n  staging: {organization: s}\n  production: {organization: p}\n"
    )
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "envs")
    git(repo, "push", "-q", "origin", "main")
    loop = Loop(tmp_path, github, Emulator.from_seed(seed(canary_agent=3)))
    args = ["ci", "promotion-pr", "--services", '["Front Desk"]', "--manifests", "services"]
    ambiguous = loop(repo, *args)
    assert ambiguous.exit_code == 1 and "pass --env" in ambiguous.output

    loop.env["AMIGO_RECONCILER_ENV"] = "production"
    branch = f"{BRANCH}-production"
    github.routes[f"{OPEN_PRS}-production"] = []
    github.write_routes[("POST", PULLS)] = {"number": 13, "html_url": "https://github.example/p/13"}
    opened = loop(repo, *args)
    assert opened.exit_code == 0, opened.output
    method, path, pr = github.writes[-1]
    assert (method, path, pr["head"]) == ("POST", PULLS, branch)
    assert "in production" in pr["title"]
    diff = git(tmp_path / "origin.git", "diff", "main", branch)
    hunks = [line for line in diff.splitlines() if line.startswith("@@")]
    [hunk] = hunks  # one change, inside the production document (after staging's and `---`)
    assert int(hunk.split()[1][1:].split(",")[0]) > staging.count("\n") + 1
    changed = [
        line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == [
        "-    release: {agent_version_number: 3}",
        f"+    release: {{agent_version_number: 4, {SM}: 3}}",
    ]
