"""GitHub Actions integration: the decisions the workflows make, out of YAML and tested.

The reusable workflows call these through `reconciler ci ...`. Each function takes the
run's context (environment variables and the event JSON GitHub writes) and, where it
must ask GitHub, a `GitHubApi` (httpx against `GITHUB_API_URL`, so tests point it at a
fake on 127.0.0.1). Nothing here prints: results are frozen dataclasses whose text the
CLI writes to the job summary and step outputs.

- `decide_plan`: plan, or a clearly labelled skip ("no manifest changes", "plan
  skipped: no credentials for this pull request"), or fail (credentials missing where
  they should be);
- `check_tip`: refuse to plan or apply a commit that is not the tip of the default
  branch (a re-run of an old run, or a run queued behind a newer merge), naming both;
- `find_pr_plan` / `compare_with_pr`: the digest of the plan the pull request showed
  (read from the hidden marker in the bot's sticky comment) against the merge-time plan;
- `plan_comment`, `apply_summary`: the text people read;
- `promotable`, `verification_comment`, `post_on_merged_pr`: after apply on merge,
  which verified canaries may be promoted, and the result posted on the merged pull request;
- `open_promotion_pr`: `reconciler promote` on a branch, pushed, and one pull request
  per (from, to) pair opened or updated (docs/progressive-delivery.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from reconciler.diagnostics import UserError
from reconciler.fit import GITHUB_COMMENT_LIMIT, fenced, take_lines

if TYPE_CHECKING:
    from reconciler.project import Selection
    from reconciler.verify import Verification

# The marker the plan comment carries (one line, invisible when rendered). Only comments
# written by BOT_LOGIN are read back: anyone can type a marker into a comment of their own.
PR_PLAN_MARKER = (
    "<!-- amigo-reconciler pr-plan environment={environment} commit={commit} "
    "digest={digest} manifests={manifests} live={live} -->"
)
_MARKER_RE = re.compile(  # the whole first line of the comment, nowhere else
    r"<!-- amigo-reconciler pr-plan environment=(?P<environment>\S*) commit=(?P<commit>\S*) "
    r"digest=(?P<digest>\S*) manifests=(?P<manifests>\S*) live=(?P<live>\S*) -->"
)
# marocchino/sticky-pull-request-comment keys its comment with this line (appended in
# current versions, prepended in older ones).
_STICKY_HEADER_RE = re.compile(r"<!-- Sticky Pull Request Comment[^\n]*? -->")
BOT_LOGIN = "github-actions[bot]"
DEPENDABOT_LOGIN = "dependabot[bot]"
SUMMARY_LIMIT = 900_000  # GitHub accepts up to 1 MiB per step summary
STALE_PLAN_TEXT = "live state changed since the plan was made"  # workflow.check_saved_plan
SKIPPED_NO_CREDENTIALS = "plan skipped: no credentials for this pull request"
NO_MANIFEST_CHANGES = "no manifest changes"


class GitHubError(UserError):
    """A GitHub API call or the run's context failed; the message says which and why."""


# --- the run's context ------------------------------------------------------------


@dataclass(frozen=True)
class RunContext:
    """What GitHub tells a step about its run (GITHUB_* variables and the event JSON)."""

    event_name: str
    repository: str
    sha: str
    ref: str
    actor: str
    api_url: str
    event: Mapping[str, Any] = field(default_factory=dict)
    token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RunContext:
        missing = [
            name
            for name in ("GITHUB_EVENT_NAME", "GITHUB_REPOSITORY", "GITHUB_SHA")
            if not env.get(name)
        ]
        if missing:
            raise GitHubError(
                f"{', '.join(missing)} not set: `reconciler ci` runs inside GitHub Actions "
                "(or a test that sets the GITHUB_* variables)"
            )
        event: Mapping[str, Any] = {}
        path = env.get("GITHUB_EVENT_PATH")
        if path:
            try:
                loaded = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise GitHubError(
                    f"GITHUB_EVENT_PATH {path}: cannot read the event ({exc})"
                ) from None
            event = loaded if isinstance(loaded, dict) else {}
        return cls(
            event_name=env["GITHUB_EVENT_NAME"],
            repository=env["GITHUB_REPOSITORY"],
            sha=env["GITHUB_SHA"],
            ref=env.get("GITHUB_REF", ""),
            actor=env.get("GITHUB_ACTOR", ""),
            api_url=env.get("GITHUB_API_URL", "https://api.github.com"),
            event=event,
            token=env.get("GITHUB_TOKEN", ""),
        )

    @property
    def pull_request(self) -> Mapping[str, Any]:
        value = self.event.get("pull_request")
        return value if isinstance(value, Mapping) else {}

    @property
    def default_branch(self) -> str:
        repository = self.event.get("repository")
        branch = repository.get("default_branch") if isinstance(repository, Mapping) else None
        if not isinstance(branch, str) or not branch:
            raise GitHubError("the event names no repository.default_branch")
        return branch


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


# --- GitHub's REST API ----------------------------------------------------------------

Fetch = Callable[[str], Any]  # API path -> decoded JSON


