"""The client against the emulator over real HTTP on 127.0.0.1.

Most tests share one "jump clock" between client and emulator: real time plus
an offset that the client's `sleep` advances, so waits (Retry-After, backoff,
token expiry) take no wall time while both sides agree on the time. The burst
test runs on the real clock with a 1.5 s window, because that is what it proves.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from reconciler.api.client import AmigoClient
from reconciler.api.errors import OutcomeUnknown
from reconciler.connect import emulator_config
from reconciler.emulator import Emulator, Fault
from reconciler.model import VersionSet

pytestmark = pytest.mark.http

KEY = "emulator-test-key-0000"


class JumpClock:
    """Epoch seconds = wall clock + offset; `sleep` moves the offset, not the thread."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.offset += max(0.0, seconds)


def seed(services: int = 1) -> dict[str, Any]:
    return {
        "organization": "http-test-org",
        "credentials": {"api_key": KEY, "api_key_id": "kid", "user_id": "uid"},
        "agents": [{"name": "Concierge", "latest_version": 4}],
        "state_machines": [{"name": "Onboarding flow", "latest_version": 6}],
        "services": [
            {
                "name": f"Service {i:02d}",
                "description": "test service",
                "agent": "Concierge",
                "service_hierarchical_state_machine": "Onboarding flow",
            }
            for i in range(services)
        ],
    }


@pytest.fixture
def clock() -> JumpClock:
    return JumpClock()


def start(
    clock: JumpClock | None, services: int = 1, timeout: float = 30.0, **emulator: Any
) -> Iterator[tuple[Emulator, AmigoClient]]:
    em = Emulator.from_seed(seed(services), clock=clock, **emulator)
    with em.serve() as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        config = dataclasses.replace(emulator_config(em, server.base_url), timeout=timeout)
        kwargs: dict[str, Any] = {}
        if clock is not None:
            kwargs = {"clock": clock, "sleep": clock.sleep}
        with AmigoClient(config, **kwargs) as client:
            yield em, client


@pytest.fixture
def pair(clock: JumpClock) -> Iterator[tuple[Emulator, AmigoClient]]:
    yield from start(clock)


def test_sign_in_then_refresh_on_expiry_and_after_401(clock: JumpClock) -> None:
    for em, client in start(clock, token_lifetime=600):
        client.list_agents()
        client.list_agents()
        assert em.request_counts["sign-in-with-api-key"] == 1
        clock.offset += 600 - 61  # more than a minute left: same token
        client.list_agents()
        assert em.request_counts["sign-in-with-api-key"] == 1
        clock.offset += 30  # inside the last minute: renewed before use
        client.list_agents()
        assert em.request_counts["sign-in-with-api-key"] == 2
        em.revoke_tokens()  # the next call gets 401, signs in again, and succeeds
        assert client.list_agents()[0]["name"] == "Concierge"
        assert em.request_counts["sign-in-with-api-key"] == 3
        assert em.request_counts == client.request_counts


def test_pagination_over_45_services(clock: JumpClock) -> None:
    for em, client in start(clock, services=45):
        names = [s["name"] for s in client.list_services()]
        assert sorted(names) == [f"Service {i:02d}" for i in range(45)]
        assert len(set(names)) == 45
        assert client.request_counts["get-services"] == 3  # 20 + 20 + 5
        assert em.request_counts["get-services"] == 3


def test_429_then_success(pair: tuple[Emulator, AmigoClient], clock: JumpClock) -> None:
    em, client = pair
    em.inject("get-services", Fault.STATUS_429)
    assert len(client.list_services()) == 1
    assert client.rate_limited_count == 1 == em.rate_limited_count
    assert client.request_counts["get-services"] == 2
    assert sum(clock.slept) >= 1.0  # the emulator's Retry-After: 1


def test_429_on_create_is_resent_without_duplicating(pair: tuple[Emulator, AmigoClient]) -> None:
    em, client = pair
    em.inject("create-service", Fault.STATUS_429)
    body = _create_body(client, "Fresh")
    new_id = client.create_service(body, service="Fresh")
    assert [s["id"] for s in em.services() if s["name"] == "Fresh"] == [new_id]


