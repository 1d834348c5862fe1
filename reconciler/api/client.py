"""The Amigo API client: sign-in, pagination, pacing, retries and error mapping.

Every request goes through `AmigoClient._call`, which in order: gets a bearer
token (signing in once, shared by all threads), waits for the operation's rate
limiter, sends, learns from the X-RateLimit-* headers, and then either returns
the answer, retries what is safe to retry, or raises the matching `ApiError`.

Retry rules (see `retry.py`): GET, PUT and DELETE are retried on 429, 502, 503,
504, timeouts and dropped connections. The two POSTs (create, update) are
re-sent only when the server provably did not act: a 429, a 503 with
Retry-After, or a connection that never opened. Any other lost answer raises
`OutcomeUnknown` so the caller looks before re-sending.

A DELETE of a version set answered 404 after an earlier attempt of the *same*
call whose answer was lost (dropped connection, timeout, 502/503/504) counts
as success: the lost attempt most likely deleted it, and services are never
deleted, so a 404 then can only mean the version set is gone, which is what
the caller asked for. A 404 on the first attempt, or after only 429s (which
provably did nothing), is still an error.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from reconciler.api.answers import check_created, check_page, check_run_created, check_sign_in
from reconciler.api.auth import TokenCache, parse_expires_at
from reconciler.api.config import DEFAULT_BASE_URL, MONGO_CLUSTER_HEADER, ApiConfig
from reconciler.api.errors import (
    ApiError,
    DeadlineExceeded,
    OutcomeUnknown,
    RateLimited,
    RequestCancelled,
    ServerError,
    TransportError,
)
from reconciler.api.failures import error_for_status, redact, render_detail
from reconciler.api.operations import (
    CREATE_SERVICE,
    CREATE_UNIT_TEST_SET_RUN,
    DELETE_VERSION_SET,
    GET_AGENTS,
    GET_SERVICES,
    GET_STATE_MACHINES,
    GET_UNIT_TEST_SET_RUNS,
    GET_UNIT_TEST_SETS,
    GET_UNIT_TESTS,
    OPERATIONS,
    SIGN_IN,
    UPDATE_SERVICE,
    UPSERT_VERSION_SET,
    Operation,
)
from reconciler.api.pacing import RateLimiter, RateLimitHeaders, parse_rate_limit_headers
from reconciler.api.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after
from reconciler.api.transport import DeadlineTransport, attempt_deadline, environment_proxy_mounts

__all__ = ["DEFAULT_BASE_URL", "AmigoClient", "ApiConfig"]

SERVICES_PAGE_SIZE = 20
AGENTS_PAGE_SIZE = 20
STATE_MACHINES_PAGE_SIZE = 50
UNIT_TESTS_PAGE_SIZE = 500
UNIT_TEST_SETS_PAGE_SIZE = 20  # the documented maximum
UNIT_TEST_SET_RUNS_PAGE_SIZE = 50  # the documented maximum
# Repeated id / service_id values per request: keeps the URL under ~4 KB.
IDS_PER_CALL = 100
MAX_PAGES = 10_000
CONNECT_TIMEOUT_SECONDS = 10.0

# Connection failures where the request provably never reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAY_HAVE_ACTED_HINT = "the request may or may not have been applied; look before re-sending"


def _certificate_problem(exc: BaseException) -> str | None:
    """The verification error behind a failed TLS handshake, if that is what failed.

    A certificate that does not verify will not verify on the next attempt either:
    such a failure is reported at once instead of being retried.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current.verify_message or current.reason or str(current)
        if "CERTIFICATE_VERIFY_FAILED" in str(current):
            return str(current)
        current = current.__cause__ or current.__context__
    return None


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


def _segment(value: str) -> str:
    return quote(value, safe="")


def _describe_transport_error(exc: httpx.TransportError) -> str:
    peer = _peer(exc)
    if isinstance(exc, httpx.TimeoutException):
        kind = f"timed out waiting for {peer}" if peer else "timed out"
    elif isinstance(exc, _NOT_SENT):
        kind = f"could not connect to {peer}" if peer else "could not connect"
    else:
        kind = (
            f"connection to {peer} lost before an answer"
            if peer
            else "connection lost before an answer"
        )
    text = str(exc).strip()
    return f"{kind} ({type(exc).__name__}: {text})" if text else f"{kind} ({type(exc).__name__})"


