"""The committed JSON Schema is current, accepts the examples, and mirrors the API's limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from support.paths import REPO

from reconciler.cli import main
from reconciler.manifests import spec as manifests
from reconciler.schema import manifest_json_schema, render_schema

SCHEMA_FILE = REPO / "schemas" / "service.schema.json"


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_schema(), (
        "schemas/service.schema.json is out of date: run "
        "`reconciler schema --out schemas/service.schema.json`"
    )


def test_schema_command_prints_and_writes(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == manifest_json_schema()
    out = tmp_path / "s.json"
    result = CliRunner().invoke(main, ["schema", "--out", str(out)])
    assert result.exit_code == 0
    assert out.read_text(encoding="utf-8") == render_schema()


def validator() -> jsonschema.Draft202012Validator:
    schema = manifest_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_examples_satisfy_the_schema() -> None:
    check = validator()
    for path in sorted((REPO / "examples" / "services").glob("*.y*ml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            errors = [e.message for e in check.iter_errors(document)]
            assert errors == [], f"{path.name}: {errors}"


BASE: dict[str, Any] = {
    "apiVersion": "amigo.ai/v1",
    "kind": "Service",
    "metadata": {"name": "Svc"},
    "spec": {
        "description": "d",
        "agent": "Concierge",
        "service_hierarchical_state_machine": "Onboarding flow",
    },
}


@pytest.mark.parametrize(
    "spec_change",
    [
        {"tags": {"team-name": "x"}},
        {"tags": {"managed_by": "x"}},
        {"tags": {f"t{i}": "v" for i in range(21)}},
        {"keyterms": ["Capital"]},
        {"version_sets": {"edge": {}}},
        {"version_sets": {"a.b": {}}},
        {"version_sets": {"a" * 41: {}}},
        {"version_sets": {"canary": {"agent_version_number": 0}}},
        {"agent_id": "6618791275530b73714e9d18"},
        {"agent": None},
        {"descripton": "x"},
    ],
)
def test_schema_rejects_what_the_loader_rejects(spec_change: dict[str, Any]) -> None:
    check = validator()
    assert list(check.iter_errors(BASE)) == []
    document = {**BASE, "spec": {**BASE["spec"], **spec_change}}
    document["spec"] = {k: v for k, v in document["spec"].items() if v is not None}
    assert list(check.iter_errors(document)) != []


def test_limits_mirror_the_openapi_contract(openapi_spec: dict[str, Any]) -> None:
    schemas = openapi_spec["components"]["schemas"]
    create = schemas["src__app__endpoints__service__create_service__Request"]["properties"]
    assert create["agent_id"]["pattern"] == manifests.ID_PATTERN
    assert create["tags"]["maxProperties"] == manifests.MAX_TAGS
    tag_ref = create["tags"]["propertyNames"]["$ref"].rsplit("/", 1)[-1]
    assert schemas[tag_ref]["pattern"] == manifests.TAG_PATTERN
    assert create["keyterms"]["maxItems"] == manifests.MAX_KEYTERMS
    keyterm_ref = create["keyterms"]["items"]["$ref"].rsplit("/", 1)[-1]
    assert schemas[keyterm_ref]["pattern"] == manifests.KEYTERM_PATTERN
    for path in openapi_spec["paths"].values():
        for operation in path.values():
            if operation.get("operationId") == "upsert-service-version-set":
                (name,) = [p for p in operation["parameters"] if p["name"] == "version_set_name"]
                ref = name["schema"]["$ref"].rsplit("/", 1)[-1]
                assert schemas[ref]["pattern"] == manifests.VERSION_SET_NAME_PATTERN
                assert schemas[ref]["maxLength"] == manifests.VERSION_SET_NAME_MAX
    version_set = schemas["VersionSet-Input"]["properties"]
    # `verify` is the manifest's own (which test sets `reconciler verify` runs), never sent.
    assert set(version_set) == set(manifests.VersionSetSpec.model_fields) - {"verify"}
    llm_config = schemas["LLMConfig-Input"]["properties"]
    assert set(llm_config) == set(manifests.LLMConfigSpec.model_fields)
    assert tuple(schemas["LLMType"]["enum"]) == manifests.KNOWN_LLM_NAMES
    spec_fields = set(manifests.ServiceSpec.model_fields)
    api_fields = set(create) - {"name", "release_version_set"}
    names = {"agent", "service_hierarchical_state_machine", "version_sets"}
    assert api_fields <= spec_fields and spec_fields - api_fields == names
