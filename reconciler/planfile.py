"""The saved plan: JSON writing and reading, checksum, content digest, sniffing.

A saved plan carries what is needed to refuse it when it is stale, foreign or
modified. The plan types themselves are `reconciler.plan`.

Saved form (`save_plan`; `reconciler plan --format json` prints the same), one
JSON object, format_version 1:

- `format_version` (int), `organization`, `base_url` (no credentials, ever),
  `manifests_digest`, `live_fingerprint` (sha256 of the normalized live
  services the plan was computed against), `created_at` (ISO 8601 UTC);
- `operations`: in execution order, each `{key, action, kind, service,
  service_id, version_set, changes: [{path, old, new}], request, depends_on,
  service_from, source: {file, line, column} | null, before}` (`source`: the manifest
  line the operation comes from: the changed field's for an update or version set,
  `is_active` for (de)activation, `metadata.name` for a rename; null for a prune of an
  undeclared service); `action` is the API call
  (create_service, update_service, upsert_version_set, delete_version_set),
  `kind` what it means (create, update, adopt, activate, deactivate, delete);
  `before` (optional) is, for an upsert of an existing version set, the set as read
  when planning (what `apply --verify --rollback-on-failure` restores), else null;
  it is not part of the plan digest (it is not a call the plan makes);
- `summary` (kind -> count), `drift` ([{service, service_id, version_set,
  message}]), `warnings` / `errors` ([{severity, message, field, service,
  pos}]), `prune`, `targets`, `api_reads` (operation id -> requests);
- `reference_names` (optional; agent / state machine id -> name): the names of
  the agents and state machines the changes refer to by id, so people see
  `agent_id: "b4f7..." (named "Concierge")`; informational, never sent to the API;
- `live_services` (optional; service id -> `[name, digest]`, sorted by id): each
  live service the plan was computed against, with the first 16 hex digits of
  the sha256 of the same normalized record the `live_fingerprint` covers, so a
  stale plan's refusal can name the services added, removed or changed since;
  absent in plans from before it existed (those get the generic refusal);
- `plan_digest`: `plan_digest(plan)`, the content digest of what the plan would do
  (see below); shown by every render format so a reviewer can tell two plans apart;
- `environment` (string or null: the `--env` it was planned for; null without one, and in
  plan files from before environments; not part of `plan_digest`, which is about the calls
  made — the organization it covers already tells two targets apart — and `apply` checks it
  separately, as it does the base URL) and `services`
  (optional): every declared service as written, with its source position
  (reconciler/declared.py). With these the plan file is also the policy input
  document (docs/policy.md), so conftest reads it unchanged;
- `rehearsal` (optional; absent when the plan was not rehearsed, and in plans
  from before it existed): `{operations, accepted, skipped, refused: [{key,
  service, description, rule, detail, status, interpretation}], remaining:
  [text], error}`, the plan applied first to an in-memory copy of live state
  (reconciler/rehearsal.py). Not part of what the plan does: the digest leaves it out;
- `checksum`: sha256 of the canonical JSON (sorted keys, no spaces) of every
  other key, so an edited file is refused on load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from reconciler.diagnostics import Diagnostic, Severity, SourcePos, UserError
from reconciler.diff import Change
from reconciler.plan import (
    FORMAT_VERSION,
    Action,
    Drift,
    Kind,
    Operation,
    Plan,
    Rehearsal,
    RehearsalRefusal,
    canonical_json,
)
from reconciler.redaction import redact


def public_base_url(url: str) -> str:
    """The base URL without any user:password part, so no credential lands in a plan."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _pos_to_dict(pos: SourcePos | None) -> dict[str, Any] | None:
    return None if pos is None else {"file": pos.file, "line": pos.line, "column": pos.column}


def _diagnostic_to_dict(diag: Diagnostic) -> dict[str, Any]:
    return {
        "severity": diag.severity.value,
        "message": diag.message,
        "field": diag.field,
        "service": diag.service,
        "pos": _pos_to_dict(diag.pos),
    }


