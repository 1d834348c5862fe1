"""Live state: read from the API only what a plan needs, normalized to model.py.

- services: every one, through list pages of 20 (identity needs all names);
- agents / state machines: one list each, only when a manifest in scope names
  one, pins version numbers of it, creates or activates a service, or moves
  one to another agent / state machine by id (the "no versions" and
  "deprecated" checks need the record);
- simulation unit tests: one call, only for the services where the first
  planning pass found a deletion or deactivation (the planner asks).

Never one GET per service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reconciler.model import Agent, DesiredService, DesiredState, LiveService, LiveState, UnitTest
from reconciler.planner import in_target, match_services

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


def _pins(want: DesiredService, field: str) -> bool:
    return any(getattr(vs, field) is not None for vs in want.version_sets.values())


def _changes_reference(want: DesiredService, live: LiveService | None, id_field: str) -> bool:
    """Creates, activates, or moves to another agent / state machine (given by id)."""
    if live is None or (want.is_active and not live.is_active):
        return True
    new_id = getattr(want, id_field)
    return new_id is not None and new_id != getattr(live, id_field)


def needed_references(
    desired: DesiredState, services: Sequence[LiveService], targets: Sequence[str] = ()
) -> tuple[bool, bool]:
    """(read agents?, read state machines?) for the manifests in scope."""
    wanted = set(targets)
    agents = state_machines = False
    # The planner's own matching: the live service each manifest will be compared with.
    for match in match_services(desired.services, services):
        want, live = match.desired, match.live
        if not in_target(match, wanted):
            continue
        # Moving either reference of an active service has the API check both records.
        moves = _changes_reference(want, live, "agent_id") or _changes_reference(
            want, live, "service_hierarchical_state_machine_id"
        )
        agents = agents or (want.agent is not None or _pins(want, "agent_version_number") or moves)
        state_machines = state_machines or (
            want.service_hierarchical_state_machine is not None
            or _pins(want, "service_hierarchical_state_machine_version_number")
            or moves
        )
    return agents, state_machines


def fetch_services(client: AmigoClient) -> tuple[LiveService, ...]:
    return services_from_api(client.list_services())


def fetch_unit_tests(client: AmigoClient, service_ids: Sequence[str]) -> tuple[UnitTest, ...]:
    """Unit tests of these services, in one call (none when there are no ids)."""
    if not service_ids:
        return ()
    return unit_tests_from_api(client.list_unit_tests(sorted(set(service_ids))))


def fetch_live(
    client: AmigoClient, desired: DesiredState, *, targets: Sequence[str] = ()
) -> LiveState:
    """Services, plus agents / state machines when the manifests in scope need them.

    Unit tests are left unread (None): the planner reads them for the services
    where it plans a deletion or deactivation.
    """
    services = fetch_services(client)
    need_agents, need_state_machines = needed_references(desired, services, targets)
    return LiveState(
        services=services,
        agents=references_from_api(client.list_agents()) if need_agents else None,
        state_machines=(
            references_from_api(client.list_state_machines()) if need_state_machines else None
        ),
    )
