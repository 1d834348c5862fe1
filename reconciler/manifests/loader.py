"""The manifest loader: files -> validated desired state, every problem reported together.

`positioned.py` turns each document into values and positions, `spec.py` checks
the shape, and every error is mapped back to the YAML node it is about. All
problems in all files are collected and raised together as one `UserError`, so a
single run tells the author everything that needs fixing. `index_documents` gives
in-place editors (promote) the loader's own position index.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import Node, ScalarNode

from reconciler.diagnostics import (
    Diagnostic,
    Severity,
    SourcePos,
    UserError,
    close_matches,
    did_you_mean,
)
from reconciler.gcpause import fewer_collections
from reconciler.manifests.positioned import (
    MAX_DEPTH,
    MAX_NODES_PER_DOCUMENT,
    Composer,
    Document,
    DocumentBuilder,
    ManifestFile,
    TooLarge,
    collect_files,
    compose,
    is_empty,
    read_file,
)
from reconciler.manifests.spec import (
    KNOWN_LLM_NAMES,
    NOT_BLANK_PATTERN,
    PATTERN_HINTS,
    ServiceManifest,
    fields_at,
)
from reconciler.model import DesiredService, DesiredState, LLMConfig, VersionSet
from reconciler.yaml_diagnostics import dotted, error_node, node_pos, yaml_error

_MANIFEST_KEYS = frozenset(ServiceManifest.model_fields)


def _kind_of(value: Any) -> str:
    """What a value is, never what it says."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping" if isinstance(value, dict) else type(value).__name__


def _describe_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!s}"


def _message_for(error: Mapping[str, Any], loc: tuple[str | int, ...], node: Node | None) -> str:
    """Pydantic's error, said for a manifest author: what was wrong and what would be valid."""
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return f"the required field '{loc[-1]}' is missing"
    if kind == "extra_forbidden":
        allowed = fields_at(loc[:-1])
        key = str(loc[-1])
        hint = did_you_mean(key, allowed)
        valid = f" Valid fields here: {', '.join(allowed)}." if allowed else ""
        return f"unknown field '{key}'{hint}{valid}"
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        return f"must be {expected}, not {_describe_kind(value)}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        hint = PATTERN_HINTS.get(pattern, f"it must match {pattern}")
        if pattern == NOT_BLANK_PATTERN:
            return f"must not be empty or only whitespace; {hint}"
        return f"{value!r} is not valid: {hint} (pattern {pattern})"
    if kind == "string_too_short":
        return "must not be empty or only whitespace"
    if kind == "string_too_long":
        return f"{value!r} is {len(str(value))} characters; at most {ctx.get('max_length')} are allowed"
    if kind == "too_long":
        what = "entries" if isinstance(value, dict) else "items"
        count = len(value) if isinstance(value, dict | list) else ctx.get("actual_length")
        return f"has {count} {what}; the API allows at most {ctx.get('max_length')}"
    if kind == "string_type":
        quote = ""
        if isinstance(node, ScalarNode) and value is not None:
            quote = f'; write it in quotes ("{node.value}") to make it a string'
        return f"expected a string, found {_describe_kind(value)}{quote}"
    if kind == "int_type":
        return f"expected a whole number (or null for the latest), found {_describe_kind(value)}"
    if kind == "greater_than_equal":
        return (
            f"version numbers start at {ctx.get('ge')}, found {value}; "
            "use null (or leave it out) for the latest version"
        )
    if kind == "bool_type":
        return f"expected true or false, found {_describe_kind(value)}"
    if kind in ("dict_type", "model_type"):
        hint = ""
        if value is None and len(loc) == 3 and loc[:2] == ("spec", "version_sets"):
            hint = f"; write '{loc[2]}: {{}}' for the latest versions and no LLM preferences"
        return f"expected a mapping, found {_describe_kind(value)}{hint}"
    if kind == "list_type":
        return f"expected a list, found {_describe_kind(value)}"
    return str(error.get("msg", "invalid value"))