def operation_to_dict(op: Operation) -> dict[str, Any]:
    return {
        "key": op.key,
        "action": op.action.value,
        "kind": op.kind.value,
        "service": op.service,
        "service_id": op.service_id,
        "version_set": op.version_set,
        "changes": [{"path": c.path, "old": c.old, "new": c.new} for c in op.changes],
        "request": op.request,
        "depends_on": list(op.depends_on),
        "service_from": op.service_from,
        "source": _pos_to_dict(op.source),
        "before": op.before,
    }


def plan_digest(plan: Plan) -> str:
    """A stable content digest of what the plan would do: `sha256:` and 64 hex digits.

    It covers the organization, --prune, --target and every operation (its API call,
    target service and version set, field changes and exact request, order and
    dependencies) and nothing else: not the time it was made, the base URL it was
    reached through (apply checks that separately), the live fingerprint, API read
    counts or manifest line numbers. Two plans with the same
    digest make the same calls, so the digest on a pull request's plan can be
    compared with the one planned at merge time.
    """
    body = {
        "organization": plan.organization,
        "prune": plan.prune,
        "targets": sorted(plan.targets),
        "operations": [
            {k: v for k, v in operation_to_dict(op).items() if k not in ("source", "before")}
            for op in plan.operations
        ],
    }
    return "sha256:" + hashlib.sha256(canonical_json(json.loads(canonical_json(body)))).hexdigest()


def _plan_body(plan: Plan) -> dict[str, Any]:
    """The documented JSON form without the checksum, before normalization through JSON."""
    data: dict[str, Any] = {
        "format_version": plan.format_version,
        "organization": plan.organization,
        "base_url": public_base_url(plan.base_url),
        "manifests_digest": plan.manifests_digest,
        "live_fingerprint": plan.live_fingerprint,
        "created_at": plan.created_at,
        "operations": [operation_to_dict(op) for op in plan.operations],
        "summary": plan.summary,
        "drift": [
            {
                "service": d.service,
                "service_id": d.service_id,
                "version_set": d.version_set,
                "message": d.message,
            }
            for d in plan.drift
        ],
        "warnings": [_diagnostic_to_dict(d) for d in plan.warnings],
        "errors": [_diagnostic_to_dict(d) for d in plan.errors],
        "prune": plan.prune,
        "targets": list(plan.targets),
        "api_reads": dict(sorted(plan.api_reads.items())),
        "reference_names": dict(sorted(plan.reference_names.items())),
        "plan_digest": plan_digest(plan),
        "environment": plan.environment,
    }
    if plan.services is not None:
        data["services"] = [dict(s) for s in plan.services]
    if plan.live_services is not None:
        data["live_services"] = {
            service_id: [name, digest]
            for service_id, (name, digest) in sorted(plan.live_services.items())
        }
    if plan.rehearsal is not None:
        data["rehearsal"] = rehearsal_to_dict(plan.rehearsal)
    return data


def rehearsal_to_dict(rehearsal: Rehearsal) -> dict[str, Any]:
    """The saved form of a rehearsal (see the module docstring)."""
    return {
        "operations": rehearsal.operations,
        "accepted": rehearsal.accepted,
        "skipped": rehearsal.skipped,
        "refused": [
            {
                "key": r.key,
                "service": r.service,
                "description": r.description,
                "rule": r.rule,
                "detail": r.detail,
                "status": r.status,
                "interpretation": r.interpretation,
            }
            for r in rehearsal.refused
        ],
        "remaining": list(rehearsal.remaining),
        "error": rehearsal.error,
    }