def test_503_retried_for_put_and_for_post_only_with_retry_after(
    pair: tuple[Emulator, AmigoClient],
) -> None:
    em, client = pair
    service_id = em.services()[0]["id"]
    em.inject("upsert-service-version-set", Fault.STATUS_503, times=2)
    client.upsert_version_set(service_id, "canary", _vs(2), service="S")
    assert em.request_counts["upsert-service-version-set"] == 3
    em.inject("create-service", Fault.STATUS_503_RETRY_AFTER)
    client.create_service(_create_body(client, "With RA"), service="With RA")
    em.inject("create-service", Fault.STATUS_503)
    with pytest.raises(OutcomeUnknown, match="HTTP 503"):
        client.create_service(_create_body(client, "No RA"), service="No RA")


def test_connection_dropped_mid_request(pair: tuple[Emulator, AmigoClient]) -> None:
    em, client = pair
    service_id = em.services()[0]["id"]
    # An idempotent PUT whose answer was lost after it acted: re-sent, same result.
    em.inject("upsert-service-version-set", Fault.DROP_AFTER)
    client.upsert_version_set(service_id, "canary", _vs(None), service="S")
    assert em.request_counts["upsert-service-version-set"] == 2
    # A DELETE that acted and lost its answer: the retry's 404 means done.
    em.inject("delete-service-version-set", Fault.DROP_AFTER)
    client.delete_version_set(service_id, "canary", service="S")
    assert "canary" not in _version_sets(em, service_id)
    # A create that acted and lost its answer: not re-sent, the caller is told.
    em.inject("create-service", Fault.DROP_AFTER)
    with pytest.raises(OutcomeUnknown, match="look before re-sending"):
        client.create_service(_create_body(client, "Lost"), service="Lost")
    assert [s["name"] for s in em.services()].count("Lost") == 1
    assert em.request_counts["create-service"] == 1


def test_slow_answer_times_out_and_get_is_retried(clock: JumpClock) -> None:
    for em, client in start(clock, timeout=0.3, slow_seconds=0.6):
        em.inject("get-agents", Fault.SLOW)
        assert client.list_agents()[0]["name"] == "Concierge"
        assert client.request_counts["get-agents"] == 2


def test_burst_of_60_upserts_paced_free_of_429() -> None:
    """8 threads, 60 upserts, 30 per 1.5 s window on the real clock: no 429 at all."""
    for em, client in start(None, window_seconds=1.5):
        service_id = em.services()[0]["id"]
        client.list_agents()  # sign in before the burst
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [
                pool.submit(
                    client.upsert_version_set,
                    service_id,
                    f"burst-{i}",
                    _vs(1 + i % 4),
                    service="Service 00",
                )
                for i in range(60)
            ]
            for future in futures:
                future.result()
        elapsed = time.monotonic() - started
        assert em.rate_limited_count == 0
        assert client.rate_limited_count == 0
        assert em.request_counts["upsert-service-version-set"] == 60
        assert len(_version_sets(em, service_id)) == 62  # edge + release + 60
        # Paced by the 1.5 s window the headers reveal, not the documented minute
        # (two or three windows; slack for a loaded CI machine).
        assert elapsed < 7.5


def _vs(agent_version: int | None) -> dict[str, Any]:
    return VersionSet(agent_version_number=agent_version).to_api()


def _create_body(client: AmigoClient, name: str) -> dict[str, Any]:
    agents = client.list_agents()
    machines = client.list_state_machines()
    return {
        "name": name,
        "description": "made by a test",
        "is_active": True,
        "agent_id": agents[0]["id"],
        "service_hierarchical_state_machine_id": machines[0]["id"],
        "keyterms": [],
        "tags": {"managed_by": "amigo_reconciler"},
    }


def _version_sets(em: Emulator, service_id: str) -> dict[str, Any]:
    (service,) = [s for s in em.services() if s["id"] == service_id]
    return dict(service["version_sets"])
