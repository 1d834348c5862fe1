"""`reconciler ci ...`: the steps of the GitHub workflows; the logic is reconciler/github.py.

Each step reads the GITHUB_* variables of the run (docs/ci.md).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from reconciler.cli.shared import (
    ConnectionOptions,
    EnvOptions,
    ReconcilerGroup,
    connection_options,
    echo,
    env_options,
    fail,
    handle_errors,
)

if TYPE_CHECKING:
    from reconciler.github import RunContext


@click.group("ci", cls=ReconcilerGroup)
def ci() -> None:
    """Steps of the GitHub workflows (read GITHUB_* variables; see docs/ci.md)."""


def _context() -> RunContext:
    from reconciler.github import RunContext

    return RunContext.from_env(os.environ)


def _outputs(**values: str) -> None:
    from reconciler.github import append_file

    append_file(os.environ.get("GITHUB_OUTPUT"), "".join(f"{k}={v}\n" for k, v in values.items()))


def _summary(text: str) -> None:
    from reconciler.github import append_file

    append_file(os.environ.get("GITHUB_STEP_SUMMARY"), text.rstrip("\n") + "\n")


def _run_url(context: RunContext) -> str:
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    return f"{server}/{context.repository}/actions/runs/{os.environ.get('GITHUB_RUN_ID', '')}"


@ci.command("decide")
@click.argument("paths", nargs=-1, required=True)
@click.option("--environment", default="default", show_default=True, help="Environment name.")
@click.option(
    "--credentials/--no-credentials",
    "has_credentials",
    required=True,
    help="Whether the run has AMIGO_API_KEY (or an emulator seed).",
)
@click.option("--comment", "comment_file", default="comment.md", show_default=True, metavar="FILE")
@handle_errors
def ci_decide(
    paths: tuple[str, ...], environment: str, has_credentials: bool, comment_file: str
) -> None:
    """Plan, or skip with a label (no manifest changes; no credentials): output `decision`."""
    from reconciler.github import (
        changed_files,
        decide_plan,
        diff_base,
        failure_comment,
        plan_comment,
    )

    context = _context()
    base = diff_base(context)
    changed = changed_files(base) if base else None
    decision = decide_plan(
        context, has_credentials=has_credentials, changed_files=changed, paths=paths
    )
    _outputs(decision=decision.action, label=decision.label)
    if decision.action == "fail":
        text = failure_comment(
            environment=environment,
            label=decision.label,
            detail=decision.detail + " Nothing was planned.",
            errors="",
            commit=context.pull_request.get("head", {}).get("sha", context.sha),
            run_url=_run_url(context),
        )
        with open(comment_file, "w", encoding="utf-8") as handle:
            handle.write(text)
        _summary(text)
        fail(f"::error::{decision.detail}")
    echo(f"reconciler ci decide: {decision.label}")
    if decision.action == "skip":
        text = plan_comment(
            environment=environment,
            exit_code="",
            markdown="",
            errors="",
            commit=context.pull_request.get("head", {}).get("sha", context.sha),
            run_url=_run_url(context),
            plan=None,
            skipped=decision,
        )
        with open(comment_file, "w", encoding="utf-8") as handle:
            handle.write(text)
        _summary(text)
        echo(f"::notice title=reconciler plan::{decision.label}")


@ci.command("check-tip")
@handle_errors
def ci_check_tip() -> None:
    """Exit 1 unless this run's commit is the tip of the default branch (naming both)."""
    from reconciler.github import GitHubApi, GitHubError, check_tip

    context = _context()
    api = GitHubApi(context)
    try:
        tip = check_tip(context, api.get)
    except GitHubError as exc:
        _summary(f"> [!CAUTION]\n> **Refused: not the tip of the default branch.** {exc}\n")
        raise
    finally:
        api.close()
    echo(f"commit {tip.tip} is the tip of {tip.branch}")