def _pydantic_diagnostics(doc: Document, exc: ValidationError) -> list[Diagnostic]:
    diagnostics = []
    errors = exc.errors(include_url=False)

    def find(loc: tuple[str | int, ...]) -> tuple[Node | None, Node] | None:
        return doc.index.get(dotted(loc))

    # A misspelled required field shows as "unknown 'descripton'" and "missing
    # 'description'": the first (with its "did you mean") says it all.
    suggested = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            parent = tuple(error["loc"][:-1])
            for guess in close_matches(str(error["loc"][-1]), fields_at(parent)):
                suggested.add((*parent, guess))
    for error in errors:
        loc: tuple[str | int, ...] = tuple(error["loc"])
        if error["type"] == "missing" and loc in suggested:
            continue
        on_key = bool(loc) and loc[-1] == "[key]"
        if on_key:
            loc = loc[:-1]
        path = dotted(loc)
        if path in doc.reported:
            continue
        node = error_node(find, loc, error["type"], on_key=on_key) or doc.root
        message = _message_for(error, loc, node)
        diagnostics.append(Diagnostic(message, pos=node_pos(doc.file, node), field=path or None))
    return diagnostics


def _exactly_one(doc: Document, spec: Any, name_field: str, what: str) -> list[Diagnostic]:
    """`agent` xor `agent_id` (and the same for the state machine), said where it matters."""
    if not isinstance(spec, dict):
        return []
    id_field = f"{name_field}_id"
    has_name, has_id = spec.get(name_field) is not None, spec.get(id_field) is not None
    if has_name and has_id:
        node = doc.index[f"spec.{id_field}"][0] or doc.index[f"spec.{id_field}"][1]
        return [
            Diagnostic(
                f"give either {name_field} (the {what}'s name) or {id_field} (its id), not both",
                pos=node_pos(doc.file, node),
                field=f"spec.{id_field}",
            )
        ]
    if not has_name and not has_id:
        for path in (f"spec.{name_field}", f"spec.{id_field}"):
            if path in doc.reported:
                return []
        return [
            Diagnostic(
                f"the {what} is missing: give {name_field} (its name in the organization) "
                f"or {id_field} (its 24-character id)",
                pos=node_pos(doc.file, doc.index["spec"][1]),
                field="spec",
            )
        ]
    return []


class _Positions(Mapping[str, SourcePos]):
    """Field path -> position, turned into `SourcePos` only when asked for.

    A plan reads a handful of positions out of thousands; building them all
    up front was a fifth of the load time.
    """

    __slots__ = ("_file", "_marks")

    def __init__(self, file: str, marks: dict[str, Any]) -> None:
        self._file = file
        self._marks = marks

    def __getitem__(self, path: str) -> SourcePos:
        mark = self._marks[path]
        return SourcePos(self._file, mark.line + 1, mark.column + 1)

    def __iter__(self) -> Iterator[str]:
        return iter(self._marks)

    def __len__(self) -> int:
        return len(self._marks)

    def __contains__(self, path: object) -> bool:
        return path in self._marks

    def __repr__(self) -> str:
        return repr(dict(self))


def _to_desired(doc: Document, manifest: ServiceManifest) -> DesiredService:
    file = doc.file
    positions = _Positions(
        file, {path: value.start_mark for path, (_key, value) in doc.index.items() if path}
    )
    spec = manifest.spec
    return DesiredService(
        name=manifest.metadata.name,
        description=spec.description,
        source=node_pos(file, doc.root),
        id=manifest.metadata.id,
        environments=(
            None
            if manifest.metadata.environments is None
            else tuple(manifest.metadata.environments)
        ),
        is_active=spec.is_active,
        agent=spec.agent,
        agent_id=spec.agent_id,
        service_hierarchical_state_machine=spec.service_hierarchical_state_machine,
        service_hierarchical_state_machine_id=spec.service_hierarchical_state_machine_id,
        tags=None if spec.tags is None else dict(spec.tags),
        keyterms=None if spec.keyterms is None else tuple(spec.keyterms),
        version_sets={
            name: VersionSet(
                agent_version_number=vs.agent_version_number,
                service_hierarchical_state_machine_version_number=(
                    vs.service_hierarchical_state_machine_version_number
                ),
                llm_model_preferences={
                    kind: LLMConfig(llm_name=config.llm_name, params=config.params)
                    for kind, config in vs.llm_model_preferences.items()
                },
            )
            for name, vs in spec.version_sets.items()
        },
        verify={
            name: tuple(vs.verify.unit_test_sets)
            for name, vs in spec.version_sets.items()
            if vs.verify is not None
        },
        positions=positions,
    )


