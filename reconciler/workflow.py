"""The reconcile sequences, in one place: which stage runs when, and on what.

The stages are pure or single-purpose (identity matches, `live` reads, `planner`
plans, `applier` executes, `convergence` compares, `policy` judges, `verify`
runs test sets); this module strings them together for the CLI and the GitHub
integration, which call these functions and never the stages directly:

- manifests → desired: `load_desired`;
- read → plan: `make_plan` (counts the API reads the plan took), and its
  rehearsal on an in-memory copy of what it read: `rehearse_plan`;
- saved plan → stale check → apply → convergence check: `load_for_apply`,
  `check_saved_plan`, `apply_and_check`;
- policies: `load_policies`, `check_policy`;
- export: `read_for_export`, then `export_seed` / `write_seed` and
  `export_manifests` / `manifests_text` / `write_manifests`;
- verify: `verification_targets`, `verify`;
- apply --verify [--rollback-on-failure]: `verify_applied`.

The core never prints: progress and waits go to the callbacks given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from reconciler.api.client import AmigoClient
    from reconciler.applier import ApplyReport
    from reconciler.convergence import Convergence
    from reconciler.diagnostics import Diagnostic
    from reconciler.export import ExportResult, Organization
    from reconciler.model import DesiredState, LiveState, UnitTest
    from reconciler.plan import Plan
    from reconciler.policy import JsonInput, Policies, PolicyResult, TestResult
    from reconciler.policy.engine import Module
    from reconciler.project import Project as Project  # for the CLI's annotations
    from reconciler.project import Selection as Selection  # for the CLI's annotations
    from reconciler.rollback import ApplyVerification
    from reconciler.verify import Verification, VerifyTarget

    # What `reconciler show` reads: a plan, an apply report, `plan --env all`, a verification.
    SavedOutput = Plan | dict[str, Any] | Verification | tuple[tuple[str, Plan], ...]

STALE_SERVICES_SHOWN = 10  # services a stale-plan refusal names before "and N more"


# --- environments (reconciler.yaml) ------------------------------------------------


def find_and_load_project(config: str | None, paths: Sequence[str]) -> Project | None:
    """The project file (--config, else found from the manifest paths), validated; None if none."""
    from reconciler.project import find_project, load_project

    found = find_project(config, paths)
    return load_project(found) if found is not None else None


def select_environment(config: str | None, name: str | None, paths: Sequence[str]) -> Selection:
    """The project file and the environment `name` in it (UserError: none, or unknown name)."""
    from reconciler.diagnostics import UsageProblem, UserError
    from reconciler.project import ALL, Selection

    project = find_and_load_project(config, paths)
    if name is None:
        return Selection(project, None)
    if project is None:
        import os

        # No paths: a saved plan, whose project file is looked for from the current directory.
        where = "the manifests" if paths else f"the current directory ({os.getcwd()})"
        raise UserError(
            f"--env {name}: no reconciler.yaml found at or above {where}, up to the "
            "repository root; pass --config FILE (docs/environments.md)"
        )
    if name == ALL:
        raise UsageProblem(f"--env {ALL} is for `reconciler plan` only: name one environment")
    return Selection(project, project.environment(name))


def means_every_environment(name: str | None) -> bool:
    """`--env all`: plan every environment of the project file into one report."""
    from reconciler.project import ALL

    return name == ALL


def each_environment(config: str | None, paths: Sequence[str]) -> list[Selection]:
    """`--env all`: a selection per environment of the project file, in file order."""
    from reconciler.diagnostics import UserError
    from reconciler.project import Selection

    project = find_and_load_project(config, paths)
    if project is None:
        raise UserError("--env all: no reconciler.yaml found; pass --config FILE")
    return [Selection(project, env) for env in project.environments]


# --- manifests → desired ---------------------------------------------------------


def load_desired(paths: Sequence[str], selection: Selection | None = None) -> DesiredState:
    """The manifests under `paths`, validated (UserError lists every problem).

    With a selection: `${VAR}` is filled from its variables under the process
    environment, and a service whose `metadata.environments` leaves the selected
    environment out is dropped (its names are checked against the project file).
    """
    import os

    from reconciler.manifests import load_manifests

    if selection is None:
        return select_services(load_manifests(paths), None)
    desired = load_manifests(paths, env=selection.variables(os.environ))
    return select_services(desired, selection)


def select_services(desired: DesiredState, selection: Selection | None) -> DesiredState:
    """The services declared for the selected environment.

    A service without `metadata.environments` is in every environment; one with it
    only in those it lists, and never when no environment is selected (so forgetting
    --env cannot put a staging-only service in production). With a project file, the
    names listed must be its environments.
    """
    from reconciler.diagnostics import Diagnostic, UserError, close_matches

    project = selection.project if selection is not None else None
    name = selection.name if selection is not None else None
    known = project.names if project is not None else None
    errors = []
    kept = []
    for service in desired.services:
        names = service.environments
        if names is None:
            kept.append(service)
            continue
        for unknown in (n for n in names if known is not None and n not in known):
            close = close_matches(unknown, known or (), cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            errors.append(
                Diagnostic(
                    f"metadata.environments: {unknown!r} is not an environment of "
                    f"{project.path if project else ''}; {hint}known: {', '.join(known or ())}",
                    service=service.name,
                    pos=service.pos("metadata.environments"),
                )
            )
        if name is not None and name in names:
            kept.append(service)
    if errors:
        raise UserError(errors)
    return replace(desired, services=tuple(kept))


# --- read → plan -----------------------------------------------------------------


def make_plan(
    client: AmigoClient,
    desired: DesiredState,
    *,
    prune: bool = False,
    targets: Sequence[str] = (),
    check_targets: bool = True,
    environment: str | None = None,
    rehearse: bool = False,
    overrides: Sequence[str] = (),
) -> Plan:
    """Read what the plan needs, plan, and check deletions against unit tests.

    `overrides` (`Selection.overrides`: a flag replacing the environment's organization
    or base URL) become warnings, so every rendering of the plan says so.

    Reads: ceil(services / 20) list pages, at most one agents and one state
    machines list (only those the planner says it needs), and one unit-test call
    when something would be removed. The plan records the reads it took.
    `rehearse`: then apply it to an in-memory copy of what was read
    (`rehearse_plan`); the plan records the rehearsal.
    """
    from reconciler.diagnostics import Diagnostic, Severity
    from reconciler.live import fetch_live, fetch_services, fetch_unit_tests
    from reconciler.planner import plan_against, references_needed

    before = dict(client.request_counts)
    services = fetch_services(client)
    agents, state_machines = references_needed(desired, services, targets)
    live = fetch_live(client, services, agents=agents, state_machines=state_machines)
    read_tests: list[UnitTest] = []

    def read_unit_tests(service_ids: Sequence[str]) -> Sequence[UnitTest]:
        tests = fetch_unit_tests(client, service_ids)
        read_tests.extend(tests)
        return tests

    plan = plan_against(
        desired,
        live,
        organization=client.config.organization,
        base_url=client.config.base_url,
        prune=prune,
        targets=targets,
        read_unit_tests=read_unit_tests,
        check_targets=check_targets,
    )
    after = client.request_counts
    reads = {
        op: after.get(op, 0) - before.get(op, 0)
        for op in sorted(after)
        if op.startswith("get-") and after.get(op, 0) - before.get(op, 0) > 0
    }
    noted = tuple(Diagnostic(note, severity=Severity.WARNING) for note in overrides)
    plan = replace(
        plan, api_reads=reads, environment=environment, warnings=(*noted, *plan.warnings)
    )
    if rehearse:
        plan = rehearse_plan(plan, desired, live, read_tests)
    return plan


def rehearse_plan(
    plan: Plan, desired: DesiredState, live: LiveState, unit_tests: Sequence[UnitTest] = ()
) -> Plan:
    """The plan with its rehearsal: applied to an emulator seeded with what the plan read.

    No API call: the emulator is in-process. A plan with errors is never applied,
    so it is not rehearsed either.
    """
    if plan.errors:
        return plan
    from reconciler.rehearsal import rehearse

    return replace(plan, rehearsal=rehearse(plan, desired, live, unit_tests=unit_tests))


def save_plan(plan: Plan, path: str) -> None:
    """Write the plan file `reconciler apply FILE` takes (checksummed JSON)."""
    from reconciler import planfile

    planfile.save_plan(plan, path)


def load_saved_plan(path: str) -> tuple[Plan, str]:
    """A saved plan (refused if modified) and its content digest."""
    from reconciler.planfile import plan_digest

    plan = load_plan_file(path)
    return plan, plan_digest(plan)


def load_plan_file(path: str) -> Plan:
    """A saved plan; a file the reconciler wrote that is not one (an apply report) is
    named as what it is, with the command that reads it, not as a modified plan."""
    from reconciler.diagnostics import UserError
    from reconciler.planfile import plan_from_dict, read_json
    from reconciler.report import is_report_document

    data = read_json(path, "plan file", "pass a file written by `reconciler plan --out`")
    what = None
    if is_report_document(data):
        what = "an apply report"
    elif isinstance(data, dict) and set(data) == {"environments"}:
        what = "a `plan --env all` report (a plan per environment)"
    elif isinstance(data, dict) and {"passed", "targets", "test_sets"} <= set(data):
        what = "a verify report"
    if what is not None:
        raise UserError(
            f"{path} is {what}, not a plan: `reconciler show {path}` renders it; "
            "pass a file written by `reconciler plan --out FILE`"
        )
    return plan_from_dict(data, name=f"plan file {path}")


def load_saved_output(path: str) -> SavedOutput:
    """A saved plan, apply report, `plan --env all --format json` or `verify --format json`,
    recognised by content (`reconciler show`); a malformed apply report is refused."""
    from pydantic import ValidationError

    from reconciler.diagnostics import UserError
    from reconciler.planfile import plan_from_dict, read_json
    from reconciler.render_verify import verification_from_dict
    from reconciler.report import is_report_document, report_problems

    data = read_json(
        path,
        "file",
        "pass a file written by `reconciler plan --out FILE` or "
        "`reconciler apply --format json > FILE`",
    )
    if is_report_document(data):
        problems = report_problems(data)
        if problems:
            raise UserError(
                f"{path} is a malformed apply report (schemas/apply-report.v1.schema.json): "
                + "; ".join(problems[:5])
                + ("; …" if len(problems) > 5 else "")
            )
        return dict(data)
    if isinstance(data, dict) and "checksum" in data:
        return plan_from_dict(data, name=f"plan file {path}")
    if isinstance(data, dict) and set(data) == {"environments"}:
        environments = data["environments"]
        if not isinstance(environments, dict) or not all(
            isinstance(v, dict) for v in environments.values()
        ):
            raise UserError(
                f"{path}: `environments` should map each environment's name to its plan "
                "(as `reconciler plan --env all --format json` writes it)"
            )
        return tuple(
            (str(name), plan_from_dict(plan, name=f"{path}: environment {name}"))
            for name, plan in environments.items()
        )
    if isinstance(data, dict) and {"passed", "targets", "test_sets"} <= set(data):
        try:
            return verification_from_dict(data)
        except ValidationError as exc:
            from reconciler.report import pydantic_problem

            problems = [pydantic_problem(e) for e in exc.errors()]
            raise UserError(
                f"{path} is a malformed verification (`reconciler verify --format json`): "
                + "; ".join(problems[:5])
            ) from None
    raise UserError(
        f"{path} is neither a saved plan (`reconciler plan --out FILE` or "
        "`reconciler plan --env all --format json > FILE`), an apply report "
        "(`reconciler apply --format json > FILE`) nor a verification "
        "(`reconciler verify --format json > FILE`)"
    )


def manifest_files(paths: Sequence[str]) -> list[str]:
    """`paths` without the files that are not Amigo manifests (the pre-commit hook)."""
    from reconciler.manifest_files import manifest_paths

    return manifest_paths(paths)


def project_files(paths: Sequence[str]) -> list[str]:
    """The project files (reconciler.yaml) among `paths` (the pre-commit hook checks them)."""
    from reconciler.manifest_files import looks_like_project

    return [p for p in paths if looks_like_project(p)]


def is_saved_plan(path: str) -> bool:
    """Whether `path` holds a saved plan rather than manifests (sniffs the head)."""
    from reconciler.planfile import looks_like_saved_plan

    return looks_like_saved_plan(path)


# --- policies ---------------------------------------------------------------------


def load_policies(paths: Sequence[str], timeout: float | None = None) -> Policies | None:
    """The policy modules, compiled once (in the sandbox) to fail fast; None if none."""
    if not paths:
        return None
    from reconciler.policy import Limits, Policies, check_modules, load_modules

    modules = Policies(load_modules(paths), Limits() if timeout is None else Limits(timeout))
    check_modules(modules)
    return modules


def check_policy(
    modules: Sequence[Module],
    document: Mapping[str, Any] | JsonInput,
    namespaces: Sequence[str],
) -> PolicyResult:
    """Evaluate the policies' deny/violation/warn rules in `namespaces` on `document`."""
    from reconciler.policy import evaluate

    return evaluate(modules, document, namespaces)