@ci.command("compare")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--environment",
    default="default",
    show_default=True,
    help="The environment whose pull-request plan to compare with.",
)
@click.option(
    "--apply-environment",
    default="",
    metavar="NAME",
    help="The environment stage 2 applies in (its reviewers approve); default: --environment.",
)
@click.option("--markdown", "markdown_file", default="plan.md", show_default=True, metavar="FILE")
@handle_errors
def ci_compare(
    plan_file: str, environment: str, apply_environment: str, markdown_file: str
) -> None:
    """Compare the plan's digest with the one on the pull request; write stage 1's summary."""
    from pathlib import Path

    from reconciler.github import (
        Comparison,
        GitHubApi,
        GitHubError,
        compare_with_pr,
        find_pr_plan,
        stage1_summary,
    )
    from reconciler.workflow import load_saved_plan

    plan, digest = load_saved_plan(plan_file)
    context = _context()
    api = GitHubApi(context)
    try:
        pr = find_pr_plan(context, api.get, environment)
        comparison = compare_with_pr(
            digest, plan.manifests_digest, plan.live_fingerprint, pr, context.sha
        )
    except GitHubError as exc:
        comparison = Comparison(
            "unknown",
            "",
            f"> [!WARNING]\n> **Could not read the pull request's plan** ({exc}); "
            "nothing was compared: read the plan below before approving.",
        )
    finally:
        api.close()
    _outputs(digest=digest, match=comparison.status, **{"pr-digest": comparison.pr_digest})
    markdown = Path(markdown_file)
    _summary(
        stage1_summary(
            apply_environment=apply_environment or environment,
            comparison=comparison,
            markdown=markdown.read_text(encoding="utf-8") if markdown.is_file() else "",
            has_changes=plan.has_changes,
        )
    )
    if comparison.status == "differs":
        echo(
            f"::warning title=plan differs from the pull request's::merge-time plan {digest}, "
            f"pull request plan {comparison.pr_digest}; see the job summary"
        )
    echo(f"plan digest {digest}: {comparison.status}")


@ci.command("comment")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--environment", default="default", show_default=True, help="Environment name.")
@click.option(
    "--exit-code", required=True, help="The plan step's exit code (empty: the plan did not run)."
)
@click.option(
    "--validation",
    default="",
    metavar="OUTCOME",
    help="The validate step's outcome; `failure` writes a 'validation failed' comment "
    "with the errors of validating PATHS.",
)
@click.option("--artifact", default="", metavar="NAME", help="The plan artifact's name.")
@click.option("--commit", required=True, help="The commit planned (the pull request's head).")
@click.option("--run-url", required=True, help="Link to the workflow run.")
@click.option("--plan-file", default="plan.json", show_default=True, metavar="FILE")
@click.option("--markdown", "markdown_file", default="plan.md", show_default=True, metavar="FILE")
@click.option("--errors", "errors_file", default="plan.err", show_default=True, metavar="FILE")
@click.option("--out", "out", default="comment.md", show_default=True, metavar="FILE")
@handle_errors
def ci_comment(
    paths: tuple[str, ...],
    environment: str,
    exit_code: str,
    validation: str,
    artifact: str,
    commit: str,
    run_url: str,
    plan_file: str,
    markdown_file: str,
    errors_file: str,
    out: str,
) -> None:
    """Write the sticky comment and the job summary: the plan (with the hidden digest
    marker), or why there is none, so an older plan never stays up looking current."""
    import json
    from pathlib import Path

    from reconciler.diagnostics import UserError
    from reconciler.github import VALIDATION_FAILED, failure_comment, plan_comment
    from reconciler.workflow import load_desired

    def read(name: str) -> str:
        path = Path(name)
        return path.read_text(encoding="utf-8") if path.is_file() else ""

    if not exit_code.strip() or exit_code == "unknown":  # the plan did not run
        if validation == "failure":
            try:
                import os

                from reconciler.cli.shared import EnvOptions

                # The environment the workflow planned (AMIGO_RECONCILER_ENV): its ${VAR}s.
                name = os.environ.get("AMIGO_RECONCILER_ENV") or None
                load_desired(paths, EnvOptions(name).select(paths))
                errors = "(validating again found no error: see the workflow run's log)"
            except UserError as exc:
                errors = "\n".join(str(diag) for diag in exc.diagnostics)
            except click.UsageError as exc:  # AMIGO_RECONCILER_ENV names no environment
                errors = exc.format_message()
            label = VALIDATION_FAILED
            detail = "The manifests have errors, so nothing was planned. Fix them and push."
        elif Path(out).is_file():
            return  # `ci decide` wrote it and the summary (a labelled skip, or a failure)
        else:
            label, errors = "the check failed before planning", ""
            detail = "Nothing was planned: the workflow run's log says which step failed."
        text = failure_comment(
            environment=environment,
            label=label,
            detail=detail,
            errors=errors,
            commit=commit,
            run_url=run_url,
        )
        Path(out).write_text(text, encoding="utf-8")
        _summary(text)
        return

    try:
        saved = json.loads(read(plan_file) or "null")
    except ValueError:
        saved = None
    text = plan_comment(
        environment=environment,
        exit_code=exit_code,
        markdown=read(markdown_file),
        errors=read(errors_file),
        commit=commit,
        run_url=run_url,
        plan=saved if isinstance(saved, dict) else None,
        artifact=artifact,
    )
    Path(out).write_text(text, encoding="utf-8")
    _summary(text)


