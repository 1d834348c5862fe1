"""The emulated Amigo API: one plain request handler over an in-memory organization.

`Emulator.handle(method, path, query, headers, body)` answers like the live API
(the rules of the OpenAPI document, see the package docstring); `server.py`
puts it behind `httpx.MockTransport` or a loopback HTTP server. All state sits
behind one lock, so concurrent clients see the same serial order the API gives.

Choices the document leaves open (documented here so clients can rely on them):

* Rate limits are fixed windows aligned to multiples of `window_seconds` on the
  emulator's clock (epoch seconds), counted per operation and per user.
  `X-RateLimit-Reset` is the window's end as Unix epoch seconds, written as an
  integer when whole and otherwise as a decimal with up to three places (parse
  it with `float()`). `Retry-After` is delta-seconds as RFC 9110 has it: an
  integer, the ceiling of the time left in the window, at least 1. Every answer
  of a known operation carries the three `X-RateLimit-*` headers.
* Checks run in this order: rate limit (429), organization (404), token (401),
  request schema (422), then the operation's own rules (404 / 400 / 409).
* update-service with an unknown `agent_id` or state machine id answers 400
  ("invalid agent or state machine", as the document words it for
  activation); the service's version sets are kept as they are when its agent
  or state machine changes (the document is silent on that).
* An active service (or one being activated) may not use a deprecated agent or
  state machine (400); activating a service whose version sets prefer a
  deprecated LLM (declared in the seed's `deprecated_llms`) is 400 too.
  Creating a service does not check deprecation (the document lists no such
  error for create).
* Every documented parameter is honoured or refused (`parameters.py`); a
  refusal that rests only on the emulator's reading of an ambiguous rule
  carries that reading's id (`interpretations.py`, docs/emulator.md) in
  `Emulator.refusals` and in the answer's `x-emulator-interpretation` header.
* Version numbers run from 1 to the agent's (state machine's) `latest_version`.
* update-service answers `null` (FastAPI's rendering of an endpoint returning None).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from reconciler.emulator import interpretations as interp
from reconciler.emulator import models as m
from reconciler.emulator.parameters import refused_parameter
from reconciler.emulator.seed import (
    EDGE,
    RELEASE,
    Seed,
    ServiceRecord,
    UnitTestRecord,
    VersionedRecord,
    derived_id,
    load_seed,
)
from reconciler.emulator.simulation import (
    SIMULATION_ROUTES,
    HttpProblem,
    QueryRules,
    Simulations,
)
from reconciler.limits import RATE_LIMITS as API_RATE_LIMITS

if TYPE_CHECKING:
    import httpx

    from reconciler.api.client import ApiConfig
    from reconciler.emulator.server import EmulatorServer

# Requests per window (a minute on the live API), per user, from the document.
RATE_LIMITS: Mapping[str, int] = API_RATE_LIMITS

_ROUTES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("POST", ("v1", "{organization}", "user", "signin_with_api_key"), "sign-in-with-api-key"),
    ("GET", ("v1", "{organization}", "organization", "agent"), "get-agents"),
    (
        "GET",
        ("v1", "{organization}", "organization", "service_hierarchical_state_machine"),
        "get-service-hierarchical-state-machines",
    ),
    ("GET", ("v1", "{organization}", "simulation", "unit_test", ""), "get-simulation-unit-tests"),
    *SIMULATION_ROUTES,
    ("GET", ("v1", "{organization}", "service", ""), "get-services"),
    ("POST", ("v1", "{organization}", "service", ""), "create-service"),
    ("POST", ("v1", "{organization}", "service", "{service_id}", ""), "update-service"),
    (
        "PUT",
        (
            "v1",
            "{organization}",
            "service",
            "{service_id}",
            "version_sets",
            "{version_set_name}",
            "",
        ),
        "upsert-service-version-set",
    ),
    (
        "DELETE",
        (
            "v1",
            "{organization}",
            "service",
            "{service_id}",
            "version_sets",
            "{version_set_name}",
            "",
        ),
        "delete-service-version-set",
    ),
)

OPERATION_IDS: tuple[str, ...] = tuple(route[2] for route in _ROUTES)


class Fault(StrEnum):
    """What an injected fault does to a matching request."""

    STATUS_429 = "status_429"  # answer 429 with Retry-After, without acting
    STATUS_500 = "status_500"  # answer 500 without acting
    STATUS_502 = "status_502"  # answer 502 (a gateway's HTML page) without acting
    STATUS_503 = "status_503"  # answer 503 without Retry-After, without acting
    STATUS_503_RETRY_AFTER = "status_503_retry_after"  # 503 with Retry-After, without acting
    DROP_BEFORE = "drop_before"  # close the connection without acting or answering
    DROP_AFTER = "drop_after"  # act, then close the connection without answering
    SLOW = "slow"  # act, then answer only after `slow_seconds`
    # The server is still working after the client gave up: nothing happens for
    # `slow_seconds`, then the request is acted on (even if the client has
    # disconnected meanwhile) and answered. A look-up made in between finds nothing.
    COMMIT_LATE = "commit_late"


@dataclass(frozen=True, slots=True)
class EmulatorResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    drop: bool = False  # close the connection instead of answering
    delay: float = 0.0  # answer only after this many seconds
    interpretation: str | None = None  # a refusal resting only on this reading (see docs)
    # Run after `delay` to act and produce the real answer (Fault.COMMIT_LATE); the
    # server runs it whether or not the client is still connected.
    deferred: Callable[[], EmulatorResponse] | None = field(default=None, repr=False)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and the emulator's answer, as observers (the contract tests) see it."""

    operation_id: str | None
    method: str
    path: str
    path_params: Mapping[str, str]
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str] = field(repr=False)  # lower-case names; carries credentials
    body: bytes = field(repr=False)
    response: EmulatorResponse = field(repr=False)
    fault: Fault | None = None


# Called with every Exchange any Emulator handles (tests register a contract checker here).
EXCHANGE_OBSERVERS: list[Callable[[Exchange], None]] = []


