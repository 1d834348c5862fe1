"""Execute a Plan through the client: dependency order, concurrency, failures, lost answers.

Scheduling. Operations start as soon as every operation they depend on
(`depends_on`, plus `service_from`) is done: there are no waves. Independent
operations run in a thread pool; the client paces each endpoint to its rate
limit, so the wall time approaches the largest `operations_on_endpoint / limit`
rather than the sum of all calls. To keep one slow endpoint (say 20 creates at
20/min) from holding every worker while work for other endpoints waits, each
endpoint gets a fair share of the workers; ready work is started in order of
how much other work it unblocks, then in plan order.

Failures. A failed operation marks everything that (transitively) depends on it
`skipped`, naming the failed operation; independent work goes on. `failed`
means the operation did not take effect; one whose answer was lost and whose
effect no look-up could confirm is `outcome_unknown` (it may have), and its
dependents are skipped the same way. The core never prints: progress goes to
`on_event`, called on the calling thread once per operation as it reaches its
final state.

Cancelling. When `cancel` is set no new operation starts and the client sends
nothing new (a call waiting for its rate-limit slot ends unsent); requests
already on the wire finish; the rest are reported `not_started`. When `abort`
is set too (a second Ctrl-C) the apply returns at once: operations still on
the wire are reported `outcome_unknown`.

Re-sending, action by action (docs/safety.md has the per-operation table; the
client re-sends by itself whatever provably never reached the server):

- `create_service` (POST, not idempotent: a second send makes a second
  service, and the API has no idempotency key). When its answer is lost
  (`OutcomeUnknown`) the applier looks once for the service: services carrying
  the ownership tag, with the request's name and `is_active`, not already known
  to this plan (ids the plan works on, its drift, services this run created).
  One found is the one just created: done, with that id. None found proves
  nothing (the server may still be working on it), so nothing is re-sent: the
  operation is `outcome_unknown`, its dependents are skipped, and the next run
  re-plans against what is there. Several found, or a failed look-up: also
  `outcome_unknown`.
- `update_service` (POST, but it sets fields to values: twice is once). On a
  lost answer the service is re-read; if every requested field already holds it
  is done, otherwise the same body is sent once more.
- `upsert_version_set` (PUT, replaces the set whole) and `delete_version_set`
  (DELETE): the client re-sends them itself; a 404 on a delete is checked
  against a fresh read (already absent means done).
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from reconciler.api.errors import ApiError, NotFound, OutcomeUnknown, RequestCancelled
from reconciler.limits import RATE_LIMITS
from reconciler.model import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE
from reconciler.plan import Action, Kind, Operation, Plan

if TYPE_CHECKING:
    pass

_T = TypeVar("_T")

OWNERSHIP_TAG_FILTER = f"{OWNERSHIP_TAG_KEY}:{OWNERSHIP_TAG_VALUE}"

# The API endpoint (OpenAPI operationId) each action calls: the unit of rate limiting.
ENDPOINT: Mapping[Action, str] = {
    Action.CREATE_SERVICE: "create-service",
    Action.UPDATE_SERVICE: "update-service",
    Action.UPSERT_VERSION_SET: "upsert-service-version-set",
    Action.DELETE_VERSION_SET: "delete-service-version-set",
}

# Documented requests per minute of each write endpoint (for estimates only;
# the client does the real pacing from these and the X-RateLimit-* headers).
DOCUMENTED_LIMIT_PER_MINUTE: Mapping[str, int] = {
    endpoint: RATE_LIMITS[endpoint] for endpoint in ENDPOINT.values()
}


class ApplyClient(Protocol):
    """What the applier needs from `reconciler.api.client.AmigoClient`."""

    def list_services(
        self, *, ids: Sequence[str] = (), is_active: bool | None = None, tags: Sequence[str] = ()
    ) -> list[dict[str, Any]]: ...

    def create_service(self, body: Mapping[str, Any], *, service: str) -> str: ...

    def update_service(self, service_id: str, body: Mapping[str, Any], *, service: str) -> None: ...

    def upsert_version_set(
        self, service_id: str, name: str, version_set: Mapping[str, Any], *, service: str
    ) -> None: ...

    def delete_version_set(self, service_id: str, name: str, *, service: str) -> None: ...


class Status(StrEnum):
    DONE = "done"
    FAILED = "failed"
    # Sent, its answer lost, and no look-up could tell whether it took effect: it
    # may have. Never re-sent blindly; the next run re-plans from what is there.
    OUTCOME_UNKNOWN = "outcome_unknown"
    SKIPPED = "skipped"  # a dependency failed, or its outcome is unknown (or could not run)
    NOT_STARTED = "not_started"  # cancelled before its request was sent


@dataclass(frozen=True, slots=True)
class OperationResult:
    """What happened to one operation. `message` says why for failed / skipped / not
    started, and for done operations how a lost answer was resolved (else None)."""

    key: str
    action: Action
    kind: Kind
    service: str
    version_set: str | None
    status: Status
    duration: float = 0.0  # seconds, from start to answer (includes waiting for the rate limit)
    service_id: str | None = None
    error_class: str | None = None  # e.g. "Conflict", "BadRequest", "OutcomeUnknown"
    api_status: int | None = None  # HTTP status, when the API answered
    detail: str | None = None  # the API's own message
    message: str | None = None
    finished_at: float = 0.0  # seconds since the apply started


@dataclass(frozen=True, slots=True)
class ApplyReport:
    results: tuple[OperationResult, ...]  # in plan order
    elapsed: float
    cancelled: bool = False
    created_ids: Mapping[str, str] = field(default_factory=dict)  # create op key -> new id

    @property
    def ok(self) -> bool:
        return not self.cancelled and all(r.status is Status.DONE for r in self.results)

    @property
    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for result in self.results:
            counts[result.status.value] += 1
        return counts

    def by_status(self, status: Status) -> list[OperationResult]:
        return [r for r in self.results if r.status is status]


class _Outcome:
    """A worker's answer: the id it produced (creates) and a note about recovery."""

    __slots__ = ("note", "service_id")

    def __init__(self, service_id: str | None, note: str | None = None) -> None:
        self.service_id = service_id
        self.note = note