def _rehearsal_from(data: Any) -> Rehearsal | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise _Shape("rehearsal is not an object")
    remaining = _get(data, "remaining", list, "rehearsal.")
    if not all(isinstance(line, str) for line in remaining):
        raise _Shape("rehearsal.remaining is not a list of strings")
    return Rehearsal(
        operations=_get(data, "operations", int, "rehearsal."),
        accepted=_get(data, "accepted", int, "rehearsal."),
        skipped=_get(data, "skipped", int, "rehearsal."),
        refused=tuple(
            RehearsalRefusal(
                key=_get(r, "key", str, f"rehearsal.refused[{i}]."),
                service=_get(r, "service", str, f"rehearsal.refused[{i}]."),
                description=_get(r, "description", str, f"rehearsal.refused[{i}]."),
                rule=_get(r, "rule", str, f"rehearsal.refused[{i}]."),
                detail=_get(r, "detail", str, f"rehearsal.refused[{i}]."),
                status=_get(r, "status", (int, type(None)), f"rehearsal.refused[{i}]."),
                interpretation=_get(
                    r, "interpretation", (str, type(None)), f"rehearsal.refused[{i}]."
                ),
            )
            for i, r in enumerate(_get(data, "refused", list, "rehearsal."))
        ),
        remaining=tuple(remaining),
        error=_get(data, "error", (str, type(None)), "rehearsal."),
    )


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The documented JSON form (see the module docstring), checksum included."""
    # Round-trip through JSON so the checksum covers exactly what is written, and through
    # the one redaction of the API key, so no plan file or JSON output can carry it.
    data: dict[str, Any] = json.loads(redact(canonical_json(_plan_body(plan)).decode("utf-8")))
    data["checksum"] = checksum(data)
    return data


def plan_to_canonical_json(plan: Plan) -> str:
    """The same document as `plan_to_dict`, as compact JSON text, serialized once.

    For consumers that parse JSON themselves (the policy engine): it skips the
    round trip through Python objects, which costs as much as the plan at 5,000
    services. The checksum is that of the same canonical bytes.
    """
    text = redact(canonical_json(_plan_body(plan)).decode("utf-8"))
    digest = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text[:-1] + ',"checksum":' + json.dumps(digest) + "}"


def checksum(data: Mapping[str, Any]) -> str:
    """The `checksum` a plan file's dict must carry (sha256 of every other key, canonical)."""
    body = {k: v for k, v in data.items() if k != "checksum"}
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def plan_to_json(plan: Plan) -> str:
    return json.dumps(plan_to_dict(plan), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def save_plan(plan: Plan, path: str | Path) -> None:
    """Write the plan as JSON (atomically: a reader never sees half a file)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        temporary.write_text(plan_to_json(plan), encoding="utf-8")
        temporary.replace(target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UserError(f"cannot write plan file {target}: {exc.strerror or exc}") from None


class _Shape(Exception):
    """A field of a plan file is missing or has the wrong type (message: its path)."""


def _get(data: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(data, Mapping) or key not in data:
        raise _Shape(f"{where}{key} is missing")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
        raise _Shape(f"{where}{key} has the wrong type ({type(value).__name__})")
    return value


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _pos_from(data: Any, where: str) -> SourcePos | None:
    if data is None:
        return None
    return SourcePos(
        _get(data, "file", str, where),
        _get(data, "line", int, where),
        _get(data, "column", int, where),
    )


def _diagnostic_from(data: Any, where: str) -> Diagnostic:
    severity = _get(data, "severity", str, where)
    try:
        level = Severity(severity)
    except ValueError:
        raise _Shape(f"{where}severity {severity!r} is not error or warning") from None
    return Diagnostic(
        _get(data, "message", str, where),
        severity=level,
        pos=_pos_from(data.get("pos"), f"{where}pos."),
        field=_get(data, "field", (str, type(None)), where),
        service=_get(data, "service", (str, type(None)), where),
    )


def _operation_from(data: Any, where: str) -> Operation:
    try:
        action = Action(_get(data, "action", str, where))
        kind = Kind(_get(data, "kind", str, where))
    except ValueError as exc:
        raise _Shape(f"{where}{exc}") from None
    changes = tuple(
        Change(_get(c, "path", str, f"{where}changes[{i}]."), c.get("old"), c.get("new"))
        for i, c in enumerate(_get(data, "changes", list, where))
    )
    return Operation(
        key=_get(data, "key", str, where),
        action=action,
        kind=kind,
        service=_get(data, "service", str, where),
        service_id=_get(data, "service_id", (str, type(None)), where),
        version_set=_get(data, "version_set", (str, type(None)), where),
        changes=changes,
        request=_get(data, "request", dict, where),
        depends_on=tuple(_get(data, "depends_on", list, where)),
        service_from=_get(data, "service_from", (str, type(None)), where),
        source=_pos_from(data.get("source"), f"{where}source."),
        before=_get(data, "before", (dict, type(None)), where) if "before" in data else None,
    )


def _live_services_from(data: Any) -> dict[str, tuple[str, str]] | None:
    if data is None:  # absent in plans from before it existed
        return None
    if not isinstance(data, dict) or not all(
        isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, str) for x in entry)
        for entry in data.values()
    ):
        raise _Shape("live_services is not a map of service id to [name, digest]")
    return {str(service_id): (entry[0], entry[1]) for service_id, entry in data.items()}


def plan_from_dict(data: Any, *, name: str = "plan") -> Plan:
    """Check and rebuild a Plan from its saved form; UserError naming what is wrong."""
    if not isinstance(data, dict) or "format_version" not in data:
        raise UserError(f"{name} is not a reconciler plan (no format_version)")
    if "checksum" not in data:  # other JSON the reconciler writes (a report, an export)
        raise UserError(
            f"{name} is not a saved plan (it has no checksum): `reconciler show` renders "
            "plans and apply reports; pass a file written by `reconciler plan --out FILE`"
        )
    version = data["format_version"]
    if version != FORMAT_VERSION:
        raise UserError(
            f"{name} has plan format_version {version!r}; this reconciler reads version "
            f"{FORMAT_VERSION}: re-run `reconciler plan --out` with this version"
        )
    if data.get("checksum") != checksum(data):
        raise UserError(
            f"{name} was modified after it was written (checksum mismatch); a plan file "
            "must be applied as `reconciler plan --out` wrote it: plan again"
        )
    try:
        operations = tuple(
            _operation_from(op, f"operations[{i}].")
            for i, op in enumerate(_get(data, "operations", list, ""))
        )
        keys = {op.key for op in operations}
        for op in operations:
            missing = [k for k in (*op.depends_on, op.service_from) if k and k not in keys]
            if missing:
                raise _Shape(f"operation {op.key} depends on unknown {', '.join(missing)}")
        api_reads = _get(data, "api_reads", dict, "")
        names = data.get("reference_names", {})  # absent in plans from before it existed
        if not isinstance(names, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in names.items()
        ):
            raise _Shape("reference_names is not a map of id to name")
        live_services = _live_services_from(data.get("live_services"))
        services = data.get("services")  # absent in plans from before it existed
        if services is not None and not (
            isinstance(services, list) and all(isinstance(s, dict) for s in services)
        ):
            raise _Shape("services is not a list of service documents")
        environment = (
            _get(data, "environment", (str, type(None)), "") if "environment" in data else None
        )
        return Plan(
            organization=_get(data, "organization", str, ""),
            base_url=_get(data, "base_url", str, ""),
            manifests_digest=_get(data, "manifests_digest", str, ""),
            live_fingerprint=_get(data, "live_fingerprint", str, ""),
            created_at=_get(data, "created_at", str, ""),
            operations=operations,
            drift=tuple(
                Drift(
                    _get(d, "service", str, f"drift[{i}]."),
                    _get(d, "service_id", str, f"drift[{i}]."),
                    _get(d, "message", str, f"drift[{i}]."),
                    _get(d, "version_set", (str, type(None)), f"drift[{i}]."),
                )
                for i, d in enumerate(_get(data, "drift", list, ""))
            ),
            warnings=tuple(
                _diagnostic_from(d, f"warnings[{i}].")
                for i, d in enumerate(_get(data, "warnings", list, ""))
            ),
            errors=tuple(
                _diagnostic_from(d, f"errors[{i}].")
                for i, d in enumerate(_get(data, "errors", list, ""))
            ),
            prune=_get(data, "prune", bool, ""),
            targets=tuple(_get(data, "targets", list, "")),
            api_reads={str(k): int(v) for k, v in api_reads.items()},
            reference_names=dict(names),
            live_services=live_services,
            services=None if services is None else tuple(services),
            environment=environment,
            rehearsal=_rehearsal_from(data.get("rehearsal")),  # absent in older plans
        )
    except _Shape as exc:
        raise UserError(f"{name} is not a valid reconciler plan: {exc}") from None


# Top-level keys only a saved plan has; `plan_to_json` sorts keys, so `api_reads`
# leads the file and a short head always shows it at the top level.
_PLAN_KEYS = frozenset({"format_version", "api_reads", "checksum", "live_fingerprint"})
_MANIFEST_KEYS = frozenset({"apiVersion", "kind"})
PLAN_SNIFF_BYTES = 4096


def read_json(path: str | Path, what: str, hint: str) -> Any:
    """Decoded JSON of a file written by the reconciler; UserError naming the file (and the
    line and column of a syntax error) and `hint`, which says what to pass instead."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {what} {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {source} is not UTF-8 text ({hint})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{what} {source} is not JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}); {hint}"
        ) from None


