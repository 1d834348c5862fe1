"""The emulator as an oracle (issue 19 item 5): deprecated LLMs, every documented parameter
honoured or refused, and refusals that rest on an interpretation say which one."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.paths import REPO
from test_emulator_rules import AGENT, AGENT_OLD, SEED, SM, Api, by_name, detail

from reconciler.diagnostics import UserError
from reconciler.emulator import Emulator, load_seed
from reconciler.emulator import interpretations as interp
from reconciler.emulator.core import INTERPRETATION_HEADER, OPERATION_IDS
from reconciler.emulator.parameters import PARAMETERS, Handling
from reconciler.emulator.seed import derived_id

OLD_LLM = "openai_gpt-4.1-2025-04-14"
NEW_LLM = "openai_gpt-5.1-2025-11-13"
RETIRED_LLM = "openai_gpt-3.5-turbo"
PERSONA = "9" * 24


def oracle_seed() -> dict[str, Any]:
    seed = copy.deepcopy(SEED)
    seed["deprecated_llms"] = [OLD_LLM, RETIRED_LLM]
    seed["services"] += [
        {
            "name": "Dormant",
            "description": "Inactive, release prefers a deprecated LLM",
            "is_active": False,
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Onboarding",
            "version_sets": {
                "release": {"llm_model_preferences": {"conversation": {"llm_name": OLD_LLM}}}
            },
        },
        {
            "name": "Sleeper",
            "description": "Inactive, only a side set prefers a retired LLM",
            "is_active": False,
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Onboarding",
            "version_sets": {
                "canary": {"llm_model_preferences": {"conversation": {"llm_name": RETIRED_LLM}}}
            },
        },
    ]
    seed["unit_tests"] += [
        {
            "name": "tagged test",
            "service": derived_id("acme", "services", 0),  # the active Greeter
            "version_set": "canary",
            "tags": {"suite": "smoke", "flaky": None},
            "persona_id": PERSONA,
            "updated_at": "2025-06-01T12:00:00Z",
            "metrics": ["Greets"],
        }
    ]
    seed["unit_test_sets"] = [
        {"name": "Pins", "unit_tests": ["pin test"]},
        {"name": "Tagged", "unit_tests": ["tagged test"], "updated_at": "2025-06-01T12:00:00Z"},
    ]
    return seed


@pytest.fixture
def api() -> Iterator[Api]:
    client = Api(Emulator.from_seed(oracle_seed()))
    yield client
    client.http.close()


def interpretation_of(response: httpx.Response) -> str | None:
    return response.headers.get(INTERPRETATION_HEADER)


# --- deprecated LLMs ---------------------------------------------------------------


def test_activating_with_a_deprecated_llm_in_release_is_a_documented_400(api: Api) -> None:
    dormant = by_name(api.emulator, "Dormant", active=False)
    response = api.update(dormant["id"], is_active=True)
    assert response.status_code == 400
    assert OLD_LLM in detail(response) and "'release'" in detail(response)
    assert interpretation_of(response) is None
    refusal = api.emulator.refusals[-1]
    assert (refusal.operation_id, refusal.status, refusal.interpretation) == (
        "update-service",
        400,
        None,
    )
    assert refusal.service_id == dormant["id"]
    # Fix the set first, then the activation passes: the order issue 12 item 4 is about.
    assert api.upsert(dormant["id"], "release").status_code == 204
    assert api.update(dormant["id"], is_active=True).status_code == 200


def test_a_deprecated_llm_only_in_a_side_set_refuses_on_an_interpretation(api: Api) -> None:
    sleeper = by_name(api.emulator, "Sleeper", active=False)
    response = api.update(sleeper["id"], is_active=True)
    assert response.status_code == 400
    assert interpretation_of(response) == interp.DEPRECATED_LLM_ANY_SET
    assert api.emulator.refusals[-1].interpretation == interp.DEPRECATED_LLM_ANY_SET


def test_deprecated_llms_are_checked_on_activation_only(api: Api) -> None:
    greeter = by_name(api.emulator, "Greeter")
    body = {"conversation": {"llm_name": OLD_LLM, "params": {}}}
    # Upsert on an active service is accepted (interpretation deprecated-llm-upsert-accepted).
    assert api.upsert(greeter["id"], "canary", llm_model_preferences=body).status_code == 204
    # Updates that do not activate are not refused for it.
    assert api.update(greeter["id"], description="still fine").status_code == 200
    # Restoring the LLM lifts the refusal; the seed's list is the emulator's state.
    api.emulator.set_llm_deprecated(OLD_LLM, False)
    dormant = by_name(api.emulator, "Dormant", active=False)
    assert api.update(dormant["id"], is_active=True).status_code == 200
    assert OLD_LLM not in api.emulator.deprecated_llms


def test_a_retired_llm_outside_the_enum_is_refused_by_the_enum_on_upsert(
    api: Api, allow_invalid_requests: None
) -> None:
    greeter = by_name(api.emulator, "Greeter")
    body = {"conversation": {"llm_name": RETIRED_LLM, "params": {}}}
    response = api.upsert(greeter["id"], "canary", llm_model_preferences=body)
    assert response.status_code == 422
    assert interpretation_of(response) is None


def test_the_seed_refuses_an_unknown_llm_at_its_line(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "organization: acme\n"
        "credentials: {api_key: k, api_key_id: i, user_id: u}\n"
        "deprecated_llms: [gpt-old, gpt-old]\n"
        "agents: [{name: A}]\n"
        "state_machines: [{name: S}]\n"
        "services:\n"
        "  - name: X\n"
        "    description: d\n"
        "    agent: A\n"
        "    service_hierarchical_state_machine: S\n"
        "    version_sets:\n"
        "      canary:\n"
        "        llm_model_preferences:\n"
        "          conversation: {llm_name: gpt-typo}\n",
        encoding="utf-8",
    )
    with pytest.raises(UserError) as caught:
        load_seed(seed)
    messages = [str(d) for d in caught.value.diagnostics]
    assert any(m.startswith(f"{seed}:14:") and "unknown LLM 'gpt-typo'" in m for m in messages)
    assert any(m.startswith(f"{seed}:3:") and "already listed" in m for m in messages)


# --- deprecated agents: documented vs interpreted -------------------------------------


def test_moving_an_active_service_to_a_deprecated_agent_rests_on_an_interpretation(
    api: Api,
) -> None:
    greeter = by_name(api.emulator, "Greeter")
    moved = api.update(greeter["id"], agent_id=AGENT_OLD)
    assert moved.status_code == 400
    assert interpretation_of(moved) == interp.DEPRECATED_ON_MOVE
    retired = by_name(api.emulator, "Greeter", active=False)
    activated = api.update(retired["id"], is_active=True, name="Unique")
    assert activated.status_code == 400
    assert interpretation_of(activated) is None


# --- lax scalars ----------------------------------------------------------------------


def test_a_string_one_is_an_integer_but_a_number_is_not_a_string(
    api: Api, allow_invalid_requests: None
) -> None:
    greeter = by_name(api.emulator, "Greeter")
    assert api.upsert(greeter["id"], "canary", agent_version_number="1").status_code == 204
    assert (
        api.emulator.service(greeter["id"])["version_sets"]["canary"]["agent_version_number"] == 1
    )
    response = api.update(greeter["id"], description=12)
    assert response.status_code == 422
    assert interpretation_of(response) == interp.LAX_SCALARS
    # A refusal every reading shares carries no interpretation.
    response = api.upsert(greeter["id"], "canary", agent_version_number="one")
    assert response.status_code == 422 and interpretation_of(response) is None


# --- query parameters -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["--name", "+-name", "name-", "-", "", "updated_at"])
def test_unsupported_sort_fields_are_refused_not_ignored(
    api: Api, allow_invalid_requests: None, value: str
) -> None:
    response = api.services(sort_by=value)
    assert response.status_code == 422
    assert detail(response)[0]["loc"] == ["query", "sort_by"]


def test_sort_by_one_sign_then_a_field(api: Api) -> None:
    names = [s["name"] for s in api.services(sort_by="-name", limit=20).json()["services"]]
    assert names == sorted(names, reverse=True)
    plain = [s["name"] for s in api.services(sort_by="name", limit=20).json()["services"]]
    assert plain == sorted(plain)


def test_unit_test_filters_tag_creator_persona_and_sort(
    api: Api, allow_invalid_requests: None
) -> None:
    def names(**params: Any) -> list[str]:
        response = api.call("GET", "/simulation/unit_test/", params=params)
        assert response.status_code == 200, response.text
        return [t["name"] for t in response.json()["simulation_unit_tests"]]

    assert names() == ["pin test", "tagged test"]
    assert names(tag="suite:smoke") == ["tagged test"]
    assert names(tag="suite:*") == ["tagged test"]
    assert names(tag="flaky:") == ["tagged test"]
    assert names(tag=["suite:smoke", "team:x"]) == []
    assert names(creator="acme,u1") == ["pin test", "tagged test"]
    assert names(creator="acme,someone-else") == []
    assert names(persona_id=PERSONA) == ["tagged test"]
    assert names(metric_id="8" * 24) == []
    assert names(sort_by="-updated_at") == ["tagged test", "pin test"]
    assert names(sort_by="+updated_at") == ["pin test", "tagged test"]
    for params in ({"creator": "no-comma"}, {"tag": "nokey"}, {"sort_by": "--updated_at"}):
        response = api.call("GET", "/simulation/unit_test/", params=params)
        assert response.status_code == 422, params
    first = api.call("GET", "/simulation/unit_test/").json()
    assert first["filter_values"]["tags"] == ["flaky", "suite"]
    tagged = next(t for t in first["simulation_unit_tests"] if t["name"] == "tagged test")
    assert {"key": "suite", "value": "smoke"} in tagged["tags"]


def test_negative_continuation_token_rests_on_an_interpretation(
    api: Api, allow_invalid_requests: None
) -> None:
    response = api.services(continuation_token=-1)
    assert response.status_code == 422
    assert interpretation_of(response) == interp.CONTINUATION_OFFSET


# --- the parameter table, held to the OpenAPI document ------------------------------------

_OPERATIONS_BY_ID = {
    "sign-in-with-api-key": ("post", "/v1/{organization}/user/signin_with_api_key"),
    "get-agents": ("get", "/v1/{organization}/organization/agent"),
    "get-service-hierarchical-state-machines": (
        "get",
        "/v1/{organization}/organization/service_hierarchical_state_machine",
    ),
    "get-simulation-unit-tests": ("get", "/v1/{organization}/simulation/unit_test/"),
    "get-services": ("get", "/v1/{organization}/service/"),
    "create-service": ("post", "/v1/{organization}/service/"),
    "update-service": ("post", "/v1/{organization}/service/{service_id}/"),
    "upsert-service-version-set": (
        "put",
        "/v1/{organization}/service/{service_id}/version_sets/{version_set_name}/",
    ),
    "delete-service-version-set": (
        "delete",
        "/v1/{organization}/service/{service_id}/version_sets/{version_set_name}/",
    ),
    "get-simulation-unit-test-sets": ("get", "/v1/{organization}/simulation/unit_test_set/"),
    "get-simulation-unit-test-set-runs": (
        "get",
        "/v1/{organization}/simulation/unit_test_set_run/",
    ),
    "create-simulation-unit-test-set-run": (
        "post",
        "/v1/{organization}/simulation/unit_test_set_run/",
    ),
}

# For each honoured query parameter: (path, params) whose answer must differ from the same
# request without the parameter: a parameter the emulator ignored would make them equal.
_UT = "/simulation/unit_test/"
_UTS = "/simulation/unit_test_set/"
_RUNS = "/simulation/unit_test_set_run/"
_PROBES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("get-agents", "deprecated"): ("/organization/agent", {"deprecated": "true"}),
    ("get-agents", "id"): ("/organization/agent", {"id": AGENT}),
    ("get-agents", "limit"): ("/organization/agent", {"limit": 1}),
    ("get-agents", "continuation_token"): ("/organization/agent", {"continuation_token": 1}),
    ("get-service-hierarchical-state-machines", "deprecated"): (
        "/organization/service_hierarchical_state_machine",
        {"deprecated": "true"},
    ),
    ("get-service-hierarchical-state-machines", "id"): (
        "/organization/service_hierarchical_state_machine",
        {"id": SM},
    ),
    ("get-service-hierarchical-state-machines", "limit"): (
        "/organization/service_hierarchical_state_machine",
        {"limit": 1},
    ),
    ("get-service-hierarchical-state-machines", "continuation_token"): (
        "/organization/service_hierarchical_state_machine",
        {"continuation_token": 1},
    ),
    ("get-services", "id"): ("/service/", {"id": "0" * 24}),
    ("get-services", "is_active"): ("/service/", {"is_active": "false"}),
    ("get-services", "sort_by"): ("/service/", {"sort_by": "-name"}),
    ("get-services", "tags"): ("/service/", {"tags": "team:growth"}),
    ("get-services", "limit"): ("/service/", {"limit": 1}),
    ("get-services", "continuation_token"): ("/service/", {"continuation_token": 1}),
    ("get-simulation-unit-tests", "id"): (_UT, {"id": "0" * 24}),
    ("get-simulation-unit-tests", "service_id"): (_UT, {"service_id": "0" * 24}),
    ("get-simulation-unit-tests", "persona_id"): (_UT, {"persona_id": PERSONA}),
    ("get-simulation-unit-tests", "scenario_id"): (_UT, {"scenario_id": "0" * 24}),
    ("get-simulation-unit-tests", "metric_id"): (_UT, {"metric_id": "0" * 24}),
    ("get-simulation-unit-tests", "creator"): (_UT, {"creator": "acme,nobody"}),
    ("get-simulation-unit-tests", "tag"): (_UT, {"tag": "suite:smoke"}),
    ("get-simulation-unit-tests", "sort_by"): (_UT, {"sort_by": "-updated_at"}),
    ("get-simulation-unit-tests", "is_deleted"): (_UT, {"is_deleted": "true"}),
    ("get-simulation-unit-tests", "limit"): (_UT, {"limit": 1}),
    ("get-simulation-unit-tests", "continuation_token"): (_UT, {"continuation_token": 1}),
    ("get-simulation-unit-test-sets", "id"): (_UTS, {"id": "0" * 24}),
    ("get-simulation-unit-test-sets", "unit_test_id"): (_UTS, {"unit_test_id": "0" * 24}),
    ("get-simulation-unit-test-sets", "is_deleted"): (_UTS, {"is_deleted": "true"}),
    ("get-simulation-unit-test-sets", "creator"): (_UTS, {"creator": "acme,nobody"}),
    ("get-simulation-unit-test-sets", "tag"): (_UTS, {"tag": "suite:*"}),
    ("get-simulation-unit-test-sets", "sort_by"): (_UTS, {"sort_by": "-updated_at"}),
    ("get-simulation-unit-test-sets", "limit"): (_UTS, {"limit": 1}),
    ("get-simulation-unit-test-sets", "continuation_token"): (_UTS, {"continuation_token": 1}),
    ("get-simulation-unit-test-set-runs", "id"): (_RUNS, {"id": "0" * 24}),
    ("get-simulation-unit-test-set-runs", "simulation_unit_test_set_id"): (
        _RUNS,
        {"simulation_unit_test_set_id": "0" * 24},
    ),
    ("get-simulation-unit-test-set-runs", "is_completed"): (_RUNS, {"is_completed": "false"}),
    ("get-simulation-unit-test-set-runs", "failed_metrics"): (_RUNS, {"failed_metrics": "true"}),
    ("get-simulation-unit-test-set-runs", "errored"): (_RUNS, {"errored": "true"}),
    ("get-simulation-unit-test-set-runs", "creator"): (_RUNS, {"creator": "acme,nobody"}),
    ("get-simulation-unit-test-set-runs", "created_after"): (
        _RUNS,
        {"created_after": "2999-01-01T00:00:00Z"},
    ),
    ("get-simulation-unit-test-set-runs", "created_before"): (
        _RUNS,
        {"created_before": "2000-01-01T00:00:00Z"},
    ),
    ("get-simulation-unit-test-set-runs", "sort_by"): (_RUNS, {"sort_by": "-created_at"}),
    ("get-simulation-unit-test-set-runs", "limit"): (_RUNS, {"limit": 1}),
    ("get-simulation-unit-test-set-runs", "continuation_token"): (
        _RUNS,
        {"continuation_token": 1},
    ),
}


def _documented(spec: dict[str, Any], operation_id: str) -> set[tuple[str, str]]:
    method, path = _OPERATIONS_BY_ID[operation_id]
    operation = spec["paths"][path][method]
    assert operation["operationId"] == operation_id
    return {
        (p["in"], p["name"].lower() if p["in"] == "header" else p["name"])
        for p in operation.get("parameters", [])
    }


def test_every_documented_parameter_is_in_the_table_and_nothing_else(
    openapi_spec: dict[str, Any],
) -> None:
    assert set(_OPERATIONS_BY_ID) == set(OPERATION_IDS) == set(PARAMETERS)
    for operation_id in OPERATION_IDS:
        documented = _documented(openapi_spec, operation_id)
        assert set(PARAMETERS[operation_id]) == documented, operation_id


def test_every_honoured_query_parameter_changes_the_answer(api: Api) -> None:
    honoured = {
        (operation_id, name)
        for operation_id, table in PARAMETERS.items()
        for (location, name), rule in table.items()
        if location == "query" and rule.handling is Handling.HONOURED
    }
    assert honoured == set(_PROBES)
    # Two finished runs (one per set, started one after the other) to filter and sort.
    for test_set in api.emulator.simulations.sets.values():
        body = {"simulation_unit_test_set_id": test_set.id}
        assert api.call("POST", _RUNS, json=body).status_code == 201
    for (operation_id, name), (path, params) in sorted(_PROBES.items()):
        without = api.call("GET", path)
        with_it = api.call("GET", path, params=params)
        assert without.status_code == with_it.status_code == 200, (operation_id, name)
        assert with_it.json() != without.json(), f"{operation_id}: {name} changed nothing"


def test_every_refused_parameter_is_refused_with_its_interpretation(
    api: Api, allow_invalid_requests: None
) -> None:
    greeter = by_name(api.emulator, "Greeter")
    requests: dict[str, tuple[str, str, dict[str, Any]]] = {
        "get-agents": ("GET", "/organization/agent", {}),
        "get-service-hierarchical-state-machines": (
            "GET",
            "/organization/service_hierarchical_state_machine",
            {},
        ),
        "get-services": ("GET", "/service/", {}),
        "get-simulation-unit-tests": ("GET", _UT, {}),
        "create-service": ("POST", "/service/", {"json": {}}),
        "update-service": ("POST", f"/service/{greeter['id']}/", {"json": {}}),
        "upsert-service-version-set": (
            "PUT",
            f"/service/{greeter['id']}/version_sets/canary/",
            {"json": {}},
        ),
        "delete-service-version-set": ("DELETE", f"/service/{greeter['id']}/version_sets/x/", {}),
        "get-simulation-unit-test-sets": ("GET", _UTS, {}),
        "get-simulation-unit-test-set-runs": ("GET", _RUNS, {}),
        "create-simulation-unit-test-set-run": ("POST", _RUNS, {"json": {}}),
    }
    checked = 0
    for operation_id, table in PARAMETERS.items():
        for (location, name), rule in table.items():
            if rule.handling is not Handling.REFUSED:
                continue
            assert rule.interpretation in interp.BY_ID
            assert location == "header"
            if operation_id == "sign-in-with-api-key":
                creds = api.emulator.credentials()
                response = api.http.post(
                    f"/v1/{api.org}/user/signin_with_api_key",
                    headers={
                        "x-api-key": creds["AMIGO_API_KEY"],
                        "x-api-key-id": creds["AMIGO_API_KEY_ID"],
                        "x-user-id": creds["AMIGO_USER_ID"],
                        name: "cluster-0",
                    },
                )
            else:
                method, path, extra = requests[operation_id]
                response = api.call(method, path, headers={name: "cluster-0"}, **extra)
            assert response.status_code == 422, (operation_id, name)
            assert detail(response)[0]["loc"] == ["header", name]
            assert "cluster-0" not in response.text  # a header value is never echoed
            assert interpretation_of(response) == rule.interpretation
            checked += 1
    assert checked == len(PARAMETERS)  # Sec-WebSocket-Protocol on each operation


def test_the_mongo_cluster_header_is_accepted_and_recorded_on_every_operation(
    api: Api,
) -> None:
    for table in PARAMETERS.values():
        assert table[("header", "x-mongo-cluster-name")].handling is Handling.HONOURED
    response = api.call("GET", "/service/", headers={"x-mongo-cluster-name": "cluster-0"})
    assert response.status_code == 200
    response = api.call("GET", "/organization/agent")
    assert response.status_code == 200
    recorded = api.emulator.mongo_cluster_names
    assert recorded[-2:] == [("get-services", "cluster-0"), ("get-agents", None)]


# --- the interpretations table, held to docs/emulator.md ---------------------------------


def test_docs_list_every_interpretation_and_no_other() -> None:
    text = (REPO / "docs" / "emulator.md").read_text(encoding="utf-8")
    section = text.split("## Interpretations", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.M)
    assert listed == [i.id for i in interp.INTERPRETATIONS]


def test_create_still_ignores_deprecation_as_the_table_says(api: Api) -> None:
    response = api.create(
        name="Brand new", agent_id=AGENT_OLD, service_hierarchical_state_machine_id=SM
    )
    assert response.status_code == 201


def test_docs_parameter_table_is_the_emulators() -> None:
    text = (REPO / "docs" / "emulator.md").read_text(encoding="utf-8")
    section = text.split("## Parameters", 1)[1]
    rows = re.findall(r"^\| `([a-z-]+)` \| (\w+) `([\w-]+)` \| (\w+) \|", section, flags=re.M)
    table = [
        (operation_id, location, name, rule.handling.value)
        for operation_id, parameters in PARAMETERS.items()
        for (location, name), rule in parameters.items()
    ]
    assert rows == table


def test_duplicate_ids_collapse_and_limit_zero_is_an_empty_page(
    api: Api, allow_invalid_requests: None
) -> None:
    greeter = by_name(api.emulator, "Greeter")
    twice = api.services(id=[greeter["id"], greeter["id"]]).json()["services"]
    assert [s["id"] for s in twice] == [greeter["id"]]
    page = api.call("GET", "/simulation/unit_test/", params={"limit": 0}).json()
    assert page["simulation_unit_tests"] == []
    assert (page["has_more"], page["continuation_token"]) == (True, 0)


def test_create_accepts_a_deprecated_llm_in_release(api: Api) -> None:
    release = {
        "agent_version_number": None,
        "service_hierarchical_state_machine_version_number": None,
        "llm_model_preferences": {"conversation": {"llm_name": OLD_LLM, "params": {}}},
    }
    assert api.create(name="Fresh", release_version_set=release).status_code == 201
