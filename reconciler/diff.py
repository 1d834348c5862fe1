"""Field-level differences between a live and a desired resource.

The planner decides *whether* to call the API by comparing whole normalized
values; this module says *what* differs, one `Change(path, old, new)` per leaf,
so a reviewer reads `tags.team: growth -> search` rather than two blobs.

Conventions (they are what the renderers and the saved plan show):
- maps (tags, `llm_model_preferences`, `params`) are compared key by key; a key
  only on one side shows `None` on the other;
- lists (keyterms) are ordered and user-visible, so they are compared as whole
  values: `keyterms: [a, b] -> [b, a]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model import (
    FIELD_NAMES,
    OWNERSHIP_TAG_KEY,
    SERVICE_FIELDS,
    DesiredService,
    LiveService,
    VersionSet,
)

OWNERSHIP_TAG_PATH = f"tags.{OWNERSHIP_TAG_KEY}"


@dataclass(frozen=True, slots=True)
class Change:
    """One field-level difference: `path: old -> new`."""

    path: str
    old: Any
    new: Any


def _plain(value: Any) -> Any:
    """Mappings -> dicts and tuples -> lists, so the comparison and JSON see one shape."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _lookup(data: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def _leaves(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(path, value) for every leaf of nested maps; lists and empty maps are leaves."""
    if isinstance(data, Mapping) and data:
        out: list[tuple[str, Any]] = []
        for key, value in data.items():
            out.extend(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [(prefix, data)]


def _same(old: Any, new: Any) -> bool:
    """Equal with equal types all the way down (1 and 1.0, or 1 and True, differ)."""
    if type(old) is not type(new):
        return False
    if isinstance(old, list):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True))
    if isinstance(old, dict):
        return old.keys() == new.keys() and all(_same(v, new[k]) for k, v in old.items())
    return bool(old == new)


def _differing_paths(
    old: Any, new: Any, prefix: tuple[str, ...], out: list[tuple[str, ...]]
) -> None:
    """Paths where two plain values differ: maps key by key, anything else (lists too) whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old.keys() | new.keys():
            path = (*prefix, str(key))
            if key not in old or key not in new:
                out.append(path)
            else:
                _differing_paths(old[key], new[key], path, out)
    elif not _same(old, new):
        out.append(prefix)


def diff_values(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[Change, ...]:
    """Leaf-level changes from `old` to `new`; lists are whole values. Sorted by path.

    A whole new (or removed) map shows as its leaves, so a created service reads
    `name: "X"`, `tags.team: "growth"`, ... rather than one blob.
    """
    if not old or not new:
        side = _plain(new) if not old else _plain(old)
        leaves = _leaves(side) if side else []
        return tuple(
            sorted(
                (Change(p, None, v) if not old else Change(p, v, None) for p, v in leaves),
                key=lambda c: c.path,
            )
        )
    old_plain, new_plain = _plain(old), _plain(new)
    paths: list[tuple[str, ...]] = []
    _differing_paths(old_plain, new_plain, (), paths)
    changes = [
        Change(".".join(p), _lookup(old_plain, list(p)), _lookup(new_plain, list(p))) for p in paths
    ]
    return tuple(sorted(changes, key=lambda c: c.path))


def service_fields(service: LiveService) -> dict[str, Any]:
    """The update-able fields (`model.SERVICE_FIELDS`) of a live service, as plain values."""
    return service.fields()


def desired_fields(
    want: DesiredService, live: LiveService | None, references: Mapping[str, str | None]
) -> dict[str, Any]:
    """The update-able fields as a manifest wants them, plain, in `SERVICE_FIELDS` order.

    `references` holds the resolved id of each field a manifest may give by name
    (`agent_id`: the agent named, or given by id); None keeps the live id. A field
    the manifest leaves unmanaged keeps its live value (empty for a new service).
    """
    out: dict[str, Any] = {}
    for f in SERVICE_FIELDS:
        value = references.get(f.name) if f.by_name else getattr(want, f.name)
        if value is None:
            value = getattr(live, f.name) if live is not None else f.empty()
        out[f.name] = f.plain(value)
    return out


def diff_service(live: Mapping[str, Any], desired: Mapping[str, Any]) -> tuple[Change, ...]:
    """Changes between two `service_fields`-shaped maps, in SERVICE_FIELDS order."""
    changes = diff_values(live, desired)
    order = {name: i for i, name in enumerate(FIELD_NAMES)}
    return tuple(
        sorted(changes, key=lambda c: (order.get(c.path.split(".")[0], len(order)), c.path))
    )


def changed_fields(live: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """Top-level fields whose whole value differs (what an update request must send)."""
    return [f for f in FIELD_NAMES if f in desired and _plain(live.get(f)) != _plain(desired[f])]


def diff_version_set(old: VersionSet | None, new: VersionSet | None) -> tuple[Change, ...]:
    """Changes inside one version set (paths relative to it); None means absent."""
    return diff_values(old.to_api() if old else {}, new.to_api() if new else {})


def is_user_visible(change: Change) -> bool:
    """The ownership tag is the reconciler's bookkeeping, never shown as a user change."""
    return change.path != OWNERSHIP_TAG_PATH