def _top_level_keys(text: str) -> list[str]:
    """The keys of the JSON object `text` opens with, as far as `text` goes.

    A small scanner, not a parser: the head may be cut anywhere, so it tracks
    only nesting and strings, and takes a string at depth 1 followed by `:` as
    a key. Keys nested deeper (a tag named `checksum`) are never returned.
    """
    keys: list[str] = []
    depth = 0
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char == '"':
            end = index + 1
            while end < length and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if end >= length:
                break
            if depth == 1:
                rest = text[end + 1 :].lstrip()
                if rest.startswith(":"):
                    keys.append(text[index + 1 : end])  # raw: the keys sought have no escapes
            index = end + 1
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth <= 0:
                break
        index += 1
    return keys


def looks_like_saved_plan(path: str | Path) -> bool:
    """Whether `path` is a saved plan, judged by its first bytes, whatever its name.

    Only the top-level keys of the JSON object the file opens with count: one
    with `apiVersion` or `kind` is a manifest written as JSON, never a plan;
    one with a plan's key (`api_reads`, `checksum`, ...) is a plan (so
    `plan --out p.yaml` then `apply p.yaml` works). The same keys nested
    anywhere (a tag named `checksum`) mean nothing. Any other JSON object counts
    as a plan unless it is named `*.yaml` / `*.yml`, so `load_plan` says why it
    is not one. Reads at most PLAN_SNIFF_BYTES, never blocks on a FIFO or device.
    """
    from reconciler.sniff import read_head

    head = read_head(path, PLAN_SNIFF_BYTES)
    if head is None:
        return False
    text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace").lstrip()
    if not text.startswith("{"):
        return False
    keys = set(_top_level_keys(text))
    if keys & _MANIFEST_KEYS:
        return False
    if keys & _PLAN_KEYS:
        return True
    return Path(path).suffix.lower() not in (".yaml", ".yml")


