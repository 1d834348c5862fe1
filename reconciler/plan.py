"""Plan and Operation: the plain, serializable result of planning.

Each Operation maps to exactly one API call. The applier needs nothing but a
Plan and a client. The plan also records what it was computed against (the live
fingerprint and per-service digests) so a saved plan can be refused when stale;
the saved form itself (JSON, checksum, digest) is `reconciler.planfile`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.diagnostics import Diagnostic, SourcePos
from reconciler.diff import Change
from reconciler.model import LiveService, LiveState

FORMAT_VERSION = 1


class Action(StrEnum):
    """The API call an operation makes."""

    CREATE_SERVICE = "create_service"
    UPDATE_SERVICE = "update_service"
    UPSERT_VERSION_SET = "upsert_version_set"
    DELETE_VERSION_SET = "delete_version_set"


class Kind(StrEnum):
    """What the operation means to a person (render and summary use it)."""

    CREATE = "create"  # create_service, or upsert of a version set that does not exist yet
    UPDATE = "update"  # update_service with field changes, or upsert of an existing version set
    ADOPT = "adopt"  # update_service that only adds the ownership tag
    ACTIVATE = "activate"  # update_service with is_active: true (possibly with other fields)
    DEACTIVATE = "deactivate"  # update_service with is_active: false
    DELETE = "delete"  # delete_version_set


@dataclass(frozen=True, slots=True)
class Operation:
    key: str  # unique and stable within a plan, e.g. "op-003"
    action: Action
    kind: Kind
    service: str  # the service's name (for people and error messages)
    service_id: str | None  # None only for a create, or for work on a service created in this plan
    version_set: str | None = None
    changes: tuple[Change, ...] = ()
    # The exact JSON body sent: create -> full create request; update -> only changed
    # fields; upsert -> the VersionSet-Input (the client wraps it); delete -> {}.
    request: Mapping[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()  # keys of operations that must succeed first
    # For work on a service this plan creates: the key of that create_service op
    # (the applier fills service_id from its result).
    service_from: str | None = None
    source: SourcePos | None = None
    # upsert_version_set on an existing set: the live set as read when planning (its
    # VersionSet-Input), what a rollback restores. None: the set is new, or not an upsert
    # (or a plan file from before it was recorded).
    before: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Drift:
    """Live state the manifests do not manage and that is left alone (no --prune, or unowned)."""

    service: str
    service_id: str
    message: str
    version_set: str | None = None


@dataclass(frozen=True, slots=True)
class RehearsalRefusal:
    """One operation the emulator's reading of the API refused during a rehearsal.

    `rule` names what refused it: the API operation and status (a documented rule),
    or the emulator's interpretation id (docs/emulator.md) when the refusal rests
    only on its reading of an ambiguous rule; then it is a warning, not a failure.
    """

    key: str
    service: str
    description: str  # the operation, as people read it (applier.describe)
    rule: str
    detail: str  # the API-style message the emulator answered
    status: int | None = None
    interpretation: str | None = None


@dataclass(frozen=True, slots=True)
class Rehearsal:
    """The plan applied first to an in-memory copy of the live organization.

    `remaining`: what a second plan against the rehearsed state would still do
    (empty: converged). `error`: the rehearsal could not be made (and why).
    """

    operations: int
    accepted: int
    refused: tuple[RehearsalRefusal, ...] = ()
    skipped: int = 0
    remaining: tuple[str, ...] = ()
    error: str | None = None

    @property
    def converged(self) -> bool:
        return self.error is None and not self.remaining

    @property
    def failed(self) -> bool:
        """A documented rule refused an operation, or the plan does not converge in one apply.

        Refusals resting only on an emulator interpretation are warnings; so is the
        non-convergence they leave behind.
        """
        if self.error is not None:
            return False
        if any(r.interpretation is None for r in self.refused):
            return True
        return not self.refused and bool(self.remaining)


@dataclass(frozen=True, slots=True)
class Plan:
    organization: str
    base_url: str
    manifests_digest: str
    live_fingerprint: str
    created_at: str  # ISO 8601 UTC
    operations: tuple[Operation, ...] = ()
    drift: tuple[Drift, ...] = ()
    warnings: tuple[Diagnostic, ...] = ()
    errors: tuple[Diagnostic, ...] = ()
    prune: bool = False
    targets: tuple[str, ...] = ()
    api_reads: Mapping[str, int] = field(default_factory=dict)  # operation id -> requests
    format_version: int = FORMAT_VERSION
    # Agent / state machine id -> name, for the ids in the changes (for people only).
    reference_names: Mapping[str, str] = field(default_factory=dict)
    # Service id -> (name, digest of its normalized record) as read at plan time; None
    # for a plan file from before it existed. Lets a stale-plan refusal name what changed.
    live_services: Mapping[str, tuple[str, str]] | None = None
    # The declared services as written (reconciler/declared.py) and the environment
    # planned for: what policies see besides the operations. None: not recorded.
    services: tuple[Mapping[str, Any], ...] | None = None
    environment: str | None = None
    # The plan applied to an in-memory copy of live state first (reconciler/rehearsal.py);
    # None: not rehearsed. Not part of what the plan does: the digest leaves it out.
    rehearsal: Rehearsal | None = None

    @property
    def has_changes(self) -> bool:
        return bool(self.operations)

    @property
    def summary(self) -> dict[str, int]:
        counts = {k.value: 0 for k in Kind}
        for op in self.operations:
            counts[op.kind.value] += 1
        return counts


# --- live fingerprint, stale services --------------------------------------------


def canonical_json(data: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes every digest and checksum hashes."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def live_service_record(service: LiveService) -> dict[str, Any]:
    """A live service as plain, order-independent data (what the fingerprint covers)."""
    return {
        "id": service.id,
        **service.fields(),  # model.SERVICE_FIELDS
        "version_sets": {k: v.to_api() for k, v in sorted(service.version_sets.items())},
    }


LIVE_SERVICE_DIGEST_LENGTH = 16  # hex digits kept per service in `live_services`


def _canonical_live_services(
    live: LiveState | Sequence[LiveService],
) -> list[tuple[LiveService, bytes]]:
    """Each live service with the canonical JSON of its record, sorted by id.

    One serialization serves both the fingerprint and the per-service digests,
    so the two can never normalize differently.
    """
    services = live.services if isinstance(live, LiveState) else live
    return sorted(
        ((s, canonical_json(live_service_record(s))) for s in services), key=lambda pair: pair[0].id
    )


def _fingerprint_of(canonical: Sequence[tuple[LiveService, bytes]]) -> str:
    # The canonical JSON of the sorted list of records, joined from the records' own.
    body = b"[" + b",".join(record for _, record in canonical) + b"]"
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _digests_of(canonical: Sequence[tuple[LiveService, bytes]]) -> dict[str, tuple[str, str]]:
    return {
        s.id: (s.name, hashlib.sha256(record).hexdigest()[:LIVE_SERVICE_DIGEST_LENGTH])
        for s, record in canonical
    }


def live_fingerprint(live: LiveState | Sequence[LiveService]) -> str:
    """sha256 over the normalized live services, sorted by id.

    The applier re-reads the services and compares: any change since planning
    (by anyone) makes the saved plan stale.
    """
    return _fingerprint_of(_canonical_live_services(live))


def live_service_digests(live: LiveState | Sequence[LiveService]) -> dict[str, tuple[str, str]]:
    """Service id -> (name, short digest of its normalized record): what `live_services` holds."""
    return _digests_of(_canonical_live_services(live))


def live_snapshot(
    live: LiveState | Sequence[LiveService],
) -> tuple[str, dict[str, tuple[str, str]]]:
    """`live_fingerprint` and `live_service_digests` from one serialization (for the planner)."""
    canonical = _canonical_live_services(live)
    return _fingerprint_of(canonical), _digests_of(canonical)


def stale_services(
    planned: Mapping[str, tuple[str, str]], current: Mapping[str, tuple[str, str]]
) -> list[str]:
    """One line per service added, removed or changed between two `live_services` maps.

    Changed first, then added, then removed; by name, then id within each. A
    user can tell a harmless edit (re-plan) from a surprise (investigate first).
    """

    def label(name: str, service_id: str) -> str:
        return f"{json.dumps(name, ensure_ascii=False)} (id {service_id})"

    def by_name(ids: set[str], names: Mapping[str, tuple[str, str]]) -> list[str]:
        return sorted(ids, key=lambda i: (names[i][0], i))

    changed = {i for i in planned.keys() & current.keys() if planned[i] != current[i]}
    lines = []
    for service_id in by_name(changed, current):
        old_name, new_name = planned[service_id][0], current[service_id][0]
        renamed = (
            f", renamed from {json.dumps(old_name, ensure_ascii=False)}"
            if old_name != new_name
            else ""
        )
        lines.append(f"changed: {label(new_name, service_id)}{renamed}")
    for service_id in by_name(current.keys() - planned.keys(), current):
        lines.append(f"added: {label(current[service_id][0], service_id)}")
    for service_id in by_name(planned.keys() - current.keys(), planned):
        lines.append(f"removed: {label(planned[service_id][0], service_id)}")
    return lines