class GitHubApi:
    """Requests to the REST API with the run's token (never printed)."""

    def __init__(self, context: RunContext, *, timeout: float = 30.0) -> None:
        import httpx

        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if context.token:
            headers["Authorization"] = f"Bearer {context.token}"
        self._client = httpx.Client(
            base_url=context.api_url.rstrip("/"), headers=headers, timeout=timeout
        )

    def get(self, path: str) -> Any:
        return self.send("GET", path)

    def send(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One request (GET, or a write: POST / PATCH with a JSON body); the answer's JSON."""
        import httpx

        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise GitHubError(f"GitHub API {method} {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code not in (200, 201):
            try:
                message = response.json().get("message", "")
            except (ValueError, AttributeError):
                message = response.text[:200]
            raise GitHubError(f"GitHub API {method} {path}: HTTP {response.status_code}: {message}")
        try:
            return response.json()
        except ValueError:
            raise GitHubError(f"GitHub API {method} {path}: the answer is not JSON") from None

    def close(self) -> None:
        self._client.close()


# --- plan or skip -----------------------------------------------------------------


@dataclass(frozen=True)
class PlanDecision:
    """`plan`, `skip` (a labelled success) or `fail`; `label` is what people read."""

    action: str
    label: str
    detail: str


def manifests_changed(changed: Sequence[str], paths: Sequence[str]) -> bool:
    """Whether any changed file lies under a manifest path or is a workflow file."""
    roots = [p.strip().removeprefix("./").rstrip("/") for p in paths if p.strip()]
    for name in changed:
        name = name.strip()
        if not name:
            continue
        if name.startswith(".github/workflows/"):
            return True  # a changed caller (e.g. prune: true) changes what is planned
        if any(root in ("", ".") or name == root or name.startswith(root + "/") for root in roots):
            return True
    return False


def diff_base(context: RunContext) -> str | None:
    """The commit a pull request or merge group is compared with; None: always plan."""
    if context.event_name in ("pull_request", "pull_request_target"):
        base = _get(context.pull_request, "base", "sha")
    elif context.event_name == "merge_group":
        base = _get(context.event, "merge_group", "base_sha")
    else:
        return None
    return base if isinstance(base, str) and base else None


def changed_files(base: str, *, cwd: str | None = None) -> list[str] | None:
    """Files changed between `base` and HEAD (git); None when git cannot tell (then plan)."""
    import subprocess

    try:
        result = subprocess.run(
            ["git", "diff", "--name-only", "--no-renames", base, "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return [line for line in result.stdout.splitlines() if line.strip()]


def is_dependabot(context: RunContext) -> bool:
    return DEPENDABOT_LOGIN in (context.actor, _get(context.pull_request, "user", "login"))


def is_fork(context: RunContext) -> bool:
    head = _get(context.pull_request, "head", "repo", "full_name")
    return isinstance(head, str) and bool(head) and head != context.repository


def decide_plan(
    context: RunContext,
    *,
    has_credentials: bool,
    changed_files: Sequence[str] | None,
    paths: Sequence[str],
) -> PlanDecision:
    """Plan, or say clearly why not. `changed_files` None means "unknown: plan"."""
    if changed_files is not None and not manifests_changed(changed_files, paths):
        return PlanDecision(
            "skip",
            NO_MANIFEST_CHANGES,
            f"No file under {' '.join(paths)} (or .github/workflows/) changed, so there is "
            "nothing new to plan. This check passes without reading the organization.",
        )
    if has_credentials:
        return PlanDecision("plan", "plan", "Credentials are available: planning.")
    who = "Dependabot" if is_dependabot(context) else "a fork" if is_fork(context) else ""
    if who:
        return PlanDecision(
            "skip",
            SKIPPED_NO_CREDENTIALS,
            f"This pull request comes from {who}, and GitHub gives such runs no repository "
            "secrets, so it cannot read the organization. **This is not a clean plan.** The "
            "manifests were validated; a maintainer can push the branch to this repository "
            "to get a real plan before merging.",
        )
    return PlanDecision(
        "fail",
        "credentials missing",
        "AMIGO_API_KEY is not set for this environment. Add AMIGO_API_KEY, "
        "AMIGO_API_KEY_ID and AMIGO_USER_ID as secrets and AMIGO_ORGANIZATION_ID as a "
        "variable (Settings > Environments), and pass the secrets to the workflow.",
    )


# --- a re-run never rolls back -------------------------------------------------------


@dataclass(frozen=True)
class TipCheck:
    branch: str
    tip: str


def check_tip(context: RunContext, fetch: Fetch) -> TipCheck:
    """Refuse (GitHubError) unless this run's commit is the tip of the default branch."""
    branch = context.default_branch
    if context.ref and context.ref != f"refs/heads/{branch}":
        raise GitHubError(
            f"this run is for {context.ref}, not the default branch {branch}: "
            "only the default branch is applied. Nothing was planned or applied."
        )
    data = fetch(f"/repos/{context.repository}/git/ref/heads/{branch}")
    tip = _get(data, "object", "sha")
    if not isinstance(tip, str) or not tip:
        raise GitHubError(f"GitHub API: no commit for branch {branch}")
    if tip != context.sha:
        raise GitHubError(
            f"this run is for commit {context.sha}, but the tip of {branch} is now {tip}. "
            f"Applying {context.sha[:12]} could roll back what {tip[:12]} changed, so "
            f"nothing was planned or applied. The run for {tip[:12]} applies the newest "
            f"manifests (if it was cancelled or failed, start one: Actions > the apply "
            f"workflow > Run workflow on {branch}). Do not re-run old apply runs."
        )
    return TipCheck(branch, tip)


# --- the plan the pull request showed ------------------------------------------------


@dataclass(frozen=True)
class PrPlan:
    number: int
    environment: str
    commit: str
    digest: str
    manifests: str
    live: str
    url: str = ""


def merged_pull_request(context: RunContext, fetch: Fetch) -> int | None:
    """The number of the pull request that merged as this very commit, or None.

    An open one that merely contains the commit, or one merged as another commit, is
    not it (it showed some other plan).
    """
    pulls = fetch(f"/repos/{context.repository}/commits/{context.sha}/pulls")
    if not isinstance(pulls, list):
        return None
    merged = [
        p
        for p in pulls
        if isinstance(p, dict)
        and p.get("merged_at")
        and p.get("merge_commit_sha") == context.sha
        and isinstance(p.get("number"), int)
    ]
    return int(merged[0]["number"]) if len(merged) == 1 else None


def find_pr_plan(context: RunContext, fetch: Fetch, environment: str) -> PrPlan | None:
    """The newest bot-written plan marker for `environment` on the PR that made this commit."""
    number = merged_pull_request(context, fetch)
    if number is None:
        return None
    found: PrPlan | None = None
    for page in range(1, 31):  # 3,000 comments at most
        comments = fetch(
            f"/repos/{context.repository}/issues/{number}/comments?per_page=100&page={page}"
        )
        if not isinstance(comments, list) or not comments:
            break
        for comment in comments:
            if _get(comment, "user", "login") != BOT_LOGIN:
                continue
            body = comment.get("body") if isinstance(comment, dict) else None
            match = read_marker(body) if isinstance(body, str) else None
            if match and match["environment"] == environment:
                found = PrPlan(  # later comments win: the sticky one is updated in place
                    number=number,
                    environment=environment,
                    commit=match["commit"],
                    digest=match["digest"],
                    manifests=match["manifests"],
                    live=match["live"],
                    url=str(comment.get("html_url", "")),
                )
        if len(comments) < 100:
            break
    return found


def read_marker(body: str) -> re.Match[str] | None:
    """The marker, only as the comment's whole first line (where `plan_comment` puts it).

    A marker further down (in echoed error text, or a manifest value shown in the plan)
    is text, not a marker: it could have been written by whoever wrote that text.
    """
    lines = body.split("\n", 2)
    if len(lines) > 1 and _STICKY_HEADER_RE.fullmatch(lines[0].rstrip("\r")):
        lines = lines[1:]  # the sticky-comment action's own key, if it puts it first
    return _MARKER_RE.fullmatch(lines[0].rstrip("\r"))


@dataclass(frozen=True)
class Comparison:
    """`same`, `differs`, or `unknown`; `text` is markdown for the job summary."""

    status: str
    pr_digest: str
    text: str


def compare_with_pr(
    digest: str, manifests: str, live: str, pr: PrPlan | None, merge_commit: str
) -> Comparison:
    """Compare the merge-time plan with the PR's, and say why they may differ."""
    if pr is None:
        return Comparison(
            "unknown",
            "",
            "> [!WARNING]\n> **No plan from a pull request was found for this commit** (pushed "
            "without a pull request, or the pull request's plan never ran or failed). Nobody "
            "has reviewed a plan for this change: read the plan below before approving.",
        )
    link = f" ([plan comment]({pr.url}))" if pr.url else ""
    where = f"pull request #{pr.number}{link}"
    if pr.digest == digest:
        return Comparison(
            "same",
            pr.digest,
            f"**The plan digest matches the marker on #{pr.number}**{link} (`{digest}`). "
            "The marker is a convenience, not a proof (docs/ci.md): read the plan below.",
        )
    reasons = []
    if pr.manifests != manifests:
        reasons.append(
            f"- **The manifests differ** from those the pull request planned at commit "
            f"`{pr.commit[:12]}`: another pull request merged in between, or the branch was "
            f"pushed after its last plan, and the merge commit `{merge_commit[:12]}` combines them."
        )
    if pr.live != live:
        reasons.append(
            "- **The live organization changed** since the pull request's plan: an edit in "
            "the dashboard or API, or another apply. Applying this plan makes the live state "
            "match the manifests again, which undoes such an edit."
        )
    if not reasons:
        reasons.append(
            "- The same manifests and live state planned differently (a newer reconciler?)."
        )
    return Comparison(
        "differs",
        pr.digest,
        "> [!CAUTION]\n> **This plan differs from the one reviewed on "
        f"{where}.**\n> Pull request plan `{pr.digest}`; merge-time plan `{digest}`.\n\n"
        + "\n".join(reasons)
        + "\n\nApprove only if the plan below is what should happen; otherwise reject the "
        "deployment and open a pull request that makes the manifests say what you want.",
    )


# --- text for people -----------------------------------------------------------------


def _fenced(text: str) -> str:
    """A code block no line of `text` can close (echoed input may hold backticks)."""
    return fenced(text)


def _fenced_lines(text: str, room: int, what: str) -> str:
    """`text` in a code block of at most `room` characters: whole lines while they fit,
    then a line saying how many more the run's log has (reconciler/fit.py)."""
    lines, _ = take_lines(
        text.split("\n"), room - 16, more="[... and {n} more lines: " + what + "]"
    )
    return fenced("\n".join(lines))


VALIDATION_FAILED = "validation failed"


def failure_comment(
    *, environment: str, label: str, detail: str, errors: str, commit: str, run_url: str
) -> str:
    """The sticky comment when the check failed before planning: no digest marker, so
    stage 1 never compares with it, and no older plan stays up looking current."""
    body = (
        f"**amigo-reconciler · `{environment}`** · **{label[0].upper()}{label[1:]}.**\n\n{detail}"
    )
    footer = f"\n\n<sub>Commit {commit[:12]} · [workflow run]({run_url})</sub>\n"
    if errors.strip():
        room = GITHUB_COMMENT_LIMIT - len(body) - len(footer) - 2 - 1_000
        body += "\n\n" + _fenced_lines(errors.strip(), room, "see the workflow run's log")
    return body + footer


def plan_comment(
    *,
    environment: str,
    exit_code: str,
    markdown: str,
    errors: str,
    commit: str,
    run_url: str,
    plan: Mapping[str, Any] | None,
    skipped: PlanDecision | None = None,
    artifact: str = "",
) -> str:
    """The sticky pull-request comment (also the job summary), with the digest marker."""
    artifact = artifact or f"reconciler-plan-{environment}"
    head_line = f"**amigo-reconciler · `{environment}`** · "
    footer = (
        f"\n\n<sub>Commit {commit[:12]} · [workflow run]({run_url}) · "
        f"full plan in the run's `{artifact}` artifact</sub>\n"
    )
    if skipped is not None:
        return f"{head_line}**{skipped.label[0].upper()}{skipped.label[1:]}.**\n\n{skipped.detail}{footer}"
    if exit_code == "0":
        status = "No changes: live state matches the manifests."
    elif exit_code == "2":
        status = "Merging this pull request applies the changes below."
    else:
        status = (
            f"**The plan failed** (exit code {exit_code or 'unknown'}); nothing will be "
            "applied until it succeeds."
        )
    marker = ""
    if plan is not None and exit_code in ("0", "2"):
        marker = (
            PR_PLAN_MARKER.format(
                environment=environment,
                commit=commit,
                digest=plan.get("plan_digest", ""),
                manifests=plan.get("manifests_digest", ""),
                live=plan.get("live_fingerprint", ""),
            )
            + "\n"
        )
    head = f"{marker}{head_line}{status}\n\n"
    room = GITHUB_COMMENT_LIMIT - len(head) - len(footer) - 1_000  # the sticky action's key
    # The renderer fitted the markdown (`--max-chars`); it is never cut here. Rendered with
    # a cap too large for a comment, it is left out whole, with where the full plan is.
    body = markdown.strip()
    if len(body) > room:
        body = (
            f"> **The plan's markdown ({len(body):,} characters) does not fit in a comment** "
            f"(render it with `--max-chars` under {room:,}). The full plan is in the "
            f"`{artifact}` artifact of [this run]({run_url})."
        )
    if exit_code not in ("0", "2") and errors.strip():
        left = room - len(body) - 2
        body = (body + "\n\n" if body else "") + _fenced_lines(
            errors.strip(), left, "see the workflow run's log"
        )
    return head + body + footer


def is_stale_refusal(log: str) -> bool:
    return STALE_PLAN_TEXT in log


def apply_summary(*, environment: str, exit_code: str, log: str, commit: str) -> tuple[str, bool]:
    """(markdown for the job summary, whether the apply succeeded)."""
    lines = [f"### amigo-reconciler apply: `{environment}` at `{commit[:12]}`", ""]
    ok = exit_code == "0"
    if ok:
        lines.append("**Applied the reviewed plan**, and the live state converged.")
    elif is_stale_refusal(log):
        lines += [
            "> [!WARNING]",
            "> **Refused: the plan is stale. Nothing was applied.** The organization changed "
            "after stage 1 planned (the log names the services), so this plan is no longer "
            "what you approved against.",
            "",
            "What to do: if the change was made on purpose outside git, put it into the "
            "manifests by pull request first. Then **re-run all jobs** of this run: stage 1 "
            "plans again (it refuses if a newer commit has landed: then that commit's run "
            "applies), and you review and approve the new plan.",
        ]
    elif exit_code == "130":
        lines.append("**Cancelled.** Operations already done are listed below; re-run all jobs.")
    else:
        lines.append(
            f"**The apply failed** (exit code {exit_code or 'unknown'}); the log below names "
            "each operation. Fix the cause, then **re-run all jobs** of this run: stage 1 "
            "plans what remains, and you approve that."
        )
    # The newest lines matter most: whole lines from the end while they fit.
    kept, _ = take_lines(
        log.strip().split("\n")[::-1],
        SUMMARY_LIMIT,
        more="[... {n} earlier lines: the step log has them all ...]",
    )
    lines += [
        "",
        "<details><summary>Apply log</summary>",
        "",
        fenced("\n".join(kept[::-1])),
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines), ok


def append_file(path: str | None, text: str) -> None:
    """Append to GITHUB_OUTPUT / GITHUB_STEP_SUMMARY (nothing when unset, e.g. locally)."""
    if not path:
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


# --- manifest variables and the drift report -------------------------------------------

_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ManifestVars:
    """`NAME=value` lines for GITHUB_ENV, and a warning per name that is not set."""

    env_lines: tuple[str, ...]
    warnings: tuple[str, ...]


def manifest_vars(names: str, configuration: str, environment: str) -> ManifestVars:
    """The configuration variables `names` lists (spaces or newlines), one line each.

    `configuration` is `toJSON(vars)`. A name that is not a variable name, or a value
    with a line break (which would add lines of its own to GITHUB_ENV), is refused.
    """
    try:
        available = json.loads(configuration or "{}")
    except ValueError:
        raise GitHubError("CONFIGURATION_VARIABLES is not JSON (pass toJSON(vars))") from None
    if not isinstance(available, dict):
        raise GitHubError("CONFIGURATION_VARIABLES is not a JSON object (pass toJSON(vars))")
    lines: list[str] = []
    warnings: list[str] = []
    for name in names.split():
        if not _VARIABLE_NAME.fullmatch(name):
            raise GitHubError(f"manifest-vars: {name!r} is not a variable name")
        if name not in available:
            warnings.append(
                f"configuration variable {name} is not set for environment {environment}; "
                f"${{{name}}} in the manifests keeps its default, if it has one"
            )
            continue
        value = str(available[name])
        if "\n" in value or "\r" in value:
            raise GitHubError(
                f"configuration variable {name} holds a line break; manifest values must "
                "be one line"
            )
        lines.append(f"{name}={value}")
    return ManifestVars(tuple(lines), tuple(warnings))


def drift_summary(*, environment: str, exit_code: str, plan: str, errors: str) -> str:
    """The drift check's job summary: no drift, the drift (the plan), or the failure."""
    lines = [f"### amigo-reconciler drift check: `{environment}`", ""]
    if exit_code == "0":
        lines.append("No drift: the live state matches the manifests.")
    elif exit_code == "2":
        lines += [
            "**Drift found.** The live state differs from the manifests; applying the"
            " manifests would make these changes (or change the manifests to match):",
            "",
            plan.strip(),
        ]
    else:
        lines += [
            f"**The drift check failed** (exit code {exit_code or 'unknown'}):",
            "",
            _fenced(errors.strip()),
        ]
    return "\n".join(lines) + "\n"


def stage1_summary(
    *, apply_environment: str, comparison: Comparison, markdown: str, has_changes: bool
) -> str:
    """Stage 1's job summary: what the approver reads, and what stage 2 will do with it."""
    if has_changes:
        next_step = (
            "Stage 2 applies exactly this plan file (`reconciler apply plan.json`) once a "
            f"reviewer of `{apply_environment}` approves; it refuses, applying nothing, if the "
            "organization changes first."
        )
    else:
        next_step = (
            "**Nothing to apply:** the live state already matches the manifests, so stage 2 "
            "is skipped and nobody is asked to approve."
        )
    return (
        f"### amigo-reconciler: the plan to approve for `{apply_environment}`\n\n"
        f"{comparison.text}\n\n{markdown.strip()}\n\n{next_step}\n"
    )


# --- progressive delivery: verify after merge, then open the promotion PR ----------

PROMOTION_BRANCH = "amigo-reconciler/promote-{source}-to-{target}"
PROMOTION_MARKER = "<!-- amigo-reconciler promotion from={source} to={target} -->"
VERIFY_MARKER = "<!-- amigo-reconciler verify environment={environment} commit={commit} -->"


def promotable(verification: Verification, source: str) -> list[str]:
    """Services whose `source` set passed: every test set covering it ran and passed, and no
    problem names the service. One failure elsewhere does not hold back a passed canary."""
    from reconciler.verify import Outcome

    failed_services = {e.service for e in verification.errors if e.service}
    names = []
    for target in verification.targets:
        if target.version_set != source or target.service in failed_services:
            continue
        pair = (target.service, target.version_set)
        covering = [s for s in verification.test_sets if pair in s.covers]
        if covering and all(s.outcome is Outcome.PASSED for s in covering):
            names.append(target.service)
    return list(dict.fromkeys(names)) if not verification.cancelled else []


def verification_comment(
    verification: Verification,
    *,
    environment: str,
    commit: str,
    run_url: str,
    promote: Sequence[str],
    source: str,
    target: str,
) -> str:
    """The verification as a comment / job summary: the result, what may be promoted."""
    from reconciler.render_verify import render_verification

    lines = [
        VERIFY_MARKER.format(environment=environment, commit=commit),
        f"## Verification after apply ({environment}, `{commit[:12]}`)",
        "",
        render_verification(verification, "markdown").rstrip("\n"),
        "",
    ]
    if promote:
        lines.append(
            f"{source} passed for {', '.join(promote)}: a pull request promoting it to "
            f"{target} is opened or updated."
        )
    else:
        lines.append(f"Nothing to promote: no {source} set passed verification.")
    lines += ["", f"[Workflow run]({run_url})"]
    text = "\n".join(lines) + "\n"
    if len(text) > GITHUB_COMMENT_LIMIT - 1_000:  # left out whole, never cut (reconciler/fit.py)
        lines[3] = (
            f"> **The verification report is too long for a comment** ({len(lines[3]):,} "
            f"characters): the [workflow run]({run_url}) has it in full."
        )
        text = "\n".join(lines) + "\n"
    return text


def post_on_merged_pr(api: GitHubApi, context: RunContext, body: str) -> str | None:
    """Comment `body` on the pull request whose merge made the run's commit; its URL, or
    None when the commit came from no pull request (a direct push: the summary only).

    A comment on the pull request people merged needs only `pull-requests: write`; a
    commit comment would need `contents: write` for the whole job."""
    pulls = api.get(f"/repos/{context.repository}/commits/{context.sha}/pulls")
    merged = [
        p
        for p in (pulls if isinstance(pulls, list) else [])
        if isinstance(p, Mapping)
        and p.get("merge_commit_sha") == context.sha
        and isinstance(p.get("number"), int)
    ]
    if not merged:
        return None
    answer = api.send(
        "POST",
        f"/repos/{context.repository}/issues/{int(merged[0]['number'])}/comments",
        {"body": body},
    )
    return str(_get(answer, "html_url") or "")


@dataclass(frozen=True)
class PromotionPr:
    """What `open_promotion_pr` did: `created`, `updated` or `nothing` (already equal)."""

    action: str  # created, updated, nothing, or refused (every service's source unpinned)
    branch: str
    number: int | None = None
    url: str = ""
    diff: str = ""
    refused: tuple[str, ...] = ()  # why services were left out (a source set not pinned)


def _git(args: Sequence[str], cwd: str, env: Mapping[str, str] | None = None) -> str:
    import os
    import subprocess

    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitHubError(f"git {args[0]}: {exc}") from None
    if result.returncode != 0:
        from reconciler.redaction import redact

        raise GitHubError(
            f"git {args[0]} failed (exit {result.returncode}): "
            f"{redact(result.stderr.strip())[:500]}"
        )
    return result.stdout


def _push_auth(context: RunContext, server_url: str) -> dict[str, str]:
    """The token as an HTTP header for git, through the environment (never the command
    line, which other processes can read, and never persisted in .git/config)."""
    import base64

    if not context.token:
        return {}
    basic = base64.b64encode(f"x-access-token:{context.token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{server_url.rstrip('/')}/.extraheader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
    }


def open_promotion_pr(
    api: GitHubApi,
    context: RunContext,
    *,
    services: Sequence[str],
    source: str,
    target: str,
    paths: Sequence[str],
    cwd: str,
    base: str,
    remote: str = "origin",
    server_url: str = "https://github.com",
    run_url: str = "",
    selection: Selection | None = None,
) -> PromotionPr:
    """Promote `services` from `source` to `target` in the manifests (on a fresh branch from
    HEAD), push it, and open the pull request, or update the open one for this pair.

    `selection` with an environment (--env, AMIGO_RECONCILER_ENV): only the documents of
    that environment are promoted (`metadata.environments`, as plan reads them), on a
    branch of its own, so two environments' promotions never overwrite each other.

    The branch is rebuilt from HEAD every time (force-pushed): the pull request always
    shows one commit, the promotion of what passed on this commit, and its plan preview
    shows exactly the target set's change. Nothing to promote (already equal): no push.
    """
    import functools
    import os
    from pathlib import Path

    from reconciler.promote import (
        NothingToPromote,
        UnpinnedSource,
        plan_promotion,
        write_promotion,
    )
    from reconciler.workflow import select_services

    environment = selection.name if selection is not None else None
    branch = PROMOTION_BRANCH.format(source=source, target=target)
    if environment is not None:
        branch += f"-{environment}"
    variables = selection.variables(os.environ) if selection is not None else None
    select = (
        functools.partial(select_services, selection=selection) if environment is not None else None
    )
    if not services:
        return PromotionPr("nothing", branch)
    root = Path(cwd)
    resolved = [str(root / p) for p in paths]
    refused: tuple[str, ...] = ()
    try:
        promotion = plan_promotion(
            resolved, list(services), source=source, target=target, env=variables, select=select
        )
    except NothingToPromote:
        return PromotionPr("nothing", branch)
    except UnpinnedSource as exc:
        # A floating source would not promote what was verified: leave those services out
        # (saying why) and promote the rest.
        refused = tuple(d.message for d in exc.diagnostics)
        services = [s for s in services if s not in exc.unpinned]
        if not services:
            return PromotionPr("refused", branch, refused=refused)
        try:
            promotion = plan_promotion(
                resolved,
                list(services),
                source=source,
                target=target,
                env=variables,
                select=select,
            )
        except NothingToPromote:
            return PromotionPr("refused", branch, refused=refused)
    _git(["checkout", "-B", branch], cwd)
    write_promotion(promotion)
    import dataclasses

    diff = "".join(
        dataclasses.replace(change, path=os.path.relpath(change.path, cwd)).diff()
        for change in promotion.changes
    )
    files = [str(change.path) for change in promotion.changes]
    _git(["add", "--", *files], cwd)
    names = ", ".join(services)
    where = f" in {environment}" if environment is not None else ""
    title = f"Promote {source} to {target}{where}: {names}"
    _git(
        [
            "-c",
            "user.name=github-actions[bot]",
            "-c",
            "user.email=41898282+github-actions[bot]@users.noreply.github.com",
            "commit",
            "-q",
            "-m",
            f"{title}\n\nVerified on {context.sha}: the {source} set passed its simulation "
            "unit test sets after apply.",
        ],
        cwd,
    )
    _git(
        ["push", "--force", remote, f"HEAD:refs/heads/{branch}"],
        cwd,
        _push_auth(context, server_url),
    )
    body = "\n".join(
        [
            PROMOTION_MARKER.format(source=source, target=target),
            f"The `{source}` version set of {names}{where} passed verification after apply of "
            f"`{context.sha[:12]}`" + (f" ([run]({run_url}))" if run_url else "") + ".",
            f"Merging this makes `{target}` serve it; the plan on this pull request shows "
            f"exactly the `{target}` change.",
            *(
                [
                    "",
                    "Not promoted (pin the versions in the source set, then merge again):",
                    _fenced("\n".join(refused) + "\n"),
                ]
                if refused
                else []
            ),
        ]
    )
    # The diff in whole lines, the fence closed (reconciler/fit.py), never cut mid-line.
    room = GITHUB_COMMENT_LIMIT - len(body) - 1_000
    body += "\n\n" + _fenced_lines(diff, room, "see the commit")
    owner = context.repository.split("/", 1)[0]
    from urllib.parse import quote

    listed = api.get(
        f"/repos/{context.repository}/pulls?state=open&head={quote(f'{owner}:{branch}')}"
    )
    existing = [
        p
        for p in (listed if isinstance(listed, list) else [])
        if isinstance(p, Mapping) and isinstance(p.get("number"), int)
    ]
    if existing:
        number = int(existing[0]["number"])
        answer = api.send(
            "PATCH", f"/repos/{context.repository}/pulls/{number}", {"title": title, "body": body}
        )
        url = str(_get(answer, "html_url") or "")
        return PromotionPr("updated", branch, number, url, diff, refused)
    answer = api.send(
        "POST",
        f"/repos/{context.repository}/pulls",
        {"title": title, "head": branch, "base": base, "body": body},
    )
    return PromotionPr(
        "created",
        branch,
        int(_get(answer, "number") or 0),
        str(_get(answer, "html_url") or ""),
        diff,
        refused,
    )


# --- links to the reviewed commit ------------------------------------------------------


def link_base_from_env(env: Mapping[str, str]) -> str | None:
    """`{server}/{owner/repo}/blob/{sha}` for the commit being reviewed, or None outside
    GitHub Actions: a pull request's head commit (from the event), else GITHUB_SHA."""
    server, repository = env.get("GITHUB_SERVER_URL", ""), env.get("GITHUB_REPOSITORY", "")
    if not server or not repository:
        return None
    sha = env.get("GITHUB_SHA", "")
    path = env.get("GITHUB_EVENT_PATH")
    if path:
        try:
            event = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            event = None
        head = _get(event, "pull_request", "head", "sha")
        if isinstance(head, str) and re.fullmatch(r"[0-9a-f]{40}", head):
            sha = head
    if not re.fullmatch(r"[0-9a-f]{40}", sha):
        return None
    return f"{server.rstrip('/')}/{repository}/blob/{sha}"


# --- the apply result on the merged pull request ----------------------------------------

APPLY_RESULT_MARKER = "<!-- amigo-reconciler apply-result environment={environment} -->"


def apply_result_comment(
    *,
    environment: str,
    exit_code: str,
    report: Mapping[str, Any] | None,
    log: str,
    commit: str,
    run_url: str,
) -> str:
    """The comment on the merged pull request: done, failed, outcome unknown or not
    started, and convergence, from the apply report (`apply --format json`)."""
    head = APPLY_RESULT_MARKER.format(environment=environment) + "\n"
    title = f"**amigo-reconciler apply · `{environment}` · commit `{commit[:12]}`** · "
    outcome = str(report.get("outcome")) if report is not None else ""
    if report is None:
        if is_stale_refusal(log):
            state = (
                "**Not started: refused, the plan is stale.** Nothing was applied; the "
                "organization changed after the plan was approved. Re-run all jobs to plan "
                "and approve again."
            )
        elif exit_code == "130":
            state = "**Not started: cancelled before any operation.**"
        else:
            state = (
                f"**Not started** (exit code {exit_code or 'unknown'}): nothing was applied; "
                "the run's log says why."
            )
        details = ""
    else:
        from reconciler.report import report_lines

        state = {
            "converged": "**Done, and the live state converged.**",
            "applied": "**Done** (convergence was not checked).",
            "failed": "**Failed:** some operations failed; re-run all jobs after fixing the cause.",
            "outcome_unknown": (
                "**Outcome unknown:** some writes may or may not have taken effect; plan "
                "again to see."
            ),
            "cancelled": "**Cancelled:** operations not started were left for the next run.",
            "unchecked": "**Done, but convergence could not be checked.**",
            "not_converged": "**Done, but not converged:** live state still differs.",
        }.get(outcome, f"**{outcome or 'unknown outcome'}**")
        room = GITHUB_COMMENT_LIMIT - 2_000
        lines, _ = take_lines(
            report_lines(dict(report))[1:], room, more="[... and {n} more lines: see the run]"
        )
        details = "\n\n" + fenced("\n".join(lines))
    return f"{head}{title}{state}{details}\n\n<sub>[workflow run]({run_url})</sub>\n"


def read_report(path: str) -> Mapping[str, Any] | None:
    """The apply report `apply --format json` wrote, or None (refused, or no such file)."""
    from reconciler.report import is_report_document

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if is_report_document(data) else None


def post_apply_result(context: RunContext, api: GitHubApi, body: str) -> int | None:
    """Comment `body` on the pull request merged as this commit; its number, or None
    (pushed without a pull request: nothing to comment on)."""
    number = merged_pull_request(context, api.get)
    if number is None:
        return None
    api.send("POST", f"/repos/{context.repository}/issues/{number}/comments", {"body": body})
    return number


# --- one drift issue per environment -----------------------------------------------------

DRIFT_MARKER = "<!-- amigo-reconciler drift environment={environment} digest={digest} -->"
_DRIFT_MARKER_RE = re.compile(
    r"<!-- amigo-reconciler drift environment=(?P<environment>\S*) digest=(?P<digest>\S*) -->"
)


@dataclass(frozen=True)
class DriftIssue:
    """What `sync_drift_issue` did: opened, updated (the drift changed: edited and a
    comment), edited (unchanged drift: the body refreshed, no new comment), closed,
    or none; and the issue's number."""

    action: str
    number: int | None = None


_LABEL_LIMIT = 50  # GitHub's label length limit


def drift_label(environment: str) -> str:
    """`reconciler-drift:<environment>`; a name too long for a label is cut and given a
    hash of the whole name, so two long environments never share one drift issue."""
    label = f"reconciler-drift:{environment}"
    if len(label) <= _LABEL_LIMIT:
        return label
    import hashlib

    suffix = "~" + hashlib.sha256(environment.encode("utf-8")).hexdigest()[:8]
    return label[: _LABEL_LIMIT - len(suffix)] + suffix


def _open_drift_issue(
    context: RunContext, api: GitHubApi, environment: str, label: str
) -> tuple[int, str] | None:
    """(number, digest) of the bot's open drift issue for `environment`, oldest first."""
    issues = api.get(
        f"/repos/{context.repository}/issues?labels={quote(label)}&state=open"
        "&sort=created&direction=asc&per_page=100"
    )
    for issue in issues if isinstance(issues, list) else []:
        if not isinstance(issue, dict) or _get(issue, "user", "login") != BOT_LOGIN:
            continue
        body = issue.get("body") or ""
        match = _DRIFT_MARKER_RE.fullmatch(str(body).split("\n", 1)[0].rstrip("\r"))
        if match and match["environment"] == environment and isinstance(issue.get("number"), int):
            return int(issue["number"]), match["digest"]
    return None


def sync_drift_issue(
    context: RunContext,
    api: GitHubApi,
    *,
    environment: str,
    exit_code: str,
    digest: str,
    markdown: str,
    run_url: str,
    label: str | None = None,
) -> DriftIssue:
    """Keep one issue per environment (by label): open it when drift is found, edit it
    while the drift is unchanged (same plan digest), comment when it changes, close it
    when it clears. A failed check (exit code not 0 or 2) changes nothing."""
    label = label or drift_label(environment)
    found = _open_drift_issue(context, api, environment, label)
    issues = f"/repos/{context.repository}/issues"
    if exit_code == "0":
        if found is None:
            return DriftIssue("none")
        number = found[0]
        api.send(
            "POST",
            f"{issues}/{number}/comments",
            {"body": f"The drift in `{environment}` cleared: no drift in [this run]({run_url})."},
        )
        api.send("PATCH", f"{issues}/{number}", {"state": "closed", "state_reason": "completed"})
        return DriftIssue("closed", number)
    if exit_code != "2":
        return DriftIssue("none", found[0] if found else None)
    body = (
        DRIFT_MARKER.format(environment=environment, digest=digest)
        + f"\n**Drift in `{environment}`**: the live state differs from the manifests. "
        f"Applying the manifests would make these changes (or change the manifests to match). "
        f"Last seen in [this run]({run_url}); this issue closes itself when the drift clears."
        f"\n\n{markdown.strip()}\n"
    )
    if found is None:
        created = api.send(
            "POST",
            issues,
            {"title": f"Drift in {environment}", "body": body, "labels": [label]},
        )
        new = created.get("number") if isinstance(created, dict) else None
        return DriftIssue("opened", new if isinstance(new, int) else None)
    number, previous = found
    api.send("PATCH", f"{issues}/{number}", {"body": body})
    if previous == digest:
        return DriftIssue("edited", number)
    api.send(
        "POST",
        f"{issues}/{number}/comments",
        {
            "body": f"The drift changed (plan `{digest}`, was `{previous}`): see [this run]({run_url})."
        },
    )
    return DriftIssue("updated", number)


# --- what `reconciler ci apply-report --comment-pr` and `ci drift-issue` run -------------


def comment_apply_result(
    context: RunContext,
    *,
    environment: str,
    exit_code: str,
    report_file: str,
    log: str,
    run_url: str,
) -> int | None:
    """Comment the apply result on the pull request merged as this commit; its number."""
    body = apply_result_comment(
        environment=environment,
        exit_code=exit_code,
        report=read_report(report_file),
        log=log,
        commit=context.sha,
        run_url=run_url,
    )
    api = GitHubApi(context)
    try:
        return post_apply_result(context, api, body)
    finally:
        api.close()


def drift_issue(
    context: RunContext,
    *,
    environment: str,
    exit_code: str,
    plan_file: str,
    markdown_file: str,
    run_url: str,
    label: str | None = None,
) -> DriftIssue:
    """`sync_drift_issue` from the drift check's files (the plan's digest and markdown)."""
    from reconciler.planfile import load_plan, plan_digest

    digest = plan_digest(load_plan(plan_file)) if exit_code == "2" else ""
    markdown = Path(markdown_file)
    api = GitHubApi(context)
    try:
        return sync_drift_issue(
            context,
            api,
            environment=environment,
            exit_code=exit_code,
            digest=digest,
            markdown=markdown.read_text(encoding="utf-8") if markdown.is_file() else "",
            run_url=run_url,
            label=label,
        )
    finally:
        api.close()
