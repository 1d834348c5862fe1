"""Verify version sets with the organization's simulation unit test sets.

`run_verification(client, targets)` is the core both `reconciler verify` and
(later) `apply --verify` call: it finds the unit test sets covering each
target (service + version set) — those a manifest declares by name, else those
holding unit tests that run on that service's set — starts one run per set,
polls the runs within the documented rate limits (the client paces every call)
until they finish or the overall timeout passes, and returns a frozen
`Verification`. It never prints: progress goes to `on_progress`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from reconciler.api.errors import ApiError, DeadlineExceeded
from reconciler.diagnostics import Diagnostic, did_you_mean

if TYPE_CHECKING:
    from reconciler.api.client import AmigoClient
    from reconciler.model import DesiredState

DEFAULT_TIMEOUT_SECONDS = 1800.0
DEFAULT_POLL_SECONDS = 15.0  # runs take minutes; 4 polls a minute stay far below 50/min


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERRORED = "errored"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True, slots=True)
class VerifyTarget:
    """A version set to verify; `unit_test_sets` names the sets a manifest declares for it."""

    service: str
    version_set: str
    unit_test_sets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MetricResult:
    name: str
    metric_id: str
    passed: int
    failed: int


@dataclass(frozen=True, slots=True)
class UnitTestResult:
    unit_test_id: str
    name: str
    outcome: Outcome
    metrics: tuple[MetricResult, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def failed_metrics(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics if m.failed)


@dataclass(frozen=True, slots=True)
class TestSetResult:
    unit_test_set_id: str
    name: str
    covers: tuple[tuple[str, str], ...]  # (service, version set) targets it verifies
    outcome: Outcome
    run_id: str | None = None
    unit_tests: tuple[UnitTestResult, ...] = ()
    message: str = ""  # why it errored before running (e.g. a run already in progress)

    @property
    def failed_metrics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for t in self.unit_tests for n in t.failed_metrics))


@dataclass(frozen=True, slots=True)
class Verification:
    organization: str
    targets: tuple[VerifyTarget, ...]
    test_sets: tuple[TestSetResult, ...] = ()
    errors: tuple[Diagnostic, ...] = ()  # targets that cannot be verified
    uncovered: tuple[tuple[str, str], ...] = ()  # (service, set) no unit test covers: not verified
    api_reads: Mapping[str, int] = field(default_factory=dict)
    runs_started: int = 0
    elapsed_seconds: float = 0.0
    cancelled: bool = False  # stopped waiting early (Ctrl-C); unfinished runs keep running

    @property
    def passed(self) -> bool:
        return (
            not self.cancelled
            and not self.errors
            and bool(self.test_sets)
            and all(s.outcome is Outcome.PASSED for s in self.test_sets)
        )

    def failed(self, *, require_coverage: bool = False) -> bool:
        """A test set failed, errored or timed out (what proves a change bad, and rolls it
        back); with `require_coverage`, a version set no unit test covers counts too.

        A set no test covers is *not verified* (`passed` is False), not failed: nothing
        ran that could have shown the change bad.
        """
        bad = any(s.outcome is not Outcome.PASSED for s in self.test_sets)
        return bad or (require_coverage and bool(self.uncovered))


def run_verification(
    client: AmigoClient,
    targets: Sequence[VerifyTarget],
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    on_progress: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Verification:
    """Run the test sets covering `targets` and wait for them (see the module docstring).

    `timeout` bounds everything, the client's rate-limit and retry waits included.
    """
    started = clock()
    try:
        with client.deadline(timeout):
            return _run_verification(
                client, targets, started, timeout, poll_seconds, on_progress, cancel, clock
            )
    except DeadlineExceeded as exc:  # before any run started (the runs' phase catches its own)
        return Verification(
            organization=client.config.organization,
            targets=tuple(dict.fromkeys(targets)),
            errors=(
                Diagnostic(
                    f"verification stopped at the overall timeout ({timeout:g}s) before any "
                    f"run started: {exc}"
                ),
            ),
            elapsed_seconds=clock() - started,
        )


def _run_verification(
    client: AmigoClient,
    targets: Sequence[VerifyTarget],
    started: float,
    timeout: float,
    poll_seconds: float,
    on_progress: Callable[[str], None] | None,
    cancel: threading.Event | None,
    clock: Callable[[], float],
) -> Verification:
    before = dict(client.request_counts)
    tell = on_progress or (lambda _message: None)
    errors: list[Diagnostic] = []
    uncovered: list[tuple[str, str]] = []
    unique = tuple(dict.fromkeys(targets))

    services = client.list_services(is_active=True)
    by_name = {s["name"]: s for s in services if isinstance(s.get("name"), str)}
    resolved: list[tuple[VerifyTarget, str]] = []
    for target in unique:
        service = by_name.get(target.service)
        if service is None:
            hint = did_you_mean(target.service, sorted(by_name))
            errors.append(
                Diagnostic(f"no active service named '{target.service}' in the organization{hint}")
            )
            continue
        if target.version_set not in (service.get("version_sets") or {}):
            known = ", ".join(sorted(service.get("version_sets") or {}))
            errors.append(
                Diagnostic(
                    f"service '{target.service}' has no version set '{target.version_set}' "
                    f"(it has: {known})",
                    service=target.service,
                )
            )
            continue
        resolved.append((target, str(service["id"])))

    tests = client.list_unit_tests([sid for _, sid in resolved]) if resolved else []
    test_names = {str(t.get("id")): str(t.get("name")) for t in tests}
    all_sets: list[dict[str, Any]] | None = None
    chosen: dict[str, dict[str, Any]] = {}
    covers: dict[str, list[tuple[str, str]]] = {}
    # One read finds the sets holding any target's unit tests (not one read per target).
    tests_of = {
        (target.service, target.version_set): {
            str(t["id"])
            for t in tests
            if t.get("service_id") == service_id
            and t.get("service_version_set_name") == target.version_set
        }
        for target, service_id in resolved
        if not target.unit_test_sets
    }
    wanted_tests = sorted(set().union(*tests_of.values())) if tests_of else []
    holding = client.list_unit_test_sets(wanted_tests) if wanted_tests else []
    for target, _service_id in resolved:
        pair = (target.service, target.version_set)
        if target.unit_test_sets:
            if all_sets is None:
                all_sets = client.list_unit_test_sets()
            names = {str(s.get("name")): s for s in all_sets}
            found = []
            for wanted in target.unit_test_sets:
                if wanted in names:
                    found.append(names[wanted])
                    continue
                hint = did_you_mean(wanted, sorted(names))
                errors.append(
                    Diagnostic(
                        f"{target.service} / {target.version_set}: no unit test set named "
                        f"'{wanted}' in the organization{hint}",
                        field=f"spec.version_sets.{target.version_set}.verify.unit_test_sets",
                        service=target.service,
                    )
                )
        else:
            mine = tests_of[pair]
            found = [
                s
                for s in holding
                if mine & {str(r.get("unit_test_id")) for r in s.get("unit_test_runs") or []}
            ]
            if not found:
                uncovered.append(pair)
                errors.append(
                    Diagnostic(
                        f"{target.service} / {target.version_set}: no simulation unit test set "
                        "covers it (no set holds a unit test on this service and version set); "
                        "declare one under the set's verify.unit_test_sets, or add unit tests",
                        service=target.service,
                    )
                )
        for test_set in found:
            ident = str(test_set["id"])
            chosen.setdefault(ident, test_set)
            if pair not in covers.setdefault(ident, []):
                covers[ident].append(pair)

    results: dict[str, TestSetResult] = {}
    runs: dict[str, str] = {}  # run id -> set id
    blocked: dict[str, str] = {}  # an earlier unfinished run of ours -> the set it holds up
    deadline = started + timeout

    def start(ident: str) -> None:
        """Start a run of `ident`; on 409 (our earlier run of it is still unfinished) wait
        for that one, then start ours: its results are for what was live when it began."""
        name = str(chosen[ident].get("name"))
        try:
            run_id = client.create_unit_test_set_run(ident)
        except ApiError as exc:
            if exc.status == 409:
                try:
                    earlier = _unfinished(client, ident)
                except DeadlineExceeded:
                    results[ident] = TestSetResult(
                        ident,
                        name,
                        tuple(covers[ident]),
                        Outcome.TIMED_OUT,
                        message="an earlier run of this set by this user is still unfinished "
                        "(409), and the overall timeout passed while looking it up",
                    )
                    return
                if earlier is not None:
                    blocked[earlier] = ident
                    tell(
                        f"verify: '{name}' has an unfinished run {earlier} (started earlier "
                        "by this user); waiting for it, then starting a fresh run"
                    )
                    return
            message = str(exc)
            if exc.status == 409:
                message = (
                    "a run of this set started by the same user is still unfinished and "
                    "could not be found to wait for; wait for it to finish (or cancel it) and "
                    "verify again"
                )
            outcome = Outcome.TIMED_OUT if isinstance(exc, DeadlineExceeded) else Outcome.ERRORED
            results[ident] = TestSetResult(
                ident, name, tuple(covers[ident]), outcome, message=message
            )
            return
        runs[run_id] = ident
        tell(f"verify: started '{name}' (run {run_id})")

    latest: dict[str, dict[str, Any]] = {}
    pending: set[str] = set()
    try:
        with client.deadline(max(0.0, deadline - clock())):
            for ident in chosen:
                if cancel is not None and cancel.is_set():
                    break
                start(ident)
            pending = set(runs)
            while pending or blocked:
                watched = sorted(pending | set(blocked))
                for run in client.list_unit_test_set_runs(watched):
                    run_id = str(run.get("id"))
                    if run_id in pending:
                        latest[run_id] = run
                        if run.get("is_completed"):
                            pending.discard(run_id)
                    elif run_id in blocked and run.get("is_completed"):
                        before_runs = set(runs)
                        start(blocked.pop(run_id))
                        pending |= set(runs) - before_runs
                done = len(runs) - len(pending)
                elapsed = clock() - started
                tell(f"verify: {done}/{len(runs)} test set runs finished ({elapsed:.0f}s elapsed)")
                if not pending and not blocked:
                    break
                left = deadline - clock()
                if left <= 0 or (cancel is not None and cancel.is_set()):
                    break
                wait = min(poll_seconds, left)
                if cancel is not None:
                    cancel.wait(wait)
                else:
                    time.sleep(wait)
    except DeadlineExceeded as exc:
        tell(f"verify: stopped at the overall timeout ({timeout:g}s): {exc}")
    for earlier, ident in blocked.items():
        results[ident] = TestSetResult(
            ident,
            str(chosen[ident].get("name")),
            tuple(covers[ident]),
            Outcome.TIMED_OUT,
            message=f"not started: this user's earlier run {earlier} of the set was still "
            "unfinished at the timeout",
        )
    stopped = cancel is not None and cancel.is_set()
    for ident in chosen:
        if not stopped and ident not in results and ident not in runs.values():
            results[ident] = TestSetResult(
                ident,
                str(chosen[ident].get("name")),
                tuple(covers[ident]),
                Outcome.TIMED_OUT,
                message=f"not started within the overall timeout ({timeout:g}s)",
            )
    for run_id, ident in runs.items():
        results[ident] = _result(
            ident,
            str(chosen[ident].get("name")),
            tuple(covers[ident]),
            run_id,
            latest.get(run_id),
            test_names,
        )
    after = client.request_counts
    reads = {
        op: after.get(op, 0) - before.get(op, 0)
        for op in after
        if op.startswith("get-") and after.get(op, 0) - before.get(op, 0)
    }
    return Verification(
        organization=client.config.organization,
        targets=unique,
        test_sets=tuple(results[i] for i in chosen if i in results),
        errors=tuple(errors),
        uncovered=tuple(uncovered),
        api_reads=reads,
        runs_started=len(runs),
        elapsed_seconds=clock() - started,
        cancelled=cancel is not None and cancel.is_set(),
    )


def _unfinished(client: AmigoClient, ident: str) -> str | None:
    """The id of this user's unfinished run of set `ident` (newest first), if the API shows one."""
    runs = client.unfinished_unit_test_set_runs(ident)
    runs.sort(key=lambda r: str(r.get("created_at") or ""), reverse=True)
    return str(runs[0]["id"]) if runs and runs[0].get("id") else None