@ci.command("apply-report")
@click.option("--environment", default="default", show_default=True, help="Environment name.")
@click.option("--exit-code", required=True, help="The apply step's exit code.")
@click.option("--log", "log_file", default="apply.log", show_default=True, metavar="FILE")
@click.option(
    "--report",
    "report_file",
    default="apply.json",
    show_default=True,
    metavar="FILE",
    help="The apply report (`apply --format json`), if the apply wrote one.",
)
@click.option(
    "--comment-pr",
    is_flag=True,
    help="Comment the result on the pull request merged as this commit.",
)
@handle_errors
def ci_apply_report(
    environment: str, exit_code: str, log_file: str, report_file: str, comment_pr: bool
) -> None:
    """Write the apply's job summary (what to do after a stale refusal), comment the result
    on the merged pull request; exit 1 unless applied."""
    from pathlib import Path

    from reconciler.github import GitHubError, apply_summary, comment_apply_result

    path = Path(log_file)
    log = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    text, ok = apply_summary(
        environment=environment,
        exit_code=exit_code,
        log=log,
        commit=os.environ.get("GITHUB_SHA", ""),
    )
    _summary(text)
    if comment_pr:
        context = _context()
        try:
            number = comment_apply_result(
                context,
                environment=environment,
                exit_code=exit_code,
                report_file=report_file,
                log=log,
                run_url=_run_url(context),
            )
            echo(f"apply result commented on #{number}" if number else "no merged pull request")
        except GitHubError as exc:  # the apply's own outcome decides the exit code
            echo(f"::warning::could not comment the apply result: {exc}")
    if not ok:
        fail(
            f"::error::reconciler apply did not apply (exit code {exit_code}); see the job summary"
        )


@ci.command("plan-info")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--expect-digest",
    metavar="DIGEST",
    default=None,
    help="Exit 1 unless the plan has this digest (the one the approver saw); empty: exit 1.",
)
@handle_errors
def ci_plan_info(plan_file: str, expect_digest: str | None) -> None:
    """Print the plan's digest; set outputs `digest` and `has-changes`."""
    from reconciler.workflow import load_saved_plan

    if expect_digest is not None and not expect_digest.strip():
        fail(
            "::error::--expect-digest is empty: stage 1 reported no digest, so nothing shows "
            "which plan the approver saw; nothing was applied: re-run all jobs"
        )
    plan, digest = load_saved_plan(plan_file)
    if expect_digest is not None and digest != expect_digest:
        fail(
            f"::error::{plan_file} has digest {digest}, not {expect_digest} (the plan stage 1 "
            "showed); nothing was applied: re-run all jobs to plan and approve again"
        )
    _outputs(digest=digest, **{"has-changes": str(plan.has_changes).lower()})
    echo(digest)