def _llm_warnings(service: DesiredService) -> list[Diagnostic]:
    warnings = []
    for set_name, version_set in service.version_sets.items():
        for kind, config in version_set.llm_model_preferences.items():
            if config.llm_name in KNOWN_LLM_NAMES:
                continue
            path = f"spec.version_sets.{set_name}.llm_model_preferences.{kind}.llm_name"
            hint = did_you_mean(config.llm_name, KNOWN_LLM_NAMES)
            hint = hint or f"; known: {', '.join(KNOWN_LLM_NAMES)}"
            warnings.append(
                Diagnostic(
                    f"'{config.llm_name}' is not in the API's LLMType list, which is "
                    "closed: the plan refuses this name whenever it sends this version "
                    f"set to the API (left unchanged live, it is not sent){hint}",
                    severity=Severity.WARNING,
                    pos=service.pos(path),
                    field=path,
                    service=service.name,
                )
            )
    return warnings


def _disjoint(a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> bool:
    """Two `metadata.environments` lists no environment shares (None: every environment)."""
    return a is not None and b is not None and not set(a) & set(b)


def _duplicates(services: Sequence[DesiredService]) -> list[Diagnostic]:
    """Two documents claiming one service: the same pinned id, or the same name.

    Documents that share a name are distinct services only when both pin different
    ids and at most one is active (the API lets only one active service hold a name),
    or are one service declared for different environments (`metadata.environments`
    lists that share none).
    """
    diagnostics = []
    by_id: dict[str, DesiredService] = {}
    by_name: dict[str, list[DesiredService]] = {}
    for service in services:
        if service.id is not None:
            first = by_id.setdefault(service.id, service)
            if first is not service:
                diagnostics.append(
                    Diagnostic(
                        f"the service id {service.id} is also pinned by '{first.name}' at "
                        f"{first.pos('metadata.id')}; each service may be declared only once",
                        pos=service.pos("metadata.id"),
                        field="metadata.id",
                        service=service.name,
                    )
                )
                continue
        earlier = by_name.setdefault(service.name, [])
        for first in earlier:
            distinct_ids = (
                first.id is not None and service.id is not None and first.id != service.id
            )
            if distinct_ids and not (first.is_active and service.is_active):
                continue
            if _disjoint(first.environments, service.environments):
                continue  # one service, declared once per environment (metadata.environments)
            reason = (
                "only one active service may hold a name"
                if distinct_ids
                else "each service may be declared only once (services sharing a name must "
                "each pin their metadata.id, and at most one may be active)"
            )
            diagnostics.append(
                Diagnostic(
                    f"the service '{service.name}' is also declared at "
                    f"{first.pos('metadata.name')}; {reason}",
                    pos=service.pos("metadata.name"),
                    field="metadata.name",
                    service=service.name,
                )
            )
            break
        earlier.append(service)
    return diagnostics


def _validate(doc: Document, diagnostics: list[Diagnostic]) -> DesiredService | None:
    data = doc.data
    if (
        isinstance(data, dict)
        and "format_version" in data
        and "checksum" in data
        and "apiVersion" not in data
    ):
        diagnostics.append(
            Diagnostic(
                "this is a saved plan (written by `reconciler plan --out`), not a manifest: "
                f"apply it with `reconciler apply {doc.file}`",
                pos=node_pos(doc.file, doc.root),
            )
        )
        return None
    if not isinstance(data, dict) or not _MANIFEST_KEYS.intersection(data):
        # Not a manifest at all: say so without repeating what the file holds.
        what = "a mapping without any of them" if isinstance(data, dict) else _kind_of(data)
        diagnostics.append(
            Diagnostic(
                f"not a service manifest: a manifest document is a mapping with apiVersion, "
                f"kind, metadata and spec, not {what}",
                pos=node_pos(doc.file, doc.root),
            )
        )
        return None
    problems = _exactly_one(doc, data.get("spec"), "agent", "agent")
    problems += _exactly_one(
        doc, data.get("spec"), "service_hierarchical_state_machine", "state machine"
    )
    try:
        manifest = ServiceManifest.model_validate(data)
    except ValidationError as exc:
        diagnostics.extend(_pydantic_diagnostics(doc, exc))
        diagnostics.extend(problems)
        return None
    if problems or doc.reported:
        diagnostics.extend(problems)
        return None
    return _to_desired(doc, manifest)


@fewer_collections()
def load_manifests(
    paths: Sequence[str | Path], env: Mapping[str, str] | None = None
) -> DesiredState:
    """Load, fill and validate manifests; raise `UserError` with every problem found.

    `paths` are files (any name) and directories (read recursively for `*.yaml` /
    `*.yml`, hidden directories skipped). `env` fills `${VAR}`; None means the
    process environment. On success, warnings (an `llm_name` the API may not know)
    are in `DesiredState.warnings`; on failure they ride along in the `UserError`
    after the errors, ordered by file, line and column.
    """
    environment: Mapping[str, str] = os.environ if env is None else env
    diagnostics: list[Diagnostic] = []
    if not paths:
        raise UserError("no manifest paths given: name files or directories of manifests")
    files = collect_files(paths, diagnostics)
    digest = hashlib.sha256()
    services: list[DesiredService] = []
    for file in sorted(files, key=lambda f: f.display):
        data = read_file(file, diagnostics)
        if data is None:
            continue
        filled: list[str] = []
        for root in compose(file.display, data, diagnostics):
            if is_empty(root):
                continue
            doc = Document(file.display, root)
            doc.index[""] = (None, root)
            builder = DocumentBuilder(doc, environment, filled, diagnostics)
            try:
                doc.data = builder.build(root, "", 0)
            except TooLarge:
                diagnostics.append(
                    Diagnostic(
                        f"the document is too large or too deeply nested once its aliases are "
                        f"expanded (more than {MAX_NODES_PER_DOCUMENT} values or {MAX_DEPTH} "
                        "levels); a service manifest needs far fewer: is it an alias bomb?",
                        pos=node_pos(file.display, root),
                    )
                )
                continue
            service = _validate(doc, diagnostics)
            if service is not None:
                services.append(service)
        name = file.display.encode()
        digest.update(b"%d:%s%d:" % (len(name), name, len(data)))
        digest.update(data)
        for value in filled:
            encoded = value.encode()
            digest.update(b"%d:%s" % (len(encoded), encoded))
    diagnostics.extend(_duplicates(services))
    if not services and not diagnostics:
        shown = ", ".join(str(p) for p in paths)
        diagnostics.append(Diagnostic(f"no service manifests found in {shown}"))
    warnings = [w for s in services for w in _llm_warnings(s)]
    if any(d.severity is Severity.ERROR for d in diagnostics):
        raise UserError(_ordered(diagnostics + warnings, files))
    return DesiredState(
        services=tuple(services), digest=digest.hexdigest(), warnings=tuple(warnings)
    )


@dataclass(frozen=True, slots=True)
class IndexedDocument:
    """One composed document and the loader's own path index, for in-place editors.

    `index` maps a dotted field path to (key node, value node) exactly as the
    loader records it (merge keys resolved, explicit keys winning); node marks
    carry character offsets (`mark.index`) into the text that was composed.
    """

    root: Node
    index: Mapping[str, tuple[Node | None, Node]]


def index_documents(
    display: str, text: str, env: Mapping[str, str] | None = None
) -> list[IndexedDocument]:
    """The documents of one manifest text with their position index; UserError when unreadable."""
    environment: Mapping[str, str] = os.environ if env is None else env
    diagnostics: list[Diagnostic] = []
    documents: list[IndexedDocument] = []
    try:
        roots = list(yaml.compose_all(text, Loader=Composer))
    except yaml.YAMLError as exc:
        raise UserError([yaml_error(display, exc, text.encode())]) from None
    for root in roots:
        if is_empty(root):
            continue
        doc = Document(display, root)
        doc.index[""] = (None, root)
        try:
            doc.data = DocumentBuilder(doc, environment, [], diagnostics).build(root, "", 0)
        except TooLarge:
            raise UserError(
                [Diagnostic("the document is too large to edit", pos=node_pos(display, root))]
            ) from None
        documents.append(IndexedDocument(root, dict(doc.index)))
    return documents


def _ordered(diagnostics: list[Diagnostic], files: Sequence[ManifestFile]) -> list[Diagnostic]:
    """Path problems first, then by file (in load order), line and column."""
    order = {f.display: i for i, f in enumerate(sorted(files, key=lambda f: f.display))}

    def key(d: Diagnostic) -> tuple[int, int, int]:
        if d.pos is None:
            return (-1, 0, 0)
        return (order.get(d.pos.file, len(order)), d.pos.line, d.pos.column)

    return sorted(diagnostics, key=key)
