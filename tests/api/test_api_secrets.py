"""The API key and the bearer token never show: logs, reprs, errors, wait messages."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest
from _api_fake import API_KEY, FakeApi, FakeClock, json_response

from reconciler.api.errors import ApiError
from reconciler.api.operations import OPERATIONS

SID = "6618791275130b73714e8d1c"


def _leaks(text: str, api: FakeApi) -> list[str]:
    secrets = [API_KEY, *api.tokens_issued, "SECRETTOKEN", "SECRET-KEY"]
    return [s for s in secrets if s in text]


def test_secrets_never_reach_logs_reprs_errors_or_wait_messages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    api = FakeApi(clock=clock)
    told: list[str] = []
    client = api.client(clock, on_wait=told.append)
    client.list_services()  # signed in: a token exists now
    token = api.tokens_issued[-1]
    seen: list[str] = [repr(client), repr(client.config), str(client.config), repr(client._tokens)]

    def echo(request: httpx.Request) -> httpx.Response:
        # A careless server echoing what it got, credentials included.
        return json_response(
            400,
            {"detail": f"bad request from key {API_KEY} with {request.headers['authorization']}"},
        )

    failing: list[tuple[str, Any]] = [
        ("upsert-service-version-set", echo),
        ("create-service", httpx.ReadTimeout),
        (
            "get-agents",
            json_response(
                422,
                {
                    "detail": [
                        {
                            "loc": ["header", "x-api-key"],
                            "msg": "bad",
                            "type": "t",
                            "input": API_KEY,
                        }
                    ]
                },
            ),
        ),
        (
            "delete-service-version-set",
            json_response(403, {"detail": f"token {token} lacks rights"}),
        ),
    ]
    for operation_id, answer in failing:
        api.fault(operation_id, answer)
    calls = [
        lambda: client.upsert_version_set(SID, "canary", {}, service="S"),
        lambda: client.create_service({"name": "S"}, service="S"),
        lambda: client.list_agents(),
        lambda: client.delete_version_set(SID, "canary", service="S"),
    ]
    for call in calls:
        with pytest.raises(ApiError) as info:
            call()
        seen += [str(info.value), repr(info.value), repr(info.value.args), str(info.value.detail)]
    api.fault("get-services", json_response(429, {"detail": "slow"}, {"retry-after": "5"}))
    client.list_services()
    seen += told
    seen += [record.getMessage() for record in caplog.records]
    seen += [str(record.args) for record in caplog.records]
    leaks = [leak for text in seen for leak in _leaks(text, api)]
    assert leaks == []
    assert told  # the wait was reported (without secrets)


def test_bad_key_error_does_not_show_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    api = FakeApi(clock=clock)
    api.fault("sign-in-with-api-key", json_response(401, {"detail": f"key {API_KEY} unknown"}))
    client = api.client(clock)
    with pytest.raises(ApiError) as info:
        client.list_agents()
    assert API_KEY not in str(info.value)
    assert "***" in str(info.value)
    assert all(API_KEY not in r.getMessage() for r in caplog.records)


# --- the operation table against the published document ---------------------------


def _operations_by_id(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    found = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "operationId" in op:
                found[op["operationId"]] = (method.upper(), path, op)
    return found


def test_operation_table_matches_the_openapi_document(openapi_spec: dict[str, Any]) -> None:
    documented = _operations_by_id(openapi_spec)
    for op in OPERATIONS.values():
        method, _path, spec_op = documented[op.id]
        assert op.method == method, op.id
        limit = re.search(
            r"rate limit of (\d+) requests per minute", spec_op["responses"]["429"]["description"]
        )
        assert limit and int(limit.group(1)) == op.limit_per_window, op.id
        description = spec_op.get("description", "")
        for permission in re.findall(r"\b[A-Z][A-Za-z]+:[A-Z][A-Za-z]+\b", op.permission):
            assert f"`{permission}`" in description, (op.id, permission)


def test_client_paths_match_the_openapi_document(openapi_spec: dict[str, Any]) -> None:
    clock = FakeClock()
    api = FakeApi(clock=clock)
    client = api.client(clock)
    client.list_services()
    client.list_agents()
    client.list_state_machines()
    client.list_unit_tests([SID])
    client.list_unit_test_sets()
    client.list_unit_test_sets(["d" * 24])
    run_id = client.create_unit_test_set_run("e" * 24)
    client.list_unit_test_set_runs([run_id])
    new_id = client.create_service({"name": "S"}, service="S")
    client.update_service(new_id, {}, service="S")
    client.upsert_version_set(new_id, "canary", {}, service="S")
    client.delete_version_set(new_id, "canary", service="S")
    documented = _operations_by_id(openapi_spec)
    for request in api.requests:
        operation_id = request.extensions["operation_id"]
        method, template, _ = documented[operation_id]
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$"
        assert request.method == method
        assert re.match(pattern, request.url.path), (operation_id, request.url.path, template)
    assert {r.extensions["operation_id"] for r in api.requests} == set(OPERATIONS)
