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

import json
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from reconciler.applier import OperationResult, Status, apply_plan, describe
from reconciler.diagnostics import UserError
from reconciler.model import DesiredState, LiveService, LiveState, UnitTest
from reconciler.plan import Operation, Plan, Rehearsal, RehearsalRefusal

if TYPE_CHECKING:
    from reconciler.api.client import AmigoClient
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
    from reconciler.api.config import ApiConfig
    from reconciler.emulator import Emulator, seed_from_live
    from reconciler.emulator.seed import load_seed

    copied = _services_to_copy(plan, live)
    ids = {s.id for s in copied}
    seed = seed_from_live(
        # Its own organization id: the emulator derives the ids of the services it creates
        # from it, and those must not be the ids of live services left out of the copy.
        f"{plan.organization}-rehearsal",
        copied,
        live.agents or (),
        live.state_machines or (),
        [t for t in (*(live.unit_tests or ()), *(unit_tests or ())) if t.service_id in ids],
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
    config = ApiConfig.from_env(emulator.credentials(emulator.IN_PROCESS_BASE_URL), env={})
    reads = AmigoClient(config, transport=emulator.transport(), sleep=clock.sleep, clock=clock.now)
    client = EmulatorWrites(emulator, reads, clock)
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
        reads.close()
    accepted = sum(1 for r in report.results if r.status is Status.DONE)
    skipped = sum(1 for r in report.results if r.status is Status.SKIPPED)
    return Rehearsal(
        operations=len(plan.operations),
        accepted=accepted,
        refused=tuple(refusals[r.key] for r in report.results if r.key in refusals),
        skipped=skipped,
        remaining=_second_pass(plan, desired, live, emulator, tuple(report.created_ids.values())),
    )


def _services_to_copy(plan: Plan, live: LiveState) -> list[LiveService]:
    """The live services the emulator's answers to this plan can depend on.

    Its rules look at the service a request names and, for the one-active-name rule,
    at the services carrying a name the plan gives or takes; nothing else. So the copy
    holds those (a plan touching a few services of thousands is rehearsed in a blink),
    and the re-plan reads back only the touched ones.
    """
    touched = {op.service_id for op in plan.operations if op.service_id}
    names = {op.service for op in plan.operations}
    names |= {s.name for s in live.services if s.id in touched}
    return [s for s in live.services if s.id in touched or s.name in names]


class EmulatorWrites:
    """The applier's client for a rehearsal: its four writes handed straight to the emulator.

    The same requests the API client sends (paths, bodies, the ownership-tagged
    create), answered by `Emulator.handle` without building HTTP messages, which
    cost more than the emulator itself; answers become the API client's own
    errors (`error_for_status`, `check_created`). A 429 moves the virtual clock
    to the window's end and re-sends: the rehearsal never waits for a rate limit.
    Reads (only a lost answer's look-up needs one) go through the API client.
    """

    def __init__(self, emulator: Emulator, reads: AmigoClient, clock: VirtualClock) -> None:
        self._emulator = emulator
        self._reads = reads
        self._clock = clock
        self._org = f"/v1/{quote(emulator.organization, safe='')}"
        self._headers: dict[str, str] | None = None

    def _auth(self) -> dict[str, str]:
        if self._headers is None:
            credentials = self._emulator.credentials()
            answer = self._emulator.handle(
                "POST",
                f"{self._org}/user/signin_with_api_key",
                headers={
                    "x-api-key": credentials["AMIGO_API_KEY"],
                    "x-api-key-id": credentials["AMIGO_API_KEY_ID"],
                    "x-user-id": credentials["AMIGO_USER_ID"],
                },
            )
            self._headers = {
                "authorization": f"Bearer {answer.json()['id_token']}",
                "content-type": "application/json",
            }
        return self._headers

    def _send(
        self, operation: str, method: str, path: str, body: Any, service: str, ok: tuple[int, ...]
    ) -> tuple[int, Any]:
        from reconciler.api.failures import error_for_status, render_detail

        raw = b"" if body is None else json.dumps(body).encode("utf-8")
        while True:
            answer = self._emulator.handle(method, path, (), self._auth(), raw)
            if answer.status != 429:
                break
            retry_after = dict(answer.headers).get("retry-after", "1")
            self._clock.sleep(float(retry_after))
        if answer.status in ok:
            return answer.status, answer.json()
        payload = answer.json()
        raise error_for_status(
            operation,
            answer.status,
            render_detail(payload),
            service=service,
            payload=payload,
        )

    def list_services(
        self, *, ids: Sequence[str] = (), is_active: bool | None = None, tags: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        return self._reads.list_services(ids=ids, is_active=is_active, tags=tags)

    def create_service(self, body: Mapping[str, Any], *, service: str) -> str:
        from reconciler.api.answers import check_created

        status, payload = self._send(
            "create-service", "POST", f"{self._org}/service/", dict(body), service, (200, 201)
        )
        return check_created(payload, status, service)

    def update_service(self, service_id: str, body: Mapping[str, Any], *, service: str) -> None:
        path = f"{self._org}/service/{quote(service_id, safe='')}/"
        self._send("update-service", "POST", path, dict(body), service, (200, 204))

    def upsert_version_set(
        self, service_id: str, name: str, version_set: Mapping[str, Any], *, service: str
    ) -> None:
        body = {"version_set": dict(version_set)}
        path = self._version_set_path(service_id, name)
        self._send("upsert-service-version-set", "PUT", path, body, service, (200, 204))

    def delete_version_set(self, service_id: str, name: str, *, service: str) -> None:
        path = self._version_set_path(service_id, name)
        self._send("delete-service-version-set", "DELETE", path, None, service, (200, 204))

    def _version_set_path(self, service_id: str, name: str) -> str:
        return (
            f"{self._org}/service/{quote(service_id, safe='')}/version_sets/{quote(name, safe='')}/"
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


def _second_pass(
    plan: Plan,
    desired: DesiredState,
    live: LiveState,
    emulator: Emulator,
    created: Sequence[str],
) -> tuple[str, ...]:
    """What a plan against the rehearsed state would still do (empty: converged).

    Only the services the plan touched (and created) are read back: every other one
    is exactly as the plan found it, where it planned nothing. The re-plan is scoped
    to the touched services' names (old and new), as the convergence check after an
    apply scopes it.
    """
    from reconciler.convergence import convergence_from_plan
    from reconciler.live import references_from_api, unit_tests_from_api
    from reconciler.planner import plan_against

    touched = {op.service_id for op in plan.operations if op.service_id} | set(created)
    services = [s for s in live.services if s.id not in touched]
    services += [LiveService.from_api(emulator.service(service_id)) for service_id in touched]
    after = LiveState(
        services=tuple(sorted(services, key=lambda s: (s.name, s.id))),
        agents=references_from_api(emulator.agents()),
        state_machines=references_from_api(emulator.state_machines()),
    )

    def read_unit_tests(service_ids: Sequence[str]) -> Sequence[UnitTest]:
        wanted = set(service_ids)
        return unit_tests_from_api(t for t in emulator.unit_tests() if t["service_id"] in wanted)

    old_names = {s.name for s in live.services if s.id in touched}
    scope = tuple(sorted({*plan.targets, *(op.service for op in plan.operations), *old_names}))
    fresh = plan_against(
        desired,
        after,
        organization=plan.organization,
        base_url=plan.base_url,
        prune=plan.prune,
        targets=scope,
        read_unit_tests=read_unit_tests,
        check_targets=False,
    )
    return convergence_from_plan(fresh).differences
