"""The one table of a service's fields (`model.SERVICE_FIELDS`) is what the model, the
manifest schema, the diff, the plan record and export actually use.

Each test walks the table, so a field added to it (docs/adding-a-field.md) is checked
everywhere without a new test; give it a value in `API_SERVICE` and, for a new
shape or type, a way to change it in `_changed`.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.diff import changed_fields, diff_service, service_fields
from reconciler.export import export_manifests
from reconciler.manifests import load_manifests
from reconciler.model import (
    SERVICE_FIELDS,
    Agent,
    DesiredService,
    LiveService,
    ServiceField,
    Shape,
)
from reconciler.plan import live_fingerprint, live_service_record
from reconciler.schema import manifest_json_schema

AGENT_ID, SM_ID, OTHER_ID = "a1" * 12, "b1" * 12, "c0" * 12
AGENTS = [Agent(AGENT_ID, "Concierge", False, 4)]
MACHINES = [Agent(SM_ID, "Onboarding flow", False, 5)]

# One API `ServiceInstance` with a value in every field of the table.
API_SERVICE: dict[str, Any] = {
    "id": "1" * 24,
    "name": "Meet",
    "description": "Greets people",
    "is_active": True,
    "agent_id": AGENT_ID,
    "service_hierarchical_state_machine_id": SM_ID,
    "keyterms": ["meet and greet"],
    "tags": [{"key": "team", "value": "growth"}],
    "version_sets": {},
}

FIELDS = pytest.mark.parametrize("field", SERVICE_FIELDS, ids=lambda f: f.name)


def _changed(field: ServiceField, api_value: Any) -> Any:
    """Another value of this field, in the API's form."""
    if field.shape is Shape.TAGS:
        return [*api_value, {"key": "other", "value": "v"}]
    if field.shape is Shape.LIST:
        return [*api_value, "other term"]
    if field.by_name is not None:
        return OTHER_ID
    if isinstance(api_value, bool):
        return not api_value
    if isinstance(api_value, str):
        return f"{api_value} changed"
    raise AssertionError(f"say how to change {field.name} ({type(api_value).__name__})")


def _variant(field: ServiceField) -> LiveService:
    return LiveService.from_api(
        {**API_SERVICE, field.name: _changed(field, API_SERVICE[field.name])}
    )


BASE = LiveService.from_api(API_SERVICE)


def test_every_field_has_a_value_in_the_test_service() -> None:
    assert {f.name for f in SERVICE_FIELDS} <= set(API_SERVICE)


@FIELDS
def test_the_model_holds_the_field_on_both_sides(field: ServiceField) -> None:
    assert field.name in {f.name for f in dataclasses.fields(LiveService)}
    desired = {f.name: f for f in dataclasses.fields(DesiredService)}
    assert field.name in desired
    if not field.managed_when_omitted:  # None means "not managed": the default
        assert desired[field.name].default is None
    # from_api reads the API's field of that name (and nothing else makes it differ)
    assert getattr(_variant(field), field.name) != getattr(BASE, field.name)


def _section(schema: dict[str, Any], section: str) -> dict[str, Any]:
    """The schema of `metadata` or `spec` (pydantic puts it under $defs)."""
    node = schema["properties"][section]
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node  # type: ignore[no-any-return]


@FIELDS
def test_the_field_is_in_the_manifest_schema(field: ServiceField) -> None:
    section, _, key = field.manifest.partition(".")
    node = _section(manifest_json_schema(), section)
    assert key in node["properties"]
    if field.by_name is not None:
        assert field.by_name in node["properties"]
    if not field.managed_when_omitted:  # a manifest may leave it out
        assert key not in node.get("required", [])


@FIELDS
def test_the_field_is_diffed(field: ServiceField) -> None:
    before, after = service_fields(BASE), service_fields(_variant(field))
    assert changed_fields(before, after) == [field.name]
    changes = diff_service(before, after)
    assert changes and {c.path.split(".")[0] for c in changes} == {field.name}


@FIELDS
def test_the_field_is_in_the_plan_record_and_the_fingerprint(field: ServiceField) -> None:
    assert field.name in live_service_record(BASE)
    assert live_fingerprint([BASE]) != live_fingerprint([_variant(field)])


def _export_and_load(service: LiveService) -> tuple[dict[str, Any], DesiredService]:
    result = export_manifests([service], AGENTS, MACHINES)
    assert result.warnings == ()
    (file,) = result.files
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / file.name
        path.write_text(file.text, encoding="utf-8")
        (loaded,) = load_manifests([path]).services
    return yaml.safe_load(file.body), loaded


@FIELDS
def test_the_field_is_exported_and_loads_back(field: ServiceField) -> None:
    for service in (BASE, _variant(field)):
        document, loaded = _export_and_load(service)
        section, _, key = field.manifest.partition(".")
        written = document[section]
        live_value = field.plain(getattr(service, field.name))
        if field.by_name is not None and field.by_name in written:
            catalog = {a.name: a.id for a in (*AGENTS, *MACHINES)}
            assert catalog[getattr(loaded, field.by_name)] == live_value
        else:
            assert key in written
            assert field.plain(getattr(loaded, field.name)) == live_value


def test_the_table_is_the_update_service_request(openapi_spec: dict[str, Any]) -> None:
    """Every field update-service sets is in the table, and each is a field of the
    answer (`ServiceInstance`) and of create-service; lists and maps by their shape."""
    schemas = openapi_spec["components"]["schemas"]
    update = schemas["src__app__endpoints__service__update_service__Request"]["properties"]
    create = schemas["src__app__endpoints__service__create_service__Request"]["properties"]
    answer = schemas["ServiceInstance"]["properties"]
    assert {f.name for f in SERVICE_FIELDS} == set(update)
    for field in SERVICE_FIELDS:
        assert field.name in create and field.name in answer
        types = {s.get("type") for s in update[field.name].get("anyOf", [update[field.name]])}
        if field.shape is Shape.LIST:
            assert "array" in types
        elif field.shape is Shape.TAGS:
            assert "object" in types
        else:
            assert not types & {"array", "object"}