def check_plan_policy(
    modules: Sequence[Module], plan: Plan, namespaces: Sequence[str]
) -> PolicyResult:
    """The policies' verdict on a plan (the input `plan_input_json` builds)."""
    from reconciler.policy import plan_input_json

    return check_policy(modules, plan_input_json(plan), namespaces)


def check_manifests_policy(
    modules: Sequence[Module],
    desired: DesiredState,
    namespaces: Sequence[str],
    *,
    organization: str | None,
    environment: str | None = None,
) -> PolicyResult:
    """The policies' verdict on manifests alone (offline, as `validate` runs them)."""
    from reconciler.policy import validate_input

    document = validate_input(desired, organization=organization, environment=environment)
    return check_policy(modules, document, namespaces)


def test_policies(paths: Sequence[str], timeout: float | None = None) -> list[TestResult]:
    """Run the policies' own `test_` rules (the `*_test.rego` files under `paths`), sandboxed."""
    from reconciler.policy import Limits, load_modules, run_tests

    limits = Limits() if timeout is None else Limits(timeout)
    return run_tests(load_modules(paths, tests=True), limits=limits)


# --- saved plan → stale check → apply → convergence check --------------------------


def check_saved_plan(client: AmigoClient, plan: Plan, environment: str | None = None) -> None:
    """Refuse a saved plan that is foreign, carries errors, or is stale (UserError says what to do).

    Stale means the services read now differ from those the plan was computed
    against (anyone's change since): applying it could undo or collide with that change.
    """
    from reconciler.diagnostics import Diagnostic, UserError
    from reconciler.live import fetch_services
    from reconciler.plan import live_snapshot, stale_services
    from reconciler.planfile import check_plan_target

    check_plan_target(
        plan,
        organization=client.config.organization,
        base_url=client.config.base_url,
        environment=environment,
    )
    if plan.errors:
        raise UserError(
            [
                Diagnostic(
                    f"the saved plan has {len(plan.errors)} error(s) and cannot be applied; "
                    "fix the manifests and run plan again"
                ),
                *plan.errors,
            ]
        )
    fingerprint, live_services = live_snapshot(fetch_services(client))
    if fingerprint != plan.live_fingerprint:
        message = (
            "live state changed since the plan was made; run plan again "
            "(`reconciler plan PATH... --out FILE`) and apply the new plan"
        )
        # Plans from before `live_services` existed cannot say which services changed.
        changes = (
            [] if plan.live_services is None else stale_services(plan.live_services, live_services)
        )
        if changes:
            count = len(changes)
            shown = [f"\n  {line}" for line in changes[:STALE_SERVICES_SHOWN]]
            more = count - len(shown)
            message += (
                f"; {count} service(s) differ from when the plan was made:"
                + "".join(shown)
                + (f"\n  and {more} more" if more else "")
            )
        raise UserError(message)


