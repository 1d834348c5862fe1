"""Desired state + live state -> an ordered, checked Plan.

No I/O and no client: `plan_against` plans against a LiveState it is handed.
What to read is decided here too, as data: `references_needed` says whether the
agents / state machines lists are needed (only when a manifest needs them
resolved or checked), and `plan_against` asks its `read_unit_tests` callback
once, for the services where a deletion or deactivation is planned.
`reconciler.workflow.make_plan` does the reading.

Every operation is one API call. Order comes from a dependency graph, not a
fixed list: a name-freeing deactivation or rename runs before the create or
activation that takes the name; an agent / state machine change runs before the
upserts pinning the new versions; an activation runs after the same service's
version-set upserts and deletions (the API checks the LLMs its sets use when it
activates); deletions and deactivations run last unless something depends on
them. Anything the API would reject is turned into a plan error that points at
the manifest.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconciler.declared import declared_services
from reconciler.diagnostics import Diagnostic, Severity, SourcePos, UserError, did_you_mean
from reconciler.diff import (
    Change,
    changed_fields,
    diff_service,
    diff_version_set,
    service_fields,
)
from reconciler.diff import desired_fields as desired_service_fields
from reconciler.gcpause import fewer_collections
from reconciler.identity import Match, in_target, match_services, service_error
from reconciler.limits import LLM_NAMES, MAX_TAGS
from reconciler.model import (
    EDGE,
    OWNERSHIP_TAG_KEY,
    OWNERSHIP_TAG_VALUE,
    RELEASE,
    Agent,
    DesiredService,
    DesiredState,
    LiveService,
    LiveState,
    UnitTest,
    VersionSet,
)
from reconciler.plan import Action, Drift, Kind, Operation, Plan, live_snapshot

DESTRUCTIVE = (Kind.DELETE, Kind.DEACTIVATE)


# --- references (agents, state machines) ----------------------------------------


@dataclass(frozen=True, slots=True)
class _Ref:
    label: str  # "agent" / "state machine"
    name_field: str  # manifest field naming it
    id_field: str
    version_field: str


AGENT_REF = _Ref("agent", "agent", "agent_id", "agent_version_number")
SM_REF = _Ref(
    "state machine",
    "service_hierarchical_state_machine",
    "service_hierarchical_state_machine_id",
    "service_hierarchical_state_machine_version_number",
)


def _resolve(
    want: DesiredService, ref: _Ref, known: Sequence[Agent] | None
) -> tuple[str | None, Agent | None, Diagnostic | None]:
    """(id, the record if read, error) for a manifest's agent or state machine."""
    by_name: str | None = getattr(want, ref.name_field)
    by_id: str | None = getattr(want, ref.id_field)
    if by_name is None:
        if by_id is None or known is None:
            return by_id, None, None
        record = next((a for a in known if a.id == by_id), None)
        if record is None:
            return (
                by_id,
                None,
                service_error(
                    want,
                    f"spec.{ref.id_field}",
                    f"no {ref.label} with id {by_id} exists in the organization",
                ),
            )
        return by_id, record, None
    if known is None:
        raise ValueError(f"{ref.label} names must be resolved, but {ref.label}s were not read")
    named = [a for a in known if a.name == by_name]
    if len(named) > 1:
        named = [a for a in named if not a.deprecated] or named
    if len(named) == 1:
        return named[0].id, named[0], None
    if len(named) > 1:
        ids = ", ".join(sorted(a.id for a in named))
        return (
            None,
            None,
            service_error(
                want,
                f"spec.{ref.name_field}",
                f"{len(named)} {ref.label}s are named {by_name!r} ({ids}); "
                f"use spec.{ref.id_field} to choose one",
            ),
        )
    names = sorted({a.name for a in known})
    return (
        None,
        None,
        service_error(
            want,
            f"spec.{ref.name_field}",
            f"no {ref.label} named {by_name!r} exists in the organization"
            + (did_you_mean(by_name, names, limit=3) or _known_names(ref.label, names)),
        ),
    )


# Up to this many names are listed when a name matches none of them.
KNOWN_NAMES_LISTED = 10


