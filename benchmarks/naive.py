"""The naive baseline: the reconcile a user would script by hand, without diffing.

List everything, resolve agent and state-machine names, then for every declared
service: update it with every field (or create it when no active service has
its name), and upsert every declared version set, unconditionally. It runs one
call after another, as such a script does, but through the same pacing
`AmigoClient` as the reconciler (so it is not penalised with 429s it would
provoke with a plain HTTP library): the comparison is about what is sent, not
about how well it is paced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from floors import Call

from reconciler.api.client import AmigoClient
from reconciler.model import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE, DesiredService, DesiredState


def _service_body(
    want: DesiredService, agents: dict[str, str], machines: dict[str, str]
) -> dict[str, Any]:
    tags = {**(want.tags or {}), OWNERSHIP_TAG_KEY: OWNERSHIP_TAG_VALUE}
    return {
        "description": want.description,
        "is_active": want.is_active,
        "agent_id": want.agent_id or agents[want.agent or ""],
        "service_hierarchical_state_machine_id": (
            want.service_hierarchical_state_machine_id
            or machines[want.service_hierarchical_state_machine or ""]
        ),
        "tags": tags,
        "keyterms": list(want.keyterms or ()),
    }


def reconcile(client: AmigoClient, desired: DesiredState) -> int:
    """Run the naive reconcile; returns the number of writes sent."""
    live = {s["name"]: s["id"] for s in client.list_services() if s["is_active"]}
    agents = {a["name"]: a["id"] for a in client.list_agents()}
    machines = {m["name"]: m["id"] for m in client.list_state_machines()}
    writes = 0
    for want in desired.services:
        body = _service_body(want, agents, machines)
        service_id = live.get(want.name)
        if service_id is None:
            service_id = client.create_service({"name": want.name, **body}, service=want.name)
        else:
            client.update_service(service_id, body, service=want.name)
        writes += 1
        for name, version_set in want.version_sets.items():
            client.upsert_version_set(service_id, name, version_set.to_api(), service=want.name)
            writes += 1
    return writes


def calls(desired: DesiredState, live_names: set[str]) -> list[Call]:
    """The writes `reconcile` sends, with their dependencies (an upsert needs a created id)."""
    out: list[Call] = []
    for want in desired.services:
        creating = want.name not in live_names
        out.append(Call("create-service" if creating else "update-service"))
        parent = (len(out) - 1,) if creating else ()
        out.extend(Call("upsert-service-version-set", parent) for _ in want.version_sets)
    return out


def expected_writes(desired: DesiredState) -> int:
    return sum(1 + len(want.version_sets) for want in desired.services)


def names(services: Sequence[dict[str, Any]]) -> set[str]:
    return {s["name"] for s in services if s.get("is_active", True)}
