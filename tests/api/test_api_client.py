"""AmigoClient against a scripted fake API (httpx.MockTransport, fake clock)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from _api_fake import (
    API_KEY,
    ORG,
    FakeApi,
    FakeClock,
    config,
    json_response,
    service_record,
    unit_test_record,
)

from reconciler.api.client import AmigoClient
from reconciler.api.errors import (
    AuthenticationError,
    BadRequest,
    Conflict,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
    RequestInvalid,
    ServerError,
    TransportError,
)

SID = "6618791275130b73714e8d1c"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(clock: FakeClock) -> FakeApi:
    return FakeApi(clock=clock)


@pytest.fixture
def client(api: FakeApi, clock: FakeClock) -> AmigoClient:
    return api.client(clock)


# --- auth ------------------------------------------------------------------------


def test_signs_in_once_with_api_key_headers_and_reuses_bearer(
    api: FakeApi, client: AmigoClient
) -> None:
    client.list_services()
    client.list_agents()
    client.list_state_machines()
    sign_ins = api.requests_for("sign-in-with-api-key")
    assert len(sign_ins) == 1
    request = sign_ins[0]
    assert request.method == "POST"
    assert request.url.path == f"/v1/{ORG}/user/signin_with_api_key"
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["x-api-key-id"] == "key-id-1"
    assert request.headers["x-user-id"] == "user-1"
    for other in api.requests[1:]:
        assert other.headers["authorization"] == "Bearer tok-0-SECRETTOKEN"
    assert client.request_counts["sign-in-with-api-key"] == 1


def test_refreshes_token_shortly_before_expiry(
    api: FakeApi, client: AmigoClient, clock: FakeClock
) -> None:
    client.list_services()
    clock.now += 3600 - 61  # still more than a minute left: reuse
    client.list_services()
    assert len(api.tokens_issued) == 1
    clock.now += 30  # within the last minute: renew first
    client.list_services()
    assert len(api.tokens_issued) == 2
    assert api.requests[-1].headers["authorization"] == "Bearer tok-1-SECRETTOKEN"


def test_401_signs_in_again_once_and_retries(api: FakeApi, client: AmigoClient) -> None:
    client.list_agents()
    api.fault("get-agents", json_response(401, {"detail": "Token expired"}))
    assert client.list_agents()[0]["name"] == "Concierge"
    assert len(api.tokens_issued) == 2
    assert client.request_counts["get-agents"] == 3


def test_persistent_401_raises_authentication_error(api: FakeApi, client: AmigoClient) -> None:
    api.fault("get-agents", *[json_response(401, {"detail": "nope"})] * 3)
    with pytest.raises(AuthenticationError) as info:
        client.list_agents()
    assert info.value.status == 401
    assert client.request_counts["get-agents"] == 2  # the original and one retry after refresh


def test_bad_api_key_names_the_settings_without_showing_them(
    api: FakeApi, clock: FakeClock
) -> None:
    client = api.client(clock, config=config(api_key="wrong-key-XYZ-123"))
    with pytest.raises(AuthenticationError) as info:
        client.list_services()
    message = str(info.value)
    assert "sign-in-with-api-key" in message and "401" in message
    assert "AMIGO_API_KEY" in message
    assert "wrong-key-XYZ-123" not in message


def test_sign_in_429_waits_and_says_so(api: FakeApi, clock: FakeClock) -> None:
    told: list[str] = []
    client = api.client(clock, on_wait=told.append)
    api.fault(
        "sign-in-with-api-key", json_response(429, {"detail": "slow down"}, {"retry-after": "20"})
    )
    client.list_agents()
    assert client.request_counts["sign-in-with-api-key"] == 2
    assert client.rate_limited_count == 1
    assert any("sign-in-with-api-key" in m and "20s" in m for m in told)
    assert sum(clock.sleeps) >= 20


# --- reads -----------------------------------------------------------------------


def test_list_services_reads_every_page_of_20(api: FakeApi, client: AmigoClient) -> None:
    api.services = [service_record(f"{i:024x}", f"svc {i}") for i in range(45)]
    services = client.list_services()
    assert [s["name"] for s in services] == [f"svc {i}" for i in range(45)]
    pages = api.requests_for("get-services")
    assert len(pages) == 3
    assert [p.url.params.get("continuation_token") for p in pages] == [None, "20", "40"]
    assert all(p.url.params["limit"] == "20" for p in pages)
    assert all(p.url.path == f"/v1/{ORG}/service/" for p in pages)


def test_list_services_filters(api: FakeApi, client: AmigoClient) -> None:
    client.list_services(ids=[SID, "a" * 24], is_active=True, tags=["managed_by:amigo_reconciler"])
    (request,) = api.requests_for("get-services")
    assert request.url.params.get_list("id") == [SID, "a" * 24]
    assert request.url.params["is_active"] == "true"
    assert request.url.params.get_list("tags") == ["managed_by:amigo_reconciler"]


def test_list_services_by_many_ids_keeps_each_url_short(api: FakeApi, client: AmigoClient) -> None:
    """A saved plan's convergence check reads every service it touched by id: 250 repeated
    ids would make a ~7 KB URL (and 500 twice that), past what common proxies accept."""
    ids = [f"{i:024x}" for i in range(250)]
    client.list_services(ids=ids)
    sent = [r.url.params.get_list("id") for r in api.requests_for("get-services")]
    assert [len(chunk) for chunk in sent] == [100, 100, 50]
    assert [i for chunk in sent for i in chunk] == ids


def test_list_unit_tests_repeats_service_id_and_skips_when_empty(
    api: FakeApi, client: AmigoClient
) -> None:
    other = "b" * 24
    api.unit_tests = [
        unit_test_record("1" * 24, SID),
        unit_test_record("2" * 24, other),
        unit_test_record("3" * 24, "c" * 24),
    ]
    assert client.list_unit_tests([]) == []
    assert "get-simulation-unit-tests" not in client.request_counts
    tests = client.list_unit_tests([SID, other, SID])
    assert {t["id"] for t in tests} == {"1" * 24, "2" * 24}
    (request,) = api.requests_for("get-simulation-unit-tests")
    assert request.url.path == f"/v1/{ORG}/simulation/unit_test/"
    assert request.url.params.get_list("service_id") == [SID, other]
    assert request.url.params["limit"] == "500"
    assert request.url.params["is_deleted"] == "false"


def test_repeated_continuation_token_is_an_error_not_a_loop(
    api: FakeApi, client: AmigoClient
) -> None:
    looping = json_response(200, {"agents": [], "has_more": True, "continuation_token": 5})
    api.fault("get-agents", looping, looping)
    with pytest.raises(Exception, match="repeated continuation token"):
        client.list_agents()


# --- writes ----------------------------------------------------------------------


def test_create_update_upsert_delete_send_documented_requests(
    api: FakeApi, client: AmigoClient
) -> None:
    new_id = client.create_service({"name": "Meet", "is_active": True}, service="Meet")
    assert new_id == f"{0:024x}"
    client.update_service(new_id, {"description": "x"}, service="Meet")
    client.upsert_version_set(new_id, "canary", {"agent_version_number": 3}, service="Meet")
    client.delete_version_set(new_id, "canary", service="Meet")
    create, update, upsert, delete = api.requests[1:]
    assert (create.method, create.url.path) == ("POST", f"/v1/{ORG}/service/")
    assert json.loads(create.content) == {"name": "Meet", "is_active": True}
    assert (update.method, update.url.path) == ("POST", f"/v1/{ORG}/service/{new_id}/")
    assert (upsert.method, upsert.url.path) == (
        "PUT",
        f"/v1/{ORG}/service/{new_id}/version_sets/canary/",
    )
    assert json.loads(upsert.content) == {"version_set": {"agent_version_number": 3}}
    assert (delete.method, delete.url.path) == (
        "DELETE",
        f"/v1/{ORG}/service/{new_id}/version_sets/canary/",
    )
    assert client.request_counts == {
        "sign-in-with-api-key": 1,
        "create-service": 1,
        "update-service": 1,
        "upsert-service-version-set": 1,
        "delete-service-version-set": 1,
    }


@pytest.mark.parametrize(
    ("status", "error", "permission"),
    [
        (400, BadRequest, None),
        (403, PermissionDenied, "Service:CreateService"),
        (404, NotFound, None),
        (409, Conflict, None),
    ],
)
def test_create_errors_carry_operation_service_status_and_detail(
    api: FakeApi, client: AmigoClient, status: int, error: type[Exception], permission: str | None
) -> None:
    api.fault("create-service", json_response(status, {"detail": f"the API says {status}"}))
    with pytest.raises(error) as info:
        client.create_service({"name": "Meet"}, service="Meet")
    message = str(info.value)
    assert "create-service" in message
    assert "'Meet'" in message
    assert f"HTTP {status}" in message
    assert f"the API says {status}" in message
    if permission:
        assert permission in message
    assert client.request_counts["create-service"] == 1


def test_403_on_version_set_names_its_permissions(api: FakeApi, client: AmigoClient) -> None:
    api.fault("upsert-service-version-set", json_response(403, {"detail": "Missing permissions"}))
    with pytest.raises(
        PermissionDenied, match=r"Service:CreateVersionSet.*Service:UpdateVersionSet"
    ):
        client.upsert_version_set(SID, "canary", {}, service="Meet")
    api.fault("delete-service-version-set", json_response(403, {"detail": "Missing permissions"}))
    with pytest.raises(PermissionDenied, match="Service:DeleteVersionSet"):
        client.delete_version_set(SID, "canary", service="Meet")


def test_422_validation_list_is_rendered_readably(api: FakeApi, client: AmigoClient) -> None:
    detail = [
        {
            "loc": ["body", "version_set", "agent_version_number"],
            "msg": "Input should be a valid integer",
            "type": "int_parsing",
            "input": "x",
        },
        {
            "loc": ["path", "version_set_name"],
            "msg": "String should match pattern",
            "type": "string_pattern_mismatch",
        },
    ]
    api.fault("upsert-service-version-set", json_response(422, {"detail": detail}))
    with pytest.raises(RequestInvalid) as info:
        client.upsert_version_set(SID, "canary", {}, service="Meet")
    assert (
        "body.version_set.agent_version_number: Input should be a valid integer; "
        "path.version_set_name: String should match pattern"
    ) in str(info.value)


# --- retries ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_get_is_retried_on_transient_statuses(
    api: FakeApi, client: AmigoClient, status: int
) -> None:
    api.fault("get-services", json_response(status, {"detail": "busy"}))
    assert client.list_services() == []
    assert client.request_counts["get-services"] == 2
    assert client.rate_limited_count == (1 if status == 429 else 0)


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ConnectError, httpx.ReadError]
)
def test_put_is_retried_on_timeouts_and_dropped_connections(
    api: FakeApi, client: AmigoClient, exc: type[Exception]
) -> None:
    api.fault("upsert-service-version-set", exc)
    client.upsert_version_set(SID, "canary", {}, service="Meet")
    assert client.request_counts["upsert-service-version-set"] == 2


def test_retries_are_bounded_with_growing_jittered_backoff(
    api: FakeApi, client: AmigoClient, clock: FakeClock
) -> None:
    client.list_agents()
    clock.sleeps.clear()
    api.fault("get-agents", *[json_response(503, {"detail": "maintenance"})] * 10)
    with pytest.raises(ServerError) as info:
        client.list_agents()
    assert client.request_counts["get-agents"] == 1 + 5
    assert "maintenance" in str(info.value) and "5 attempts" in str(info.value)
    assert len(clock.sleeps) == 4
    for n, slept in enumerate(clock.sleeps, start=1):
        ceiling = min(10.0, 0.5 * 2 ** (n - 1))
        assert ceiling / 2 <= slept <= ceiling


def test_transport_failures_exhausted_raise_transport_error(
    api: FakeApi, client: AmigoClient
) -> None:
    api.fault("get-services", *[httpx.ReadTimeout] * 5)
    with pytest.raises(TransportError, match="timed out"):
        client.list_services()


def test_500_is_not_retried(api: FakeApi, client: AmigoClient) -> None:
    api.fault("get-services", json_response(500, {"detail": "boom"}))
    with pytest.raises(ServerError, match="boom"):
        client.list_services()
    assert client.request_counts["get-services"] == 1


def test_persistent_429_raises_rate_limited(api: FakeApi, client: AmigoClient) -> None:
    api.fault("get-services", *[json_response(429, {"detail": "slow"}, {"retry-after": "1"})] * 5)
    with pytest.raises(RateLimited):
        client.list_services()
    assert client.rate_limited_count == 5


@pytest.mark.parametrize(
    "answer",
    [
        json_response(429, {"detail": "slow"}, {"retry-after": "2"}),
        json_response(503, {"detail": "maintenance"}, {"retry-after": "3"}),
        httpx.ConnectError,
    ],
    ids=["429", "503-retry-after", "connect-error"],
)
def test_create_is_resent_only_when_the_server_provably_did_not_act(
    api: FakeApi, client: AmigoClient, answer: Any
) -> None:
    api.fault("create-service", answer)
    assert client.create_service({"name": "Meet"}, service="Meet")
    assert client.request_counts["create-service"] == 2
    assert len(api.services) == 1


@pytest.mark.parametrize(
    "answer",
    [
        json_response(503, {"detail": "maintenance"}),
        json_response(502, {"detail": "bad gateway"}),
        json_response(504, {"detail": "gateway timeout"}),
        json_response(500, {"detail": "boom"}),
        httpx.ReadTimeout,
        httpx.RemoteProtocolError,
    ],
    ids=["503", "502", "504", "500", "read-timeout", "dropped"],
)
def test_create_and_update_lost_answers_are_outcome_unknown(
    api: FakeApi, client: AmigoClient, answer: Any
) -> None:
    api.fault("create-service", answer)
    with pytest.raises(OutcomeUnknown) as info:
        client.create_service({"name": "Meet"}, service="Meet")
    assert info.value.service == "Meet"
    assert "look before re-sending" in str(info.value)
    assert client.request_counts["create-service"] == 1
    api.fault("update-service", answer)
    with pytest.raises(OutcomeUnknown):
        client.update_service(SID, {"description": "x"}, service="Meet")
    assert client.request_counts["update-service"] == 1


def test_delete_404_after_a_lost_answer_is_success(api: FakeApi, client: AmigoClient) -> None:
    api.fault(
        "delete-service-version-set",
        httpx.RemoteProtocolError,
        json_response(404, {"detail": "Version set not found"}),
    )
    client.delete_version_set(SID, "canary", service="Meet")
    assert client.request_counts["delete-service-version-set"] == 2


def test_delete_404_first_time_or_after_only_429_is_not_found(
    api: FakeApi, client: AmigoClient
) -> None:
    api.fault("delete-service-version-set", json_response(404, {"detail": "Version set not found"}))
    with pytest.raises(NotFound, match="Version set not found"):
        client.delete_version_set(SID, "canary", service="Meet")
    api.fault(
        "delete-service-version-set",
        json_response(429, {"detail": "slow"}, {"retry-after": "1"}),
        json_response(404, {"detail": "Version set not found"}),
    )
    with pytest.raises(NotFound):
        client.delete_version_set(SID, "canary", service="Meet")


def test_retry_after_http_date_is_honoured(
    api: FakeApi, client: AmigoClient, clock: FakeClock
) -> None:
    from email.utils import formatdate

    client.list_agents()
    clock.sleeps.clear()
    date = formatdate(clock.now + 30, usegmt=True)
    api.fault("get-agents", json_response(429, {"detail": "slow"}, {"retry-after": date}))
    client.list_agents()
    assert 29 <= sum(clock.sleeps) <= 32


def test_every_call_has_a_timeout(api: FakeApi, clock: FakeClock) -> None:
    seen: list[dict[str, Any]] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return api.handle(request)

    client = AmigoClient(
        config(timeout=7.0), transport=httpx.MockTransport(spy), clock=clock, sleep=clock.sleep
    )
    client.list_services()
    assert seen and all(t["read"] == 7.0 and t["connect"] == 7.0 for t in seen)


def test_client_is_usable_as_context_manager_and_repr_is_safe(
    api: FakeApi, clock: FakeClock
) -> None:
    with api.client(clock) as client:
        client.list_services()
        assert API_KEY not in repr(client)
        assert "SECRETTOKEN" not in repr(client)
        assert ORG in repr(client)