@dataclass(frozen=True, slots=True)
class Refusal:
    """One 4xx answer of an operation's own checks (422 / 404 / 400 / 409), for a rehearsal.

    `interpretation` is the id of the emulator's reading of an ambiguous rule when
    the refusal rests only on it (docs/emulator.md), else None: the documented
    rules refuse the request.
    """

    operation_id: str
    status: int
    detail: Any
    interpretation: str | None
    service_id: str | None


INTERPRETATION_HEADER = "x-emulator-interpretation"
MAX_REFUSALS = 1000  # the most recent ones are kept (a long-running server stays bounded)


class _HttpError(Exception):
    def __init__(self, status: int, detail: Any, interpretation: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.interpretation = interpretation
        super().__init__(f"{status}: {detail}")


@dataclass
class _FaultRule:
    operation_id: str
    fault: Fault
    remaining: int
    service_name: str | None


@dataclass
class _Token:
    user_id: str
    expires_at: float


_JSON = (("content-type", "application/json"),)


def _json_response(
    status: int,
    payload: Any,
    headers: Iterable[tuple[str, str]] = (),
    interpretation: str | None = None,
) -> EmulatorResponse:
    body = b"" if status == 204 else json.dumps(payload, separators=(",", ":")).encode()
    base = () if status == 204 else _JSON
    extra = ((INTERPRETATION_HEADER, interpretation),) if interpretation else ()
    return EmulatorResponse(status, (*base, *headers, *extra), body, interpretation=interpretation)


_LAX_REFUSED_TYPES = frozenset({"string_type"})


def _lax_only(detail: Sequence[Mapping[str, Any]]) -> bool:
    """Every problem is a number / boolean sent for a string field of the body.

    pydantic v2 (lax) refuses those; a laxer API (pydantic v1 coerced them) would
    not, so such a refusal rests on the emulator's `lax-scalars` reading.
    """
    return bool(detail) and all(
        item.get("type") in _LAX_REFUSED_TYPES
        and list(item.get("loc", ()))[:1] == ["body"]
        and isinstance(item.get("input"), int | float | bool)
        for item in detail
    )


def _format_epoch(value: float) -> str:
    rounded = round(value, 3)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.3f}".rstrip("0")