@dataclass(frozen=True)
class ApplyInput:
    """What `apply` is about to run: the plan, and the manifests it came from (None: saved)."""

    plan: Plan
    desired: DesiredState | None


def load_for_apply(
    client: AmigoClient,
    paths: Sequence[str],
    *,
    saved: bool,
    prune: bool = False,
    targets: Sequence[str] = (),
    selection: Selection | None = None,
    overrides: Sequence[str] = (),
    rehearse: bool = False,
) -> ApplyInput:
    """A saved plan (loaded and checked: target, environment, errors, staleness), or a fresh
    plan (`overrides`, `rehearse`: as `make_plan`'s, so apply checks what plan checks)."""
    environment = selection.name if selection is not None else None
    if saved:
        plan = load_plan_file(paths[0])
        check_saved_plan(client, plan, environment)
        return ApplyInput(plan, None)
    desired = load_desired(paths, selection)
    return ApplyInput(
        make_plan(
            client,
            desired,
            prune=prune,
            targets=targets,
            environment=environment,
            rehearse=rehearse,
            overrides=overrides,
        ),
        desired,
    )


def check_convergence(
    client: AmigoClient,
    plan: Plan,
    report: ApplyReport,
    desired: DesiredState | None,
    *,
    prune: bool = False,
    targets: Sequence[str] = (),
) -> Convergence:
    """After an apply: re-plan from the manifests, or (a saved plan, no manifests) check
    each operation's effect against a fresh read. An API failure here still leaves the
    apply report intact: the check says it could not be made."""
    from reconciler.api.errors import ApiError
    from reconciler.convergence import (
        Convergence,
        convergence_from_plan,
        duplicate_services,
        remaining_differences,
    )

    try:
        duplicates = duplicate_services(client, plan)
        if desired is not None:
            # The plan's own services stay in scope under their new names: a target that
            # named a service this apply renamed names nothing now.
            scope = tuple(dict.fromkeys((*targets, *(op.service for op in plan.operations))))
            fresh = make_plan(
                client,
                desired,
                prune=prune,
                targets=scope if targets else (),
                check_targets=False,
            )
            differences = [*duplicates, *convergence_from_plan(fresh).differences]
            return Convergence(not differences, tuple(differences))
        differences = [*duplicates, *remaining_differences(client, plan, report)]
        return Convergence(
            not differences,
            tuple(differences),
            how="each operation's effect checked against a fresh read",
        )
    except ApiError as exc:
        return Convergence(False, error=f"{exc}; run plan to see where things stand")