def _known_names(label: str, names: Sequence[str]) -> str:
    """What would be right when nothing is close: the names that exist (a few), or how many."""
    if not names:
        return f"; the organization has no {label}s (or the API user may not read them)"
    if len(names) <= KNOWN_NAMES_LISTED:
        return f"; the organization's {label}s are " + ", ".join(repr(n) for n in names)
    return f"; the organization has {len(names)} {label}s (`reconciler export` shows which)"


# --- planning -----------------------------------------------------------------


@dataclass(slots=True)
class _Draft:
    """An operation before ordering gives it its key."""

    action: Action
    kind: Kind
    service: str
    service_id: str | None
    sort_key: tuple[Any, ...]
    version_set: str | None = None
    changes: tuple[Change, ...] = ()
    request: Mapping[str, Any] = field(default_factory=dict)
    source: SourcePos | None = None
    deps: set[int] = field(default_factory=set)
    service_from: int | None = None
    desired: DesiredService | None = None
    before: Mapping[str, Any] | None = None  # the live set an upsert replaces


@dataclass(slots=True)
class _Builder:
    drafts: list[_Draft] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    # (service, field) of the llm_names refused: their manifest warnings are moot.
    refused_llms: set[tuple[str, str]] = field(default_factory=set)

    def add(self, draft: _Draft) -> int:
        self.drafts.append(draft)
        return len(self.drafts) - 1


def _change_pos(want: DesiredService, kind: Kind, changes: Sequence[Change]) -> SourcePos:
    """The manifest line an update comes from: `is_active` for (de)activation, else the
    first changed field (`metadata.name` for a rename); the document for an adoption."""
    if kind is Kind.ADOPT or not changes:
        return want.source
    paths = [c.path for c in changes]
    path = "is_active" if kind in (Kind.ACTIVATE, Kind.DEACTIVATE) else paths[0]
    top = path.split(".", 1)[0].split("[", 1)[0]
    if top == "name":
        return want.pos("metadata.name")
    for ref in ("agent", "service_hierarchical_state_machine"):
        if top == f"{ref}_id":
            named = f"spec.{ref}"
            return want.pos(named if named in want.positions else f"spec.{ref}_id")
    return want.pos(f"spec.{path}")


def _warning(want: DesiredService, path: str, message: str) -> Diagnostic:
    return Diagnostic(
        message, severity=Severity.WARNING, pos=want.pos(path), field=path, service=want.name
    )


def _owned_tags(tags: Mapping[str, str | None]) -> dict[str, str | None]:
    merged = dict(tags)
    merged[OWNERSHIP_TAG_KEY] = OWNERSHIP_TAG_VALUE
    return merged


def _check_tag_limit(b: _Builder, want: DesiredService, tags: Mapping[str, str | None]) -> None:
    """The ownership tag counts against the API's 20-tag limit: say so now, not as a 422 later."""
    if len(tags) <= MAX_TAGS:
        return
    where = "declared" if want.tags is not None else "live (spec.tags is not managed)"
    b.errors.append(
        service_error(
            want,
            "spec.tags",
            f"the service would carry {len(tags)} tags: {len(tags) - 1} {where} plus the "
            f"ownership tag {OWNERSHIP_TAG_KEY}: {OWNERSHIP_TAG_VALUE}, and the API allows at "
            f"most {MAX_TAGS}; declare spec.tags with at most {MAX_TAGS - 1} tags",
        )
    )


def _check_targets(
    targets: Sequence[str], desired: DesiredState, services: Sequence[LiveService]
) -> None:
    known = {d.name for d in desired.services} | {s.name for s in services}
    unknown = [t for t in targets if t not in known]
    if unknown:
        raise UserError(
            [
                Diagnostic(
                    f"no service named {t!r} is in the manifests or the organization"
                    + did_you_mean(t, known, limit=3),
                    field="--target",
                )
                for t in unknown
            ]
        )