def _peer(exc: httpx.TransportError) -> str:
    """'https://host[:port]': which API was unreachable (a mistyped AMIGO_BASE_URL shows).

    Scheme, host and port only: never a path, query or user:password part.
    """
    try:
        url = exc.request.url
    except RuntimeError:  # raised without a request (not by httpx's own client)
        return ""
    if not url.host:
        return ""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


class AmigoClient:
    """Thread-safe client; one sign-in per process, reused until near expiry.

    Every attempt of every call has a wall-clock deadline,
    `config.attempt_deadline_seconds` (`ApiConfig.attempt_deadline`, else
    2 x timeout + 5 s), on top of httpx's per-operation timeouts (connect
    min(timeout, 10 s); read, write and pool `timeout`). It is enforced at the
    socket (see `transport.py`), so a server trickling its headers or body a
    byte at a time still ends the attempt by then, as a timeout: retried for
    GET/PUT/DELETE, `OutcomeUnknown` for the POSTs. A call therefore ends within
    attempts x deadline plus backoff (and rate-limit waits). TLS verification,
    connection limits and HTTP(S)_PROXY / NO_PROXY routing are httpx's defaults.

    `transport` lets tests and the in-process emulator plug in (httpx.MockTransport);
    a transport passed in is used as is (no socket, so no deadline backend).
    `sleep` / `clock` are injectable so pacing and backoff are testable; `clock`
    returns Unix epoch seconds (the scale of X-RateLimit-Reset and token expiry).
    """

    def __init__(
        self,
        config: ApiConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        on_wait: Callable[[str], None] | None = None,  # told "waiting 12s for rate limit on ..."
        retry_policy: RetryPolicy | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        import time

        self.config = config
        # Once set (Ctrl-C), nothing new is sent: a call waiting for its rate-limit
        # slot or its next retry ends with RequestCancelled (or OutcomeUnknown when
        # an earlier attempt of it may have acted). Requests on the wire finish.
        self.cancel = cancel or threading.Event()
        self._clock: Callable[[], float] = clock or time.time
        self._inner_sleep: Callable[[float], None] = sleep or self._wait
        self._sleep: Callable[[float], None] = self._bounded_sleep
        self._deadline: float | None = None  # on self._clock's scale; see `deadline`
        self._on_wait = on_wait
        self._retry = retry_policy or RetryPolicy()
        mounts: dict[str, httpx.BaseTransport | None] = {}
        if transport is None:
            # httpx's own transport and env-proxy routing, on the deadline backend.
            transport = DeadlineTransport()
            mounts.update(environment_proxy_mounts())
        self._transport = transport
        self._http = httpx.Client(
            base_url=config.base_url,
            transport=transport,
            mounts=mounts,
            timeout=httpx.Timeout(
                config.timeout, connect=min(config.timeout, CONNECT_TIMEOUT_SECONDS)
            ),
            headers={
                "accept": "application/json",
                "user-agent": "amigo-reconciler",
                **(
                    {MONGO_CLUSTER_HEADER: config.mongo_cluster_name}
                    if config.mongo_cluster_name is not None
                    else {}
                ),
            },
            follow_redirects=False,
        )
        self._tokens = TokenCache(self._clock)
        self._limiters = {
            op.id: RateLimiter(
                op.id,
                op.limit_per_window,
                config.rate_window_seconds,
                clock=self._clock,
                sleep=self._sleep,
                on_wait=on_wait,
                cancelled=self.cancel.is_set,
            )
            for op in OPERATIONS.values()
        }
        self._counts_lock = threading.Lock()
        self._request_counts: dict[str, int] = {}
        self._rate_limited = 0
        self._retries = 0

    def __repr__(self) -> str:
        return (
            f"AmigoClient(organization={self.config.organization!r}, "
            f"base_url={self.config.base_url!r})"
        )

    def __enter__(self) -> AmigoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Requests sent, by operation id ("get-services", "create-service", ...).
    @property
    def request_counts(self) -> Mapping[str, int]:
        """Every HTTP request attempted, retries and sign-ins included, by operation id."""
        with self._counts_lock:
            return dict(self._request_counts)

    @property
    def rate_limited_count(self) -> int:
        """429 answers received (pacing keeps this at zero when only this client calls)."""
        with self._counts_lock:
            return self._rate_limited

    @property
    def retry_count(self) -> int:
        with self._counts_lock:
            return self._retries

    @property
    def sign_in_count(self) -> int:
        return self._tokens.sign_ins

    @property
    def transport(self) -> httpx.BaseTransport:
        """What requests go through (proxy mounts aside): TLS checks and deadlines live there."""
        return self._transport

    def close(self) -> None:
        self._http.close()

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake at once when the apply is cancelled."""
        self.cancel.wait(max(0.0, seconds))

    def _bounded_sleep(self, seconds: float) -> None:
        """Every wait of the client (rate limit, retry backoff): refused at once when it
        would run past the deadline, rather than slept and found too late."""
        deadline = self._deadline
        if deadline is not None and self._clock() + seconds > deadline:
            left = max(0.0, deadline - self._clock())
            raise DeadlineExceeded(
                "",
                detail=f"waiting {seconds:.0f}s (rate limit or retry) would pass the overall "
                f"timeout ({left:.0f}s left)",
            )
        self._inner_sleep(seconds)

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Within the block, no wait runs past `seconds` from now: a call that would have to
        wait longer raises DeadlineExceeded (nothing more is sent for it)."""
        previous = self._deadline
        ends = self._clock() + seconds
        self._deadline = ends if previous is None else min(previous, ends)
        try:
            yield
        finally:
            self._deadline = previous

    # --- reads -----------------------------------------------------------------
    def list_services(
        self,
        *,
        ids: Sequence[str] = (),
        is_active: bool | None = None,
        tags: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """All pages (limit=20) of `ServiceInstance` dicts; many ids take several calls."""
        params: list[tuple[str, str]] = []
        if is_active is not None:
            params.append(("is_active", "true" if is_active else "false"))
        params.extend(("tags", tag) for tag in tags)
        path = self._org_path("service/")
        if not ids:
            return list(self._paginate(GET_SERVICES, path, params, "services", SERVICES_PAGE_SIZE))
        return self._paginate_by_ids(
            GET_SERVICES, path, "id", ids, params, "services", SERVICES_PAGE_SIZE
        )

    def list_agents(self) -> list[dict[str, Any]]:
        """Every agent of the organization (name, id, latest_version...)."""
        return list(
            self._paginate(
                GET_AGENTS, self._org_path("organization/agent"), [], "agents", AGENTS_PAGE_SIZE
            )
        )

    def list_state_machines(self) -> list[dict[str, Any]]:
        """Every service hierarchical state machine of the organization."""
        return list(
            self._paginate(
                GET_STATE_MACHINES,
                self._org_path("organization/service_hierarchical_state_machine"),
                [],
                "service_hierarchical_state_machines",
                STATE_MACHINES_PAGE_SIZE,
            )
        )

    def list_unit_tests(self, service_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Unit tests (not deleted) for these services: repeated service_id, pages of 500.

        One call covers up to 100 services (more would make the URL too long for
        some proxies). No service ids means no call: an unfiltered request would
        list every test of the organization.
        """
        return self._paginate_by_ids(
            GET_UNIT_TESTS,
            self._org_path("simulation/unit_test/"),
            "service_id",
            service_ids,
            [("is_deleted", "false")],
            "simulation_unit_tests",
            UNIT_TESTS_PAGE_SIZE,
        )

    def list_unit_test_sets(self, unit_test_ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Unit test sets (not deleted): all of them, or those holding any of these tests."""
        path = self._org_path("simulation/unit_test_set/")
        params = [("is_deleted", "false")]
        if not unit_test_ids:
            return list(
                self._paginate(
                    GET_UNIT_TEST_SETS,
                    path,
                    params,
                    "simulation_unit_test_sets",
                    UNIT_TEST_SETS_PAGE_SIZE,
                )
            )
        return self._paginate_by_ids(
            GET_UNIT_TEST_SETS,
            path,
            "unit_test_id",
            unit_test_ids,
            params,
            "simulation_unit_test_sets",
            UNIT_TEST_SETS_PAGE_SIZE,
        )

    def list_unit_test_set_runs(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """These runs (`SimulationUnitTestSetRunInstance` dicts); no ids means no call."""
        return self._paginate_by_ids(
            GET_UNIT_TEST_SET_RUNS,
            self._org_path("simulation/unit_test_set_run/"),
            "id",
            run_ids,
            [],
            "simulation_unit_test_set_runs",
            UNIT_TEST_SET_RUNS_PAGE_SIZE,
        )

    def unfinished_unit_test_set_runs(self, unit_test_set_id: str) -> list[dict[str, Any]]:
        """This user's unfinished runs of one set (the API allows one at a time per user)."""
        creator = f"{self.config.organization},{self.config.user_id}"
        return list(
            self._paginate(
                GET_UNIT_TEST_SET_RUNS,
                self._org_path("simulation/unit_test_set_run/"),
                [
                    ("simulation_unit_test_set_id", unit_test_set_id),
                    ("is_completed", "false"),
                    ("creator", creator),
                ],
                "simulation_unit_test_set_runs",
                UNIT_TEST_SET_RUNS_PAGE_SIZE,
            )
        )

    def create_unit_test_set_run(self, unit_test_set_id: str) -> str:
        """Start a run of a unit test set; returns the run id (OutcomeUnknown if the answer was lost)."""
        response = self._call(
            CREATE_UNIT_TEST_SET_RUN,
            "POST",
            self._org_path("simulation/unit_test_set_run/"),
            json_body={"simulation_unit_test_set_id": unit_test_set_id},
            expect=(201, 200),
        )
        payload = self._json(response, CREATE_UNIT_TEST_SET_RUN, None)
        return check_run_created(payload, response.status_code)

    # --- writes ----------------------------------------------------------------
    def create_service(self, body: Mapping[str, Any], *, service: str) -> str:
        """POST create; returns the new id. Raises OutcomeUnknown if the answer was lost."""
        response = self._call(
            CREATE_SERVICE,
            "POST",
            self._org_path("service/"),
            json_body=dict(body),
            service=service,
            expect=(201, 200),
        )
        payload = self._json(response, CREATE_SERVICE, service)
        return check_created(payload, response.status_code, service)

    def update_service(self, service_id: str, body: Mapping[str, Any], *, service: str) -> None:
        """POST update: only the fields sent change (None means unchanged)."""
        self._call(
            UPDATE_SERVICE,
            "POST",
            self._org_path(f"service/{_segment(service_id)}/"),
            json_body=dict(body),
            service=service,
            expect=(200, 204),
        )

    def upsert_version_set(
        self, service_id: str, name: str, version_set: Mapping[str, Any], *, service: str
    ) -> None:
        """PUT the whole version set (created or replaced)."""
        self._call(
            UPSERT_VERSION_SET,
            "PUT",
            self._version_set_path(service_id, name),
            json_body={"version_set": dict(version_set)},
            service=service,
            expect=(204, 200),
        )

    def delete_version_set(self, service_id: str, name: str, *, service: str) -> None:
        """DELETE a version set; a 404 after a lost answer of this same call is success."""
        self._call(
            DELETE_VERSION_SET,
            "DELETE",
            self._version_set_path(service_id, name),
            service=service,
            expect=(204, 200),
        )

    # --- plumbing --------------------------------------------------------------
    def _org_path(self, rest: str) -> str:
        return f"/v1/{_segment(self.config.organization)}/{rest}"

    def _version_set_path(self, service_id: str, name: str) -> str:
        return self._org_path(f"service/{_segment(service_id)}/version_sets/{_segment(name)}/")

    def _secrets(self) -> list[str]:
        return [self.config.api_key, *self._tokens.secrets()]

    def _tell(self, message: str) -> None:
        if self._on_wait is not None:
            self._on_wait(message)

    def _count(self, operation_id: str, *, rate_limited: bool = False, retry: bool = False) -> None:
        with self._counts_lock:
            if rate_limited:
                self._rate_limited += 1
            elif retry:
                self._retries += 1
            else:
                self._request_counts[operation_id] = self._request_counts.get(operation_id, 0) + 1

    def _json(self, response: httpx.Response, operation_id: str, service: str | None) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                operation_id,
                status=response.status_code,
                detail="the answer was not JSON",
                service=service,
            ) from None

    def _paginate(
        self,
        operation_id: str,
        path: str,
        params: list[tuple[str, str]],
        items_key: str,
        page_size: int,
    ) -> Iterator[dict[str, Any]]:
        token: int | None = None
        seen_tokens: set[int] = set()
        for _ in range(MAX_PAGES):
            query = [*params, ("limit", str(page_size))]
            if token is not None:
                query.append(("continuation_token", str(token)))
            response = self._call(operation_id, "GET", path, params=query, expect=(200,))
            payload = self._json(response, operation_id, None)
            items, next_token = check_page(operation_id, payload, response.status_code)
            yield from items
            if next_token is None:
                return
            if next_token in seen_tokens:
                raise ApiError(
                    operation_id,
                    status=response.status_code,
                    detail=f"the API repeated continuation token {next_token!r} (would loop)",
                )
            seen_tokens.add(next_token)
            token = next_token
        raise ApiError(operation_id, detail=f"more than {MAX_PAGES} pages; giving up")

    def _paginate_by_ids(
        self,
        operation_id: str,
        path: str,
        id_param: str,
        ids: Sequence[str],
        params: list[tuple[str, str]],
        items_key: str,
        page_size: int,
    ) -> list[dict[str, Any]]:
        """Every page for these ids (repeated `id_param`), IDS_PER_CALL ids a call, each
        item once."""
        unique = list(dict.fromkeys(ids))
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        for start in range(0, len(unique), IDS_PER_CALL):
            chunk = [(id_param, value) for value in unique[start : start + IDS_PER_CALL]]
            for item in self._paginate(operation_id, path, chunk + params, items_key, page_size):
                key = item.get("id")
                if isinstance(key, str):
                    if key in seen:
                        continue
                    seen.add(key)
                items.append(item)
        return items

    def _sign_in(self) -> tuple[str, float]:
        response = self._call(
            SIGN_IN,
            "POST",
            self._org_path("user/signin_with_api_key"),
            authenticated=False,
            headers={
                "x-api-key": self.config.api_key,
                "x-api-key-id": self.config.api_key_id,
                "x-user-id": self.config.user_id,
            },
            expect=(200,),
        )
        payload = self._json(response, SIGN_IN, None)
        token, expires_at = check_sign_in(payload, response.status_code)
        return token, parse_expires_at(expires_at, self._clock())

    def _call(self, operation_id: str, *args: Any, **kwargs: Any) -> httpx.Response:
        """Send one logical request (`_send`); a deadline reached names this operation."""
        try:
            return self._send(operation_id, *args, **kwargs)
        except DeadlineExceeded as exc:
            if exc.operation:
                raise
            raise DeadlineExceeded(
                operation_id, detail=exc.detail, service=kwargs.get("service")
            ) from None

    def _send(
        self,
        operation_id: str,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        service: str | None = None,
        authenticated: bool = True,
        expect: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """Send one logical request: pace, retry what is safe, map failures to ApiError."""
        op = OPERATIONS[operation_id]
        limiter = self._limiters[operation_id]
        failures = 0
        refreshed_after_401 = False
        # An earlier attempt of this call may have acted (its answer was lost).
        may_have_acted = False
        while True:
            request_headers = dict(headers or {})
            token: str | None = None
            if authenticated:
                token = self._tokens.get(self._sign_in)
                request_headers["authorization"] = f"Bearer {token}"
            try:
                ticket = limiter.acquire()
            except RequestCancelled as stopped:
                if may_have_acted:
                    raise OutcomeUnknown(
                        operation_id,
                        detail="cancelled before re-sending; an earlier attempt's answer was lost",
                        service=service,
                        hint=_MAY_HAVE_ACTED_HINT,
                    ) from None
                kind = (
                    DeadlineExceeded if isinstance(stopped, DeadlineExceeded) else RequestCancelled
                )
                raise kind(operation_id, detail=stopped.detail, service=service) from None
            self._count(operation_id)
            try:
                with attempt_deadline(self.config.attempt_deadline_seconds):
                    response = self._http.request(
                        method,
                        path,
                        params=tuple(params or ()),
                        json=json_body,
                        headers=request_headers,
                    )
            except httpx.TransportError as exc:
                limiter.release(ticket)
                not_sent = isinstance(exc, _NOT_SENT)
                problem = _certificate_problem(exc) if not_sent else None
                if problem is not None:
                    host = _peer(exc) or self.config.base_url
                    raise TransportError(
                        operation_id,
                        detail=redact(
                            f"TLS certificate verification failed for {host}: {problem}",
                            self._secrets(),
                        ),
                        service=service,
                        hint="not retried: it will not fix itself; check AMIGO_BASE_URL, "
                        "and the CA bundle (SSL_CERT_FILE) if a proxy re-signs traffic",
                    ) from None
                detail = redact(_describe_transport_error(exc), self._secrets())
                if not (op.idempotent or not_sent):
                    raise OutcomeUnknown(
                        operation_id, detail=detail, service=service, hint=_MAY_HAVE_ACTED_HINT
                    ) from None
                failures += 1
                may_have_acted = may_have_acted or not not_sent
                if failures >= self._retry.max_attempts:
                    if may_have_acted and self._writes(op):
                        raise OutcomeUnknown(
                            operation_id,
                            detail=f"{detail}; gave up after {failures} attempts",
                            service=service,
                            hint="an attempt whose answer was lost may have been applied",
                        ) from None
                    raise TransportError(
                        operation_id,
                        detail=f"{detail}; gave up after {failures} attempts",
                        service=service,
                    ) from None
                self._backoff(operation_id, failures, f"{detail}")
                continue
            except BaseException:  # e.g. KeyboardInterrupt: leave the limiter consistent
                limiter.release(ticket)
                raise

            status = response.status_code
            rate_headers = parse_rate_limit_headers(response.headers)
            retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
            pause = 0.0
            if status == 429:
                self._count(operation_id, rate_limited=True)
                pause = self._rate_limit_pause(limiter, failures + 1, retry_after, rate_headers)
                # Everyone waits: the limiter holds every thread until then.
                limiter.release(ticket, rate_headers, retry_after=pause)
            else:
                limiter.release(ticket, rate_headers)

            if status in expect:
                return response
            if status == 404 and operation_id == DELETE_VERSION_SET and may_have_acted:
                return response  # the lost earlier attempt deleted it (see module docstring)
            if status == 401 and authenticated and not refreshed_after_401 and token is not None:
                refreshed_after_401 = True
                self._tokens.invalidate(token)
                continue

            payload = self._safe_json(response)
            detail = redact(render_detail(payload, response.text), self._secrets())
            if status in RETRYABLE_STATUSES:
                provably_not_acted = status == 429 or (status == 503 and retry_after is not None)
                if not (op.idempotent or provably_not_acted):
                    raise OutcomeUnknown(
                        operation_id,
                        status=status,
                        detail=detail,
                        service=service,
                        hint=_MAY_HAVE_ACTED_HINT,
                    )
                failures += 1
                if not provably_not_acted:
                    may_have_acted = True
                too_long = retry_after is not None and retry_after > self._retry.max_retry_after
                if failures >= self._retry.max_attempts or too_long:
                    note = f"gave up after {failures} attempts"
                    if too_long:
                        note = f"the API asked to wait {retry_after:.0f}s; not waiting that long"
                    error: type[ApiError] = RateLimited if status == 429 else ServerError
                    if may_have_acted and self._writes(op):
                        error = OutcomeUnknown
                    raise error(
                        operation_id,
                        status=status,
                        detail=f"{detail}; {note}" if detail else note,
                        service=service,
                    )
                if status == 429:
                    self._count(operation_id, retry=True)
                    # Said for reads and writes alike, however short the wait.
                    self._tell(
                        f"waiting {_seconds(pause)} for the rate limit on {operation_id} (HTTP 429)"
                    )
                    continue  # the limiter now holds everyone until then
                self._backoff(operation_id, failures, f"HTTP {status}", retry_after=retry_after)
                continue
            if status >= 500 and not op.idempotent:
                raise OutcomeUnknown(
                    operation_id,
                    status=status,
                    detail=detail,
                    service=service,
                    hint=_MAY_HAVE_ACTED_HINT,
                )
            raise error_for_status(operation_id, status, detail, service=service, payload=payload)

    @staticmethod
    def _writes(op: Operation) -> bool:
        """A call that changes the organization (sign-in only issues a token)."""
        return op.method != "GET" and op.id != SIGN_IN

    def _rate_limit_pause(
        self,
        limiter: RateLimiter,
        failures: int,
        retry_after: float | None,
        rate_headers: RateLimitHeaders | None,
    ) -> float:
        """How long a 429 holds everyone: the server's word, never less than the backoff.

        `Retry-After: 0` (or negative, or a date in the past) would retry at once, in
        a loop: the normal backoff is the floor. A 429 that says nothing about when
        (the OpenAPI document defines no rate-limit headers) waits a share of the
        rate window, so the retry budget outlasts a whole window: sign-in allows
        only 5 a minute, and backoff alone would give up within seconds.
        """
        floor = self._retry.backoff(failures)
        if retry_after is not None:
            return max(retry_after, floor)
        told_reset = rate_headers is not None and rate_headers.reset_at is not None
        if told_reset:
            return floor
        share = limiter.window_seconds / max(1, self._retry.max_attempts - 1)
        return max(floor, share)

    def _backoff(
        self, operation_id: str, failures: int, reason: str, *, retry_after: float | None = None
    ) -> None:
        wait = self._retry.backoff(failures)
        if retry_after is not None:
            wait = max(wait, retry_after)  # Retry-After: 0 must not mean "at once"
        self._count(operation_id, retry=True)
        self._tell(f"retrying {operation_id} in {wait:.1f}s after {reason}")
        self._sleep(wait)

    @staticmethod
    def _safe_json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None
