"""The emulated Amigo API: one plain request handler over an in-memory organization.

`Emulator.handle(method, path, query, headers, body)` answers like the live API
(the rules of the OpenAPI document, see the package docstring); `server.py`
puts it behind `httpx.MockTransport` or a loopback HTTP server. All state sits
behind one lock, so concurrent clients see the same serial order the API gives.

This module is the front door: it runs the checks in order and tells observers
(given to the constructor) about every exchange. The parts live along their
seams: `routing.py` (method and path -> operation), `rate_windows.py`,
`auth.py` (sign-in and tokens), `faults.py` (injected failures), `state.py` (the
organization's records) and `rules.py` (each operation's own rules).

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

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from reconciler.emulator import interpretations as interp
from reconciler.emulator import models as m
from reconciler.emulator.auth import SIGN_IN, Auth, Credentials
from reconciler.emulator.faults import Fault, Faults, status_fault_response
from reconciler.emulator.parameters import refused_parameter
from reconciler.emulator.rate_windows import RATE_LIMITS, RateWindows
from reconciler.emulator.responses import (
    INTERPRETATION_HEADER,
    EmulatorResponse,
    HttpError,
    Refusal,
    iso,
    json_response,
)
from reconciler.emulator.routing import OPERATION_IDS, match_route, unrouted
from reconciler.emulator.rules import (
    Rules,
    creator_filters,
    lax_only,
    paginate,
    sort_keys,
    tag_filters,
    tag_matches,
    version_problem,
)
from reconciler.emulator.seed import (
    EDGE,
    RELEASE,
    Seed,
    ServiceRecord,
    UnitTestRecord,
    derived_id,
    load_seed,
)
from reconciler.emulator.simulation import QueryRules, Simulations
from reconciler.emulator.state import OrgState, edge, service_instance, versioned_instance

if TYPE_CHECKING:
    import httpx

    from reconciler.emulator.server import EmulatorServer

__all__ = [
    "INTERPRETATION_HEADER",
    "MAX_REFUSALS",
    "OPERATION_IDS",
    "RATE_LIMITS",
    "Emulator",
    "EmulatorResponse",
    "Exchange",
    "Fault",
    "Observer",
    "Refusal",
]

MAX_REFUSALS = 1000  # the most recent ones are kept (a long-running server stays bounded)


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


# Called with every Exchange its Emulator handles (tests pass a contract checker).
Observer = Callable[[Exchange], None]


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
        observers: Iterable[Observer] = (),
    ) -> None:
        self._seed = seed
        self.organization = seed.organization
        self.slow_seconds = slow_seconds
        self.fault_retry_after = fault_retry_after
        self._clock = clock or time.time
        self._observers = tuple(observers)
        self._lock = threading.RLock()
        self._windows = RateWindows(window_seconds, self._clock)
        self._auth = Auth(
            Credentials(seed.api_key, seed.api_key_id, seed.user_id), self._clock, token_lifetime
        )
        self._faults = Faults()
        self._state = OrgState(seed)
        self._late = threading.Condition()  # guards _late_pending
        self._late_pending = 0
        self._counts: Counter[str] = Counter()
        self._refusals: deque[Refusal] = deque(maxlen=MAX_REFUSALS)
        # (operation, x-mongo-cluster-name or None) per request, so a test can assert
        # the header was sent exactly when configured.
        self._clusters: deque[tuple[str, str | None]] = deque(maxlen=MAX_REFUSALS)
        self.simulations = Simulations(
            seed.organization,
            self._state.unit_tests,
            seed.unit_test_sets,
            self._state.pinned_versions,
            self._clock,
            lambda kind, index: derived_id(self.organization, kind, index),
            QueryRules(paginate, tag_filters, tag_matches, sort_keys, creator_filters),
        )
        self._rules = Rules(self._state, self.simulations)

    @classmethod
    def from_seed(
        cls,
        seed: str | Path | Mapping[str, Any],
        *,
        window_seconds: float = 60.0,
        clock: Callable[[], float] | None = None,
        token_lifetime: float = 3600.0,
        slow_seconds: float = 5.0,
        observers: Iterable[Observer] = (),
    ) -> Emulator:
        """From a seed file path or an already-parsed mapping; UserError names every problem."""
        return cls(
            load_seed(seed),
            window_seconds=window_seconds,
            clock=clock,
            token_lifetime=token_lifetime,
            slow_seconds=slow_seconds,
            observers=observers,
        )

    def __repr__(self) -> str:
        return f"Emulator(organization={self.organization!r}, services={len(self._state.services)})"

    @property
    def window_seconds(self) -> float:
        return self._windows.window_seconds

    @property
    def token_lifetime(self) -> float:
        return self._auth.token_lifetime

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
            self._faults.add(operation_id, Fault(fault), times, service_name)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return self._faults.pending

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
            return self._windows.rate_limited

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._windows.rate_limited = 0

    def reset_rate_limits(self) -> None:
        with self._lock:
            self._windows.reset()

    def revoke_tokens(self) -> None:
        """Invalidate every issued token (the next call gets 401, as after a key rotation)."""
        with self._lock:
            self._auth.revoke()

    @property
    def issued_tokens(self) -> list[str]:
        """Every bearer token issued and not revoked (tests check none of them leaks)."""
        with self._lock:
            return self._auth.issued

    def services(self) -> list[dict[str, Any]]:
        """Every service, shaped as the API's `ServiceInstance`."""
        with self._lock:
            return [service_instance(s) for s in self._state.services.values()]

    def service(self, service_id: str) -> dict[str, Any]:
        with self._lock:
            return service_instance(self._state.services[service_id])

    def agents(self) -> list[dict[str, Any]]:
        with self._lock:
            return [versioned_instance(a) for a in self._state.agents.values()]

    def state_machines(self) -> list[dict[str, Any]]:
        with self._lock:
            return [versioned_instance(s) for s in self._state.state_machines.values()]

    def unit_tests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._rules.unit_test_instance(t) for t in self._state.unit_tests.values()]

    def set_latest_version(self, agent_or_state_machine: str, latest_version: int | None) -> None:
        """Publish (or forget) versions of an agent or state machine, by id or name."""
        with self._lock:
            record = self._state.find_versioned(agent_or_state_machine)
            record.latest_version = latest_version

    def set_deprecated(self, agent_or_state_machine: str, deprecated: bool = True) -> None:
        with self._lock:
            self._state.find_versioned(agent_or_state_machine).deprecated = deprecated

    def set_llm_deprecated(self, llm_name: str, deprecated: bool = True) -> None:
        """Deprecate (or restore) an LLM by name, as the seed's `deprecated_llms` does."""
        with self._lock:
            if deprecated:
                self._state.deprecated_llms.add(llm_name)
            else:
                self._state.deprecated_llms.discard(llm_name)

    @property
    def deprecated_llms(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._state.deprecated_llms)

    @property
    def mongo_cluster_names(self) -> list[tuple[str, str | None]]:
        """(operation, the x-mongo-cluster-name header or None) of each request, oldest first."""
        with self._lock:
            return list(self._clusters)

    @property
    def refusals(self) -> list[Refusal]:
        """The operations' own refusals (4xx), oldest first; faults and 401 / 429 not included."""
        with self._lock:
            return list(self._refusals)

    def clear_refusals(self) -> None:
        with self._lock:
            self._refusals.clear()

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
            service = self._state.services.get(service_id)
            if service is None:
                raise KeyError(f"no service {service_id!r}")
            if version_set not in service.version_sets:
                raise KeyError(f"service {service.name!r} has no version set {version_set!r}")
            ident = self._state.new_id("unit_tests", self._state.unit_tests)
            stamp = iso(self._clock())
            user = {"org_id": self.organization, "user_id": self._seed.user_id}
            self._state.unit_tests[ident] = UnitTestRecord(
                id=ident,
                name=name,
                description=f"Checks {service.name}",
                service_id=service_id,
                version_set=version_set,
                is_deleted=is_deleted,
                created_at=stamp,
                updated_at=stamp,
                persona_id=derived_id(self.organization, "personas", len(self._state.unit_tests)),
                scenario_id=derived_id(self.organization, "scenarios", len(self._state.unit_tests)),
                creator=user,
                tags={},
            )
            return ident

    def delete_unit_test(self, unit_test_id: str) -> None:
        with self._lock:
            self._state.unit_tests[unit_test_id].is_deleted = True

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
            agent_rec = self._state.find_versioned(agent)
            sm_rec = self._state.find_versioned(state_machine)
            if is_active and self._state.active_named(name, exclude=None):
                raise ValueError(f"an active service named {name!r} exists")
            stored = {EDGE: edge(), RELEASE: edge()}
            for set_name, raw in (version_sets or {}).items():
                version_set = m.VersionSetIn.model_validate(
                    {
                        "agent_version_number": None,
                        "service_hierarchical_state_machine_version_number": None,
                        "llm_model_preferences": {},
                        **raw,
                    }
                )
                problem = version_problem(version_set, agent_rec, sm_rec)
                if problem:
                    raise ValueError(problem)
                stored[set_name] = version_set.to_stored()
            user = {"org_id": self.organization, "user_id": self._seed.user_id}
            ident = self._state.new_id("services", self._state.services)
            self._state.services[ident] = ServiceRecord(
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
        operation, params, path_known = match_route(method, segments)
        fault: Fault | None = None
        if operation is None:
            response = unrouted(method, path, segments, path_known)
        else:
            with self._lock:
                self._counts[operation] += 1
                fault = self._faults.take(
                    operation, lambda: self._service_name_of(operation, params, body)
                )
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

    def _observe(self, exchange: Exchange) -> None:
        for observer in self._observers:
            observer(exchange)

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
            return self._status_fault(operation, headers, fault)
        response = self._dispatch(operation, params, query, headers, body)
        if fault is Fault.DROP_AFTER:
            return replace(response, drop=True)
        if fault is Fault.SLOW:
            return replace(response, delay=self.slow_seconds)
        return response

    def _service_name_of(
        self, operation: str, params: Mapping[str, str], body: bytes
    ) -> str | None:
        """The service a request is about (for faults injected for one service)."""
        if operation == "create-service":
            try:
                name = json.loads(body).get("name")
            except (ValueError, AttributeError):
                return None
            return name.strip() if isinstance(name, str) else None
        service = self._state.services.get(params.get("service_id", ""))
        return service.name if service else None

    def _status_fault(
        self, operation: str, headers: Mapping[str, str], fault: Fault
    ) -> EmulatorResponse:
        limit_headers: tuple[tuple[str, str], ...] = ()
        if fault is Fault.STATUS_429:
            with self._lock:
                self._windows.rate_limited += 1
                identity = self._auth.identity(operation, headers)
                limit_headers = self._windows.limit_headers(operation, identity, remaining=0)
        return status_fault_response(operation, fault, self.fault_retry_after, limit_headers)

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

    def _dispatch(
        self,
        operation: str,
        params: Mapping[str, str],
        query: tuple[tuple[str, str], ...],
        headers: Mapping[str, str],
        body: bytes,
    ) -> EmulatorResponse:
        with self._lock:
            self._clusters.append((operation, headers.get("x-mongo-cluster-name")))
            identity = self._auth.identity(operation, headers)
            limited = self._windows.spend(operation, identity)
            if limited is not None:
                return limited
            limit_headers = self._windows.limit_headers(operation, identity)
            try:
                if params.get("organization") != self.organization:
                    raise HttpError(404, f"Organization {params.get('organization')!r} not found.")
                if operation == SIGN_IN:
                    self._refuse_parameters(operation, query, headers)
                    status, payload = self._auth.sign_in(headers)
                else:
                    user = self._auth.authenticate(headers)
                    self._refuse_parameters(operation, query, headers)
                    handler = self._rules.handlers[operation]
                    status, payload = handler(params, query, body, user)
            except m.RequestInvalid as exc:
                reading = exc.interpretation or (
                    interp.LAX_SCALARS if lax_only(exc.detail) else None
                )
                return self._refused(operation, params, 422, exc.detail, reading, limit_headers)
            except HttpError as exc:
                if exc.status == 401:
                    return json_response(401, {"detail": exc.detail}, limit_headers)
                return self._refused(
                    operation, params, exc.status, exc.detail, exc.interpretation, limit_headers
                )
            return json_response(status, payload, limit_headers)

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
        return json_response(status, {"detail": detail}, headers, interpretation)

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