def _result(
    ident: str,
    name: str,
    covers: tuple[tuple[str, str], ...],
    run_id: str,
    run: Mapping[str, Any] | None,
    test_names: Mapping[str, str],
) -> TestSetResult:
    if run is None:
        return TestSetResult(ident, name, covers, Outcome.TIMED_OUT, run_id)
    metric_names: dict[tuple[str, str], str] = {}
    for spec in run.get("unit_test_run_specs") or []:
        for metric in spec.get("metrics_to_evaluate") or []:
            key = (str(spec.get("unit_test_id")), str(metric.get("metric_id")))
            metric_names[key] = str(metric.get("success_criterion_name"))
    unit_tests = []
    for entry in run.get("unit_test_run_results") or []:
        if not isinstance(entry, dict):
            continue
        test_id = str(entry.get("unit_test_id"))
        metrics = []
        for evaluation in entry.get("metric_evaluation_results") or []:
            mid = str(evaluation.get("metric_id"))
            outcomes = [bool(r[1]) for r in evaluation.get("results") or [] if len(r) == 2]
            metrics.append(
                MetricResult(
                    metric_names.get((test_id, mid), mid),
                    mid,
                    passed=sum(outcomes),
                    failed=len(outcomes) - sum(outcomes),
                )
            )
        errors = tuple(e for e in entry.get("run_errors") or [] if e)
        outcome = (
            Outcome.ERRORED
            if errors
            else Outcome.FAILED
            if any(m.failed for m in metrics)
            else Outcome.PASSED
        )
        unit_tests.append(
            UnitTestResult(
                test_id, test_names.get(test_id, test_id), outcome, tuple(metrics), errors
            )
        )
    if run.get("errored") or any(t.outcome is Outcome.ERRORED for t in unit_tests):
        outcome = Outcome.ERRORED
    elif run.get("failed_metrics") or any(t.outcome is Outcome.FAILED for t in unit_tests):
        outcome = Outcome.FAILED
    elif not run.get("is_completed"):
        outcome = Outcome.TIMED_OUT
    else:
        outcome = Outcome.PASSED
    return TestSetResult(ident, name, covers, outcome, run_id, tuple(unit_tests))


def verify_targets(
    pairs: Sequence[tuple[str, str]], desired: DesiredState | None = None
) -> list[VerifyTarget]:
    """Targets for (service, version set) pairs, with the test sets manifests declare for them."""
    declared: dict[tuple[str, str], tuple[str, ...]] = {}
    for service in desired.services if desired is not None else ():
        for name, sets in service.verify.items():
            declared[(service.name, name)] = sets
    return [VerifyTarget(s, v, declared.get((s, v), ())) for s, v in dict.fromkeys(pairs)]


def targets_from_plan(plan: Any) -> list[tuple[str, str]]:
    """(service, version set) pairs a plan creates or changes (its version set upserts)."""
    from reconciler.plan import Action

    pairs = []
    for op in plan.operations:
        if op.action is Action.UPSERT_VERSION_SET and op.version_set:
            pairs.append((op.service, op.version_set))
    return list(dict.fromkeys(pairs))