def _plan_version_sets(
    b: _Builder,
    want: DesiredService,
    live: LiveService | None,
    *,
    service_id: str | None,
    create_index: int | None,
    update_index: int | None,
    reference_changed: bool,
    prune: bool,
) -> None:
    """Upserts for declared sets that differ, deletions (prune) or drift for the rest."""
    live_sets: Mapping[str, VersionSet] = live.version_sets if live else {}
    for name in sorted(want.version_sets):
        if create_index is not None and name == RELEASE:
            continue  # travels inside the create request
        declared = want.version_sets[name]
        current = live_sets.get(name)
        if current == declared:
            continue
        draft = _Draft(
            Action.UPSERT_VERSION_SET,
            Kind.UPDATE if current is not None else Kind.CREATE,
            want.name,
            service_id,
            (want.name, service_id or "", 1, name),
            version_set=name,
            changes=(vs_changes := diff_version_set(current, declared)),
            request=declared.to_api(),
            # The line of the first changed field, so the annotation sits on the edit.
            source=want.pos(
                f"spec.version_sets.{name}"
                + (f".{vs_changes[0].path}" if current is not None and vs_changes else "")
            ),
            desired=want,
            before=current.to_api() if current is not None else None,
        )
        if create_index is not None:
            draft.service_from = create_index
            draft.deps.add(create_index)
        if update_index is not None and reference_changed:
            draft.deps.add(update_index)
        b.add(draft)

    if live is None:
        return
    for name in sorted(live_sets):
        if name in want.version_sets or name in (EDGE, RELEASE):
            continue
        if prune:
            # A service a manifest declares is managed, owned already or adopted by this
            # plan; an adoption's deletions wait for the ownership tag to land.
            delete = _Draft(
                Action.DELETE_VERSION_SET,
                Kind.DELETE,
                want.name,
                live.id,
                (want.name, live.id, 2, name),
                version_set=name,
                changes=diff_version_set(live_sets[name], None),
                source=want.source,
                desired=want,
            )
            if not live.owned and update_index is not None:
                delete.deps.add(update_index)
            b.add(delete)
        else:
            b.drift.append(
                Drift(
                    want.name,
                    live.id,
                    "not declared in the manifest; --prune would delete it",
                    name,
                )
            )


def _check_pins(
    b: _Builder,
    want: DesiredService,
    ref: _Ref,
    record: Agent | None,
    version_sets: Mapping[str, VersionSet],
) -> None:
    """Version numbers the (new) agent / state machine actually has."""
    for name in sorted(version_sets):
        number = getattr(version_sets[name], ref.version_field)
        path = f"spec.version_sets.{name}.{ref.version_field}"
        if number is None:
            continue
        if number < 1:
            b.errors.append(service_error(want, path, f"{ref.label} version numbers start at 1"))
        elif record is not None and record.latest_version is None:
            b.errors.append(
                service_error(want, path, f"{ref.label} {record.name!r} has no versions yet")
            )
        elif (
            record is not None
            and record.latest_version is not None
            and number > record.latest_version
        ):
            b.errors.append(
                service_error(
                    want,
                    path,
                    f"{ref.label} {record.name!r} has no version {number}; its latest "
                    f"version is {record.latest_version} (omit the number to follow latest)",
                )
            )


