"""Fault matrix over real HTTP: every operation of a 32-operation plan, under every fault.

For each operation index i and each fault kind, a fresh emulator is served on
127.0.0.1, the fault is injected so that it hits operation i's first request
(each (endpoint, service) pair occurs once in the plan), and then:

1. apply: the report is checked against live state (done means it took effect,
   failed / skipped means it did not, unless the outcome was unknowable and the
   report says so); no duplicate service; no version set lost; faults the
   design absorbs (lost answers, 503, 429 storms, slow answers) do not fail;
2. apply again (a new client, as a new process would be): every operation
   done, its report true too;
3. a third plan is empty, and the organization equals the one a fault-free
   apply produces.

Faults include COMMIT_LATE, the server still working after the client gave
up: a create under it (or under any fault that leaves its outcome unknowable)
is never re-sent; it is reported outcome unknown, its dependents skipped, and
the re-run, made once the late commit has landed, converges with no duplicate.

The 32 combinations of one fault kind run in parallel threads (each with its
own emulator and server), so the matrix takes about a minute.
"""

from __future__ import annotations

import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _reliability import (
    assert_no_duplicates,
    assert_nothing_lost,
    assert_report_true,
    effect_holds,
    endpoint_of,
    http_client,
    realistic_seed,
    snapshot,
    write_manifests,
)

from reconciler.applier import Status, apply_plan
from reconciler.emulator import Emulator, Fault
from reconciler.manifests import load_manifests
from reconciler.model import DesiredState
from reconciler.plan import Action
from reconciler.workflow import make_plan

pytestmark = [pytest.mark.slow, pytest.mark.http]

PLAN_SIZE = 32
WINDOW_SECONDS = 1.0  # short rate-limit window: budgets refill every second
CLIENT_TIMEOUT = 1.0
SLOW_SECONDS = 2.0  # a SLOW answer arrives after the client has given up
STORM = 3  # consecutive 429s (Retry-After: 1) for one request
WORKERS = 8

FAULTS = {
    "drop_before": Fault.DROP_BEFORE,
    "drop_after": Fault.DROP_AFTER,
    "status_500": Fault.STATUS_500,
    "status_503": Fault.STATUS_503,
    "429_storm": Fault.STATUS_429,
    "slow": Fault.SLOW,
    # The server still working after the client gave up: commits after SLOW_SECONDS.
    "commit_late": Fault.COMMIT_LATE,
}
# Faults after which a create's outcome cannot be known: the request reached the
# server, no answer says what happened, and the look-up finds nothing (yet). The
# create is never re-sent (the API has no idempotency key): outcome unknown.
UNKNOWABLE_CREATE = (Fault.DROP_BEFORE, Fault.STATUS_500, Fault.STATUS_503, Fault.COMMIT_LATE)


def _emulator() -> Emulator:
    return Emulator.from_seed(
        realistic_seed(), window_seconds=WINDOW_SECONDS, slow_seconds=SLOW_SECONDS
    )


@pytest.fixture(scope="module")
def desired(tmp_path_factory: pytest.TempPathFactory) -> DesiredState:
    return load_manifests([write_manifests(tmp_path_factory.mktemp("faults") / "services")])


@pytest.fixture(scope="module")
def reference(desired: DesiredState) -> dict[str, Any]:
    """The organization a fault-free apply produces."""
    emulator = _emulator()
    with emulator.serve() as server, http_client(emulator, server.base_url) as client:
        plan = make_plan(client, desired, prune=True)
        assert plan.errors == ()
        assert len(plan.operations) == PLAN_SIZE
        before = emulator.services()
        # The checks can fail: no operation's effect holds before applying.
        assert not any(effect_holds(op, plan, before) for op in plan.operations)
        report = apply_plan(client, plan)
        assert report.ok
        after = emulator.services()
        assert_report_true(plan, report, after, "fault-free")
        assert make_plan(client, desired, prune=True).operations == ()
    return {
        "snapshot": snapshot(after),
        "names": Counter(s["name"] for s in after),
        "plan": plan,
    }


