"""Which live service each manifest manages: pinned id, else name, else the owned namesake.

Pure (no I/O): the planner uses it both to decide which references to read and
to pair manifests with services, so both decisions see the same matching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from reconciler.diagnostics import Diagnostic
from reconciler.model import DesiredService, LiveService


def service_error(want: DesiredService, path: str, message: str) -> Diagnostic:
    """An error pointing at `path` in the manifest of `want`."""
    return Diagnostic(message, pos=want.pos(path), field=path, service=want.name)


@dataclass(frozen=True, slots=True)
class Match:
    """The live service a manifest manages (None: create), or why none could be chosen."""

    desired: DesiredService
    live: LiveService | None = None
    error: Diagnostic | None = None


def match_services(
    desired: Sequence[DesiredService], services: Sequence[LiveService]
) -> list[Match]:
    """Pinned id, else the active service of that name, else the (owned) inactive one.

    Services claimed by an id pin are taken out before names are matched, so a
    manifest that renames a service through its pin does not collide with one
    that now carries the old name.
    """
    by_id = {s.id: s for s in services}
    pinned: dict[str, DesiredService] = {}
    matches: dict[int, Match] = {}
    for index, want in enumerate(desired):
        if want.id is None:
            continue
        if want.id not in by_id:
            matches[index] = Match(
                want,
                error=service_error(
                    want,
                    "metadata.id",
                    f"no service with id {want.id} exists in the organization; "
                    "remove the id to create the service, or pin the id of an existing one",
                ),
            )
        elif want.id in pinned:
            matches[index] = Match(
                want,
                error=service_error(
                    want,
                    "metadata.id",
                    f"service {want.id} is already claimed by the manifest at "
                    f"{pinned[want.id].source}; one manifest per service",
                ),
            )
        else:
            pinned[want.id] = want
            matches[index] = Match(want, live=by_id[want.id])

    claimed = set(pinned)
    by_name: dict[str, list[LiveService]] = {}
    for service in sorted(services, key=lambda s: s.id):
        by_name.setdefault(service.name, []).append(service)
    for index, want in enumerate(desired):
        if want.id is not None:
            continue
        same_name = [s for s in by_name.get(want.name, ()) if s.id not in claimed]
        active = [s for s in same_name if s.is_active]
        candidates = active or same_name
        if len(candidates) > 1 and not active:
            owned = [s for s in candidates if s.owned]
            candidates = owned or candidates
        if not candidates:
            matches[index] = Match(want)
        elif len(candidates) == 1:
            claimed.add(candidates[0].id)
            namesakes = [
                s for s in same_name if s.owned and not s.is_active and s.id != candidates[0].id
            ]
            if candidates[0].is_active and not want.is_active and namesakes:
                matches[index] = Match(
                    want, error=_ambiguous_after_deactivation(want, candidates[0], namesakes)
                )
            else:
                matches[index] = Match(want, live=candidates[0])
        elif _duplicated_create(candidates):
            matches[index] = Match(want, error=_duplicate_error(want, candidates))
        else:
            ids = ", ".join(s.id for s in candidates)
            matches[index] = Match(
                want,
                error=service_error(
                    want,
                    "metadata.name",
                    f"{len(candidates)} inactive services are named {want.name!r} "
                    f"({ids}) and none is singled out by the ownership tag; "
                    "pin the one to manage with metadata.id",
                ),
            )
    return [matches[i] for i in range(len(desired))]


def _duplicated_create(candidates: Sequence[LiveService]) -> bool:
    """Owned inactive services alike in all but id and version sets (a lost create's
    version-set changes are skipped): a create whose answer was lost,
    landing after a later run had created the service again (inactive services may
    share a name, so the API's 409 did not stop the second)."""
    first = candidates[0]
    return all(s.owned and not s.is_active for s in candidates) and all(
        replace(s, id=first.id, version_sets=first.version_sets) == first for s in candidates[1:]
    )


def _duplicate_error(want: DesiredService, candidates: Sequence[LiveService]) -> Diagnostic:
    # Suggest the most complete one: the lost create's own version-set changes were
    # skipped, the re-run's were made.
    keep, *others = sorted(candidates, key=lambda s: (-len(s.version_sets), s.id))
    rest = ", ".join(s.id for s in others)
    return service_error(
        want,
        "metadata.name",
        f"{len(candidates)} inactive services named {want.name!r} carry the reconciler's "
        f"tag and identical fields ({keep.id}, {rest}): a create whose answer was lost "
        "landed after a later run had created the service again (the API refuses a second "
        "active service of a name, not a second inactive one). Add metadata.id: "
        f"{keep.id} to this manifest to manage that one (keep the pin). The other ({rest}) "
        "is then left exactly as it is: inactive, never activated or changed by the "
        "reconciler, and not deleted (the API cannot delete a service); rename it or "
        "remove its ownership tag in the Amigo console if it should not stay",
    )


def _ambiguous_after_deactivation(
    want: DesiredService, active: LiveService, namesakes: Sequence[LiveService]
) -> Diagnostic:
    """Deactivating by name beside an owned inactive namesake would leave two owned inactive
    services of that name, which no later plan could tell apart: ask for the pin now."""
    others = ", ".join(s.id for s in namesakes)
    return service_error(
        want,
        "metadata.name",
        f"deactivating the active {want.name!r} ({active.id}) would leave it beside the "
        f"inactive {want.name!r} the reconciler already manages ({others}), and later plans "
        f"could not tell them apart; pin metadata.id: {active.id} to deactivate the active "
        f"one, or metadata.id: {namesakes[0].id} to manage the inactive one",
    )


def in_target(match: Match, wanted: set[str]) -> bool:
    """A manifest is in scope when --target names it by its new or its live name.

    A rename through a `metadata.id` pin is one operation on one service: targeting
    either name must select it (targeting the old name used to select nothing).
    """
    if not wanted or match.desired.name in wanted:
        return True
    return match.live is not None and match.live.name in wanted