def _plan_service(
    b: _Builder,
    match: Match,
    live_state: LiveState,
    *,
    prune: bool,
) -> None:
    want, live = match.desired, match.live
    if match.error is not None:
        b.errors.append(match.error)
        return

    resolved: dict[str, tuple[str | None, Agent | None]] = {}
    for ref, known in ((AGENT_REF, live_state.agents), (SM_REF, live_state.state_machines)):
        ref_id, record, error = _resolve(want, ref, known)
        if error is not None:
            b.errors.append(error)
        resolved[ref.label] = (ref_id, record)
    agent_id, agent = resolved[AGENT_REF.label]
    sm_id, sm = resolved[SM_REF.label]

    if live is None:
        _plan_create(b, want, agent_id, agent, sm_id, sm, prune=prune)
        return

    desired_fields = desired_service_fields(
        want, live, {AGENT_REF.id_field: agent_id, SM_REF.id_field: sm_id}
    )
    desired_fields["tags"] = _owned_tags(desired_fields["tags"])
    _check_tag_limit(b, want, desired_fields["tags"])
    live_fields = service_fields(live)
    changed = changed_fields(live_fields, desired_fields)
    update_index: int | None = None
    if changed:
        changes = diff_service(
            {f: live_fields[f] for f in changed}, {f: desired_fields[f] for f in changed}
        )
        if "is_active" in changed:
            kind = Kind.ACTIVATE if want.is_active else Kind.DEACTIVATE
        elif [c.path for c in changes] == [f"tags.{OWNERSHIP_TAG_KEY}"]:
            kind = Kind.ADOPT
        else:
            kind = Kind.UPDATE
        update_index = b.add(
            _Draft(
                Action.UPDATE_SERVICE,
                kind,
                want.name,
                live.id,
                (want.name, live.id, 0, ""),
                changes=changes,
                request={f: desired_fields[f] for f in changed},
                source=_change_pos(want, kind, changes),
                desired=want,
            )
        )

    agent_changed = "agent_id" in changed
    sm_changed = "service_hierarchical_state_machine_id" in changed
    first_version_set_draft = len(b.drafts)
    _plan_version_sets(
        b,
        want,
        live,
        service_id=live.id,
        create_index=None,
        update_index=update_index,
        reference_changed=agent_changed or sm_changed,
        prune=prune,
    )

    activating = "is_active" in changed and want.is_active
    if activating and update_index is not None:
        _activate_last(b, update_index, range(first_version_set_draft, len(b.drafts)))
        _check_retired_llms(b, want, live, b.drafts[first_version_set_draft:])

    # Checks against the agent / state machine the service will use.
    upserted = {d.version_set: d for d in b.drafts[first_version_set_draft:] if d.version_set}
    sent = {
        n: vs
        for n, vs in want.version_sets.items()
        if n in upserted and upserted[n].action is Action.UPSERT_VERSION_SET
    }
    for ref, record, ref_changed in ((AGENT_REF, agent, agent_changed), (SM_REF, sm, sm_changed)):
        # After a move every declared pin names a version of the new agent / state
        # machine, sent or not; otherwise only the sets being sent can be new.
        _check_pins(b, want, ref, record, want.version_sets if ref_changed else sent)
        if record is None:
            continue
        path = f"spec.{ref.name_field if getattr(want, ref.name_field) else ref.id_field}"
        _check_has_versions(
            b, want, ref, record, path, switching=ref_changed, activating=activating
        )
        # The API checks both records when either reference of an active service moves.
        _check_not_deprecated(
            b, want, ref, record, path, moving=activating or agent_changed or sm_changed
        )
        if ref_changed:
            for name in sorted(live.version_sets):
                number = getattr(live.version_sets[name], ref.version_field)
                if name in want.version_sets or name == EDGE or number is None:
                    continue
                b.warnings.append(
                    _warning(
                        want,
                        path,
                        f"version set {name!r} (not declared) pins {ref.label} version "
                        f"{number}, which will refer to {ref.label} {record.name!r} after "
                        "this change; declare the version set to manage it",
                    )
                )


def _check_has_versions(
    b: _Builder,
    want: DesiredService,
    ref: _Ref,
    record: Agent,
    path: str,
    *,
    switching: bool,
    activating: bool,
) -> None:
    """Switching to, or activating on, an agent / state machine without versions is a 400."""
    if (switching or activating) and record.latest_version is None:
        b.errors.append(
            service_error(
                want,
                path,
                f"{ref.label} {record.name!r} has no versions yet; the API refuses to "
                + ("activate a service that uses it" if activating else "switch to it"),
            )
        )


def _check_not_deprecated(
    b: _Builder, want: DesiredService, ref: _Ref, record: Agent, path: str, *, moving: bool
) -> None:
    """An active service activated on, or moved to, a deprecated record is refused (400)."""
    if record.deprecated and want.is_active and moving:
        b.errors.append(
            service_error(
                want,
                path,
                f"{ref.label} {record.name!r} is deprecated; the API refuses an active "
                f"service that uses it — choose another {ref.label}",
            )
        )