@dataclass(frozen=True)
class ApplyOutcome:
    """The apply report and the convergence check (None: not made — cancelled)."""

    report: ApplyReport
    convergence: Convergence | None


def apply_and_check(
    client: AmigoClient,
    applying: ApplyInput,
    *,
    on_event: Callable[[Any], None],
    cancel: threading.Event,
    abort: threading.Event,
    running: threading.Event,
    after_apply: Callable[[], None] = lambda: None,
    prune: bool = False,
    targets: Sequence[str] = (),
) -> ApplyOutcome:
    """Apply the plan, then (unless cancelled) check that live state converged.

    `running` is set while operations are being sent (a second Ctrl-C then stops the
    apply; outside it, a KeyboardInterrupt ends the convergence check); `after_apply`
    runs once the operations are done, before the check (e.g. to clear a progress bar).
    """
    from reconciler.applier import apply_plan
    from reconciler.convergence import Convergence

    running.set()
    try:
        report = apply_plan(client, applying.plan, on_event=on_event, cancel=cancel, abort=abort)
    finally:
        running.clear()
        after_apply()
    if report.cancelled or abort.is_set():
        return ApplyOutcome(report, None)
    try:
        convergence = check_convergence(
            client, applying.plan, report, applying.desired, prune=prune, targets=targets
        )
    except KeyboardInterrupt:
        convergence = Convergence(False, error="interrupted (Ctrl-C)")
    return ApplyOutcome(report, convergence)


