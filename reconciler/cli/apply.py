"""`reconciler apply`: plan (or load a saved plan), confirm, apply, check convergence."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import click

from reconciler.cli.shared import (
    ConnectionOptions,
    EnvOptions,
    PolicyOptions,
    connection_options,
    echo,
    env_options,
    fail,
    format_option,
    handle_errors,
    install_sigint,
    manifest_paths,
    policy_options,
    runtime,
    target_option,
)

if TYPE_CHECKING:
    from reconciler.api.client import AmigoClient
    from reconciler.report import ApplyProgress

# Progress bar only for applies long enough to want one.
PROGRESS_BAR_MIN_OPERATIONS = 10


def install_apply_sigint(
    cancel: threading.Event, abort: threading.Event, applying: threading.Event
) -> Callable[[], None]:
    """First Ctrl-C: send nothing new, finish what is on the wire, report. Second: stop
    now, and still report (the apply returns at once; during the convergence check, a
    KeyboardInterrupt ends the check)."""

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            echo(
                "\nStopping now. Operations in flight may or may not have completed; "
                "run plan to see where things stand.",
                err=True,
            )
            abort.set()
            if not applying.is_set():
                raise KeyboardInterrupt
            return
        cancel.set()
        echo(
            "\nCancelling: nothing new will be sent; waiting for requests already sent "
            "(Ctrl-C again to stop at once).",
            err=True,
        )

    return install_sigint(on_sigint)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation (CI).")
@click.option(
    "--prune",
    is_flag=True,
    help="Also deactivate owned services and delete version sets absent from the manifests.",
)
@target_option
@click.option(
    "--verify",
    "verify_after",
    is_flag=True,
    help="After a converged apply, run the simulation unit test sets covering the version "
    "sets it changed (as `reconciler verify`); exit 1 unless all pass.",
)
@click.option(
    "--rollback-on-failure",
    is_flag=True,
    help="With --verify: when verification fails, restore the changed version sets to their "
    "contents before the apply (sets it created are deleted). Only a failed, errored or "
    "timed-out test set counts as failure; a set no unit test covers is 'not verified'.",
)
@click.option(
    "--require-coverage",
    is_flag=True,
    help="With --rollback-on-failure: a changed version set that no unit test covers counts "
    "as a failure (and is rolled back).",
)
@click.option(
    "--verify-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=1800.0,
    show_default=True,
    help="With --verify: seconds to wait for all runs, overall.",
)
@click.option(
    "--verify-poll-seconds",
    type=click.FloatRange(min=0),
    default=15.0,
    show_default=True,
    help="With --verify: seconds between polls of the runs.",
)
@click.option(
    "--no-rehearse",
    "no_rehearse",
    is_flag=True,
    help="Skip the rehearsal of a plan made from manifests (as for plan; a saved plan "
    "shows the rehearsal it was saved with).",
)
@click.option(
    "--allow-rehearsal-failure",
    is_flag=True,
    help="Apply even when the rehearsal's emulator refuses an operation or the plan would "
    "not converge (the finding is still shown).",
)
@format_option(
    ["text", "json"],
    "json: a machine-readable apply report on stdout (progress goes to stderr).",
)
@policy_options
@env_options
@connection_options
@handle_errors
def apply(
    paths: tuple[str, ...],
    auto_approve: bool,
    prune: bool,
    targets: tuple[str, ...],
    verify_after: bool,
    rollback_on_failure: bool,
    require_coverage: bool,
    verify_timeout: float,
    verify_poll_seconds: float,
    no_rehearse: bool,
    allow_rehearsal_failure: bool,
    fmt: str,
    connection: ConnectionOptions,
    policy: PolicyOptions,
    env: EnvOptions,
) -> None:
    """Plan from manifests (or load a saved PLANFILE), confirm, apply, and check convergence.

    Exit 0 when live state converged, 1 when something failed or still differs
    (or a policy denies the plan, or its rehearsal failed unless
    --allow-rehearsal-failure: nothing is written; or --verify did not pass,
    rolled back or not), 130 when cancelled.
    """
    import json

    from reconciler.redaction import redact
    from reconciler.render import render_plan
    from reconciler.report import (
        ApplyProgress,
        Convergence,
        apply_report_json,
        render_apply_text,
        render_apply_verification_text,
    )
    from reconciler.workflow import (
        apply_and_check,
        check_plan_policy,
        is_saved_plan,
        load_for_apply,
        nothing_verified,
    )

    terminal = runtime()
    as_json = fmt == "json"
    plans = [path for path in paths if is_saved_plan(path)]
    # A saved plan is checked against --env; the project file is looked for from here.
    selection = env.select([] if plans else paths)
    if not plans:
        paths = manifest_paths(selection, paths)
        prune = selection.prune(prune)
    policy = policy.within(selection)
    connection = connection.within(selection)
    if plans and len(paths) > 1:
        raise click.UsageError(
            f"{plans[0]} is a saved plan: apply it on its own (`reconciler apply {plans[0]}`), "
            "or pass only manifests"
        )
    saved = bool(plans)
    if rollback_on_failure and not verify_after:
        raise click.UsageError("--rollback-on-failure needs --verify (it undoes what failed it)")
    if require_coverage and not rollback_on_failure:
        raise click.UsageError("--require-coverage needs --verify --rollback-on-failure")
    if saved and (prune or targets):
        raise click.UsageError(
            "--prune and --target shape a plan when it is made; a saved plan already "
            "carries them (run plan again with the flags you want)"
        )
    color = not as_json and terminal.stream_is_terminal(False) and not os.environ.get("NO_COLOR")
    bar = terminal.stream_is_terminal(True)
    progress: ApplyProgress | None = None
    modules = policy.load()

    def on_wait(message: str) -> None:
        if progress is not None:
            progress.note(message)
        else:
            echo(message, err=True)

    client = connection.open(on_wait=on_wait)
    sending = False
    try:
        applying = load_for_apply(
            client,
            paths,
            saved=saved,
            prune=prune,
            targets=targets,
            selection=selection,
            overrides=connection.overrides(),
            rehearse=not saved and not no_rehearse,
        )
        plan = applying.plan

        shown = render_plan(plan, "text", color=color and not as_json)
        if plan.errors:
            echo(shown, err=True)
            fail(f"Refusing to apply: the plan has {len(plan.errors)} error(s) (above).")
        if modules is not None:
            from reconciler.policy.render import render

            checked = check_plan_policy(modules, plan, policy.namespaces)
            if checked.denied:
                echo(shown, err=True)
                echo(render(checked, "text"), err=True, nl=False)
                fail("Refusing to apply: a policy denies this plan (above); nothing was changed.")
            if checked.findings:
                echo(render(checked, "text"), err=True, nl=False)
        if plan.rehearsal is not None and plan.rehearsal.failed and plan.operations:
            if not allow_rehearsal_failure:
                echo(shown, err=True)
                fail(
                    "Refusing to apply: the rehearsal failed (above); nothing was changed "
                    "(--allow-rehearsal-failure applies anyway)."
                )
            echo("The rehearsal failed; applying because of --allow-rehearsal-failure.", err=True)
        if not plan.operations:
            nothing = nothing_verified() if verify_after else None
            if as_json:
                echo(
                    json.dumps(apply_report_json(plan, None, Convergence(True), nothing), indent=2)
                )
            else:
                echo(shown)
                if nothing is not None:
                    echo(render_apply_verification_text(nothing))
            return
        echo(shown, err=as_json)

        if not auto_approve:
            if not terminal.stdin_is_terminal():
                fail(
                    "stdin is not a terminal, so no one can confirm: pass --auto-approve "
                    "to apply without the prompt (after reviewing the plan, e.g. in CI)"
                )
            count = len(plan.operations)
            try:
                answer = click.prompt(
                    redact(
                        f"\nApply {count} change{'s' if count != 1 else ''} to organization "
                        f"{plan.organization}"
                        + (f" (environment {plan.environment})" if plan.environment else "")
                        + "? Only 'yes' will be accepted"
                    ),
                    default="",
                    show_default=False,
                    err=as_json,
                )
            except click.exceptions.Abort as stopped:
                # click turns Ctrl-C and Ctrl-D into Abort: Ctrl-C is a cancellation (130);
                # Ctrl-D ends the input without a 'yes', so it declines like 'no' (1).
                echo("", err=True)
                _cancelled(client, as_json, 1 if isinstance(stopped.__context__, EOFError) else 130)
            if answer.strip() != "yes":
                _cancelled(client, as_json, 1)

        sending = True
        cancel = client.cancel  # the client sends nothing new once it is set
        abort = threading.Event()
        running = threading.Event()
        progress = ApplyProgress(
            len(plan.operations),
            lambda text: echo(text, err=as_json),
            (lambda raw: echo(raw, err=True, nl=False))
            if bar and len(plan.operations) >= PROGRESS_BAR_MIN_OPERATIONS
            else None,
            color=color,
        )
        restore = install_apply_sigint(cancel, abort, running)
        try:
            outcome = apply_and_check(
                client,
                applying,
                on_event=progress.event,
                cancel=cancel,
                abort=abort,
                running=running,
                after_apply=progress.close,
                prune=prune,
                targets=targets,
            )
        finally:
            restore()
        report, convergence = outcome.report, outcome.convergence
        verified = None
        if verify_after and not abort.is_set() and not report.cancelled:
            if not as_json:
                echo("")
                echo(render_apply_text(report, convergence, color=color))
            verified = _verify_applied(
                client,
                applying,
                outcome,
                rollback=rollback_on_failure,
                require_coverage=require_coverage,
                timeout=verify_timeout,
                poll_seconds=verify_poll_seconds,
                progress=lambda text: echo(text, err=as_json),
                policies=modules,
                namespaces=policy.namespaces,
            )
            if as_json:
                echo(json.dumps(apply_report_json(plan, report, convergence, verified), indent=2))
            else:
                echo("")
                echo(render_apply_verification_text(verified))
        elif as_json:
            echo(json.dumps(apply_report_json(plan, report, convergence), indent=2))
        else:
            echo("")
            echo(render_apply_text(report, convergence, color=color))
        if abort.is_set():
            # Worker threads may still wait on the network: leave without joining them.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        if report.cancelled:
            sys.exit(130)
        if not report.ok or (convergence is not None and not convergence.converged):
            sys.exit(1)
        if verified is not None and not verified.passed:
            sys.exit(1)
    except KeyboardInterrupt:
        if sending:
            raise
        echo("", err=True)
        _cancelled(client, as_json, 130)  # Ctrl-C while reading or planning
    finally:
        client.close()


def _verify_applied(
    client: Any,
    applying: Any,
    outcome: Any,
    *,
    rollback: bool,
    require_coverage: bool,
    timeout: float,
    poll_seconds: float,
    progress: Callable[[str], None],
    policies: Any,
    namespaces: tuple[str, ...],
) -> Any:
    """An `ApplyVerification`: verify, and maybe roll back. The first Ctrl-C stops waiting
    and starts no rollback operation (those on the wire finish); the second stops at once."""
    from reconciler.report import rollback_line
    from reconciler.workflow import verify_applied

    cancel = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        echo(
            "\nCancelling: no more waiting for runs (those started keep running) and no "
            "rollback operation starts; reporting what finished (Ctrl-C again to stop at once).",
            err=True,
        )

    restore = install_sigint(on_sigint)

    def on_event(result: Any) -> None:
        progress(rollback_line(result))

    try:
        return verify_applied(
            client,
            applying,
            outcome,
            rollback=rollback,
            require_coverage=require_coverage,
            timeout=timeout,
            poll_seconds=poll_seconds,
            on_progress=progress,
            on_event=on_event,
            cancel=cancel,
            policies=policies,
            namespaces=namespaces,
        )
    finally:
        restore()


def _cancelled(client: AmigoClient, as_json: bool, code: int) -> NoReturn:
    """Nothing was sent: say so, and with --format json still write a report on stdout."""
    if as_json:
        import json

        from reconciler.report import cancelled_report_json

        config = client.config
        echo(json.dumps(cancelled_report_json(config.organization, config.base_url), indent=2))
    fail("Apply cancelled; nothing was changed.", code)