def _check_retired_llms(
    b: _Builder, want: DesiredService, live: LiveService, version_set_drafts: Sequence[_Draft]
) -> None:
    """An activation the API would refuse whatever the order: a version set that stays
    prefers an LLM outside the API's LLMType list (a retired LLM, so a deprecated one).

    Sets this plan upserts are checked by `_check_llm_names`; deleted ones no longer
    count. An LLM deprecated while still listed cannot be known: the API does not
    publish which are.
    """
    touched = {d.version_set for d in version_set_drafts if d.version_set}
    kept = {n: vs for n, vs in live.version_sets.items() if n not in touched}
    for set_name in sorted(kept):
        prefs = kept[set_name].llm_model_preferences
        for interaction in sorted(prefs):
            llm = prefs[interaction].llm_name
            if llm in LLM_NAMES:
                continue
            declared = set_name in want.version_sets
            path = (
                f"spec.version_sets.{set_name}.llm_model_preferences.{interaction}.llm_name"
                if declared
                else "spec.is_active"
            )
            b.refused_llms.add((want.name, path))
            b.errors.append(
                service_error(
                    want,
                    path,
                    f"version set {set_name!r} prefers {llm!r} for {interaction!r}, an LLM the "
                    "API no longer lists (retired): the API refuses to activate a service "
                    "that uses it; "
                    + (
                        "declare the set with a current LLM"
                        if declared
                        else "declare the set with a current LLM, or remove it (--prune "
                        "deletes a set no manifest declares)"
                    ),
                )
            )


def _activate_last(b: _Builder, update_index: int, version_set_drafts: Iterable[int]) -> None:
    """Activation waits for the service's version-set upserts and deletions.

    The API checks, on activation, the LLMs its version sets use (update-service's
    documented 400 for a deprecated one): a plan that fixes a version set and activates
    must send the fix first. When the same update also moves the agent or state machine,
    the upserts must follow the move (their pins name the new one's versions), so the
    update is split: the field changes first, `is_active: true` alone last.
    """
    after = [i for i in version_set_drafts if b.drafts[i].service_id is not None]
    if not after:
        return
    update = b.drafts[update_index]
    if not any(update_index in b.drafts[i].deps for i in after):
        update.deps.update(after)
        return
    fields = [c for c in update.changes if c.path != "is_active"]
    update.request = {k: v for k, v in update.request.items() if k != "is_active"}
    update.changes = tuple(fields)
    update.kind = (
        Kind.ADOPT if [c.path for c in fields] == [f"tags.{OWNERSHIP_TAG_KEY}"] else Kind.UPDATE
    )
    name, service_id = update.service, update.service_id
    b.add(
        _Draft(
            Action.UPDATE_SERVICE,
            Kind.ACTIVATE,
            name,
            service_id,
            (name, service_id or "", 2, ""),
            changes=(Change("is_active", False, True),),
            request={"is_active": True},
            source=update.desired.pos("spec.is_active") if update.desired else update.source,
            desired=update.desired,
            deps={update_index, *after},
        )
    )


def _plan_create(
    b: _Builder,
    want: DesiredService,
    agent_id: str | None,
    agent: Agent | None,
    sm_id: str | None,
    sm: Agent | None,
    *,
    prune: bool,
) -> None:
    if agent_id is None or sm_id is None:
        if (want.agent is None and want.agent_id is None) or (
            want.service_hierarchical_state_machine is None
            and want.service_hierarchical_state_machine_id is None
        ):
            b.errors.append(
                service_error(
                    want,
                    "spec",
                    "a new service needs spec.agent (or agent_id) and "
                    "spec.service_hierarchical_state_machine (or its _id)",
                )
            )
        return  # an unresolved reference was reported already
    request = desired_service_fields(
        want, None, {AGENT_REF.id_field: agent_id, SM_REF.id_field: sm_id}
    )
    request["tags"] = _owned_tags(request["tags"])
    _check_tag_limit(b, want, request["tags"])
    release = want.version_sets.get(RELEASE)
    if release is not None:
        request["release_version_set"] = release.to_api()
    create_index = b.add(
        _Draft(
            Action.CREATE_SERVICE,
            Kind.CREATE,
            want.name,
            None,
            (want.name, "", 0, ""),
            changes=diff_service({}, request),
            request=request,
            source=want.source,
            desired=want,
        )
    )
    for ref, record in ((AGENT_REF, agent), (SM_REF, sm)):
        _check_pins(b, want, ref, record, want.version_sets)
        if record is None:
            continue
        path = f"spec.{ref.name_field if getattr(want, ref.name_field) else ref.id_field}"
        if record.latest_version is None:
            b.errors.append(
                service_error(
                    want,
                    path,
                    f"{ref.label} {record.name!r} has no versions; the API refuses to "
                    "create a service with it",
                )
            )
        if record.deprecated and want.is_active:
            b.warnings.append(_warning(want, path, f"{ref.label} {record.name!r} is deprecated"))
    _plan_version_sets(
        b,
        want,
        None,
        service_id=None,
        create_index=create_index,
        update_index=None,
        reference_changed=False,
        prune=prune,
    )