def dependencies(op: Operation) -> tuple[str, ...]:
    """Keys `op` waits for: its `depends_on` and the create that gives it its service id."""
    deps = list(op.depends_on)
    if op.service_from and op.service_from not in deps:
        deps.append(op.service_from)
    return tuple(deps)


def rate_limit_floor(plan: Plan, limits: Mapping[str, int] | None = None) -> float:
    """Seconds the plan's writes need at least, from the per-minute limits (ignoring bursts)."""
    limits = limits or DOCUMENTED_LIMIT_PER_MINUTE
    per_endpoint: dict[str, int] = {}
    for op in plan.operations:
        endpoint = ENDPOINT[op.action]
        per_endpoint[endpoint] = per_endpoint.get(endpoint, 0) + 1
    return max((n / limits[e] * 60.0 for e, n in per_endpoint.items()), default=0.0)


# After an inactive create's lost answer and an empty look-up: look again after these
# shares of LATE_LOOK_UP_FACTOR x the client's timeout (growing delays, summing to 1).
LATE_LOOK_UP_FACTOR = 2.0
LATE_LOOK_UP_SHARES = (0.1, 0.15, 0.25, 0.5)


def client_timeout(client: object) -> float:
    """The client's request timeout (`AmigoClient.config.timeout`); 0 for a client
    without one (a test double), which then gets no follow-up look-ups."""
    timeout = getattr(getattr(client, "config", None), "timeout", 0.0)
    return float(timeout) if isinstance(timeout, int | float) else 0.0


def apply_plan(
    client: ApplyClient,
    plan: Plan,
    *,
    on_event: Callable[[OperationResult], None] | None = None,
    cancel: threading.Event | None = None,
    max_workers: int = 8,
    abort: threading.Event | None = None,
) -> ApplyReport:
    """Run every operation of `plan`, as concurrently as its dependencies allow.

    `cancel`: start nothing new, let what is on the wire finish. `abort` (with
    cancel): return at once, operations still running reported outcome_unknown
    (their worker threads are left behind: the caller is about to exit).

    Raises ValueError for a plan that carries errors (it must never be applied).
    API failures do not raise: they are in the report.
    """
    if plan.errors:
        raise ValueError(f"refusing to apply a plan with {len(plan.errors)} error(s)")
    run = _Run(client, plan, on_event, cancel or threading.Event(), max_workers)
    run.abort = abort or threading.Event()
    run.late_window = LATE_LOOK_UP_FACTOR * client_timeout(client)
    return run.run()


