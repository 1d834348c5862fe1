"""Undo an apply's version set upserts after a failed verification (`apply --verify
--rollback-on-failure`): a plan of ordinary operations, built from what the plan recorded.

The plan of the apply records, for each upsert of an existing set, the set as read when
planning (`Operation.before`). The rollback restores exactly that, through the same
applier as any apply; a set the apply created (no "before") is deleted, so the
organization ends as it was. Services the apply created and service fields it updated
are left alone (a rollback restores version sets only), and so is anything it cannot
restore safely — each with the reason, so the report says what was not undone:

- a set someone changed after the apply (live no longer holds what the apply wrote):
  restoring would overwrite their change;
- a set on a service this apply created (the service itself stays; deactivate it by hand);
- an upsert planned before plans recorded "before" (plan again to get it);
- `edge` or `release` created by the apply (the API refuses to delete them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from reconciler.applier import ApplyReport, Status
from reconciler.diff import diff_version_set
from reconciler.model import EDGE, RELEASE, VersionSet
from reconciler.plan import Action, Kind, Operation, Plan
from reconciler.verify import Verification


@dataclass(frozen=True, slots=True)
class NotRolledBack:
    """A version set the apply changed that the rollback leaves as it is, and why."""

    service: str
    version_set: str
    reason: str


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    plan: Plan  # ordinary operations: upserts restoring "before", deletions of new sets
    left_alone: tuple[NotRolledBack, ...] = ()
    already: tuple[tuple[str, str], ...] = ()  # (service, set) live already as before the apply


def upserts_done(plan: Plan, report: ApplyReport) -> list[Operation]:
    """The version set upserts the apply actually made (status done), in plan order."""
    done = {r.key for r in report.results if r.status is Status.DONE}
    return [
        op
        for op in plan.operations
        if op.action is Action.UPSERT_VERSION_SET and op.key in done and op.version_set
    ]


def plan_rollback(
    plan: Plan, report: ApplyReport, live_services: Sequence[Mapping[str, Any]]
) -> RollbackPlan:
    """The operations restoring every set the apply upserted, checked against `live_services`
    (a fresh read of the services those upserts touched)."""
    live = {str(s.get("id")): s for s in live_services}
    operations: list[Operation] = []
    left: list[NotRolledBack] = []
    already: list[tuple[str, str]] = []
    for op in upserts_done(plan, report):
        name = op.version_set or ""
        if op.service_id is None:
            left.append(
                NotRolledBack(
                    op.service,
                    name,
                    "the service was created by this apply; a rollback restores version sets "
                    "only (deactivate the service by hand if it should go)",
                )
            )
            continue
        service = live.get(op.service_id)
        sets = (service or {}).get("version_sets") or {}
        current = sets.get(name)
        if service is None:
            left.append(NotRolledBack(op.service, name, "the service is no longer there"))
            continue
        if _as_before(op, current):  # someone (or an earlier rollback) restored it already
            already.append((op.service, name))
            continue
        if current is None or VersionSet.from_api(current) != VersionSet.from_api(op.request):
            left.append(
                NotRolledBack(
                    op.service,
                    name,
                    "changed since this apply wrote it (someone else's change): "
                    "not overwritten; restore it by hand if needed",
                )
            )
            continue
        written = VersionSet.from_api(current)
        if op.kind is Kind.CREATE:
            if name in (EDGE, RELEASE):
                left.append(
                    NotRolledBack(
                        op.service, name, f"'{name}' cannot be deleted (the API keeps it)"
                    )
                )
                continue
            operations.append(
                Operation(
                    key="",
                    action=Action.DELETE_VERSION_SET,
                    kind=Kind.DELETE,
                    service=op.service,
                    service_id=op.service_id,
                    version_set=name,
                    changes=diff_version_set(written, None),
                    source=op.source,
                )
            )
            continue
        if op.before is None:
            left.append(
                NotRolledBack(
                    op.service,
                    name,
                    "the plan did not record the set's contents before the apply (a plan "
                    "file from an older version): plan again and restore it by hand",
                )
            )
            continue
        before = VersionSet.from_api(op.before)
        operations.append(
            Operation(
                key="",
                action=Action.UPSERT_VERSION_SET,
                kind=Kind.UPDATE,
                service=op.service,
                service_id=op.service_id,
                version_set=name,
                changes=diff_version_set(written, before),
                request=before.to_api(),
                source=op.source,
                before=written.to_api(),
            )
        )
    keyed = tuple(replace(o, key=f"rollback-{n:03d}") for n, o in enumerate(operations, start=1))
    rollback = Plan(
        organization=plan.organization,
        base_url=plan.base_url,
        manifests_digest=plan.manifests_digest,
        live_fingerprint="",
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        operations=keyed,
        reference_names=plan.reference_names,
    )
    return RollbackPlan(rollback, tuple(left), tuple(already))


def _as_before(op: Operation, current: Mapping[str, Any] | None) -> bool:
    """Whether the live set already is what it was before the apply: absent for a set the
    apply created, equal to the recorded `before` for one it changed."""
    if op.kind is Kind.CREATE:
        return current is None
    if op.before is None or current is None:
        return False
    same = VersionSet.from_api(current) == VersionSet.from_api(op.before)
    return same and VersionSet.from_api(op.before) != VersionSet.from_api(op.request)


@dataclass(frozen=True, slots=True)
class RollbackOutcome:
    """What the rollback did: its plan and report, what it left alone, and the re-read."""

    plan: Plan
    report: ApplyReport | None  # None: nothing to send
    left_alone: tuple[NotRolledBack, ...] = ()
    differences: tuple[str, ...] = ()  # restored sets a fresh read still shows otherwise
    error: str | None = None  # the rollback could not be made (e.g. the read failed)
    api_reads: Mapping[str, int] = field(default_factory=dict)
    already: tuple[tuple[str, str], ...] = ()  # (service, set) found already as before

    @property
    def complete(self) -> bool:
        """Every changed set is back as it was, checked by a fresh read."""
        return (
            self.error is None
            and not self.left_alone
            and not self.differences
            and (self.report is None or self.report.ok)
        )


@dataclass(frozen=True, slots=True)
class ApplyVerification:
    """`apply --verify`: the verification of the sets the apply changed, and any rollback.

    `skipped` says why nothing was verified (the apply did not converge, or changed
    no version set); `rollback` is None unless verification failed with
    --rollback-on-failure (`rollback_skipped` says why it was not attempted then).
    """

    verification: Verification | None = None
    skipped: str | None = None
    rollback: RollbackOutcome | None = None
    rollback_skipped: str | None = None

    @property
    def passed(self) -> bool:
        return self.verification is not None and self.verification.passed