def _plan_absent_owned(
    b: _Builder, services: Sequence[LiveService], claimed: set[str], *, prune: bool, scope: Any
) -> None:
    """Owned, active services no manifest claims: deactivate (--prune) or report drift."""
    for live in sorted(services, key=lambda s: (s.name, s.id)):
        if live.id in claimed or not live.owned or not live.is_active or not scope(live.name):
            continue
        if prune:
            b.add(
                _Draft(
                    Action.UPDATE_SERVICE,
                    Kind.DEACTIVATE,
                    live.name,
                    live.id,
                    (live.name, live.id, 0, ""),
                    changes=(Change("is_active", True, False),),
                    request={"is_active": False},
                )
            )
        else:
            b.drift.append(
                Drift(
                    live.name,
                    live.id,
                    "owned by the reconciler but in no manifest; --prune would deactivate it",
                )
            )


def _final_states(
    b: _Builder, services: Sequence[LiveService]
) -> tuple[dict[str, tuple[str, bool]], dict[str, int]]:
    """Each live service's (name, active) after the plan, and its update draft's index."""
    final = {s.id: (s.name, s.is_active) for s in services}
    update_of: dict[str, int] = {}
    for index, d in enumerate(b.drafts):
        if d.action is Action.UPDATE_SERVICE and d.service_id is not None:
            name, active = final[d.service_id]
            final[d.service_id] = (
                d.request.get("name", name),
                d.request.get("is_active", active),
            )
            update_of[d.service_id] = index
    return final, update_of


def _order_names(b: _Builder, services: Sequence[LiveService], claimed: set[str]) -> None:
    """One active service per name: free a name before taking it, or report the collision."""
    final, update_of = _final_states(b, services)
    by_id = {s.id: s for s in services}
    active_named: dict[str, list[LiveService]] = {}
    for service in services:
        if service.is_active:
            active_named.setdefault(service.name, []).append(service)
    for d in b.drafts:
        if d.action is Action.CREATE_SERVICE:
            if not d.request["is_active"]:
                continue
            taker_id, name = None, d.request["name"]
        elif d.action is Action.UPDATE_SERVICE and d.service_id is not None:
            # Only the call that leaves the service active under the name takes it (an
            # activation may be split from the service's other field changes).
            name = final[d.service_id][0]
            before = by_id[d.service_id]
            active = d.request.get("is_active", before.is_active)
            if not active or (before.is_active and before.name == name):
                continue
            taker_id = d.service_id
        else:
            continue
        for holder in active_named.get(name, ()):
            if holder.id == taker_id:
                continue
            if final[holder.id] != (name, True):
                d.deps.add(update_of[holder.id])
                continue
            if holder.id in claimed:
                owner = "managed by these manifests and staying active"
            elif holder.owned:
                owner = "owned by the reconciler but in no manifest; --prune would deactivate it"
            else:
                owner = "not managed by the reconciler"
            want = d.desired
            message = (
                f"an active service named {name!r} already exists (id {holder.id}, {owner}); "
                "the API allows one active service per name: rename or deactivate it "
                "(declare it with is_active: false, or --prune if the reconciler owns it), "
                "or give this service another name"
            )
            if want is not None:
                b.errors.append(service_error(want, "metadata.name", message))
            else:
                b.errors.append(Diagnostic(message, service=d.service))


