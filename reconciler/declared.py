"""Declared services as plain documents: what policies (and plan files) see of the manifests.

Each document has the manifest's own shape (`apiVersion`, `kind`, `metadata`,
`spec`, with `${VAR}` filled) plus `source: {file, line, column}`, so a policy
reads `s.spec.tags.team` exactly as a person reads the YAML, and a finding can
point back at the manifest. Fields the manifest left out stay out (`tags` omitted
means "not managed", which differs from `{}`); omitted version numbers appear
as `null` (both mean "latest").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.model import DesiredService, DesiredState, VersionSet

API_VERSION = "amigo.ai/v1"


def _version_set(vs: VersionSet) -> dict[str, Any]:
    return {
        "agent_version_number": vs.agent_version_number,
        "service_hierarchical_state_machine_version_number": (
            vs.service_hierarchical_state_machine_version_number
        ),
        "llm_model_preferences": {
            purpose: {"llm_name": config.llm_name, "params": dict(config.params)}
            for purpose, config in sorted(vs.llm_model_preferences.items())
        },
    }


def declared_document(service: DesiredService) -> dict[str, Any]:
    """One service as written in its manifest, with its source position."""
    sections: dict[str, dict[str, Any]] = {"metadata": {}, "spec": {}}
    for path, value in service.declared().items():  # model.SERVICE_FIELDS
        section, _, key = path.partition(".")
        sections[section][key] = value
    metadata, spec = sections["metadata"], sections["spec"]
    if service.id is not None:
        metadata["id"] = service.id
    spec["version_sets"] = {
        name: _version_set(vs) for name, vs in sorted(service.version_sets.items())
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "Service",
        "metadata": metadata,
        "spec": spec,
        "source": {
            "file": service.source.file,
            "line": service.source.line,
            "column": service.source.column,
        },
    }


def declared_services(
    desired: DesiredState | Sequence[DesiredService],
) -> tuple[dict[str, Any], ...]:
    """Every declared service, in manifest order."""
    services = desired.services if isinstance(desired, DesiredState) else desired
    return tuple(declared_document(s) for s in services)
