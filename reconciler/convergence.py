"""After an apply: does live state now show what the plan asked for?

Pure comparisons plus the two reads they need (owned services by name, the
services a saved plan touched); the workflow decides when to run them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.applier import (
    OWNERSHIP_TAG_FILTER,
    ApplyClient,
    ApplyReport,
    describe,
    update_holds,
)
from reconciler.model import VersionSet
from reconciler.plan import Action, Plan


@dataclass(frozen=True, slots=True)
class Convergence:
    """The check after applying: does live state now match? (None: not checked.)"""

    converged: bool
    differences: tuple[str, ...] = ()
    how: str = "re-planned against a fresh read of live state"
    error: str | None = None  # the check itself failed (e.g. the API was unreachable)


def convergence_from_plan(fresh: Plan) -> Convergence:
    """A fresh plan's remaining operations (and errors) are the differences."""
    differences = []
    for op in fresh.operations:
        changes = ", ".join(c.path for c in op.changes)
        differences.append(describe(op) + (f" ({changes})" if changes else ""))
    differences += [f"plan error: {d}" for d in fresh.errors]
    return Convergence(converged=not differences, differences=tuple(differences))


def duplicate_services(client: ApplyClient, plan: Plan) -> list[str]:
    """Names the plan creates once that live state now holds more than once.

    A create whose answer was lost can commit after the client gave up; had it
    been re-sent, two services would carry the name where the manifests declare
    one. Both carry the ownership tag and the created `is_active` (two active
    services cannot share a name, so in practice these are inactive ones). Reads
    only owned services, and only when the plan creates something.
    """
    creates = [op for op in plan.operations if op.action is Action.CREATE_SERVICE]
    differences: list[str] = []
    for is_active in sorted({bool(op.request.get("is_active", True)) for op in creates}):
        listed = client.list_services(is_active=is_active, tags=[OWNERSHIP_TAG_FILTER])
        by_name: dict[str, list[str]] = {}
        for service in listed:
            if bool(service.get("is_active")) == is_active:
                by_name.setdefault(str(service.get("name", "")).strip(), []).append(
                    str(service.get("id"))
                )
        for op in creates:
            name = str(op.request.get("name", op.service)).strip()
            ids = by_name.get(name, [])
            if bool(op.request.get("is_active", True)) == is_active and len(ids) > 1:
                state = "active" if is_active else "inactive"
                differences.append(
                    f"service {name!r} exists {len(ids)} times ({state}, ids "
                    f"{', '.join(sorted(ids))}) where the manifests declare one: keep one "
                    "(pin it with metadata.id) and deactivate the others"
                )
    return differences


def remaining_differences(client: ApplyClient, plan: Plan, report: ApplyReport) -> list[str]:
    """What an applied plan's operations asked for and live state does not show.

    The convergence check for a saved plan (whose manifests are not at hand):
    one read of every service the plan touched, each operation's effect compared.
    """
    ids: dict[str, str] = {}
    for result in report.results:
        if result.service_id:
            ids[result.key] = result.service_id
    for op in plan.operations:
        if op.key not in ids:
            sid = op.service_id or (report.created_ids.get(op.service_from or op.key))
            if sid:
                ids[op.key] = sid
    wanted_ids = sorted(set(ids.values()))
    live = {s["id"]: s for s in client.list_services(ids=wanted_ids)} if wanted_ids else {}
    differences: list[str] = []
    for op in plan.operations:
        what = describe(op)
        sid = ids.get(op.key)
        service = live.get(sid) if sid else None
        if service is None:
            differences.append(f"{what}: the service does not exist")
            continue
        version_sets = service.get("version_sets") or {}
        if op.action is Action.CREATE_SERVICE:
            expected = {k: op.request[k] for k in ("name", "is_active") if k in op.request}
            release = op.request.get("release_version_set")
            if not update_holds(service, expected):
                differences.append(f"{what}: not as created")
            elif release is not None and not _version_set_equal(
                version_sets.get("release"), release
            ):
                differences.append(f"{what}: version set 'release' differs")
        elif op.action is Action.UPDATE_SERVICE:
            if not update_holds(service, op.request):
                differences.append(f"{what}: fields still differ")
        elif op.action is Action.UPSERT_VERSION_SET:
            if not _version_set_equal(version_sets.get(op.version_set or ""), op.request):
                differences.append(f"{what}: still differs")
        elif op.version_set in version_sets:
            differences.append(f"{what}: still present")
    return differences


def _version_set_equal(live: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    if live is None:
        return False
    return VersionSet.from_api(live) == VersionSet.from_api(wanted)
