"""The emulator answers like the documented API: rules, shapes, validation, auth, pagination, limits.

Every exchange here is also validated against the OpenAPI document by the conftest hook.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from reconciler.emulator import Emulator, Fault

AGENT = "a" * 24
AGENT_OLD = "b" * 24
AGENT_EMPTY = "c" * 24
SM = "d" * 24
SM_2 = "e" * 24

SEED: dict[str, Any] = {
    "organization": "acme",
    "credentials": {"api_key": "k-123", "api_key_id": "kid", "user_id": "u1"},
    "agents": [
        {"name": "Concierge", "id": AGENT, "latest_version": 4},
        {"name": "Old", "id": AGENT_OLD, "latest_version": 2, "deprecated": True},
        {"name": "Empty", "id": AGENT_EMPTY, "latest_version": None},
    ],
    "state_machines": [
        {"name": "Onboarding", "id": SM, "latest_version": 6},
        {"name": "Intake", "id": SM_2, "latest_version": 2},
    ],
    "services": [
        {
            "name": "Greeter",
            "description": "Says hello",
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Onboarding",
            "tags": {"managed_by": "amigo_reconciler", "team": "growth"},
            "keyterms": ["hello there"],
            "version_sets": {
                "release": {"agent_version_number": 3},
                "canary": {"agent_version_number": 4},
                "pinned": {"agent_version_number": 2},
            },
        },
        {
            "name": "Greeter",
            "description": "Retired copy",
            "is_active": False,
            "agent": "Old",
            "service_hierarchical_state_machine": "Onboarding",
            "tags": {"retired": None},
        },
        {
            "name": "Billing",
            "description": "Invoices",
            "agent": AGENT,
            "service_hierarchical_state_machine": SM_2,
        },
    ],
    "unit_tests": [{"name": "pin test", "service": "Billing", "version_set": "release"}],
}


class Api:
    """A thin signed-in httpx client against an emulator (in-process unless a base_url is given)."""

    def __init__(self, emulator: Emulator, base_url: str | None = None, **client: Any) -> None:
        self.emulator = emulator
        self.org = emulator.organization
        if base_url is None:
            self.http = httpx.Client(
                transport=emulator.transport(), base_url=Emulator.IN_PROCESS_BASE_URL, **client
            )
        else:
            self.http = httpx.Client(base_url=base_url, **client)
        self.token: str | None = None

    def sign_in(self) -> httpx.Response:
        creds = self.emulator.credentials()
        response = self.http.post(
            f"/v1/{self.org}/user/signin_with_api_key",
            headers={
                "x-api-key": creds["AMIGO_API_KEY"],
                "x-api-key-id": creds["AMIGO_API_KEY_ID"],
                "x-user-id": creds["AMIGO_USER_ID"],
            },
        )
        if response.status_code == 200:
            self.token = response.json()["id_token"]
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self.token is None:
            self.sign_in()
        headers = {"authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.http.request(method, f"/v1/{self.org}{path}", headers=headers, **kwargs)

    def services(self, **params: Any) -> httpx.Response:
        return self.call("GET", "/service/", params=params)

    def create(self, **fields: Any) -> httpx.Response:
        body = {
            "name": "New",
            "description": "A new one",
            "is_active": True,
            "agent_id": AGENT,
            "service_hierarchical_state_machine_id": SM,
            "keyterms": [],
            "tags": {},
            **fields,
        }
        return self.call("POST", "/service/", json=body)

    def update(self, service_id: str, **fields: Any) -> httpx.Response:
        return self.call("POST", f"/service/{service_id}/", json=fields)

    def upsert(self, service_id: str, name: str, **version_set: Any) -> httpx.Response:
        body = {
            "agent_version_number": None,
            "service_hierarchical_state_machine_version_number": None,
            "llm_model_preferences": {},
            **version_set,
        }
        return self.call(
            "PUT", f"/service/{service_id}/version_sets/{name}/", json={"version_set": body}
        )

    def delete(self, service_id: str, name: str) -> httpx.Response:
        return self.call("DELETE", f"/service/{service_id}/version_sets/{name}/")


def make_emulator(seed: Mapping[str, Any] = SEED, **options: Any) -> Emulator:
    return Emulator.from_seed(copy.deepcopy(dict(seed)), **options)


@pytest.fixture
def emulator() -> Emulator:
    return make_emulator()


@pytest.fixture
def api(emulator: Emulator) -> Iterator[Api]:
    client = Api(emulator)
    yield client
    client.http.close()


def by_name(emulator: Emulator, name: str, active: bool = True) -> dict[str, Any]:
    return next(s for s in emulator.services() if s["name"] == name and s["is_active"] == active)


def detail(response: httpx.Response) -> Any:
    return response.json()["detail"]


# --- create ------------------------------------------------------------------------


def test_create_gives_edge_latest_and_release_copy_with_24_hex_id(api: Api) -> None:
    response = api.create(name="  Fresh  ", tags={"team": "x", "flag": None}, keyterms=["abc"])
    assert response.status_code == 201
    new_id = response.json()["id"]
    assert len(new_id) == 24 and all(c in "0123456789abcdef" for c in new_id)
    service = api.emulator.service(new_id)
    edge = {
        "agent_version_number": None,
        "service_hierarchical_state_machine_version_number": None,
        "llm_model_preferences": {},
    }
    assert service["name"] == "Fresh"  # stripped
    assert service["version_sets"] == {"edge": edge, "release": edge}
    assert service["tags"] == [{"key": "team", "value": "x"}, {"key": "flag", "value": None}]
    assert service["creator"] == {"org_id": "acme", "user_id": "u1"}


def test_create_with_release_version_set_keeps_it(api: Api) -> None:
    release = {
        "agent_version_number": 2,
        "service_hierarchical_state_machine_version_number": 6,
        "llm_model_preferences": {"conversation": {"llm_name": "google_gemini-2.5-pro"}},
    }
    response = api.create(release_version_set=release)
    service = api.emulator.service(response.json()["id"])
    assert service["version_sets"]["release"] == {
        **release,
        "llm_model_preferences": {
            "conversation": {"llm_name": "google_gemini-2.5-pro", "params": {}}
        },
    }
    assert service["version_sets"]["edge"]["agent_version_number"] is None


def test_create_active_name_taken_is_409_but_inactive_duplicate_is_fine(api: Api) -> None:
    assert api.create(name="Greeter").status_code == 409
    assert api.create(name="Greeter", is_active=False).status_code == 201
    assert api.create(name="Billing", is_active=False).status_code == 201
    assert [s["is_active"] for s in api.emulator.services() if s["name"] == "Greeter"].count(
        True
    ) == 1


def test_create_unknown_agent_or_state_machine_is_404(api: Api) -> None:
    assert api.create(agent_id="f" * 24).status_code == 404
    assert api.create(service_hierarchical_state_machine_id="f" * 24).status_code == 404


def test_create_versions_above_latest_or_agent_without_versions_is_400(api: Api) -> None:
    too_new = {
        "agent_version_number": 5,
        "service_hierarchical_state_machine_version_number": None,
        "llm_model_preferences": {},
    }
    assert api.create(release_version_set=too_new).status_code == 400
    sm_too_new = {**too_new, "agent_version_number": 4}
    sm_too_new["service_hierarchical_state_machine_version_number"] = 7
    assert api.create(release_version_set=sm_too_new).status_code == 400
    assert api.create(agent_id=AGENT_EMPTY).status_code == 400


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"name": "   "}, ["body", "name"]),
        ({"keyterms": ["UPPER case"]}, ["body", "keyterms", 0]),
        ({"keyterms": ["one two three four"]}, ["body", "keyterms", 0]),
        ({"keyterms": [f"term{'x' * i}" for i in range(21)]}, ["body", "keyterms"]),
        ({"tags": {f"k{i}": "v" for i in range(21)}}, ["body", "tags"]),
        ({"tags": {"bad-key": "v"}}, ["body", "tags", "bad-key", "[key]"]),
        ({"tags": {"ok": "bad:value"}}, ["body", "tags", "ok"]),
        ({"agent_id": "not-an-id"}, ["body", "agent_id"]),
        (
            {
                "release_version_set": {
                    "agent_version_number": None,
                    "service_hierarchical_state_machine_version_number": None,
                    "llm_model_preferences": {"c": {"llm_name": "gpt-2"}},
                }
            },
            ["body", "release_version_set", "llm_model_preferences", "c", "llm_name"],
        ),
        (
            {"release_version_set": {"agent_version_number": 1}},
            ["body", "release_version_set", "service_hierarchical_state_machine_version_number"],
        ),
    ],
)
def test_create_schema_violations_are_422_fastapi_style(
    api: Api, allow_invalid_requests: None, fields: dict[str, Any], loc: list[Any]
) -> None:
    response = api.create(**fields)
    assert response.status_code == 422
    locs = [item["loc"] for item in detail(response)]
    assert loc in locs
    assert all({"loc", "msg", "type"} <= set(item) for item in detail(response))


def test_create_missing_fields_and_bad_json_are_422(api: Api, allow_invalid_requests: None) -> None:
    response = api.call("POST", "/service/", json={"name": "x"})
    assert response.status_code == 422
    missing = {tuple(item["loc"]) for item in detail(response) if item["type"] == "missing"}
    assert ("body", "agent_id") in missing and ("body", "tags") in missing
    response = api.call(
        "POST", "/service/", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert detail(response)[0]["type"] == "json_invalid"


def test_extra_fields_are_ignored_as_the_schemas_allow(api: Api) -> None:
    assert api.create(name="Extra", surprise=True).status_code == 201


# --- update ------------------------------------------------------------------------


def test_update_changes_only_sent_fields_and_tags_map_in_list_out(api: Api) -> None:
    greeter = by_name(api.emulator, "Greeter")
    response = api.update(greeter["id"], description="Hi", tags={"team": "core", "x": None})
    assert response.status_code == 200
    after = api.emulator.service(greeter["id"])
    assert after["description"] == "Hi"
    assert after["tags"] == [{"key": "team", "value": "core"}, {"key": "x", "value": None}]
    assert after["keyterms"] == greeter["keyterms"]
    assert after["name"] == greeter["name"] and after["version_sets"] == greeter["version_sets"]
    assert api.update(greeter["id"], name=None, keyterms=None).status_code == 200
    assert api.emulator.service(greeter["id"]) == after


def test_activating_onto_an_active_name_is_409(api: Api) -> None:
    retired = by_name(api.emulator, "Greeter", active=False)
    api.emulator.set_deprecated("Old", False)
    assert api.update(retired["id"], is_active=True).status_code == 409
    # Renaming at the same time frees it.
    assert api.update(retired["id"], is_active=True, name="Greeter 2").status_code == 200


def test_renaming_an_active_service_onto_an_active_name_is_409(api: Api) -> None:
    billing = by_name(api.emulator, "Billing")
    assert api.update(billing["id"], name="Greeter").status_code == 409
    assert api.update(billing["id"], name="Billing v2").status_code == 200


def test_activating_with_a_deprecated_agent_is_400(api: Api) -> None:
    retired = by_name(api.emulator, "Greeter", active=False)
    response = api.update(retired["id"], is_active=True, name="Unique")
    assert response.status_code == 400
    assert "deprecated" in detail(response)


def test_deactivating_a_service_a_unit_test_uses_is_400_unless_deleted(api: Api) -> None:
    billing = by_name(api.emulator, "Billing")
    response = api.update(billing["id"], is_active=False)
    assert response.status_code == 400
    assert "unit test" in detail(response)
    for test in api.emulator.unit_tests():
        api.emulator.delete_unit_test(test["id"])
    assert api.update(billing["id"], is_active=False).status_code == 200
    assert api.emulator.service(billing["id"])["is_active"] is False


def test_update_unknown_agent_is_400_and_version_sets_stay(api: Api) -> None:
    greeter = by_name(api.emulator, "Greeter")
    assert api.update(greeter["id"], agent_id="f" * 24).status_code == 400
    assert api.update(greeter["id"], service_hierarchical_state_machine_id=SM_2).status_code == 200
    after = api.emulator.service(greeter["id"])
    assert after["service_hierarchical_state_machine_id"] == SM_2
    assert after["version_sets"] == greeter["version_sets"]


def test_update_unknown_service_is_404_and_bad_id_is_422(
    api: Api, allow_invalid_requests: None
) -> None:
    assert api.update("f" * 24, description="x").status_code == 404
    assert api.update("nope", description="x").status_code == 422


# --- version sets ------------------------------------------------------------------------


def test_upsert_creates_and_replaces_but_never_edge(api: Api) -> None:
    greeter = by_name(api.emulator, "Greeter")
    assert api.upsert(greeter["id"], "beta", agent_version_number=1).status_code == 204
    assert api.upsert(greeter["id"], "release", agent_version_number=4).status_code == 204
    sets = api.emulator.service(greeter["id"])["version_sets"]
    assert sets["beta"]["agent_version_number"] == 1
    assert sets["release"]["agent_version_number"] == 4
    assert api.upsert(greeter["id"], "edge").status_code == 400


def test_upsert_versions_above_latest_is_400_and_unknown_service_404(api: Api) -> None:
    greeter = by_name(api.emulator, "Greeter")
    assert api.upsert(greeter["id"], "beta", agent_version_number=5).status_code == 400
    response = api.upsert(
        greeter["id"], "beta", service_hierarchical_state_machine_version_number=7
    )
    assert response.status_code == 400
    api.emulator.set_latest_version("Concierge", 5)
    assert api.upsert(greeter["id"], "beta", agent_version_number=5).status_code == 204
    assert api.upsert("f" * 24, "beta").status_code == 404


@pytest.mark.parametrize("name", ["has space", "x" * 41, "dots.no"])
def test_upsert_version_set_name_pattern_is_422(
    api: Api, allow_invalid_requests: None, name: str
) -> None:
    greeter = by_name(api.emulator, "Greeter")
    assert api.upsert(greeter["id"], name).status_code == 422


def test_delete_rules_edge_release_unit_tests_and_absent(api: Api) -> None:
    greeter = by_name(api.emulator, "Greeter")
    assert api.delete(greeter["id"], "edge").status_code == 400
    assert api.delete(greeter["id"], "release").status_code == 400
    assert api.delete(greeter["id"], "nope").status_code == 404
    assert api.delete("f" * 24, "canary").status_code == 404
    test_id = api.emulator.add_unit_test(greeter["id"], "pinned", name="guards pinned")
    response = api.delete(greeter["id"], "pinned")
    assert response.status_code == 400 and "guards pinned" in detail(response)
    api.emulator.delete_unit_test(test_id)
    assert api.delete(greeter["id"], "pinned").status_code == 204
    assert api.delete(greeter["id"], "canary").status_code == 204
    assert set(api.emulator.service(greeter["id"])["version_sets"]) == {"edge", "release"}


# --- reads, pagination, filters --------------------------------------------------------


def test_pagination_over_45_services(api: Api) -> None:
    for index in range(42):
        api.emulator.add_service(f"bulk {index:02}", agent="Concierge", state_machine="Onboarding")
    assert len(api.emulator.services()) == 45
    seen: list[str] = []
    token: int | None = 0
    pages = 0
    while token is not None:
        body = api.services(limit=20, continuation_token=token).json()
        pages += 1
        seen += [s["id"] for s in body["services"]]
        assert body["has_more"] == (body["continuation_token"] is not None)
        assert (body["filter_values"] is not None) == (token == 0)
        token = body["continuation_token"]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 45


@pytest.mark.parametrize("limit", [0, 21, -1])
def test_limit_outside_1_to_20_is_422(api: Api, allow_invalid_requests: None, limit: int) -> None:
    assert api.services(limit=limit).status_code == 422


def test_filters_id_is_active_tags_and_sort(api: Api) -> None:
    services = api.emulator.services()
    ids = [s["id"] for s in services]
    names = lambda r: [s["name"] for s in r.json()["services"]]  # noqa: E731
    response = api.call("GET", "/service/", params=[("id", ids[0]), ("id", ids[2])])
    assert [s["id"] for s in response.json()["services"]] == [ids[0], ids[2]]
    assert names(api.services(is_active="false")) == ["Greeter"]
    assert names(api.services(tags="team:growth")) == ["Greeter"]
    assert names(api.services(tags="team:*")) == ["Greeter"]
    assert names(api.services(tags="retired:")) == ["Greeter"]  # empty value matches None
    assert names(api.services(tags="managed_by:amigo_reconciler")) == ["Greeter"]
    both = api.call("GET", "/service/", params=[("tags", "team:*"), ("tags", "retired:*")])
    assert names(both) == []
    assert names(api.services(sort_by="-name")) == ["Greeter", "Greeter", "Billing"]
    ordered = api.call("GET", "/service/", params=[("sort_by", "+name"), ("sort_by", "-is_active")])
    assert [(s["name"], s["is_active"]) for s in ordered.json()["services"]] == [
        ("Billing", True),
        ("Greeter", True),
        ("Greeter", False),
    ]
    values = api.services().json()["filter_values"]["tags"]
    assert "team:growth" in values and "retired:" in values


def test_agents_state_machines_and_unit_tests(api: Api) -> None:
    agents = api.call("GET", "/organization/agent", params={"limit": 2}).json()
    assert [a["name"] for a in agents["agents"]] == ["Concierge", "Old"]
    assert agents["has_more"] is True and agents["continuation_token"] == 2
    deprecated = api.call("GET", "/organization/agent", params={"deprecated": "true"}).json()
    assert [a["name"] for a in deprecated["agents"]] == ["Old"]
    machines = api.call("GET", "/organization/service_hierarchical_state_machine").json()
    assert [
        (m["name"], m["latest_version"]) for m in machines["service_hierarchical_state_machines"]
    ] == [
        ("Onboarding", 6),
        ("Intake", 2),
    ]
    billing = by_name(api.emulator, "Billing")
    greeter = by_name(api.emulator, "Greeter")
    deleted = api.emulator.add_unit_test(greeter["id"], "canary", is_deleted=True)
    params = [("service_id", billing["id"]), ("service_id", greeter["id"]), ("limit", "500")]
    tests = api.call("GET", "/simulation/unit_test/", params=params).json()
    assert {t["service_version_set_name"] for t in tests["simulation_unit_tests"]} == {
        "release",
        "canary",
    }
    params.append(("is_deleted", "false"))
    live = api.call("GET", "/simulation/unit_test/", params=params).json()
    assert [t["service_id"] for t in live["simulation_unit_tests"]] == [billing["id"]]
    assert deleted not in [t["id"] for t in live["simulation_unit_tests"]]


def test_agents_limit_above_20_is_422(api: Api, allow_invalid_requests: None) -> None:
    assert api.call("GET", "/organization/agent", params={"limit": 21}).status_code == 422
    assert api.call("GET", "/simulation/unit_test/", params={"limit": 501}).status_code == 422


# --- auth, organization, routing ------------------------------------------------------


def test_requests_without_a_valid_token_are_401(api: Api, allow_invalid_requests: None) -> None:
    assert api.http.get("/v1/acme/service/").status_code == 401
    bad = {"authorization": "Bearer forged"}
    assert api.http.get("/v1/acme/service/", headers=bad).status_code == 401
    assert api.services().status_code == 200
    api.emulator.revoke_tokens()
    assert api.services().status_code == 401


def test_sign_in_with_wrong_key_is_401_and_missing_headers_422(
    api: Api, allow_invalid_requests: None
) -> None:
    headers = {"x-api-key": "wrong", "x-api-key-id": "kid", "x-user-id": "u1"}
    assert api.http.post("/v1/acme/user/signin_with_api_key", headers=headers).status_code == 401
    del headers["x-user-id"]
    assert api.http.post("/v1/acme/user/signin_with_api_key", headers=headers).status_code == 422


def test_tokens_expire_after_their_lifetime() -> None:
    now = [1_000_000.0]
    emulator = make_emulator(token_lifetime=60, clock=lambda: now[0])
    api = Api(emulator)
    signed = api.sign_in().json()
    assert signed["expires_at"].startswith("1970-01-12T13:47:40")
    assert api.services().status_code == 200
    now[0] += 61
    response = api.services()
    assert response.status_code == 401 and "expired" in detail(response)


def test_unknown_organization_is_404(api: Api) -> None:
    api.sign_in()
    response = api.http.get(
        "/v1/other-org/service/", headers={"authorization": f"Bearer {api.token}"}
    )
    assert response.status_code == 404


def test_missing_trailing_slash_redirects_like_fastapi(
    api: Api, allow_invalid_requests: None
) -> None:
    response = api.call("GET", "/service")
    assert response.status_code == 307
    assert response.headers["location"] == "/v1/acme/service/"
    assert api.call("PATCH", "/service/").status_code == 405
    assert api.call("GET", "/nothing/here").status_code == 404


# --- rate limits ---------------------------------------------------------------------------


def test_rate_limit_headers_and_429_with_retry_after() -> None:
    now = [1_000_000.25]
    emulator = make_emulator(window_seconds=2, clock=lambda: now[0])
    api = Api(emulator)
    api.sign_in()
    first = api.services()
    assert first.headers["x-ratelimit-limit"] == "50"
    assert first.headers["x-ratelimit-remaining"] == "49"
    assert float(first.headers["x-ratelimit-reset"]) == 1_000_002.0
    for _ in range(49):
        assert api.services().status_code == 200
    limited = api.services()
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert emulator.rate_limited_count == 1
    # Budgets are per operation: agents still answer.
    assert api.call("GET", "/organization/agent").status_code == 200
    now[0] = 1_000_002.0  # the next window
    assert api.services().headers["x-ratelimit-remaining"] == "49"
    assert emulator.request_counts["get-services"] == 52


def test_fractional_windows_report_fractional_reset() -> None:
    now = [100.2]
    emulator = make_emulator(window_seconds=0.5, clock=lambda: now[0])
    api = Api(emulator)
    assert api.sign_in().headers["x-ratelimit-reset"] == "100.5"


def test_sign_in_is_limited_to_5_per_window(api: Api) -> None:
    statuses = [api.sign_in().status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


# --- faults in-process ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "retry_after"),
    [
        (Fault.STATUS_429, 429, True),
        (Fault.STATUS_500, 500, False),
        (Fault.STATUS_502, 502, False),
        (Fault.STATUS_503, 503, False),
        (Fault.STATUS_503_RETRY_AFTER, 503, True),
    ],
)
def test_status_faults_answer_without_acting(
    api: Api, fault: Fault, status: int, retry_after: bool
) -> None:
    api.emulator.inject("create-service", fault, times=2)
    for _ in range(2):
        response = api.create(name="Faulty")
        assert response.status_code == status
        assert ("retry-after" in response.headers) == retry_after
    assert not [s for s in api.emulator.services() if s["name"] == "Faulty"]
    assert api.create(name="Faulty").status_code == 201
    assert api.emulator.request_counts["create-service"] == 3


def test_drop_before_does_not_act_and_drop_after_does(api: Api) -> None:
    api.emulator.inject("create-service", Fault.DROP_BEFORE)
    with pytest.raises(httpx.RemoteProtocolError):
        api.create(name="Dropped")
    assert not [s for s in api.emulator.services() if s["name"] == "Dropped"]
    api.emulator.inject("create-service", Fault.DROP_AFTER)
    with pytest.raises(httpx.RemoteProtocolError):
        api.create(name="Dropped")
    assert [s["name"] for s in api.emulator.services()].count("Dropped") == 1


def test_faults_can_target_one_service(api: Api) -> None:
    greeter = by_name(api.emulator, "Greeter")
    billing = by_name(api.emulator, "Billing")
    api.emulator.inject("upsert-service-version-set", Fault.STATUS_500, service_name="Billing")
    assert api.upsert(greeter["id"], "beta").status_code == 204
    assert api.upsert(billing["id"], "beta").status_code == 500
    assert api.upsert(billing["id"], "beta").status_code == 204
    assert api.emulator.pending_faults == 0


def test_slow_answers_time_out_a_short_client_timeout_after_acting() -> None:
    emulator = make_emulator(slow_seconds=5)
    api = Api(emulator, timeout=0.05)
    greeter = by_name(emulator, "Greeter")
    api.sign_in()
    emulator.inject("upsert-service-version-set", Fault.SLOW)
    with pytest.raises(httpx.ReadTimeout):
        api.upsert(greeter["id"], "slowpoke")
    assert "slowpoke" in emulator.service(greeter["id"])["version_sets"]


def test_inject_rejects_unknown_operations(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="get-services"):
        emulator.inject("list-services", Fault.STATUS_500)
