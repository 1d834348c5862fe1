"""Plan and Operation: the plain, serializable result of planning.

Each Operation maps to exactly one API call. The applier needs nothing but a
Plan and a client; a saved plan (JSON) carries what is needed to refuse it when
it is stale, foreign or modified.

TO BE COMPLETED (issue 4): save / load / fingerprint helpers live here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.diagnostics import Diagnostic, SourcePos

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
class Change:
    """One field-level difference: `path: old -> new`."""

    path: str
    old: Any
    new: Any


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


@dataclass(frozen=True, slots=True)
class Drift:
    """Live state the manifests do not manage and that is left alone (no --prune, or unowned)."""

    service: str
    service_id: str
    message: str
    version_set: str | None = None


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

    @property
    def has_changes(self) -> bool:
        return bool(self.operations)

    @property
    def summary(self) -> dict[str, int]:
        counts = {k.value: 0 for k in Kind}
        for op in self.operations:
            counts[op.kind.value] += 1
        return counts
