"""The shared API limits (reconciler/limits.py) agree with the OpenAPI contract."""

from __future__ import annotations

from typing import Any

from reconciler import limits


def _schemas(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["components"]["schemas"]  # type: ignore[no-any-return]


def test_patterns_and_maxima_match_the_create_request(openapi_spec: dict[str, Any]) -> None:
    schemas = _schemas(openapi_spec)
    create = schemas["src__app__endpoints__service__create_service__Request"]["properties"]
    assert create["agent_id"]["pattern"] == limits.ID_PATTERN
    assert create["tags"]["maxProperties"] == limits.MAX_TAGS
    assert create["keyterms"]["maxItems"] == limits.MAX_KEYTERMS
    tag_ref = create["tags"]["propertyNames"]["$ref"].rsplit("/", 1)[-1]
    assert schemas[tag_ref]["pattern"] == limits.TAG_PATTERN
    keyterm_ref = create["keyterms"]["items"]["$ref"].rsplit("/", 1)[-1]
    assert schemas[keyterm_ref]["pattern"] == limits.KEYTERM_PATTERN


def test_version_set_name_matches_the_upsert_path(openapi_spec: dict[str, Any]) -> None:
    op = openapi_spec["paths"][
        "/v1/{organization}/service/{service_id}/version_sets/{version_set_name}/"
    ]
    param = next(p for p in op["put"]["parameters"] if p["name"] == "version_set_name")
    ref = param["schema"]["$ref"].rsplit("/", 1)[-1]
    schema = _schemas(openapi_spec)[ref]
    assert schema["pattern"] == limits.VERSION_SET_NAME_PATTERN
    assert schema["maxLength"] == limits.VERSION_SET_NAME_MAX


def test_llm_names_match_the_llmtype_enum(openapi_spec: dict[str, Any]) -> None:
    assert list(limits.LLM_NAMES) == _schemas(openapi_spec)["LLMType"]["enum"]


def test_emulator_enum_is_the_shared_list() -> None:
    from reconciler.emulator.models import LLMType

    assert [m.value for m in LLMType] == list(limits.LLM_NAMES)
