"""Issue 12, items 8 and 16 (client side) and the write rules of item 1.

Against the scripted FakeApi on a fake clock: a sign-in 429 that says nothing
about when is waited out for a whole rate window; `Retry-After: 0` or negative
still backs off; a 429 waited out on a write says so; a PUT or DELETE that
gave up after an attempt whose answer was lost is *outcome unknown*, not
failed; a cancelled client sends nothing new.
"""

from __future__ import annotations

import threading

import httpx
import pytest
from _api_fake import FakeApi, FakeClock, json_response

from reconciler.api.errors import OutcomeUnknown, RequestCancelled, TransportError
from reconciler.api.retry import RetryPolicy


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(clock: FakeClock) -> FakeApi:
    return FakeApi(clock)


def test_sign_in_429_without_retry_after_is_waited_out_for_a_whole_window(
    api: FakeApi, clock: FakeClock
) -> None:
    # The OpenAPI document defines no rate-limit headers: a server may say only 429.
    window_ends = clock() + 60.0

    def limited(request: httpx.Request) -> httpx.Response:
        if clock() < window_ends:
            return json_response(429, {"detail": "rate limit of 5 requests per minute"})
        return api.answer("sign-in-with-api-key", request)

    api.fault("sign-in-with-api-key", *([limited] * 10))
    told: list[str] = []
    client = api.client(clock, on_wait=told.append)
    client.list_agents()
    assert clock() >= window_ends
    assert client.sign_in_count == 1
    assert any("waiting" in m and "sign-in-with-api-key" in m for m in told), told


@pytest.mark.parametrize("value", ["0", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_retry_after_zero_negative_or_past_still_backs_off(
    api: FakeApi, clock: FakeClock, value: str
) -> None:
    client = api.client(clock, retry_policy=RetryPolicy(base_delay=0.5))
    client.list_agents()  # signed in
    for operation in ("get-services", "upsert-service-version-set"):
        api.fault(operation, json_response(503, {"detail": "busy"}, {"retry-after": value}))
        api.fault(operation, json_response(429, {"detail": "slow"}, {"retry-after": value}))
    start = len(clock.sleeps)
    client.list_services()
    client.upsert_version_set("a" * 24, "canary", {}, service="S")
    waits = clock.sleeps[start:]
    assert len(waits) >= 4 and all(w >= 0.25 for w in waits), waits


def test_a_429_waited_out_on_a_write_says_so_however_short(api: FakeApi, clock: FakeClock) -> None:
    told: list[str] = []
    client = api.client(clock, on_wait=told.append)
    client.list_agents()
    api.fault("create-service", json_response(429, {"detail": "slow"}, {"retry-after": "0.5"}))
    client.create_service({"name": "x"}, service="x")
    assert any("waiting" in m and "create-service" in m and "429" in m for m in told), told


@pytest.mark.parametrize("operation", ["upsert-service-version-set", "delete-service-version-set"])
def test_a_put_or_delete_that_gave_up_after_a_lost_answer_is_outcome_unknown(
    api: FakeApi, clock: FakeClock, operation: str
) -> None:
    client = api.client(clock, retry_policy=RetryPolicy(max_attempts=2))
    client.list_agents()
    api.fault(operation, httpx.ReadTimeout, httpx.ReadTimeout)
    with pytest.raises(OutcomeUnknown):
        if operation == "upsert-service-version-set":
            client.upsert_version_set("a" * 24, "canary", {}, service="S")
        else:
            client.delete_version_set("a" * 24, "canary", service="S")


def test_a_read_that_gave_up_is_a_transport_error_not_an_unknown_outcome(
    api: FakeApi, clock: FakeClock
) -> None:
    client = api.client(clock, retry_policy=RetryPolicy(max_attempts=2))
    client.list_agents()
    api.fault("get-services", httpx.ReadTimeout, httpx.ReadTimeout)
    with pytest.raises(TransportError):
        client.list_services()


def test_a_cancelled_client_sends_nothing_new(api: FakeApi, clock: FakeClock) -> None:
    cancel = threading.Event()
    client = api.client(clock, cancel=cancel)
    client.list_agents()
    sent = len(api.requests)
    cancel.set()
    with pytest.raises(RequestCancelled):
        client.create_service({"name": "x"}, service="x")
    assert len(api.requests) == sent


def test_cancel_during_a_retry_wait_after_a_lost_answer_is_outcome_unknown(
    api: FakeApi, clock: FakeClock
) -> None:
    cancel = threading.Event()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        cancel.set()  # Ctrl-C while waiting to retry

    client = api.client(clock, cancel=cancel, sleep=sleep)
    client.list_agents()
    api.fault("upsert-service-version-set", httpx.ReadTimeout)
    sent = len(api.requests)
    with pytest.raises(OutcomeUnknown):
        client.upsert_version_set("a" * 24, "canary", {}, service="S")
    assert len(api.requests) == sent + 1
