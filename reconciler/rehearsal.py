"""Rehearse a plan: apply it first to an in-memory copy of the live organization.

A plan predicts what the API will accept; the emulator is an independent reading
of the API's rules. `rehearse` seeds an emulator with the live state the plan was
computed from (`seed_from_live`: no read of its own, throwaway credentials), runs
the plan through the same applier over the emulator's in-process transport (no
socket, so no network), on a virtual clock so rate-limit pacing costs no time,
then plans again against the emulator's resulting state: an operation the
emulator refuses, or a second pass that would still change something, is a defect
of the planner (or of the emulator's reading) found before any real write.

The caller passes what the plan read; the agents / state machines it did not read
are seeded as placeholders (the plan did not need their records: it neither moves,
activates nor pins against them), and the unit tests it did not read are those of
services it neither deactivates nor deletes from.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.applier import OperationResult, Status, apply_plan, describe
from reconciler.diagnostics import UserError
from reconciler.model import DesiredState, LiveState, UnitTest
from reconciler.plan import Operation, Plan, Rehearsal, RehearsalRefusal

if TYPE_CHECKING:
    from reconciler.emulator import Emulator, Refusal

# An emulator token outlives any rehearsal on the virtual clock.
_TOKEN_LIFETIME = 10 * 365 * 24 * 3600.0


class VirtualClock:
    """Time for the client and the emulator together: a sleep moves it on at once."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)


def rehearse(
    plan: Plan,
    desired: DesiredState,
    live: LiveState,
    *,
    unit_tests: Sequence[UnitTest] | None = None,
) -> Rehearsal:
    """Apply `plan` to an emulator seeded with `live`, then re-plan against the result.

    `unit_tests`: those the plan read (None: none read). Never raises for what the
    rehearsal finds; a live state the emulator cannot be seeded with is reported
    in `Rehearsal.error`.
    """
    if not plan.operations:
        # Nothing is applied, so the state stays the one the plan found nothing to do on.
        return Rehearsal(operations=0, accepted=0)

    from reconciler.api.client import AmigoClient
    from reconciler.emulator import Emulator, seed_from_live
    from reconciler.emulator.seed import load_seed

    seed = seed_from_live(
        plan.organization,
        live.services,
        live.agents or (),
        live.state_machines or (),
        tuple(live.unit_tests or ()) + tuple(unit_tests or ()),
    )
    try:
        loaded = load_seed(seed.document)
    except UserError as exc:
        first = exc.diagnostics[0].message if exc.diagnostics else str(exc)
        return Rehearsal(
            operations=len(plan.operations),
            accepted=0,
            error=f"the live state could not be copied into the emulator: {first}",
        )
    clock = VirtualClock()
    emulator = Emulator(loaded, clock=clock.now, token_lifetime=_TOKEN_LIFETIME)
    client = AmigoClient(
        emulator.api_config(), transport=emulator.transport(), sleep=clock.sleep, clock=clock.now
    )
    refusals: dict[str, RehearsalRefusal] = {}
    seen = 0

    def on_event(result: OperationResult) -> None:
        # One operation at a time: the refusals recorded since the last event are its own.
        nonlocal seen
        recorded = emulator.refusals
        mine, seen = recorded[seen:], len(recorded)
        if result.status is Status.FAILED:
            refusals[result.key] = _refusal(ops[result.key], result, mine)

    ops = {op.key: op for op in plan.operations}
    try:
        report = apply_plan(
            client, plan, on_event=on_event, cancel=threading.Event(), max_workers=1
        )
    finally:
        client.close()
    accepted = sum(1 for r in report.results if r.status is Status.DONE)
    skipped = sum(1 for r in report.results if r.status is Status.SKIPPED)
    return Rehearsal(
        operations=len(plan.operations),
        accepted=accepted,
        refused=tuple(refusals[r.key] for r in report.results if r.key in refusals),
        skipped=skipped,
        remaining=_second_pass(plan, desired, emulator),
    )


def _refusal(
    op: Operation, result: OperationResult, recorded: Sequence[Refusal]
) -> RehearsalRefusal:
    """What refused `op`: the emulator's refusal record, else the applier's own message."""
    last = recorded[-1] if recorded else None
    detail = result.detail or result.message or "refused"
    if last is None:
        return RehearsalRefusal(
            key=op.key,
            service=op.service,
            description=describe(op),
            rule=f"not an API refusal ({result.error_class or 'the applier'})",
            detail=detail,
            status=result.api_status,
        )
    interpretation = last.interpretation
    rule = (
        f"emulator interpretation {interpretation!r} (docs/emulator.md)"
        if interpretation
        else f"{last.operation_id} answers {last.status}"
    )
    return RehearsalRefusal(
        key=op.key,
        service=op.service,
        description=describe(op),
        rule=rule,
        detail=_detail_text(last.detail),
        status=last.status,
        interpretation=interpretation,
    )


def _detail_text(detail: object) -> str:
    """The API's `detail`: a message, or (422) the list of field errors, one line."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", ()))
                parts.append(f"{where}: {item.get('msg', '')}".strip(": "))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def _second_pass(plan: Plan, desired: DesiredState, emulator: Emulator) -> tuple[str, ...]:
    """What a plan against the rehearsed state would still do (empty: converged)."""
    from reconciler.convergence import convergence_from_plan
    from reconciler.live import references_from_api, services_from_api, unit_tests_from_api
    from reconciler.planner import plan_against

    after = LiveState(
        services=services_from_api(emulator.services()),
        agents=references_from_api(emulator.agents()),
        state_machines=references_from_api(emulator.state_machines()),
        unit_tests=unit_tests_from_api(emulator.unit_tests()),
    )
    targets = plan.targets
    # The plan's own services stay in scope under their new names (as after a real apply).
    scope = tuple(dict.fromkeys((*targets, *(op.service for op in plan.operations))))
    fresh = plan_against(
        desired,
        after,
        organization=plan.organization,
        base_url=plan.base_url,
        prune=plan.prune,
        targets=scope if targets else (),
        check_targets=False,
    )
    return convergence_from_plan(fresh).differences
