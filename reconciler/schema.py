"""The manifest's JSON Schema, generated from the pydantic models that validate it.

Editors (yaml-language-server) use it to complete and check manifests as they
are typed; `schemas/service.schema.json` is this output, kept current by a test.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.manifests import ServiceManifest

SCHEMA_ID = "https://amigo.ai/schemas/amigo-reconciler/service.schema.json"


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one service manifest document."""
    generated = _with_key_patterns(ServiceManifest.model_json_schema(mode="validation"))
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
    }
    schema.update(generated)
    schema["description"] = (
        "One Amigo service, as amigo-reconciler manages it. Field names inside spec are "
        "the Amigo API's own. String values may use ${VAR} or ${VAR:-default}, filled "
        "from the environment when the manifest is loaded ($${ is a literal ${)."
    )
    return schema


def render_schema() -> str:
    """The schema as the committed file holds it: stable key order, trailing newline."""
    return json.dumps(manifest_json_schema(), indent=2, ensure_ascii=False) + "\n"


def _with_key_patterns(node: Any) -> Any:
    """Put pydantic's `patternProperties` key pattern into `propertyNames`.

    Pydantic states a constrained key type as `patternProperties` (which lets any
    non-matching key through unchecked) beside `propertyNames`; editors then miss a
    bad tag key. One `propertyNames` holding the pattern checks every key.
    """
    if isinstance(node, list):
        return [_with_key_patterns(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _with_key_patterns(value) for key, value in node.items()}
    patterns = result.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1:
        (pattern, value_schema), *_ = patterns.items()
        del result["patternProperties"]
        names = dict(result.get("propertyNames") or {})
        names["pattern"] = pattern
        result["propertyNames"] = dict(sorted(names.items()))
        result["additionalProperties"] = value_schema
    return result
