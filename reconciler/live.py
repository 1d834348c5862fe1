"""Live state: read from the API only what a plan needs, normalized to model.py.

- services: every one, through list pages of 20 (identity needs all names);
- agents / state machines: one list each, only when a manifest in scope names
  one, pins version numbers of it, creates or activates a service, or moves
  one to another agent / state machine by id (the "no versions" and
  "deprecated" checks need the record);
- simulation unit tests: one call, only for the services where the first
  planning pass found a deletion or deactivation (the planner asks).

Which of these a plan needs is decided by the planner; this module only reads
and normalizes.

Never one GET per service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reconciler.model import Agent, LiveService, LiveState, UnitTest

if TYPE_CHECKING:
    from reconciler.api.client import AmigoClient


def services_from_api(items: Iterable[Mapping[str, Any]]) -> tuple[LiveService, ...]:
    """Normalized services, sorted by (name, id) so everything downstream is deterministic."""
    return tuple(sorted((LiveService.from_api(i) for i in items), key=lambda s: (s.name, s.id)))


def references_from_api(items: Iterable[Mapping[str, Any]]) -> tuple[Agent, ...]:
    """Agents or state machines (same shape: id, name, deprecated, latest_version)."""
    return tuple(
        sorted(
            (
                Agent(
                    id=i["id"],
                    name=i["name"],
                    deprecated=bool(i.get("deprecated", False)),
                    latest_version=i.get("latest_version"),
                )
                for i in items
            ),
            key=lambda a: (a.name, a.id),
        )
    )


def unit_tests_from_api(items: Iterable[Mapping[str, Any]]) -> tuple[UnitTest, ...]:
    return tuple(
        sorted(
            (
                UnitTest(
                    id=i["id"],
                    name=i["name"],
                    service_id=i["service_id"],
                    version_set=i["service_version_set_name"],
                )
                for i in items
                if not i.get("is_deleted", False)
            ),
            key=lambda t: (t.service_id, t.version_set, t.name, t.id),
        )
    )


def fetch_services(client: AmigoClient) -> tuple[LiveService, ...]:
    return services_from_api(client.list_services())


def fetch_unit_tests(client: AmigoClient, service_ids: Sequence[str]) -> tuple[UnitTest, ...]:
    """Unit tests of these services, in one call (none when there are no ids)."""
    if not service_ids:
        return ()
    return unit_tests_from_api(client.list_unit_tests(sorted(set(service_ids))))


def fetch_live(
    client: AmigoClient,
    services: tuple[LiveService, ...],
    *,
    agents: bool,
    state_machines: bool,
) -> LiveState:
    """`services` (already read), plus the agents / state machines lists asked for.

    Which references a plan needs is the planner's decision
    (`planner.references_needed`). Unit tests are left unread (None): the planner
    asks for them for the services where it plans a deletion or deactivation.
    """
    return LiveState(
        services=services,
        agents=references_from_api(client.list_agents()) if agents else None,
        state_machines=references_from_api(client.list_state_machines())
        if state_machines
        else None,
    )