# --- export -----------------------------------------------------------------------


def read_for_export(
    client: AmigoClient, *, with_unit_tests: bool
) -> tuple[Organization, tuple[UnitTest, ...]]:
    """The organization (services, agents, state machines), and its unit tests for a seed."""
    from reconciler.export import read_organization, read_unit_tests

    organization = read_organization(client)
    unit_tests = read_unit_tests(client, organization.services) if with_unit_tests else ()
    return organization, tuple(unit_tests)


def export_seed(
    organization_id: str, organization: Organization, unit_tests: Sequence[UnitTest]
) -> tuple[str, tuple[Diagnostic, ...]]:
    """The emulator seed copying the organization (no secrets), and its warnings."""
    from reconciler.export import export_seed as seed_text

    return seed_text(organization_id, organization, unit_tests)


def write_seed(text: str, path: str, *, force: bool) -> None:
    """Write the seed atomically; an existing file only with `force`."""
    from pathlib import Path

    from reconciler.export import write_seed_file

    write_seed_file(text, Path(path), force=force)


@dataclass(frozen=True)
class ManifestExport:
    """Manifests for the live services, and the schema modeline they carry (None: none)."""

    result: ExportResult
    schema_ref: str | None


def export_manifests(
    organization: Organization,
    *,
    out_dir: str | None,
    active_only: bool,
    targets: Sequence[str],
) -> ManifestExport:
    """One manifest per live service (in scope), pointing at the schema when one is near."""
    from pathlib import Path

    from reconciler.export import export_manifests as manifests_for
    from reconciler.export import schema_ref_for

    schema_ref = schema_ref_for(Path(out_dir) if out_dir is not None else Path.cwd())
    result = manifests_for(
        organization.services,
        organization.agents,
        organization.state_machines,
        active_only=active_only,
        targets=targets,
        schema_ref=schema_ref,
    )
    return ManifestExport(result, schema_ref)