def _check_llm_names(b: _Builder) -> None:
    """Every `llm_name` the plan sends must be one the API accepts.

    The OpenAPI document makes `LLMConfig-Input.llm_name` the closed enum `LLMType`
    (`limits.LLM_NAMES`): a name outside it is a certain 422 at apply time, so it is a
    plan error here, at the field, with the names that are accepted. A stored name the
    enum no longer lists is a retired LLM, not a newer one (the emulator's reading,
    `llm-outside-enum-is-deprecated`): a live service using it proves nothing.
    `validate` only warns: whether a set is sent depends on the live state (a set
    declared exactly as it is live is not, and the API never sees its names). The
    plan's error replaces that warning.
    """
    accepted = set(LLM_NAMES)
    for d in b.drafts:
        want = d.desired
        if want is None:
            continue
        if d.action is Action.UPSERT_VERSION_SET and d.version_set is not None:
            names = [d.version_set]
        elif d.action is Action.CREATE_SERVICE and "release_version_set" in d.request:
            names = [RELEASE]
        else:
            continue
        for set_name in names:
            prefs = want.version_sets[set_name].llm_model_preferences
            for interaction in sorted(prefs):
                llm = prefs[interaction].llm_name
                path = f"spec.version_sets.{set_name}.llm_model_preferences.{interaction}.llm_name"
                if llm in accepted:
                    continue
                b.refused_llms.add((want.name, path))
                b.errors.append(
                    service_error(
                        want,
                        path,
                        f"{llm!r} is not an LLM the API accepts (its llm_name list, LLMType, "
                        "is closed)"
                        + (
                            did_you_mean(llm, LLM_NAMES, limit=3)
                            or "; the accepted names are " + ", ".join(map(repr, LLM_NAMES))
                        ),
                    )
                )


def _destructive_ids(b: _Builder) -> list[str]:
    """Services where a deletion or deactivation is planned (their unit tests matter)."""
    return sorted({d.service_id for d in b.drafts if d.kind in DESTRUCTIVE and d.service_id})


def _check_unit_tests(b: _Builder, unit_tests: Sequence[UnitTest] | None) -> None:
    if unit_tests is None:
        return
    by_service: dict[str, list[UnitTest]] = {}
    for test in unit_tests:
        by_service.setdefault(test.service_id, []).append(test)
    for d in b.drafts:
        if d.kind not in DESTRUCTIVE or d.service_id is None:
            continue
        blocking = sorted(
            (
                t
                for t in by_service.get(d.service_id, ())
                if d.kind is Kind.DEACTIVATE or t.version_set == d.version_set
            ),
            key=lambda t: (t.name, t.id),
        )
        if not blocking:
            continue
        names = ", ".join(
            f"{t.name!r} (id {t.id}, version set {t.version_set!r})" for t in blocking
        )
        what = (
            f"cannot deactivate service {d.service!r}"
            if d.kind is Kind.DEACTIVATE
            else f"cannot delete version set {d.version_set!r} of service {d.service!r}"
        )
        message = (
            f"{what}: simulation unit test {names} uses it; the API refuses this "
            "while the unit test exists — delete or re-point the unit test first"
        )
        field_path = "spec.is_active" if d.kind is Kind.DEACTIVATE and d.desired else None
        if d.desired is not None:
            b.errors.append(
                Diagnostic(
                    message,
                    pos=d.desired.pos(field_path) if field_path else d.desired.source,
                    field=field_path,
                    service=d.service,
                )
            )
        else:
            b.errors.append(Diagnostic(message, service=d.service))


def _order(b: _Builder) -> list[Operation]:
    """Topological order; ties by (deletions/deactivations last, service, kind, set)."""
    drafts = b.drafts
    dependents: dict[int, set[int]] = {i: set() for i in range(len(drafts))}
    for i, d in enumerate(drafts):
        for dep in d.deps:
            dependents[dep].add(i)
    waiting = {i: len(d.deps) for i, d in enumerate(drafts)}

    def priority(i: int) -> tuple[Any, ...]:
        last = drafts[i].kind in DESTRUCTIVE and not dependents[i]
        return (1 if last else 0, drafts[i].sort_key, i)

    ready = [priority(i) for i, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)[-1]
        order.append(i)
        for j in sorted(dependents[i]):
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, priority(j))
    stuck = sorted(set(range(len(drafts))) - set(order), key=lambda i: drafts[i].sort_key)
    for i in stuck:
        d = drafts[i]
        message = (
            f"the plan for service {d.service!r} waits on itself: its name change is part "
            "of a cycle of services swapping names; rename one of them to a temporary name "
            "in a first apply, then finish the swap"
        )
        if d.desired is not None:
            b.errors.append(service_error(d.desired, "metadata.name", message))
        else:
            b.errors.append(Diagnostic(message, service=d.service))
        d.deps.clear()
        order.append(i)

    keys = {i: f"op-{n:03d}" for n, i in enumerate(order, start=1)}

    def key_of(index: int | None) -> str | None:
        return None if index is None else keys[index]

    return [
        Operation(
            key=keys[i],
            action=drafts[i].action,
            kind=drafts[i].kind,
            service=drafts[i].service,
            service_id=drafts[i].service_id,
            version_set=drafts[i].version_set,
            changes=drafts[i].changes,
            request=drafts[i].request,
            depends_on=tuple(sorted(keys[d] for d in drafts[i].deps)),
            service_from=key_of(drafts[i].service_from),
            source=drafts[i].source,
            before=drafts[i].before,
        )
        for i in order
    ]


