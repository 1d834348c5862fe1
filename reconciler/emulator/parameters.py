"""Every documented parameter of every emulated endpoint: honoured, or refused on purpose.

An oracle must never ignore a parameter: a request whose answer the API would
shape by it, answered as if it were absent, agrees with a wrong client. So each
parameter the OpenAPI document declares for an emulated operation is listed
here, either HONOURED (the emulator acts on it as documented) or REFUSED (a
request carrying it gets a 422 naming it, with the interpretation id that
says why). The emulator refuses from this table; a test walks the OpenAPI
document and holds it to the table both ways. Parameters the document does
not declare are ignored, as FastAPI ignores them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from reconciler.emulator.interpretations import UNMODELLED_HEADERS


class Handling(StrEnum):
    HONOURED = "honoured"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class ParameterRule:
    handling: Handling
    how: str  # what the emulator does with it
    interpretation: str | None = None  # for REFUSED: the reading the refusal rests on


def _h(how: str) -> ParameterRule:
    return ParameterRule(Handling.HONOURED, how)


_HEADERS: Mapping[tuple[str, str], ParameterRule] = {
    ("header", "x-mongo-cluster-name"): _h(
        "accepted and recorded (Emulator.mongo_cluster_names); the emulator has one cluster"
    ),
    ("header", "sec-websocket-protocol"): ParameterRule(
        Handling.REFUSED, "the emulator serves no WebSocket: 422", UNMODELLED_HEADERS
    ),
}
_ORG = {("path", "organization"): _h("the seeded organization; any other is 404")}
_LIMIT = _h("page size, bounds as documented (422 outside)")
_TOKEN = _h("offset of the next page")
_SERVICE_ID = {
    ("path", "service_id"): _h("the service acted on (422 if not 24 hex, 404 if absent)")
}
_VERSIONED = {
    **_ORG,
    ("query", "deprecated"): _h("filter on the deprecated flag"),
    ("query", "id"): _h("filter: any of these ids"),
    ("query", "limit"): _LIMIT,
    ("query", "continuation_token"): _TOKEN,
    **_HEADERS,
}

PARAMETERS: Mapping[str, Mapping[tuple[str, str], ParameterRule]] = {
    "sign-in-with-api-key": {
        **_ORG,
        ("header", "x-api-key"): _h("checked against the seed's key (401)"),
        ("header", "x-api-key-id"): _h("checked against the seed's key id (401)"),
        ("header", "x-user-id"): _h("checked against the seed's user (401)"),
        **_HEADERS,
    },
    "get-agents": _VERSIONED,
    "get-service-hierarchical-state-machines": _VERSIONED,
    "get-services": {
        **_ORG,
        ("query", "id"): _h("filter: any of these ids"),
        ("query", "is_active"): _h("filter on is_active"),
        ("query", "sort_by"): _h("`[+|-]name` / `[+|-]is_active`, ties by the next key; else 422"),
        ("query", "tags"): _h("`key:value` (`*` any value, empty: null value), all must match"),
        ("query", "limit"): _LIMIT,
        ("query", "continuation_token"): _TOKEN,
        **_HEADERS,
    },
    "create-service": {**_ORG, **_HEADERS},
    "update-service": {**_ORG, **_SERVICE_ID, **_HEADERS},
    "upsert-service-version-set": {
        **_ORG,
        **_SERVICE_ID,
        ("path", "version_set_name"): _h("the set upserted (pattern and length as documented)"),
        **_HEADERS,
    },
    "delete-service-version-set": {
        **_ORG,
        **_SERVICE_ID,
        ("path", "version_set_name"): _h("the set deleted (404 if absent)"),
        **_HEADERS,
    },
    "get-simulation-unit-tests": {
        **_ORG,
        ("query", "id"): _h("filter: any of these ids"),
        ("query", "service_id"): _h("filter: any of these services"),
        ("query", "persona_id"): _h("filter: any of these personas"),
        ("query", "scenario_id"): _h("filter: any of these scenarios"),
        ("query", "metric_id"): _h("filter: any of these metrics (the seed's success criteria)"),
        ("query", "creator"): _h("filter: `org_id,user_id`, any of them; else 422"),
        ("query", "tag"): _h("`key:value` (`*` any value, empty: null value), all must match"),
        ("query", "sort_by"): _h("`[+|-]updated_at`; else 422"),
        ("query", "is_deleted"): _h("filter on is_deleted"),
        ("query", "limit"): _LIMIT,
        ("query", "continuation_token"): _TOKEN,
        **_HEADERS,
    },
    "get-simulation-unit-test-sets": {
        **_ORG,
        ("query", "id"): _h("filter: any of these ids"),
        ("query", "unit_test_id"): _h("filter: sets holding any of these unit tests"),
        ("query", "is_deleted"): _h("filter on is_deleted"),
        ("query", "creator"): _h("filter: `org_id,user_id` (the unit tests' format), any of them"),
        ("query", "tag"): _h("`key:value` as documented; emulated sets carry no tags: none match"),
        ("query", "sort_by"): _h("`[+|-]updated_at`; else 422"),
        ("query", "limit"): _LIMIT,
        ("query", "continuation_token"): _TOKEN,
        **_HEADERS,
    },
    "get-simulation-unit-test-set-runs": {
        **_ORG,
        ("query", "id"): _h("filter: any of these run ids"),
        ("query", "simulation_unit_test_set_id"): _h("filter: runs of any of these sets"),
        ("query", "is_completed"): _h("filter on is_completed (on the emulator clock)"),
        ("query", "failed_metrics"): _h("filter on failed_metrics"),
        ("query", "errored"): _h("filter on errored"),
        ("query", "creator"): _h("filter: `org_id,user_id`, any of them; else 422"),
        ("query", "created_after"): _h("filter: created at or after (inclusive)"),
        ("query", "created_before"): _h("filter: created at or before (inclusive)"),
        ("query", "sort_by"): _h("`[+|-]created_at`; else 422"),
        ("query", "limit"): _LIMIT,
        ("query", "continuation_token"): _TOKEN,
        **_HEADERS,
    },
    "create-simulation-unit-test-set-run": {**_ORG, **_HEADERS},
}


def refused_parameter(
    operation_id: str, query: Sequence[tuple[str, str]], headers: Mapping[str, str]
) -> tuple[str, str, str, ParameterRule] | None:
    """(location, name, value, rule) of the first REFUSED parameter the request carries."""
    for (location, name), rule in PARAMETERS.get(operation_id, {}).items():
        if rule.handling is not Handling.REFUSED:
            continue
        if location == "header" and name in headers:
            return location, name, headers[name], rule
        if location == "query":
            for key, value in query:
                if key == name:
                    return location, name, value, rule
    return None