def manifests_text(exported: ManifestExport) -> str:
    """Every exported manifest as one multi-document YAML stream (for stdout)."""
    from reconciler.export import join_documents

    return join_documents(exported.result.files, exported.schema_ref)


def write_manifests(exported: ManifestExport, out_dir: str, *, force: bool) -> list[Path]:
    """One file per manifest in `out_dir`; nothing written if any would be overwritten."""
    from pathlib import Path

    from reconciler.export import write_export

    return write_export(exported.result.files, Path(out_dir), force=force)


# --- verify -----------------------------------------------------------------------


def verify_plan_pairs(plan: Plan) -> list[tuple[str, str]]:
    """(service, version set) pairs a saved plan creates or changes."""
    from reconciler.verify import targets_from_plan

    return targets_from_plan(plan)


def verification_targets(
    pairs: Sequence[tuple[str, str]],
    manifests: Sequence[str],
    selection: Selection | None = None,
) -> list[VerifyTarget]:
    """The (service, version set) pairs, with the test sets the manifests name for them."""
    from reconciler.verify import verify_targets

    return verify_targets(pairs, load_desired(manifests, selection) if manifests else None)


def verify(
    client: AmigoClient,
    targets: Sequence[VerifyTarget],
    *,
    saved: Plan | None,
    environment: str | None = None,
    timeout: float,
    poll_seconds: float,
    on_progress: Callable[[str], None],
    cancel: threading.Event,
) -> Verification:
    """Run the test sets covering `targets` (refusing a saved plan made for elsewhere)."""
    from reconciler.verify import run_verification

    if saved is not None:
        from reconciler.planfile import check_plan_target

        check_plan_target(
            saved,
            organization=client.config.organization,
            base_url=client.config.base_url,
            environment=environment,
            command="verify --plan",
        )
    return run_verification(
        client,
        list(targets),
        timeout=timeout,
        poll_seconds=poll_seconds,
        on_progress=on_progress,
        cancel=cancel,
    )


# --- apply --verify [--rollback-on-failure] -----------------------------------------