class _Run:
    """One apply: the dispatcher state, touched only by the calling thread."""

    def __init__(
        self,
        client: ApplyClient,
        plan: Plan,
        on_event: Callable[[OperationResult], None] | None,
        cancel: threading.Event,
        max_workers: int,
    ) -> None:
        self.client = client
        self.plan = plan
        self.on_event = on_event
        self.cancel = cancel
        self.max_workers = max(1, max_workers)
        self.ops = {op.key: op for op in plan.operations}
        self.order = {op.key: i for i, op in enumerate(plan.operations)}
        self.results: dict[str, OperationResult] = {}
        self.created_ids: dict[str, str] = {}
        self.dependents: dict[str, list[str]] = {key: [] for key in self.ops}
        for op in plan.operations:
            for dep in dependencies(op):
                if dep in self.dependents:
                    self.dependents[dep].append(op.key)
        self.weight = self._unblock_weights()
        # Readiness is kept incrementally (a plan of thousands of operations must not be
        # rescanned per start): each operation's dependencies not yet done, and per
        # endpoint a heap of the ready ones in start order (most unblocking, then plan order).
        self.unmet = {op.key: len(set(dependencies(op))) for op in plan.operations}
        self.ready: dict[str, list[tuple[int, int, str]]] = {}
        for op in plan.operations:
            if self.unmet[op.key] == 0:
                self._push_ready(op.key)
        endpoints = {ENDPOINT[op.action] for op in plan.operations}
        self.per_endpoint_cap = max(1, math.ceil(self.max_workers / max(1, len(endpoints))))
        self.known_ids = {op.service_id for op in plan.operations if op.service_id}
        self.known_ids |= {d.service_id for d in plan.drift}
        self.finished_unstarted: list[str] = []  # skipped before they started
        self.lock = threading.Lock()  # guards known_ids / created_ids read by workers
        self.abort = threading.Event()
        self.late_window = 0.0  # seconds of follow-up look-ups after a lost inactive create
        self.start = time.monotonic()

    def _unblock_weights(self) -> dict[str, int]:
        """How many operations (transitively) wait for each one: start those first."""
        memo: dict[str, set[str]] = {}

        def below(key: str, trail: frozenset[str]) -> set[str]:
            if key in memo:
                return memo[key]
            out: set[str] = set()
            for child in self.dependents[key]:
                if child not in trail:  # a cycle is reported later, not looped on
                    out.add(child)
                    out |= below(child, trail | {child})
            memo[key] = out
            return out

        return {key: len(below(key, frozenset({key}))) for key in self.ops}

    # --- dispatcher ---------------------------------------------------------------
    def run(self) -> ApplyReport:
        # Not yet started, in plan order (a dict: removing one is O(1)).
        pending = dict.fromkeys(op.key for op in self.plan.operations)
        in_flight: dict[Future[_Outcome], tuple[str, float]] = {}
        endpoint_load: dict[str, int] = {}
        executor = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="apply")
        try:
            while (pending or in_flight) and not self.abort.is_set():
                if not self.cancel.is_set():
                    while len(in_flight) < self.max_workers:
                        key = self._next_ready(endpoint_load)
                        if key is None:
                            break
                        endpoint = ENDPOINT[self.ops[key].action]
                        del pending[key]
                        endpoint_load[endpoint] = endpoint_load.get(endpoint, 0) + 1
                        started = time.monotonic()
                        in_flight[executor.submit(self._execute, self.ops[key])] = (key, started)
                if not in_flight:
                    if pending and not self.cancel.is_set():
                        # Nothing runs and nothing can start: the rest wait on themselves.
                        for key in list(pending):
                            self._finish_skipped(key, self._stuck_reason(key))
                        pending.clear()
                    break
                done, _ = wait(in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: self.order[in_flight[f][0]]):
                    key, started = in_flight.pop(future)
                    endpoint_load[ENDPOINT[self.ops[key].action]] -= 1
                    self._collect(key, started, future)
                    for skipped in self.finished_unstarted:
                        pending.pop(skipped, None)
                    self.finished_unstarted.clear()
        finally:
            # Aborted: do not wait for requests still on the wire (the caller exits).
            executor.shutdown(wait=not self.abort.is_set(), cancel_futures=True)
        for key, _started in sorted(in_flight.values(), key=lambda item: self.order[item[0]]):
            self._finish(
                key,
                Status.OUTCOME_UNKNOWN,
                error_class="OutcomeUnknown",
                message="stopped (second Ctrl-C) while its request was on the wire: it may or "
                "may not have taken effect; run plan to see where things stand",
            )
        cancelled = self.cancel.is_set() or self.abort.is_set()
        for key in pending:
            if key not in self.results:
                self._finish(
                    key,
                    Status.NOT_STARTED,
                    message="cancelled before it was sent",
                )
        return ApplyReport(
            results=tuple(self.results[op.key] for op in self.plan.operations),
            elapsed=time.monotonic() - self.start,
            cancelled=cancelled
            and (
                self.abort.is_set()
                or any(r.status is Status.NOT_STARTED for r in self.results.values())
            ),
            created_ids=dict(self.created_ids),
        )

    def _push_ready(self, key: str) -> None:
        heap = self.ready.setdefault(ENDPOINT[self.ops[key].action], [])
        heapq.heappush(heap, (-self.weight[key], self.order[key], key))

    def _next_ready(self, endpoint_load: Mapping[str, int]) -> str | None:
        """The ready operation to start next on an endpoint below its share of the workers."""
        best: tuple[int, int, str] | None = None
        best_endpoint = ""
        for endpoint, heap in self.ready.items():
            while heap and heap[0][2] in self.results:  # skipped meanwhile
                heapq.heappop(heap)
            if not heap or endpoint_load.get(endpoint, 0) >= self.per_endpoint_cap:
                continue
            if best is None or heap[0] < best:
                best, best_endpoint = heap[0], endpoint
        if best is None:
            return None
        heapq.heappop(self.ready[best_endpoint])
        return best[2]

    def _stuck_reason(self, key: str) -> str:
        missing = [d for d in dependencies(self.ops[key]) if d not in self.ops]
        if missing:
            return f"depends on {', '.join(missing)}, which is not in the plan"
        return "its dependencies form a cycle (a planner bug; please report it)"

    def _collect(self, key: str, started: float, future: Future[_Outcome]) -> None:
        op = self.ops[key]
        duration = time.monotonic() - started
        try:
            outcome = future.result()
        except RequestCancelled as exc:
            self._finish(key, Status.NOT_STARTED, message=f"cancelled before it was sent ({exc})")
            self._skip_dependents(key, "was not started")
            return
        except ApiError as exc:
            # OutcomeUnknown: the answer was lost and nothing could tell; it may have acted.
            unknown = isinstance(exc, OutcomeUnknown)
            self._finish(
                key,
                Status.OUTCOME_UNKNOWN if unknown else Status.FAILED,
                duration=duration,
                service_id=self._service_id(op),
                error_class=type(exc).__name__,
                api_status=exc.status,
                detail=exc.detail,
                message=str(exc),
            )
            self._skip_dependents(key, "may or may not have taken effect" if unknown else "failed")
            return
        except Exception as exc:  # a bug: report it against this operation, keep going
            self._finish(
                key,
                Status.FAILED,
                duration=duration,
                service_id=self._service_id(op),
                error_class=type(exc).__name__,
                message=f"internal error while applying: {type(exc).__name__}: {exc}",
            )
            self._skip_dependents(key)
            return
        if op.action is Action.CREATE_SERVICE and outcome.service_id:
            with self.lock:
                self.created_ids[key] = outcome.service_id
                self.known_ids.add(outcome.service_id)
        self._finish(
            key, Status.DONE, duration=duration, service_id=outcome.service_id, message=outcome.note
        )

    def _skip_dependents(self, failed_key: str, how: str = "failed") -> None:
        failed = self.ops[failed_key]
        what = describe(failed)
        stack = list(self.dependents[failed_key])
        while stack:
            key = stack.pop()
            if key in self.results:
                continue
            reason = (
                f"{failed_key} ({what}) {how}"
                if failed_key in dependencies(self.ops[key])
                else f"depends on {failed_key} ({what}), which {how}"
            )
            self._finish_skipped(key, reason)
            stack.extend(self.dependents[key])

    def _finish_skipped(self, key: str, reason: str) -> None:
        self._finish(
            key, Status.SKIPPED, service_id=self._service_id(self.ops[key]), message=reason
        )

    def _finish(self, key: str, status: Status, **fields: Any) -> None:
        op = self.ops[key]
        fields.setdefault("service_id", self._service_id(op))
        result = OperationResult(
            key=key,
            action=op.action,
            kind=op.kind,
            service=op.service,
            version_set=op.version_set,
            status=status,
            finished_at=time.monotonic() - self.start,
            **fields,
        )
        self.results[key] = result
        if status is Status.DONE:
            for child in dict.fromkeys(self.dependents[key]):
                self.unmet[child] -= 1
                if self.unmet[child] == 0 and child not in self.results:
                    self._push_ready(child)
        elif status is Status.SKIPPED:
            self.finished_unstarted.append(key)
        if self.on_event is not None:
            self.on_event(result)

    def _service_id(self, op: Operation) -> str | None:
        if op.service_id:
            return op.service_id
        with self.lock:
            if op.service_from:
                return self.created_ids.get(op.service_from)
            return self.created_ids.get(op.key)

    # --- workers (run in the pool) ----------------------------------------------------
    def _execute(self, op: Operation) -> _Outcome:
        if op.action is Action.CREATE_SERVICE:
            return self._create(op)
        service_id = self._service_id(op)
        if not service_id:
            raise ValueError(f"{op.key} has no service id and no create to take it from")
        if op.action is Action.UPDATE_SERVICE:
            return self._update(op, service_id)
        if op.action is Action.UPSERT_VERSION_SET:
            return self._upsert(op, service_id)
        return self._delete(op, service_id)

    def _create(self, op: Operation) -> _Outcome:
        """Send once. A lost answer is resolved by one look-up, never by a second send.

        The API has no idempotency key, and a server may still be working on the
        create when the client gives up: a look-up that finds nothing proves
        nothing, and a re-send could commit a second service. (Failures that
        prove the request never reached the server are re-sent by the client.)
        """
        try:
            return _Outcome(self.client.create_service(op.request, service=op.service))
        except OutcomeUnknown as lost:
            found = self._look_up(lost, op, lambda: self._find_created(op))
            if found:
                return _Outcome(found, "answer lost; found the created service by name and tag")
            if op.request.get("is_active", True):
                raise _unknown(
                    lost,
                    "the answer was lost and the service is not there (yet): the API may "
                    "still be creating it, so it was not sent again",
                    "wait a minute, then run plan again before apply: it finds the service "
                    "if it landed (no create of it in the plan) and creates it otherwise; a "
                    "second active one would be refused by the API (409)",
                ) from None
            found, waited = self._look_again(lost, op)
            if found:
                return _Outcome(
                    found,
                    f"answer lost; the service was not there at first and was found "
                    f"{waited:.1f}s later (the API committed it late)",
                )
            raise _unknown(
                lost,
                f"the answer was lost and the service was still not there after looking "
                f"again for {waited:.1f}s: the API may still be creating it, so it was not "
                "sent again",
                "wait a few minutes, then run plan again before apply: no create of it in "
                "the plan means it landed; do not re-run apply sooner: inactive services may "
                "share a name, so the API would not refuse a second one",
            ) from None

    def _look_again(self, lost: OutcomeUnknown, op: Operation) -> tuple[str | None, float]:
        """More look-ups for an inactive create, after growing delays.

        Nothing on the API side stops a second inactive service of one name, so a
        re-run right after an outcome-unknown inactive create would duplicate it if
        the first landed late. Waiting about 2x the client's timeout in all narrows
        that window; Ctrl-C (cancel) ends the wait at once.
        """
        waited = 0.0
        for share in LATE_LOOK_UP_SHARES:
            delay = self.late_window * share
            if delay <= 0 or self.cancel.wait(delay):
                break
            waited += delay
            found = self._look_up(lost, op, lambda: self._find_created(op))
            if found:
                return found, waited
        return None, waited

    def _look_up(self, lost: OutcomeUnknown, op: Operation, read: Callable[[], _T]) -> _T:
        """Run a look-up after a lost answer; when it fails the outcome stays unknown."""
        try:
            return read()
        except OutcomeUnknown:
            raise
        except ApiError as exc:
            raise _unknown(
                lost,
                f"the answer was lost and the look-up that would tell failed ({exc})",
                "run plan again: it shows whether the change landed",
            ) from None

    def _find_created(self, op: Operation) -> str | None:
        """The service a lost create made, if it exists; raises if that cannot be told apart."""
        body = op.request
        name = str(body.get("name", op.service)).strip()
        is_active = bool(body.get("is_active", True))
        tags = body.get("tags") or {}
        owned = tags.get(OWNERSHIP_TAG_KEY) == OWNERSHIP_TAG_VALUE
        listed = self.client.list_services(
            is_active=is_active, tags=[OWNERSHIP_TAG_FILTER] if owned else []
        )
        with self.lock:
            known = set(self.known_ids)
        candidates = [
            s
            for s in listed
            if str(s.get("name", "")).strip() == name
            and bool(s.get("is_active")) == is_active
            and s.get("id") not in known
        ]
        if len(candidates) > 1:
            # Narrow by the other fields the create set; still ambiguous means do not guess.
            fields = ("description", "agent_id", "service_hierarchical_state_machine_id")
            candidates = [
                s for s in candidates if all(s.get(f) == body.get(f) for f in fields if f in body)
            ]
        if len(candidates) > 1:
            raise OutcomeUnknown(
                "create-service",
                service=op.service,
                detail=(
                    f"the answer was lost and {len(candidates)} services named {name!r} "
                    "now exist that this plan did not know; nothing was re-sent"
                ),
                hint="run plan again and pin the intended one with metadata.id",
            )
        return str(candidates[0]["id"]) if candidates else None

    def _update(self, op: Operation, service_id: str) -> _Outcome:
        """An update sets fields to values: sending it twice leaves what sending it once does.

        So after a lost answer it is re-read, and re-sent once if it does not hold yet
        (a late commit of the first send then writes the same values again).
        """
        try:
            self.client.update_service(service_id, op.request, service=op.service)
            return _Outcome(service_id)
        except OutcomeUnknown as lost:
            live = self._look_up(lost, op, lambda: self.client.list_services(ids=[service_id]))
            if live and update_holds(live[0], op.request):
                return _Outcome(service_id, "answer lost; the update had taken effect")
        self.client.update_service(service_id, op.request, service=op.service)
        return _Outcome(service_id, "answer lost; sent again")

    def _upsert(self, op: Operation, service_id: str) -> _Outcome:
        """A PUT: the client re-sends it on lost answers by itself (it replaces the set whole)."""
        assert op.version_set is not None
        self.client.upsert_version_set(service_id, op.version_set, op.request, service=op.service)
        return _Outcome(service_id)

    def _delete(self, op: Operation, service_id: str) -> _Outcome:
        """A DELETE: re-sent by the client; a 404 is checked against a fresh read."""
        assert op.version_set is not None
        try:
            self.client.delete_version_set(service_id, op.version_set, service=op.service)
            return _Outcome(service_id)
        except NotFound:
            live = self.client.list_services(ids=[service_id])
            if live and op.version_set not in (live[0].get("version_sets") or {}):
                return _Outcome(service_id, "already absent (an earlier attempt deleted it)")
            raise


def _unknown(lost: OutcomeUnknown, detail: str, hint: str) -> OutcomeUnknown:
    """The operation's outcome stays unknown: say why, keep what the API said."""
    said = f"{detail} ({lost.detail})" if lost.detail else detail
    return OutcomeUnknown(
        lost.operation, status=lost.status, detail=said, service=lost.service, hint=hint
    )


def update_holds(live: Mapping[str, Any], request: Mapping[str, Any]) -> bool:
    """Whether every field an update_service request sets already has that value live."""
    for key, wanted in request.items():
        if wanted is None:
            continue  # null means "unchanged"
        if key == "tags":
            have = {t["key"]: t.get("value") for t in live.get("tags") or []}
            if have != dict(wanted):
                return False
        elif key == "keyterms":
            if list(live.get("keyterms") or []) != list(wanted):
                return False
        elif live.get(key) != wanted:
            return False
    return True


def describe(op: Operation | OperationResult) -> str:
    """`update 'Meet & Greet' version set 'canary'`: how people read an operation."""
    where = f"{op.service!r}" + (f" version set {op.version_set!r}" if op.version_set else "")
    return f"{op.kind.value} {where}"