def run_combination(index: int, fault: Fault, desired: DesiredState, ref: dict[str, Any]) -> None:
    emulator = _emulator()
    where = f"operation {index + 1} under {fault.value}"
    with emulator.serve() as server:
        with http_client(
            emulator, server.base_url, timeout=CLIENT_TIMEOUT, window_seconds=WINDOW_SECONDS
        ) as first:
            plan = make_plan(first, desired, prune=True)
            assert len(plan.operations) == PLAN_SIZE and plan.errors == ()
            op = plan.operations[index]
            where = f"{where} ({op.key} {op.kind.value} {op.service!r} {op.version_set or ''})"
            before = emulator.services()
            emulator.inject(
                endpoint_of(op),
                fault,
                times=STORM if fault is Fault.STATUS_429 else 1,
                service_name=op.service,
            )
            report = apply_plan(first, plan)
            assert emulator.pending_faults == 0, f"{where}: the fault never fired"
            after = emulator.services()
            assert_report_true(plan, report, after, f"{where}, first apply")
            assert_no_duplicates(after, ref["names"], f"{where}, first apply")
            assert_nothing_lost(before, after, plan, f"{where}, first apply")
            result = report.results[index]
            if op.action is Action.CREATE_SERVICE and fault in UNKNOWABLE_CREATE:
                assert result.status is Status.OUTCOME_UNKNOWN, f"{where}: {result}"
                assert emulator.request_counts["create-service"] == sum(
                    1 for o in plan.operations if o.action is Action.CREATE_SERVICE
                ), f"{where}: a create was sent twice"
                for other in report.results:
                    if other.key == op.key:
                        continue
                    expected = Status.SKIPPED if op.key in (other.message or "") else Status.DONE
                    assert other.status is expected, f"{where}: {other}"
            elif fault is Fault.STATUS_500 and op.action in (
                Action.UPSERT_VERSION_SET,
                Action.DELETE_VERSION_SET,
            ):
                # 500 is not a "safe to retry" status: the operation fails, says so,
                # and only its dependents are skipped.
                assert result.status is Status.FAILED, f"{where}: {result}"
                assert result.api_status == 500 and op.service in (result.message or "")
                others = [r for r in report.results if r.key != op.key]
                assert all(r.status is not Status.FAILED for r in others), where
            else:
                assert report.ok, (
                    f"{where}: {[(r.key, r.status, r.message) for r in report.results if r.status is not Status.DONE]}"
                )

        # A re-run is made once the server has finished (a late commit has landed).
        assert emulator.settle(30), f"{where}: a late commit never landed"
        assert_no_duplicates(emulator.services(), ref["names"], f"{where}, after late commits")
        with http_client(
            emulator, server.base_url, timeout=CLIENT_TIMEOUT, window_seconds=WINDOW_SECONDS
        ) as second:
            again = make_plan(second, desired, prune=True)
            assert again.errors == (), f"{where}: {again.errors}"
            rerun = apply_plan(second, again)
            assert rerun.ok, f"{where}, second apply: {rerun.results}"
            final = emulator.services()
            assert_report_true(again, rerun, final, f"{where}, second apply")
            assert_nothing_lost(before, final, plan, f"{where}, second apply")
            assert_no_duplicates(final, ref["names"], f"{where}, second apply")
            assert make_plan(second, desired, prune=True).operations == (), where
    assert snapshot(final) == ref["snapshot"], f"{where}: converged to a different organization"


@pytest.mark.parametrize("fault_name", list(FAULTS))
def test_every_operation_under_every_fault_converges_truthfully(
    fault_name: str, desired: DesiredState, reference: dict[str, Any]
) -> None:
    fault = FAULTS[fault_name]

    def one(index: int) -> str | None:
        try:
            run_combination(index, fault, desired, reference)
        except Exception:
            return traceback.format_exc(limit=3)
        return None

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="matrix") as pool:
        failures = [f for f in pool.map(one, range(PLAN_SIZE)) if f]
    assert not failures, f"{len(failures)} of {PLAN_SIZE} combinations failed:\n" + "\n".join(
        failures
    )


def test_matrix_targets_the_operation_it_names(tmp_path: Path, desired: DesiredState) -> None:
    """Sanity of the method: each (endpoint, service) pair occurs once, so `inject` hits op i."""
    emulator = _emulator()
    with emulator.serve() as server, http_client(emulator, server.base_url) as client:
        plan = make_plan(client, desired, prune=True)
    pairs = Counter((endpoint_of(op), op.service) for op in plan.operations)
    assert max(pairs.values()) == 1
    kinds = {op.kind.value for op in plan.operations}
    assert kinds == {"create", "update", "adopt", "activate", "deactivate", "delete"}
    assert any(op.service_from for op in plan.operations)  # dependent upserts on new services