def verify_applied(
    client: AmigoClient,
    applying: ApplyInput,
    outcome: ApplyOutcome,
    *,
    rollback: bool,
    timeout: float,
    poll_seconds: float,
    on_progress: Callable[[str], None],
    on_event: Callable[[Any], None],
    cancel: threading.Event,
    policies: Sequence[Module] | None = None,
    namespaces: Sequence[str] = (),
    require_coverage: bool = False,
) -> ApplyVerification:
    """After a converged apply: verify the version sets it upserted; on failure (and
    `rollback`) restore them to the contents the plan recorded, as ordinary operations
    through the applier, then re-read them to show they are back. The rollback plan
    meets the same `policies` as the apply's (denied: nothing is sent).

    Not verified: an apply that did not converge (or was cancelled). Not rolled back: a
    verification cancelled by Ctrl-C (the user stopped it; nothing proved the change bad).
    Failed, errored and timed-out test sets count as failure; a set no unit test covers
    is only "not verified" (nothing ran that could show it bad) unless
    `require_coverage`. `cancel` set during the rollback starts no further operation.
    """
    from reconciler.api.errors import ApiError
    from reconciler.applier import apply_plan
    from reconciler.convergence import remaining_differences
    from reconciler.rollback import (
        ApplyVerification,
        RollbackOutcome,
        plan_rollback,
        upserts_done,
    )
    from reconciler.verify import run_verification, verify_targets

    report, convergence = outcome.report, outcome.convergence
    if not report.ok or convergence is None or not convergence.converged:
        return ApplyVerification(skipped="the apply did not converge: nothing was verified")
    changed = upserts_done(applying.plan, report)
    pairs = [(op.service, op.version_set or "") for op in changed]
    if not pairs:
        return nothing_verified()
    verification = run_verification(
        client,
        verify_targets(pairs, applying.desired),
        timeout=timeout,
        poll_seconds=poll_seconds,
        on_progress=on_progress,
        cancel=cancel,
    )
    if verification.passed or not rollback:
        return ApplyVerification(verification)
    if verification.cancelled:
        return ApplyVerification(
            verification, rollback_skipped="verification was cancelled: nothing was rolled back"
        )
    if not verification.failed(require_coverage=require_coverage):
        return ApplyVerification(
            verification,
            rollback_skipped="no test failed (a version set no unit test covers is not verified, "
            "not failed; --require-coverage counts it as a failure)",
        )
    on_progress("verify failed: rolling back the version sets this apply changed")
    before = dict(client.request_counts)
    ids = sorted({op.service_id for op in changed if op.service_id})
    try:
        planned = plan_rollback(applying.plan, report, client.list_services(ids=ids) if ids else [])
    except ApiError as exc:
        return ApplyVerification(
            verification,
            rollback=RollbackOutcome(
                applying.plan,
                None,
                error=f"{exc}; nothing was rolled back: run plan to see where things stand",
            ),
        )
    done = None
    differences: tuple[str, ...] = ()
    error = None
    denied = (
        check_plan_policy(policies, planned.plan, namespaces).denied
        if policies is not None and planned.plan.operations
        else ()
    )
    if denied:
        error = "a policy denies the rollback plan, so nothing was rolled back: " + "; ".join(
            f"{f.rule}: {f.message}" for f in denied
        )
    elif planned.plan.operations:
        # Ctrl-C (`cancel`) now means: start no further rollback operation, report.
        done = apply_plan(
            client, planned.plan, on_event=on_event, cancel=cancel, abort=threading.Event()
        )
        try:
            differences = tuple(remaining_differences(client, planned.plan, done))
        except ApiError as exc:
            error = f"the rollback was sent but could not be checked: {exc}"
    after = client.request_counts
    reads = {
        op: after.get(op, 0) - before.get(op, 0)
        for op in sorted(after)
        if op.startswith("get-") and after.get(op, 0) - before.get(op, 0) > 0
    }
    return ApplyVerification(
        verification,
        rollback=RollbackOutcome(
            planned.plan, done, planned.left_alone, differences, error, reads, planned.already
        ),
    )


def nothing_verified() -> ApplyVerification:
    """`apply --verify` when the apply changed no version set."""
    from reconciler.rollback import ApplyVerification

    return ApplyVerification(skipped="the apply changed no version set: nothing to verify")