def _iso(epoch: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _match_route(method: str, segments: Sequence[str]) -> tuple[str | None, dict[str, str], bool]:
    """(operation id, path params, path matched for some other method)."""
    path_matched = False
    for route_method, template, operation in _ROUTES:
        if len(template) != len(segments):
            continue
        params: dict[str, str] = {}
        for part, segment in zip(template, segments, strict=True):
            if part.startswith("{"):
                if not segment:
                    break
                params[part[1:-1]] = segment
            elif part != segment:
                break
        else:
            if route_method == method:
                return operation, params, True
            path_matched = True
    return None, {}, path_matched


class Emulator:
    """A local Amigo API for one organization, seeded from YAML (see `seed.py`)."""

    IN_PROCESS_BASE_URL = "http://localhost"

    def __init__(
        self,
        seed: Seed,
        *,
        window_seconds: float = 60.0,
        clock: Callable[[], float] | None = None,
        token_lifetime: float = 3600.0,
        slow_seconds: float = 5.0,
        fault_retry_after: int = 1,
    ) -> None:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self._seed = seed
        self.organization = seed.organization
        self.window_seconds = window_seconds
        self.token_lifetime = token_lifetime
        self.slow_seconds = slow_seconds
        self.fault_retry_after = fault_retry_after
        self._clock = clock or time.time
        self._lock = threading.RLock()
        self._agents: dict[str, VersionedRecord] = {a.id: a for a in seed.agents}
        self._state_machines: dict[str, VersionedRecord] = {s.id: s for s in seed.state_machines}
        self._services: dict[str, ServiceRecord] = {s.id: s for s in seed.services}
        self._unit_tests: dict[str, UnitTestRecord] = {t.id: t for t in seed.unit_tests}
        self._tokens: dict[str, _Token] = {}
        self._buckets: dict[tuple[str, str], tuple[float, int]] = {}
        self._faults: list[_FaultRule] = []
        self._late = threading.Condition()  # guards _late_pending
        self._late_pending = 0
        self._counts: Counter[str] = Counter()
        self._rate_limited = 0
        self._next_index = {"services": len(seed.services), "unit_tests": len(seed.unit_tests)}
        self._deprecated_llms: set[str] = set(seed.deprecated_llms)
        self._refusals: deque[Refusal] = deque(maxlen=MAX_REFUSALS)
        self.simulations = Simulations(
            seed.organization,
            self._unit_tests,
            seed.unit_test_sets,
            self._pinned_versions,
            self._clock,
            lambda kind, index: derived_id(self.organization, kind, index),
            QueryRules(self._page, _tag_filters, _tag_matches, _sort_keys, _creator_filters),
        )

    @classmethod
    def from_seed(
        cls,
        seed: str | Path | Mapping[str, Any],
        *,
        window_seconds: float = 60.0,
        clock: Callable[[], float] | None = None,
        token_lifetime: float = 3600.0,
        slow_seconds: float = 5.0,
    ) -> Emulator:
        """From a seed file path or an already-parsed mapping; UserError names every problem."""
        return cls(
            load_seed(seed),
            window_seconds=window_seconds,
            clock=clock,
            token_lifetime=token_lifetime,
            slow_seconds=slow_seconds,
        )

    def __repr__(self) -> str:
        return f"Emulator(organization={self.organization!r}, services={len(self._services)})"

    # --- connection helpers ----------------------------------------------------

    def credentials(self, base_url: str | None = None) -> dict[str, str]:
        """The emulator's throwaway credentials under the AMIGO_* names the client reads."""
        values = {
            "AMIGO_API_KEY": self._seed.api_key,
            "AMIGO_API_KEY_ID": self._seed.api_key_id,
            "AMIGO_USER_ID": self._seed.user_id,
            "AMIGO_ORGANIZATION_ID": self.organization,
        }
        if base_url is not None:
            values["AMIGO_BASE_URL"] = base_url
        return values

    def api_config(self, base_url: str = IN_PROCESS_BASE_URL) -> ApiConfig:
        from reconciler.api.client import ApiConfig

        return ApiConfig(
            organization=self.organization,
            api_key=self._seed.api_key,
            api_key_id=self._seed.api_key_id,
            user_id=self._seed.user_id,
            base_url=base_url,
        )

    def transport(self) -> httpx.BaseTransport:
        """In-process transport: same rules, same faults, no sockets."""
        from reconciler.emulator.server import make_transport

        return make_transport(self)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
        """Serve real HTTP in a background thread; use as a context manager (or `.close()`)."""
        from reconciler.emulator.server import EmulatorServer

        return EmulatorServer(self, host, port)

    # --- test controls and state ---------------------------------------------------

    def inject(
        self,
        operation_id: str,
        fault: Fault,
        *,
        times: int = 1,
        service_name: str | None = None,
    ) -> None:
        """Make the next `times` calls of an operation (for one service, if named) fail so."""
        if operation_id not in RATE_LIMITS:
            known = ", ".join(OPERATION_IDS)
            raise ValueError(f"unknown operation id {operation_id!r}; known: {known}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(_FaultRule(operation_id, Fault(fault), times, service_name))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return sum(rule.remaining for rule in self._faults)

    @property
    def late_commits_pending(self) -> int:
        """Requests held by Fault.COMMIT_LATE that have not been acted on yet."""
        with self._late:
            return self._late_pending

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait until every late commit (Fault.COMMIT_LATE) has happened; False on timeout."""
        with self._late:
            return self._late.wait_for(lambda: self._late_pending == 0, timeout)

    @property
    def request_counts(self) -> dict[str, int]:
        """Requests received, by operation id (faulted ones included)."""
        with self._lock:
            return dict(self._counts)

    @property
    def rate_limited_count(self) -> int:
        """How many 429 answers were given (injected ones included)."""
        with self._lock:
            return self._rate_limited

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._rate_limited = 0

    def reset_rate_limits(self) -> None:
        with self._lock:
            self._buckets.clear()

    def revoke_tokens(self) -> None:
        """Invalidate every issued token (the next call gets 401, as after a key rotation)."""
        with self._lock:
            self._tokens.clear()

    def services(self) -> list[dict[str, Any]]:
        """Every service, shaped as the API's `ServiceInstance`."""
        with self._lock:
            return [self._service_instance(s) for s in self._services.values()]

    def service(self, service_id: str) -> dict[str, Any]:
        with self._lock:
            return self._service_instance(self._services[service_id])

    def agents(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._versioned_instance(a) for a in self._agents.values()]

    def state_machines(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._versioned_instance(s) for s in self._state_machines.values()]

    def unit_tests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._unit_test_instance(t) for t in self._unit_tests.values()]

    def set_latest_version(self, agent_or_state_machine: str, latest_version: int | None) -> None:
        """Publish (or forget) versions of an agent or state machine, by id or name."""
        with self._lock:
            record = self._find_versioned(agent_or_state_machine)
            record.latest_version = latest_version

    def set_deprecated(self, agent_or_state_machine: str, deprecated: bool = True) -> None:
        with self._lock:
            self._find_versioned(agent_or_state_machine).deprecated = deprecated

    def set_llm_deprecated(self, llm_name: str, deprecated: bool = True) -> None:
        """Deprecate (or restore) an LLM by name, as the seed's `deprecated_llms` does."""
        with self._lock:
            if deprecated:
                self._deprecated_llms.add(llm_name)
            else:
                self._deprecated_llms.discard(llm_name)

    @property
    def deprecated_llms(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._deprecated_llms)

    @property
    def refusals(self) -> list[Refusal]:
        """The operations' own refusals (4xx), oldest first; faults and 401 / 429 not included."""
        with self._lock:
            return list(self._refusals)

    def clear_refusals(self) -> None:
        with self._lock:
            self._refusals.clear()

    def _find_versioned(self, ref: str) -> VersionedRecord:
        for record in (*self._agents.values(), *self._state_machines.values()):
            if ref in (record.id, record.name):
                return record
        raise KeyError(f"no agent or state machine {ref!r}")

    def add_unit_test(
        self,
        service_id: str,
        version_set: str = RELEASE,
        *,
        name: str = "unit test",
        is_deleted: bool = False,
    ) -> str:
        """A simulation unit test pinning a service's version set; returns its id."""
        with self._lock:
            service = self._services.get(service_id)
            if service is None:
                raise KeyError(f"no service {service_id!r}")
            if version_set not in service.version_sets:
                raise KeyError(f"service {service.name!r} has no version set {version_set!r}")
            ident = self._new_id("unit_tests", self._unit_tests)
            stamp = _iso(self._clock())
            user = {"org_id": self.organization, "user_id": self._seed.user_id}
            self._unit_tests[ident] = UnitTestRecord(
                id=ident,
                name=name,
                description=f"Checks {service.name}",
                service_id=service_id,
                version_set=version_set,
                is_deleted=is_deleted,
                created_at=stamp,
                updated_at=stamp,
                persona_id=derived_id(self.organization, "personas", len(self._unit_tests)),
                scenario_id=derived_id(self.organization, "scenarios", len(self._unit_tests)),
                creator=user,
                tags={},
            )
            return ident

    def delete_unit_test(self, unit_test_id: str) -> None:
        with self._lock:
            self._unit_tests[unit_test_id].is_deleted = True

    def add_service(
        self,
        name: str,
        *,
        agent: str,
        state_machine: str,
        description: str | None = None,
        is_active: bool = True,
        tags: Mapping[str, str | None] | None = None,
        keyterms: Sequence[str] = (),
        version_sets: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> str:
        """Put a service straight into the state (no API call, no rate limit); returns its id.

        Agent and state machine are given by name or id. The API's rules still
        hold: an active name must be free and versions must exist.
        """
        with self._lock:
            agent_rec = self._find_versioned(agent)
            sm_rec = self._find_versioned(state_machine)
            if is_active and self._active_named(name, exclude=None):
                raise ValueError(f"an active service named {name!r} exists")
            stored = {EDGE: self._edge(), RELEASE: self._edge()}
            for set_name, raw in (version_sets or {}).items():
                version_set = m.VersionSetIn.model_validate(
                    {
                        "agent_version_number": None,
                        "service_hierarchical_state_machine_version_number": None,
                        "llm_model_preferences": {},
                        **raw,
                    }
                )
                problem = self._version_problem(version_set, agent_rec, sm_rec)
                if problem:
                    raise ValueError(problem)
                stored[set_name] = version_set.to_stored()
            user = {"org_id": self.organization, "user_id": self._seed.user_id}
            ident = self._new_id("services", self._services)
            self._services[ident] = ServiceRecord(
                id=ident,
                name=name,
                description=description or f"{name} service",
                is_active=is_active,
                agent_id=agent_rec.id,
                state_machine_id=sm_rec.id,
                tags=dict(tags or {}),
                keyterms=list(keyterms),
                version_sets=stored,
                creator=dict(user),
                updated_by=dict(user),
            )
            return ident

    # --- the request handler -------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> EmulatorResponse:
        """Answer one request. `path` is the raw (percent-encoded) path without the query."""
        method = method.upper()
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        query = tuple(query)
        segments = [unquote(part) for part in path.split("/")[1:]] if path.startswith("/") else []
        operation, params, path_known = _match_route(method, segments)
        fault: Fault | None = None
        if operation is None:
            response = self._unrouted(method, path, segments, path_known)
        else:
            with self._lock:
                self._counts[operation] += 1
                fault = self._take_fault(operation, params, body)
            response = self._answer(operation, params, query, lowered, body, fault)
            if response.deferred is not None:
                # Observers see the real answer once it exists.
                act = response.deferred

                def act_then_observe() -> EmulatorResponse:
                    answer = act()
                    self._observe(
                        Exchange(
                            operation, method, path, params, query, lowered, body, answer, fault
                        )
                    )
                    return answer

                return replace(response, deferred=act_then_observe)
        self._observe(
            Exchange(
                operation_id=operation,
                method=method,
                path=path,
                path_params=params,
                query=query,
                headers=lowered,
                body=body,
                response=response,
                fault=fault,
            )
        )
        return response

    @staticmethod
    def _observe(exchange: Exchange) -> None:
        for observer in tuple(EXCHANGE_OBSERVERS):
            observer(exchange)

    def _unrouted(
        self, method: str, path: str, segments: list[str], path_known: bool
    ) -> EmulatorResponse:
        if path_known:
            return _json_response(405, {"detail": "Method Not Allowed"})
        # FastAPI (redirect_slashes) redirects to the other spelling when that one exists.
        other = segments[:-1] if segments and segments[-1] == "" else [*segments, ""]
        _, _, other_known = _match_route(method, other)
        if other_known:
            location = path[:-1] if path.endswith("/") else path + "/"
            return EmulatorResponse(307, (("location", location),))
        return _json_response(404, {"detail": "Not Found"})

    def _take_fault(self, operation: str, params: Mapping[str, str], body: bytes) -> Fault | None:
        for rule in self._faults:
            if rule.operation_id != operation or rule.remaining <= 0:
                continue
            if rule.service_name is not None and rule.service_name != self._service_name_of(
                operation, params, body
            ):
                continue
            rule.remaining -= 1
            if rule.remaining == 0:
                self._faults.remove(rule)
            return rule.fault
        return None

    def _service_name_of(
        self, operation: str, params: Mapping[str, str], body: bytes
    ) -> str | None:
        if operation == "create-service":
            try:
                name = json.loads(body).get("name")
            except (ValueError, AttributeError):
                return None
            return name.strip() if isinstance(name, str) else None
        service = self._services.get(params.get("service_id", ""))
        return service.name if service else None

    def _answer(
        self,
        operation: str,
        params: Mapping[str, str],
        query: tuple[tuple[str, str], ...],
        headers: Mapping[str, str],
        body: bytes,
        fault: Fault | None,
    ) -> EmulatorResponse:
        if fault is Fault.DROP_BEFORE:
            return EmulatorResponse(0, drop=True)
        if fault is Fault.COMMIT_LATE:
            with self._late:
                self._late_pending += 1

            def commit() -> EmulatorResponse:
                return self._commit_late(operation, params, query, headers, body)

            return EmulatorResponse(0, delay=self.slow_seconds, deferred=commit)
        if fault is not None and fault.value.startswith("status_"):
            return self._fault_response(operation, headers, fault)
        response = self._dispatch(operation, params, query, headers, body)
        if fault is Fault.DROP_AFTER:
            return replace(response, drop=True)
        if fault is Fault.SLOW:
            return replace(response, delay=self.slow_seconds)
        return response

    def _commit_late(
        self,
        operation: str,
        params: Mapping[str, str],
        query: tuple[tuple[str, str], ...],
        headers: Mapping[str, str],
        body: bytes,
    ) -> EmulatorResponse:
        """Act on a request held by Fault.COMMIT_LATE (the pending count drops either way)."""
        try:
            return self._dispatch(operation, params, query, headers, body)
        finally:
            with self._late:
                self._late_pending -= 1
                self._late.notify_all()

    def _fault_response(
        self, operation: str, headers: Mapping[str, str], fault: Fault
    ) -> EmulatorResponse:
        if fault is Fault.STATUS_429:
            with self._lock:
                self._rate_limited += 1
                identity = self._identity(operation, headers)
                limit_headers = self._limit_headers(operation, identity, remaining=0)
            retry = (("retry-after", str(self.fault_retry_after)),)
            detail = f"rate limit of {RATE_LIMITS[operation]} requests per minute exceeded"
            return _json_response(429, {"detail": detail}, (*limit_headers, *retry))
        if fault is Fault.STATUS_500:
            return _json_response(500, {"detail": "Internal Server Error"})
        if fault is Fault.STATUS_502:
            page = b"<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
            return EmulatorResponse(502, (("content-type", "text/html"),), page)
        maintenance = {"detail": "The service is going through temporary maintenance."}
        if fault is Fault.STATUS_503_RETRY_AFTER:
            retry = (("retry-after", str(self.fault_retry_after)),)
            return _json_response(503, maintenance, retry)
        return _json_response(503, maintenance)

    # --- rate limits and auth ------------------------------------------------------

    def _identity(self, operation: str, headers: Mapping[str, str]) -> str:
        """Whose budget a request spends: the token's user, the signing-in user, or anonymous."""
        if operation == "sign-in-with-api-key":
            return "user:" + headers.get("x-user-id", "")
        token = self._tokens.get(self._bearer(headers) or "")
        return "user:" + token.user_id if token else "anonymous"

    @staticmethod
    def _bearer(headers: Mapping[str, str]) -> str | None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None

    def _window(self) -> tuple[float, float]:
        now = self._clock()
        start = math.floor(now / self.window_seconds) * self.window_seconds
        return now, start

    def _limit_headers(
        self, operation: str, identity: str, *, remaining: int | None = None
    ) -> tuple[tuple[str, str], ...]:
        limit = RATE_LIMITS[operation]
        _, start = self._window()
        if remaining is None:
            window_start, count = self._buckets.get((operation, identity), (start, 0))
            remaining = limit - (count if window_start == start else 0)
        return (
            ("x-ratelimit-limit", str(limit)),
            ("x-ratelimit-remaining", str(max(0, remaining))),
            ("x-ratelimit-reset", _format_epoch(start + self.window_seconds)),
        )

    def _spend(self, operation: str, identity: str) -> EmulatorResponse | None:
        """Count the request in its window; a 429 answer when the budget is spent."""
        now, start = self._window()
        limit = RATE_LIMITS[operation]
        window_start, count = self._buckets.get((operation, identity), (start, 0))
        if window_start != start:
            count = 0
        if count >= limit:
            self._rate_limited += 1
            retry_after = max(1, math.ceil(start + self.window_seconds - now))
            headers = (
                *self._limit_headers(operation, identity, remaining=0),
                ("retry-after", str(retry_after)),
            )
            detail = (
                f"The user has exceeded the rate limit of {limit} requests per minute "
                "for this endpoint."
            )
            return _json_response(429, {"detail": detail}, headers)
        self._buckets[(operation, identity)] = (start, count + 1)
        return None

    def _authenticate(self, headers: Mapping[str, str]) -> str:
        token = self._bearer(headers)
        if token is None:
            raise _HttpError(401, "Invalid authorization credentials.")
        record = self._tokens.get(token)
        if record is None:
            raise _HttpError(401, "Invalid authorization credentials.")
        if record.expires_at <= self._clock():
            raise _HttpError(401, "The authorization token has expired.")
        return record.user_id

    def _dispatch(
        self,
        operation: str,
        params: Mapping[str, str],
        query: tuple[tuple[str, str], ...],
        headers: Mapping[str, str],
        body: bytes,
    ) -> EmulatorResponse:
        with self._lock:
            identity = self._identity(operation, headers)
            limited = self._spend(operation, identity)
            if limited is not None:
                return limited
            limit_headers = self._limit_headers(operation, identity)
            try:
                if params.get("organization") != self.organization:
                    raise _HttpError(404, f"Organization {params.get('organization')!r} not found.")
                if operation == "sign-in-with-api-key":
                    self._refuse_parameters(operation, query, headers)
                    status, payload = self._sign_in(headers)
                else:
                    user = self._authenticate(headers)
                    self._refuse_parameters(operation, query, headers)
                    handler = self._handlers[operation]
                    status, payload = handler(self, params, query, body, user)
            except m.RequestInvalid as exc:
                reading = exc.interpretation or (
                    interp.LAX_SCALARS if _lax_only(exc.detail) else None
                )
                return self._refused(operation, params, 422, exc.detail, reading, limit_headers)
            except _HttpError as exc:
                if exc.status == 401:
                    return _json_response(401, {"detail": exc.detail}, limit_headers)
                return self._refused(
                    operation, params, exc.status, exc.detail, exc.interpretation, limit_headers
                )
            return _json_response(status, payload, limit_headers)

    def _refused(
        self,
        operation: str,
        params: Mapping[str, str],
        status: int,
        detail: Any,
        interpretation: str | None,
        headers: Iterable[tuple[str, str]],
    ) -> EmulatorResponse:
        self._refusals.append(
            Refusal(operation, status, detail, interpretation, params.get("service_id"))
        )
        return _json_response(status, {"detail": detail}, headers, interpretation)

    @staticmethod
    def _refuse_parameters(
        operation: str, query: Sequence[tuple[str, str]], headers: Mapping[str, str]
    ) -> None:
        refused = refused_parameter(operation, query, headers)
        if refused is None:
            return
        location, name, value, rule = refused
        message = f"The emulator does not model {name!r}: {rule.how}."
        if location == "header":  # never echoed: Sec-WebSocket-Protocol can carry a token
            raise m.header_error(name, message, None, interpretation=rule.interpretation)
        raise m.query_error(name, message, value, interpretation=rule.interpretation)

    def _sign_in(self, headers: Mapping[str, str]) -> tuple[int, Any]:
        missing = [n for n in ("x-api-key", "x-api-key-id", "x-user-id") if n not in headers]
        if missing:
            raise m.RequestInvalid(
                [
                    {
                        "type": "missing",
                        "loc": ["header", name],
                        "msg": "Field required",
                        "input": None,
                    }
                    for name in missing
                ]
            )
        seed = self._seed
        accepted = (
            secrets.compare_digest(headers["x-api-key"], seed.api_key)
            and headers["x-api-key-id"] == seed.api_key_id
            and headers["x-user-id"] == seed.user_id
        )
        if not accepted:
            raise _HttpError(
                401, "API key not found, is incorrect, or the requested user is not found."
            )
        expires_at = self._clock() + self.token_lifetime
        token = "emu." + secrets.token_urlsafe(24)
        self._tokens[token] = _Token(seed.user_id, expires_at)
        return 200, {"id_token": token, "expires_at": _iso(expires_at)}

    # --- shapes ----------------------------------------------------------------------

    def _service_instance(self, s: ServiceRecord) -> dict[str, Any]:
        return {
            "id": s.id,
            "name": s.name,
            "version_sets": {
                name: json.loads(json.dumps(vs)) for name, vs in s.version_sets.items()
            },
            "description": s.description,
            "is_active": s.is_active,
            "service_hierarchical_state_machine_id": s.state_machine_id,
            "agent_id": s.agent_id,
            "tags": [{"key": k, "value": v} for k, v in s.tags.items()],
            "keyterms": list(s.keyterms),
            "creator": dict(s.creator),
            "updated_by": dict(s.updated_by),
        }

    @staticmethod
    def _versioned_instance(r: VersionedRecord) -> dict[str, Any]:
        return {
            "id": r.id,
            "name": r.name,
            "deprecated": r.deprecated,
            "latest_version": r.latest_version,
        }

    def _unit_test_instance(self, t: UnitTestRecord) -> dict[str, Any]:
        return {
            "id": t.id,
            "org_id": self.organization,
            "created_at": t.created_at,
            "updated_at": t.updated_at,
            "name": t.name,
            "description": t.description,
            "service_id": t.service_id,
            "service_version_set_name": t.version_set,
            "persona_id": t.persona_id,
            "scenario_id": t.scenario_id,
            "max_interactions": 10,
            "success_criterions": self.simulations.success_criteria(t),
            "is_deleted": t.is_deleted,
            "tags": [{"key": k, "value": v} for k, v in t.tags.items()],
            "creator": dict(t.creator),
            "updated_by": dict(t.creator),
        }

    # --- rules -------------------------------------------------------------------------

    @staticmethod
    def _edge() -> dict[str, Any]:
        return {
            "agent_version_number": None,
            "service_hierarchical_state_machine_version_number": None,
            "llm_model_preferences": {},
        }

    def _new_id(self, kind: str, taken: Mapping[str, Any]) -> str:
        while True:
            ident = derived_id(self.organization, kind, self._next_index[kind])
            self._next_index[kind] += 1
            if ident not in taken:
                return ident

    def _active_named(self, name: str, exclude: str | None) -> ServiceRecord | None:
        for service in self._services.values():
            if service.is_active and service.name == name and service.id != exclude:
                return service
        return None

    def _pinned(self, service_id: str, version_set: str | None = None) -> list[UnitTestRecord]:
        return [
            t
            for t in self._unit_tests.values()
            if not t.is_deleted
            and t.service_id == service_id
            and (version_set is None or t.version_set == version_set)
        ]

    @staticmethod
    def _version_problem(
        version_set: m.VersionSetIn, agent: VersionedRecord, sm: VersionedRecord
    ) -> str | None:
        for number, owner, what in (
            (version_set.agent_version_number, agent, "agent"),
            (version_set.service_hierarchical_state_machine_version_number, sm, "state machine"),
        ):
            if number is None:
                continue
            if owner.latest_version is None or not 1 <= number <= owner.latest_version:
                return (
                    f"Version {number} does not belong to the {what} {owner.id} "
                    f"(latest version: {owner.latest_version})."
                )
        return None

    def _service_or_404(self, params: Mapping[str, str]) -> ServiceRecord:
        service_id = m.parse_object_id_path("service_id", params["service_id"])
        service = self._services.get(service_id)
        if service is None:
            raise _HttpError(404, f"Service {service_id} not found.")
        return service

    @staticmethod
    def _page(items: list[Any], offset: int, limit: int) -> tuple[list[Any], bool, int | None]:
        if offset < 0:
            raise m.query_error(
                "continuation_token",
                "continuation_token must not be negative",
                offset,
                interpretation=interp.CONTINUATION_OFFSET,
            )
        page = items[offset : offset + limit]
        has_more = offset + limit < len(items)
        return page, has_more, (offset + limit if has_more else None)

    # --- handlers ----------------------------------------------------------------------

    def _get_services(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        q = m.parse_query(m.GetServicesQuery, query)
        tag_filters = _tag_filters("tags", q.tags)
        sort_keys = _sort_keys(q.sort_by, ("name", "is_active"))
        services = list(self._services.values())
        if q.id:
            wanted = set(q.id)
            services = [s for s in services if s.id in wanted]
        if q.is_active is not None:
            services = [s for s in services if s.is_active == q.is_active]
        for key, value in tag_filters:
            services = [s for s in services if _tag_matches(s.tags, key, value)]
        for name, descending in reversed(sort_keys):
            services.sort(key=lambda s, n=name: getattr(s, n), reverse=descending)  # type: ignore[misc]
        page, has_more, token = self._page(services, q.continuation_token, q.limit)
        filter_values = None
        if q.continuation_token == 0:
            tags = {
                f"{k}:{'' if v is None else v}"
                for s in self._services.values()
                for k, v in s.tags.items()
            }
            filter_values = {"tags": sorted(tags)}
        return 200, {
            "services": [self._service_instance(s) for s in page],
            "has_more": has_more,
            "continuation_token": token,
            "filter_values": filter_values,
        }

    def _resolve(
        self, agent_id: str, sm_id: str, status: int
    ) -> tuple[VersionedRecord, VersionedRecord]:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise _HttpError(status, f"Agent {agent_id} not found.")
        sm = self._state_machines.get(sm_id)
        if sm is None:
            raise _HttpError(status, f"Service hierarchical state machine {sm_id} not found.")
        return agent, sm

    def _create_service(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        request = m.parse_body(m.CreateServiceRequest, body)
        agent, sm = self._resolve(
            request.agent_id, request.service_hierarchical_state_machine_id, 404
        )
        for owner, what in ((agent, "agent"), (sm, "state machine")):
            if owner.latest_version is None:
                raise _HttpError(400, f"The {what} {owner.id} doesn't have any versions.")
        if request.release_version_set is not None:
            problem = self._version_problem(request.release_version_set, agent, sm)
            if problem:
                raise _HttpError(400, problem)
        if request.is_active and self._active_named(request.name, exclude=None):
            raise _HttpError(409, f"An active service named {request.name!r} already exists.")
        release = (
            request.release_version_set.to_stored()
            if request.release_version_set is not None
            else self._edge()
        )
        who = {"org_id": self.organization, "user_id": user}
        ident = self._new_id("services", self._services)
        self._services[ident] = ServiceRecord(
            id=ident,
            name=request.name,
            description=request.description,
            is_active=request.is_active,
            agent_id=agent.id,
            state_machine_id=sm.id,
            tags=dict(request.tags),
            keyterms=list(request.keyterms),
            version_sets={EDGE: self._edge(), RELEASE: release},
            creator=dict(who),
            updated_by=dict(who),
        )
        return 201, {"id": ident}

    def _update_service(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        service_id = m.parse_object_id_path("service_id", params["service_id"])
        request = m.parse_body(m.UpdateServiceRequest, body)
        service = self._service_or_404({"service_id": service_id})
        name = request.name if request.name is not None else service.name
        active = request.is_active if request.is_active is not None else service.is_active
        agent_id = request.agent_id or service.agent_id
        sm_id = request.service_hierarchical_state_machine_id or service.state_machine_id
        if (
            request.agent_id is not None
            or request.service_hierarchical_state_machine_id is not None
        ):
            self._resolve(agent_id, sm_id, 400)
        activating = active and not service.is_active
        if active and (
            activating or agent_id != service.agent_id or sm_id != service.state_machine_id
        ):
            agent, sm = self._resolve(agent_id, sm_id, 400)
            for owner, what in ((agent, "agent"), (sm, "state machine")):
                if owner.deprecated:
                    raise _HttpError(
                        400,
                        f"An active service cannot use the deprecated {what} {owner.id}.",
                        # Documented for an activation; for a move it is the emulator's reading.
                        None if activating else interp.DEPRECATED_ON_MOVE,
                    )
                if owner.latest_version is None:
                    raise _HttpError(400, f"The {what} {owner.id} doesn't have any versions.")
        if activating:
            self._check_llms(service)
        if active and (activating or name != service.name):
            other = self._active_named(name, exclude=service.id)
            if other is not None:
                raise _HttpError(
                    409, f"An active service named {name!r} already exists ({other.id})."
                )
        if service.is_active and request.is_active is False:
            pinned = self._pinned(service.id)
            if pinned:
                raise _HttpError(
                    400,
                    f"Service {service.id} is used in simulation unit test {pinned[0].id} "
                    f"({pinned[0].name!r}) and cannot be deactivated.",
                )
        service.name = name
        if request.description is not None:
            service.description = request.description
        service.is_active = active
        service.agent_id = agent_id
        service.state_machine_id = sm_id
        if request.tags is not None:
            service.tags = dict(request.tags)
        if request.keyterms is not None:
            service.keyterms = list(request.keyterms)
        service.updated_by = {"org_id": self.organization, "user_id": user}
        return 200, None

    def _check_llms(self, service: ServiceRecord) -> None:
        """Activation with a deprecated LLM preferred by any version set is a 400."""
        used = sorted(
            (set_name, key, cfg["llm_name"])
            for set_name, version_set in service.version_sets.items()
            for key, cfg in version_set.get("llm_model_preferences", {}).items()
            if cfg.get("llm_name") in self._deprecated_llms
        )
        if not used:
            return
        in_release = [u for u in used if u[0] == RELEASE]
        set_name, key, llm = (in_release or used)[0]
        raise _HttpError(
            400,
            f"Service {service.id} cannot be activated: version set {set_name!r} uses the "
            f"deprecated LLM {llm} (for {key!r}).",
            None if in_release else interp.DEPRECATED_LLM_ANY_SET,
        )

    def _upsert_version_set(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        service_id = m.parse_object_id_path("service_id", params["service_id"])
        name = m.parse_version_set_name_path(params["version_set_name"])
        request = m.parse_body(m.UpsertVersionSetRequest, body)
        service = self._service_or_404({"service_id": service_id})
        if name == EDGE:
            raise _HttpError(400, "The `edge` version set cannot be updated.")
        agent, sm = self._resolve(service.agent_id, service.state_machine_id, 400)
        problem = self._version_problem(request.version_set, agent, sm)
        if problem:
            raise _HttpError(400, problem)
        service.version_sets[name] = request.version_set.to_stored()
        service.updated_by = {"org_id": self.organization, "user_id": user}
        return 204, None

    def _delete_version_set(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        service = self._service_or_404(params)
        name = params["version_set_name"]
        if name in (EDGE, RELEASE):
            raise _HttpError(400, f"The `{name}` version set cannot be deleted.")
        if name not in service.version_sets:
            raise _HttpError(404, f"Version set {name!r} not found on service {service.id}.")
        pinned = self._pinned(service.id, name)
        if pinned:
            raise _HttpError(
                400,
                f"Version set {name!r} is used in simulation unit test {pinned[0].id} "
                f"({pinned[0].name!r}).",
            )
        del service.version_sets[name]
        return 204, None

    def _get_versioned(
        self,
        query: Sequence[tuple[str, str]],
        model: type[m.GetAgentsQuery] | type[m.GetStateMachinesQuery],
        records: Iterable[VersionedRecord],
        key: str,
    ) -> tuple[int, Any]:
        q = m.parse_query(model, query)
        items = list(records)
        if q.id:
            wanted = set(q.id)
            items = [r for r in items if r.id in wanted]
        if q.deprecated is not None:
            items = [r for r in items if r.deprecated == q.deprecated]
        page, has_more, token = self._page(items, q.continuation_token, q.limit)
        return 200, {
            key: [self._versioned_instance(r) for r in page],
            "has_more": has_more,
            "continuation_token": token,
        }

    def _get_agents(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        return self._get_versioned(query, m.GetAgentsQuery, self._agents.values(), "agents")

    def _get_state_machines(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        return self._get_versioned(
            query,
            m.GetStateMachinesQuery,
            self._state_machines.values(),
            "service_hierarchical_state_machines",
        )

    def _get_unit_tests(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        q = m.parse_query(m.GetUnitTestsQuery, query)
        tests = list(self._unit_tests.values())
        if q.id:
            wanted = set(q.id)
            tests = [t for t in tests if t.id in wanted]
        if q.service_id:
            services = set(q.service_id)
            tests = [t for t in tests if t.service_id in services]
        if q.is_deleted is not None:
            tests = [t for t in tests if t.is_deleted == q.is_deleted]
        for values, attribute in ((q.persona_id, "persona_id"), (q.scenario_id, "scenario_id")):
            if values:
                wanted = set(values)
                tests = [t for t in tests if getattr(t, attribute) in wanted]
        if q.metric_id:
            metrics = set(q.metric_id)
            tests = [t for t in tests if metrics & self.simulations.metric_ids(t)]
        if q.creator:
            creators = _creator_filters(q.creator)
            tests = [t for t in tests if (t.creator["org_id"], t.creator["user_id"]) in creators]
        for key, value in _tag_filters("tag", q.tag):
            tests = [t for t in tests if _tag_matches(t.tags, key, value)]
        for name, descending in reversed(_sort_keys(q.sort_by, ("updated_at",))):
            tests.sort(key=lambda t, n=name: getattr(t, n), reverse=descending)  # type: ignore[misc]
        page, has_more, token = self._page(tests, q.continuation_token, q.limit)
        filter_values = None
        if q.continuation_token == 0:
            creators = {(t.creator["org_id"], t.creator["user_id"]) for t in tests}
            filter_values = {
                "creators": [{"org_id": o, "user_id": u} for o, u in sorted(creators)],
                "tags": sorted({k for t in tests for k in t.tags}),
                "service_ids": sorted({t.service_id for t in tests}),
                "persona_ids": sorted({t.persona_id for t in tests}),
                "scenario_ids": sorted({t.scenario_id for t in tests}),
                "metric_ids": sorted({i for t in tests for i in self.simulations.metric_ids(t)}),
            }
        return 200, {
            "simulation_unit_tests": [self._unit_test_instance(t) for t in page],
            "has_more": has_more,
            "continuation_token": token,
            "filter_values": filter_values,
        }

    _Handler = Callable[
        ["Emulator", Mapping[str, str], Sequence[tuple[str, str]], bytes, str], tuple[int, Any]
    ]
    _handlers: Mapping[str, _Handler] = {
        "get-services": _get_services,
        "create-service": _create_service,
        "update-service": _update_service,
        "upsert-service-version-set": _upsert_version_set,
        "delete-service-version-set": _delete_version_set,
        "get-agents": _get_agents,
        "get-service-hierarchical-state-machines": _get_state_machines,
        "get-simulation-unit-tests": _get_unit_tests,
        "get-simulation-unit-test-sets": lambda self, p, q, b, u: self._simulate(
            lambda: self.simulations.get_sets(q)
        ),
        "get-simulation-unit-test-set-runs": lambda self, p, q, b, u: self._simulate(
            lambda: self.simulations.get_runs(q)
        ),
        "create-simulation-unit-test-set-run": lambda self, p, q, b, u: self._simulate(
            lambda: self.simulations.create_run(b, u)
        ),
    }

    def _simulate(self, call: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
        try:
            return call()
        except HttpProblem as exc:
            raise _HttpError(exc.status, exc.detail) from None

    def _pinned_versions(
        self, service_id: str, name: str
    ) -> tuple[int, int, dict[str, Any]] | None:
        """A version set's agent and state machine versions (null: latest) and preferences."""
        service = self._services.get(service_id)
        if service is None or name not in service.version_sets:
            return None
        stored = service.version_sets[name]
        agent = self._agents.get(service.agent_id)
        machine = self._state_machines.get(service.state_machine_id)
        agent_number = stored.get("agent_version_number") or (
            agent.latest_version if agent else None
        )
        machine_number = stored.get("service_hierarchical_state_machine_version_number") or (
            machine.latest_version if machine else None
        )
        prefs = json.loads(json.dumps(stored.get("llm_model_preferences") or {}))
        return agent_number or 0, machine_number or 0, prefs


def _creator_filters(raw_values: Sequence[str]) -> set[tuple[str, str]]:
    """The documented `org_id,user_id` creator syntax, or a 422."""
    creators = set()
    for raw in raw_values:
        org_id, sep, user_id = raw.partition(",")
        if not sep or not org_id or not user_id or "," in user_id:
            raise m.query_error(
                "creator", "Each creator must be of the format org_id,user_id.", raw
            )
        creators.add((org_id, user_id))
    return creators


def _tag_filters(parameter: str, raw_values: Sequence[str]) -> list[tuple[str, str]]:
    """The documented `key:value` syntax, or a 422 naming the parameter."""
    filters = []
    for raw in raw_values:
        key, sep, value = raw.partition(":")
        if not sep or not key:
            raise m.query_error(parameter, "Tags must be specified as key:value.", raw)
        filters.append((key, value))
    return filters


def _sort_keys(raw_values: Sequence[str], fields: Sequence[str]) -> list[tuple[str, bool]]:
    """`[+|-]field` as documented: one optional sign, then a supported field; else 422.

    `--name` is the sign `-` and the field `-name`, which no endpoint supports.
    """
    keys = []
    for raw in raw_values:
        sign = raw[:1] if raw[:1] in ("+", "-") else ""
        name = raw[len(sign) :]
        if name not in fields:
            supported = " and ".join(fields)
            raise m.query_error(
                "sort_by",
                f"Supported sort fields are {supported}, each optionally preceded by + or -.",
                raw,
            )
        keys.append((name, sign == "-"))
    return keys


def _tag_matches(tags: Mapping[str, str | None], key: str, value: str) -> bool:
    """The documented `key:value` filter: `*` any value, empty matches a None value."""
    if key not in tags:
        return False
    if value == "*":
        return True
    if value == "":
        return tags[key] is None
    return tags[key] == value