@ci.command("export-vars")
@click.option("--environment", default="default", show_default=True, help="Environment name.")
@handle_errors
def ci_export_vars(environment: str) -> None:
    """Export the configuration variables VARIABLE_NAMES lists (from CONFIGURATION_VARIABLES,
    i.e. toJSON(vars)) to GITHUB_ENV for ${VAR} in the manifests, one line each."""
    from reconciler.github import append_file, manifest_vars

    found = manifest_vars(
        os.environ.get("VARIABLE_NAMES", ""),
        os.environ.get("CONFIGURATION_VARIABLES", ""),
        environment,
    )
    for warning in found.warnings:
        echo(f"::warning::{warning}")
    append_file(os.environ.get("GITHUB_ENV"), "".join(line + "\n" for line in found.env_lines))
    echo(f"exported {len(found.env_lines)} manifest variable(s)")


@ci.command("drift-report")
@click.option("--environment", default="default", show_default=True, help="Environment name.")
@click.option("--exit-code", required=True, help="The plan step's exit code.")
@click.option("--markdown", "markdown_file", default="plan.md", show_default=True, metavar="FILE")
@click.option("--errors", "errors_file", default="plan.err", show_default=True, metavar="FILE")
@handle_errors
def ci_drift_report(environment: str, exit_code: str, markdown_file: str, errors_file: str) -> None:
    """Write the drift check's job summary (no drift, the drift, or why the check failed)."""
    from pathlib import Path

    from reconciler.github import drift_summary

    def read(name: str) -> str:
        path = Path(name)
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""

    _summary(
        drift_summary(
            environment=environment,
            exit_code=exit_code,
            plan=read(markdown_file),
            errors=read(errors_file),
        )
    )


@ci.command("verify")
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.option(
    "--manifests",
    "paths",
    multiple=True,
    metavar="PATH",
    help="Manifests whose verify.unit_test_sets name the test sets (repeatable).",
)
@click.option("--environment", default="default", show_default=True, help="Environment name.")
@click.option("--promote-from", "source", default="canary", show_default=True, metavar="SET")
@click.option("--promote-to", "target", default="release", show_default=True, metavar="SET")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=1800.0)
@click.option("--poll-seconds", type=click.FloatRange(min=0), default=15.0)
@click.option(
    "--post/--no-post",
    default=True,
    show_default=True,
    help="Also post the result on the pull request merged as this commit "
    "(needs pull-requests: write).",
)
@connection_options
@handle_errors
def ci_verify(
    plan_file: str,
    paths: tuple[str, ...],
    environment: str,
    source: str,
    target: str,
    timeout: float,
    poll_seconds: float,
    post: bool,
    connection: ConnectionOptions,
) -> None:
    """After apply on merge: verify the sets the applied plan changed, post the result, and
    set outputs `passed` and `promote` (a JSON list of the services whose --promote-from
    set passed). Exit 1 unless every test set passed."""
    import json
    import threading

    from reconciler.github import (
        GitHubApi,
        post_on_merged_pr,
        promotable,
        verification_comment,
    )
    from reconciler.workflow import load_saved_plan, verification_targets, verify, verify_plan_pairs

    context = _context()
    saved, _ = load_saved_plan(plan_file)
    pairs = verify_plan_pairs(saved)
    if not pairs:
        _summary(f"{plan_file} changed no version set: nothing to verify.")
        _outputs(passed="true", promote="[]")
        return
    client = connection.open(on_wait=lambda message: echo(message, err=True))
    try:
        result = verify(
            client,
            verification_targets(pairs, paths),
            saved=saved,
            timeout=timeout,
            poll_seconds=poll_seconds,
            on_progress=lambda message: echo(message, err=True),
            cancel=threading.Event(),
        )
    finally:
        client.close()
    promote = promotable(result, source)
    body = verification_comment(
        result,
        environment=environment,
        commit=context.sha,
        run_url=_run_url(context),
        promote=promote,
        source=source,
        target=target,
    )
    _summary(body)
    if post:
        api = GitHubApi(context)
        try:
            url = post_on_merged_pr(api, context, body)
        finally:
            api.close()
        echo(
            f"Posted the verification: {url}"
            if url
            else "No pull request was merged as this commit: the result is in the job summary."
        )
    _outputs(passed=str(result.passed).lower(), promote=json.dumps(promote))
    if not result.passed:
        fail("::error::verification after apply did not pass; see the job summary")