@fewer_collections()
def plan_against(
    desired: DesiredState,
    live: LiveState,
    *,
    organization: str,
    base_url: str,
    prune: bool = False,
    targets: Sequence[str] = (),
    api_reads: Mapping[str, int] | None = None,
    created_at: str | None = None,
    read_unit_tests: Callable[[Sequence[str]], Sequence[UnitTest]] | None = None,
    check_targets: bool = True,
) -> Plan:
    """The plan that takes `live` to `desired` (no I/O of its own).

    When `live.unit_tests` was not read, `read_unit_tests` (if given) is asked once,
    mid-plan, for the unit tests of the services where a deletion or deactivation
    is planned: only the planning itself knows which those are. `check_targets=False`
    lets a target name nothing (a re-plan after an apply renamed the service it named).
    """
    if check_targets:
        _check_targets(targets, desired, live.services)
    wanted = set(targets)

    def in_scope(name: str) -> bool:
        return not wanted or name in wanted

    b = _Builder()
    matches = match_services(desired.services, live.services)
    claimed = {m.live.id for m in matches if m.live is not None}
    claimed |= {m.desired.id for m in matches if m.desired.id is not None}
    for match in sorted(matches, key=lambda m: (m.desired.name, m.desired.id or "")):
        if in_target(match, wanted):
            _plan_service(b, match, live, prune=prune)
    _plan_absent_owned(b, live.services, claimed, prune=prune, scope=in_scope)
    _order_names(b, live.services, claimed)
    unit_tests: Sequence[UnitTest] | None = live.unit_tests
    if unit_tests is None and read_unit_tests is not None:
        service_ids = _destructive_ids(b)
        if service_ids:
            unit_tests = read_unit_tests(service_ids)
    _check_unit_tests(b, unit_tests)
    _check_llm_names(b)
    operations = _order(b)
    fingerprint, live_services = live_snapshot(live)
    return Plan(
        reference_names=_reference_names(operations, live),
        organization=organization,
        base_url=base_url,
        manifests_digest=desired.digest,
        live_fingerprint=fingerprint,
        live_services=live_services,
        created_at=created_at or datetime.now(UTC).replace(microsecond=0).isoformat(),
        operations=tuple(operations),
        drift=tuple(sorted(b.drift, key=lambda d: (d.service, d.service_id, d.version_set or ""))),
        warnings=tuple(w for w in desired.warnings if (w.service, w.field) not in b.refused_llms)
        + tuple(b.warnings),
        errors=tuple(b.errors),
        prune=prune,
        targets=tuple(targets),
        api_reads=dict(api_reads or {}),
        services=declared_services(desired),
    )


def _reference_names(operations: Sequence[Operation], live: LiveState) -> dict[str, str]:
    """Names of the agents and state machines the changes refer to by id (for people)."""
    ids = {
        value
        for op in operations
        for change in op.changes
        if change.path.endswith(("agent_id", "service_hierarchical_state_machine_id"))
        for value in (change.old, change.new)
        if isinstance(value, str)
    }
    known = (*(live.agents or ()), *(live.state_machines or ()))
    return {record.id: record.name for record in known if record.id in ids}


def _pins(want: DesiredService, field: str) -> bool:
    return any(getattr(vs, field) is not None for vs in want.version_sets.values())


def _changes_reference(want: DesiredService, live: LiveService | None, id_field: str) -> bool:
    """Creates, activates, or moves to another agent / state machine (given by id)."""
    if live is None or (want.is_active and not live.is_active):
        return True
    new_id = getattr(want, id_field)
    return new_id is not None and new_id != getattr(live, id_field)


def references_needed(
    desired: DesiredState, services: Sequence[LiveService], targets: Sequence[str] = ()
) -> tuple[bool, bool]:
    """(read agents?, read state machines?) for the manifests in scope: what `live` reads."""
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