def load_plan(path: str | Path) -> Plan:
    """Read a saved plan; refuses a modified, unknown-version or malformed file."""
    data = read_json(path, "plan file", "pass a file written by `reconciler plan --out`")
    return plan_from_dict(data, name=f"plan file {Path(path)}")


def check_plan_target(
    plan: Plan,
    *,
    organization: str,
    base_url: str,
    environment: str | None = None,
    command: str = "apply",
) -> None:
    """Refuse a plan made for another environment, organization or API (a foreign plan).

    A plan made with `--env X` is applied only with `--env X`; a plan made without
    --env (or an older plan file, whose `environment` is null) with any or none.
    """
    if plan.environment is not None and plan.environment != environment:
        wanted = f"--env {plan.environment}"
        given = f"--env {environment}" if environment is not None else "no --env"
        raise UserError(
            f"the plan was made for environment {plan.environment!r}, but {command} was given "
            f"{given}; run `reconciler {command}` with {wanted}, or plan again for this "
            "environment"
        )
    if plan.organization != organization:
        raise UserError(
            f"the plan was made for organization {plan.organization!r}, but the connection "
            f"is to {organization!r}; plan again against this organization"
        )
    if public_base_url(plan.base_url).rstrip("/") != public_base_url(base_url).rstrip("/"):
        raise UserError(
            f"the plan was made against {public_base_url(plan.base_url)}, but the connection "
            f"is to {public_base_url(base_url)}; plan again against this API"
        )