@ci.command("promotion-pr")
@click.option(
    "--services",
    "services_json",
    required=True,
    metavar="JSON",
    help='The services to promote, a JSON list (`ci verify`\'s `promote` output), e.g. ["A"].',
)
@click.option("--from", "source", default="canary", show_default=True, metavar="SET")
@click.option("--to", "target", default="release", show_default=True, metavar="SET")
@click.option("--manifests", "paths", multiple=True, required=True, metavar="PATH")
@click.option("--base", default=None, metavar="BRANCH", help="Default: the default branch.")
@click.option("--remote", default="origin", show_default=True)
@env_options
@handle_errors
def ci_promotion_pr(
    services_json: str,
    source: str,
    target: str,
    paths: tuple[str, ...],
    base: str | None,
    remote: str,
    env: EnvOptions,
) -> None:
    """Run `reconciler promote` on a branch, push it, and open (or update) its pull request.
    Sets outputs `action` (created, updated, nothing, refused), `number` and `url`.

    A service whose source set leaves a version unpinned is left out with a warning (its
    target would float to "latest", not serve what was verified); exit 1 when that leaves
    nothing to promote. With --env (default: $AMIGO_RECONCILER_ENV), only that
    environment's documents are promoted (`metadata.environments`), on a branch of its own."""
    import json

    from reconciler.github import GitHubApi, GitHubError, open_promotion_pr

    try:
        services = json.loads(services_json)
    except ValueError:
        services = None
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise click.BadParameter(
            f'expected a JSON list of service names, e.g. ["Front Desk"]; got {services_json!r}',
            param_hint="--services",
        )
    selection = env.select(paths)
    context = _context()
    api = GitHubApi(context)
    try:
        if base is None:
            try:
                base = context.default_branch
            except GitHubError:
                base = "main"
        result = open_promotion_pr(
            api,
            context,
            services=services,
            source=source,
            target=target,
            paths=paths,
            cwd=os.getcwd(),
            base=base,
            remote=remote,
            server_url=os.environ.get("GITHUB_SERVER_URL", "https://github.com"),
            run_url=_run_url(context),
            selection=selection,
        )
    finally:
        api.close()
    from reconciler.diagnostics import workflow_command

    for reason in result.refused:  # a floating source set: not promoted, say so where seen
        echo(workflow_command("warning", reason, {"title": "promotion refused"}))
    if result.refused:
        _summary(
            f"Not promoted from {source} to {target} (pin the versions in {source}, then merge "
            "again):\n\n" + "\n".join(f"- {reason}" for reason in result.refused) + "\n"
        )
    if result.action == "refused":
        _outputs(action=result.action, number="", url="")
        sys.exit(1)
    if result.action == "nothing":
        _summary(f"Nothing to promote from {source} to {target}.")
    else:
        _summary(
            f"Promotion pull request {result.action}: {result.url}\n\n```diff\n{result.diff}```"
        )
        echo(f"Promotion pull request {result.action}: {result.url}")
    _outputs(action=result.action, number=str(result.number or ""), url=result.url)


@ci.command("drift-issue")
@click.option("--environment", default="default", show_default=True, help="Environment name.")
@click.option("--exit-code", required=True, help="The plan step's exit code (0, 2, or other).")
@click.option("--plan-file", default="plan.json", show_default=True, metavar="FILE")
@click.option("--markdown", "markdown_file", default="plan.md", show_default=True, metavar="FILE")
@click.option("--label", default=None, help="The issue's label (default reconciler-drift:ENV).")
@handle_errors
def ci_drift_issue(
    environment: str, exit_code: str, plan_file: str, markdown_file: str, label: str | None
) -> None:
    """Open, edit, comment or close the environment's one drift issue."""
    from reconciler.github import drift_issue

    context = _context()
    done = drift_issue(
        context,
        environment=environment,
        exit_code=exit_code,
        plan_file=plan_file,
        markdown_file=markdown_file,
        run_url=_run_url(context),
        label=label,
    )
    echo(f"drift issue: {done.action}" + (f" #{done.number}" if done.number else ""))
