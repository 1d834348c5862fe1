"""The organization's state: agents, state machines, services, unit tests, and new ids.

Plain records (seed.py) in dictionaries by id; the caller holds the emulator's
lock. The shapes the API answers with (`ServiceInstance`, ...) are built here too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.emulator.seed import (
    Seed,
    ServiceRecord,
    UnitTestRecord,
    VersionedRecord,
    derived_id,
)


class OrgState:
    """One organization's records, seeded, then changed by the operations and test controls."""

    def __init__(self, seed: Seed) -> None:
        self.organization = seed.organization
        self.agents: dict[str, VersionedRecord] = {a.id: a for a in seed.agents}
        self.state_machines: dict[str, VersionedRecord] = {s.id: s for s in seed.state_machines}
        self.services: dict[str, ServiceRecord] = {s.id: s for s in seed.services}
        self.unit_tests: dict[str, UnitTestRecord] = {t.id: t for t in seed.unit_tests}
        self.deprecated_llms: set[str] = set(seed.deprecated_llms)
        self._next_index = {"services": len(seed.services), "unit_tests": len(seed.unit_tests)}

    def find_versioned(self, ref: str) -> VersionedRecord:
        """An agent or state machine by id or name (test controls name them either way)."""
        for record in (*self.agents.values(), *self.state_machines.values()):
            if ref in (record.id, record.name):
                return record
        raise KeyError(f"no agent or state machine {ref!r}")

    def new_id(self, kind: str, taken: Mapping[str, Any]) -> str:
        """The next derived id of a kind not yet taken: the same seed gives the same ids."""
        while True:
            ident = derived_id(self.organization, kind, self._next_index[kind])
            self._next_index[kind] += 1
            if ident not in taken:
                return ident

    def active_named(self, name: str, exclude: str | None) -> ServiceRecord | None:
        """The active service holding a name (only one may), other than `exclude`."""
        for service in self.services.values():
            if service.is_active and service.name == name and service.id != exclude:
                return service
        return None

    def pinned(self, service_id: str, version_set: str | None = None) -> list[UnitTestRecord]:
        """Live unit tests that pin a service (or one of its version sets)."""
        return [
            t
            for t in self.unit_tests.values()
            if not t.is_deleted
            and t.service_id == service_id
            and (version_set is None or t.version_set == version_set)
        ]

    def pinned_versions(self, service_id: str, name: str) -> tuple[int, int, dict[str, Any]] | None:
        """A version set's agent and state machine versions (null: latest) and preferences."""
        service = self.services.get(service_id)
        if service is None or name not in service.version_sets:
            return None
        stored = service.version_sets[name]
        agent = self.agents.get(service.agent_id)
        machine = self.state_machines.get(service.state_machine_id)
        agent_number = stored.get("agent_version_number") or (
            agent.latest_version if agent else None
        )
        machine_number = stored.get("service_hierarchical_state_machine_version_number") or (
            machine.latest_version if machine else None
        )
        prefs = json.loads(json.dumps(stored.get("llm_model_preferences") or {}))
        return agent_number or 0, machine_number or 0, prefs


def edge() -> dict[str, Any]:
    """A version set at the latest versions with no LLM preferences (what `edge` always is)."""
    return {
        "agent_version_number": None,
        "service_hierarchical_state_machine_version_number": None,
        "llm_model_preferences": {},
    }


def service_instance(s: ServiceRecord) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "version_sets": {name: json.loads(json.dumps(vs)) for name, vs in s.version_sets.items()},
        "description": s.description,
        "is_active": s.is_active,
        "service_hierarchical_state_machine_id": s.state_machine_id,
        "agent_id": s.agent_id,
        "tags": [{"key": k, "value": v} for k, v in s.tags.items()],
        "keyterms": list(s.keyterms),
        "creator": dict(s.creator),
        "updated_by": dict(s.updated_by),
    }


def versioned_instance(r: VersionedRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "deprecated": r.deprecated,
        "latest_version": r.latest_version,
    }
