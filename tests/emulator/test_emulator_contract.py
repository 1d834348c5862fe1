"""The contract checker itself: it must catch what breaks the document, or the hook proves nothing."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from contract import ContractChecker

from reconciler.emulator import RATE_LIMITS, EmulatorResponse, Exchange, Fault
from reconciler.emulator.core import OPERATION_IDS

SERVICE_ID = "a" * 24
HEADERS = (
    ("x-ratelimit-limit", "20"),
    ("x-ratelimit-remaining", "19"),
    ("x-ratelimit-reset", "60"),
)


@pytest.fixture(scope="module")
def checker(openapi_spec: dict[str, Any]) -> ContractChecker:
    return ContractChecker(openapi_spec)


def exchange(
    operation: str | None,
    method: str,
    path: str,
    *,
    query: tuple[tuple[str, str], ...] = (),
    body: Any = None,
    status: int = 200,
    response: Any = None,
    headers: tuple[tuple[str, str], ...] = HEADERS,
    fault: Fault | None = None,
    auth: bool = True,
) -> Exchange:
    request_headers = {"content-type": "application/json"}
    if auth:
        request_headers["authorization"] = "Bearer t"
    return Exchange(
        operation_id=operation,
        method=method,
        path=path,
        path_params={},
        query=query,
        headers=request_headers,
        body=b"" if body is None else json.dumps(body).encode(),
        response=EmulatorResponse(
            status,
            (("content-type", "application/json"), *headers),
            b"" if response is None else json.dumps(response).encode(),
        ),
        fault=fault,
    )


def test_emulator_operations_and_limits_match_the_document(checker: ContractChecker) -> None:
    for operation in OPERATION_IDS:
        assert operation in checker.operations
        assert checker.operations[operation].rate_limit == RATE_LIMITS[operation]


def test_a_valid_update_passes(checker: ContractChecker) -> None:
    ex = exchange(
        "update-service",
        "POST",
        f"/v1/acme/service/{SERVICE_ID}/",
        body={"tags": {"team": "x", "gone": None}},
        response=None,
    )
    ex = dataclasses.replace(ex, response=EmulatorResponse(200, HEADERS, b"null"))
    assert checker.request_problems(ex) == []
    assert checker.response_problems(ex) == []


def test_request_problems_are_caught(checker: ContractChecker) -> None:
    bad_body = exchange(
        "create-service", "POST", "/v1/acme/service/", body={"name": "x", "tags": {"a-b": "v"}}
    )
    problems = checker.request_problems(bad_body)
    assert any("'agent_id' is a required property" in p for p in problems)
    unknown_param = exchange(
        "get-services", "GET", "/v1/acme/service/", query=(("services_id", SERVICE_ID),)
    )
    assert any("not declared" in p for p in checker.request_problems(unknown_param))
    big_limit = exchange("get-services", "GET", "/v1/acme/service/", query=(("limit", "21"),))
    assert any("limit" in p for p in checker.request_problems(big_limit))
    no_token = exchange("get-agents", "GET", "/v1/acme/organization/agent", auth=False)
    assert any("Bearer" in p for p in checker.request_problems(no_token))
    bad_id = exchange("update-service", "POST", "/v1/acme/service/xyz/", body={})
    assert any("service_id" in p for p in checker.request_problems(bad_id))
    nowhere = exchange(None, "GET", "/v1/acme/service")
    assert checker.request_problems(nowhere)


def test_response_problems_are_caught(checker: ContractChecker) -> None:
    missing_field = exchange(
        "get-services",
        "GET",
        "/v1/acme/service/",
        headers=(("x-ratelimit-limit", "50"), *HEADERS[1:]),
        response={"services": [], "has_more": False, "continuation_token": None},
    )
    assert any("filter_values" in p for p in checker.response_problems(missing_field))
    undocumented = exchange(
        "delete-service-version-set",
        "DELETE",
        f"/v1/acme/service/{SERVICE_ID}/version_sets/x/",
        status=409,
        response={"detail": "no"},
    )
    assert any("not documented" in p for p in checker.response_problems(undocumented))
    wrong_limit = exchange(
        "get-agents",
        "GET",
        "/v1/acme/organization/agent",
        headers=(("x-ratelimit-limit", "99"), *HEADERS[1:]),
        response={"agents": [], "has_more": False, "continuation_token": None},
    )
    assert any("99" in p for p in checker.response_problems(wrong_limit))
    no_retry_after = exchange(
        "get-agents",
        "GET",
        "/v1/acme/organization/agent",
        status=429,
        response={"detail": "slow down"},
    )
    assert any("Retry-After" in p for p in checker.response_problems(no_retry_after))
    bad_422 = exchange(
        "get-agents", "GET", "/v1/acme/organization/agent", status=422, response={"detail": [{}]}
    )
    assert checker.response_problems(bad_422)


def test_injected_gateway_faults_are_not_held_against_the_document(
    checker: ContractChecker,
) -> None:
    ex = exchange(
        "get-agents",
        "GET",
        "/v1/acme/organization/agent",
        status=502,
        headers=(),
        fault=Fault.STATUS_502,
    )
    assert checker.response_problems(ex) == []


def test_the_embedded_llm_enum_and_field_patterns_match_the_document(
    openapi_spec: dict[str, Any],
) -> None:
    from reconciler.emulator import models

    schemas = openapi_spec["components"]["schemas"]
    assert [member.value for member in models.LLMType] == schemas["LLMType"]["enum"]
    assert schemas["StrippedNonemptyString___w__s_____"]["pattern"] == models.TAG_PATTERN
    keyterm = schemas["StrippedNonemptyString_a-z-_____a-z-____0_2____"]["pattern"]
    assert keyterm == models.KEYTERM_PATTERN
    version_set = schemas["StrippedNonemptyString_A-Za-z0-9_-______MaxLen_max_length_40_"]
    assert version_set["pattern"] == models.VERSION_SET_NAME_PATTERN
    assert version_set["maxLength"] == models.MAX_VERSION_SET_NAME
