"""A tiny scripted Amigo API behind httpx.MockTransport, for client unit tests.

Not the emulator: it knows just enough (sign-in, bearer check, paging, a fixed
rate-limit window) to exercise the client, and lets a test script faults per
operation id. Time comes from a `FakeClock` whose `sleep` advances it, so
pacing and backoff run instantly.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx

from reconciler.api.client import AmigoClient
from reconciler.api.config import ApiConfig

API_KEY = "sk-live-SECRET-KEY-0123456789"
ORG = "acme"
Fault = httpx.Response | type[Exception] | Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """Epoch seconds that only move when someone sleeps."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)


def config(**overrides: Any) -> ApiConfig:
    values: dict[str, Any] = {
        "organization": ORG,
        "api_key": API_KEY,
        "api_key_id": "key-id-1",
        "user_id": "user-1",
        "base_url": "https://api.example.test",
    }
    values.update(overrides)
    return ApiConfig(**values)


def json_response(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def service_record(service_id: str, name: str, **fields: Any) -> dict[str, Any]:
    """A `ServiceInstance` with every field the client checks (answers.py)."""
    return {
        "id": service_id,
        "name": name,
        "description": f"{name} service",
        "is_active": True,
        "agent_id": "a" * 24,
        "service_hierarchical_state_machine_id": "f" * 24,
        "tags": [],
        "keyterms": [],
        "version_sets": {},
        **fields,
    }


def unit_test_record(test_id: str, service_id: str, version_set: str = "release") -> dict[str, Any]:
    return {
        "id": test_id,
        "name": f"test {test_id[:4]}",
        "service_id": service_id,
        "service_version_set_name": version_set,
    }


@dataclass
class FakeApi:
    clock: Callable[[], float]
    token_lifetime: float = 3600.0
    services: list[dict[str, Any]] = field(default_factory=list)
    unit_tests: list[dict[str, Any]] = field(default_factory=list)
    # Scripted answers per operation id, used before normal handling.
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    requests: list[httpx.Request] = field(default_factory=list)
    tokens_issued: list[str] = field(default_factory=list)
    # Optional enforced rate limit: operation id -> (limit, window seconds), fixed windows.
    limits: dict[str, tuple[int, float]] = field(default_factory=dict)
    rate_limited: int = 0
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, operation_id: str, *answers: Fault) -> None:
        self.faults[operation_id].extend(answers)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, clock: FakeClock | None = None, **kwargs: Any) -> AmigoClient:
        cfg = kwargs.pop("config", None) or config()
        if clock is not None:
            kwargs.setdefault("clock", clock)
            kwargs.setdefault("sleep", clock.sleep)
        return AmigoClient(cfg, transport=self.transport(), **kwargs)

    def requests_for(self, operation_id: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.extensions.get("operation_id") == operation_id]

    @staticmethod
    def operation_of(request: httpx.Request) -> str:
        path = request.url.path
        method = request.method
        if path.endswith("/user/signin_with_api_key"):
            return "sign-in-with-api-key"
        if "/version_sets/" in path:
            return "upsert-service-version-set" if method == "PUT" else "delete-service-version-set"
        if path.endswith("/organization/agent"):
            return "get-agents"
        if path.endswith("/organization/service_hierarchical_state_machine"):
            return "get-service-hierarchical-state-machines"
        if path.endswith("/simulation/unit_test/"):
            return "get-simulation-unit-tests"
        if path.endswith("/simulation/unit_test_set/"):
            return "get-simulation-unit-test-sets"
        if path.endswith("/simulation/unit_test_set_run/"):
            if method == "POST":
                return "create-simulation-unit-test-set-run"
            return "get-simulation-unit-test-set-runs"
        if path == f"/v1/{ORG}/service/":
            return "get-services" if method == "GET" else "create-service"
        return "update-service"

    def _rate_limit(self, operation_id: str) -> tuple[httpx.Response | None, dict[str, str]]:
        if operation_id not in self.limits:
            return None, {}
        limit, window = self.limits[operation_id]
        with self._lock:
            now = time.time()
            start, used = self._windows.get(operation_id, (now, 0))
            if now >= start + window:
                start, used = now, 0
            reset = start + window
            if used >= limit:
                self.rate_limited += 1
                headers = {
                    "x-ratelimit-limit": str(limit),
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": f"{reset:.3f}",
                    "retry-after": f"{max(0.0, reset - now):.3f}",
                }
                return httpx.Response(429, json={"detail": "rate limited"}, headers=headers), {}
            used += 1
            self._windows[operation_id] = (start, used)
            return None, {
                "x-ratelimit-limit": str(limit),
                "x-ratelimit-remaining": str(limit - used),
                "x-ratelimit-reset": f"{reset:.3f}",
            }

    def handle(self, request: httpx.Request) -> httpx.Response:
        operation_id = self.operation_of(request)
        request.extensions["operation_id"] = operation_id
        with self._lock:
            self.requests.append(request)
            scripted = self.faults[operation_id].popleft() if self.faults[operation_id] else None
        if scripted is not None:
            if isinstance(scripted, httpx.Response):
                return scripted
            if isinstance(scripted, type) and issubclass(scripted, Exception):
                raise scripted("scripted fault", request=request)  # type: ignore[call-arg]
            return scripted(request)
        limited, rate_headers = self._rate_limit(operation_id)
        if limited is not None:
            return limited
        response = self.answer(operation_id, request)
        response.headers.update(rate_headers)
        return response

    def answer(self, operation_id: str, request: httpx.Request) -> httpx.Response:
        if operation_id == "sign-in-with-api-key":
            if request.headers.get("x-api-key") != API_KEY:
                return json_response(401, {"detail": "API key not found or incorrect."})
            token = f"tok-{len(self.tokens_issued)}-SECRETTOKEN"
            self.tokens_issued.append(token)
            expires = datetime.fromtimestamp(self.clock() + self.token_lifetime, UTC)
            return json_response(200, {"id_token": token, "expires_at": expires.isoformat()})
        auth = request.headers.get("authorization", "")
        if not self.tokens_issued or auth != f"Bearer {self.tokens_issued[-1]}":
            return json_response(401, {"detail": "Invalid authorization credentials."})
        query = parse_qs(request.url.query.decode())
        if operation_id == "get-services":
            return self._page(self.services, "services", query)
        if operation_id == "get-simulation-unit-tests":
            wanted = set(query.get("service_id", []))
            tests = [t for t in self.unit_tests if t["service_id"] in wanted]
            return self._page(tests, "simulation_unit_tests", query)
        if operation_id == "get-simulation-unit-test-sets":
            return self._page([], "simulation_unit_test_sets", query)
        if operation_id == "get-simulation-unit-test-set-runs":
            return self._page([], "simulation_unit_test_set_runs", query)
        if operation_id == "create-simulation-unit-test-set-run":
            return json_response(201, {"simulation_unit_test_set_run_id": "c" * 24})
        if operation_id == "get-agents":
            agent = {"id": "a" * 24, "name": "Concierge", "deprecated": False, "latest_version": 1}
            return self._page([agent], "agents", query)
        if operation_id == "get-service-hierarchical-state-machines":
            return self._page([], "service_hierarchical_state_machines", query)
        if operation_id == "create-service":
            body = json.loads(request.content)
            new_id = f"{len(self.services):024x}"
            self.services.append(
                service_record(new_id, body["name"], is_active=body.get("is_active", True))
            )
            return json_response(201, {"id": new_id})
        if operation_id == "update-service":
            return json_response(200, {})
        return json_response(204)

    @staticmethod
    def _page(items: list[dict[str, Any]], key: str, query: dict[str, list[str]]) -> httpx.Response:
        limit = int(query.get("limit", ["10"])[0])
        start = int(query.get("continuation_token", ["0"])[0])
        page = items[start : start + limit]
        more = start + limit < len(items)
        return json_response(
            200,
            {key: page, "has_more": more, "continuation_token": start + limit if more else None},
        )
