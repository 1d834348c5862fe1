"""Live state -> manifests: `reconciler export` lets a team adopt an organization as it stands.

The core (`export_manifests`) is pure: live services, agents and state machines in,
plain data out (a relative file name and YAML text per service, plus warnings).
Reading the organization (`read_organization`, through `live`'s reads and
normalization) and writing files (`write_export`) are separate so each can be
tested alone. A document's fields come from the one table of a service's fields
(`model.SERVICE_FIELDS`); the manifests' own model (`ServiceManifest`) checks every
document before it is written, so export states no manifest rule of its own.

Choices, so that an export re-reads as exactly the live state (the round trip):

- One document per live service; `edge` is never written (read-only), `release` and
  every other version set are written whole. Version numbers that are null (latest)
  are omitted, as is an empty `params`: omitted means the same thing to the loader.
- The agent and the state machine are written by name where that name belongs to
  exactly one agent (state machine) of the organization, else by id.
- `metadata.id` is pinned when more than one live service has the service's name
  (inactive duplicates), so each manifest maps to exactly its service and the
  loader does not see two documents claiming one name.
- The ownership tag (`managed_by: amigo_reconciler`) is left out: the reconciler adds
  it to every service it manages; a fresh export shows up in a plan as "adopt".
- A live value that a manifest cannot hold is never silently changed. Each document
  is validated with `ServiceManifest`, and read back through it (it strips
  surrounding whitespace): tags or keyterms it refuses or would change leave the
  whole field out (an omitted `tags` / `keyterms`, a field a manifest may omit, is
  unmanaged: live values stay) with a warning; a version set it refuses (name,
  version number below 1, padded LLM names) is left out with a warning (it becomes
  unmanaged drift, which `--prune` would delete). A padded name or description is
  written stripped with a warning (the loader strips them; a padded name also gets
  its id pinned). Anything else it refuses (a blank name or description, a pinned id
  that is not an id) is an error naming the service and the field: no file is written.
- `${` in a string value would be read back by the loader as an environment
  reference, so it is written escaped as `$${` (mapping keys are never filled).
- Strings are quoted wherever a plain scalar could read as something else to any
  YAML reader (1.1 or 1.2: `yes`, `on`, `y`, `1.0`, `0o17`, `null`, `~`, ...);
  PyYAML quotes the indicator characters (`*`, `&`, `: `, `#`, ...) itself.
- The schema modeline (`# yaml-language-server: $schema=...`) is a path relative to
  the output directory (the current directory for stdout) when it or a parent holds
  `schemas/service.schema.json`, as a manifests repository with the generated
  schema does; elsewhere it is left out rather than pointing at nothing.
- Deterministic text: keys in a fixed order (apiVersion, kind, metadata, spec; spec
  as `SPEC_KEY_ORDER`), tags sorted by key, version sets `release` first then by name,
  LLM interactions and params sorted by key, keyterms in their live order.
- File names: a lowercase slug of the service name (`[a-z0-9-]`, at most
  `MAX_SLUG_LENGTH` characters, never a reserved Windows device name, the API key's
  slug replaced by `redacted`) + `.yaml`;
  services whose slugs collide all get `-` + the first 6 characters of their id
  (the full id if those collide too). Files are listed sorted by name.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ValidationError

from reconciler.diagnostics import Diagnostic, Severity, UserError
from reconciler.limits import MAX_TAGS
from reconciler.live import fetch_services, fetch_unit_tests, references_from_api
from reconciler.manifests import ServiceManifest
from reconciler.model import (
    EDGE,
    OWNERSHIP_TAG_KEY,
    OWNERSHIP_TAG_VALUE,
    RELEASE,
    SERVICE_FIELDS,
    Agent,
    LiveService,
    Shape,
    StateMachine,
    UnitTest,
    VersionSet,
)
from reconciler.redaction import MIN_SECRET_LENGTH, REDACTED, api_key, redact

if TYPE_CHECKING:
    from reconciler.api.client import AmigoClient

API_VERSION = "amigo.ai/v1"
KIND = "Service"
SCHEMA_PATH_IN_REPO = Path("schemas") / "service.schema.json"
MAX_SLUG_LENGTH = 60


def _spec_keys() -> tuple[str, ...]:
    spec_model = ServiceManifest.model_fields["spec"].annotation
    assert isinstance(spec_model, type) and issubclass(spec_model, BaseModel)
    return tuple(spec_model.model_fields)


# The order of keys inside `spec`: the manifest model's own (agent / state machine: the
# name or the `_id` form).
SPEC_KEY_ORDER = _spec_keys()

_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
    | {"com¹", "com²", "com³", "lpt¹", "lpt²", "lpt³"}
)


@dataclass(frozen=True, slots=True)
class ExportedFile:
    """One manifest: where it goes (relative file name) and what it says."""

    name: str  # e.g. "meet-greet.yaml"
    service: str
    service_id: str
    body: str  # the YAML document, without the schema modeline
    text: str  # the file's content: modeline (when known) + body


@dataclass(frozen=True, slots=True)
class ExportResult:
    files: tuple[ExportedFile, ...]
    warnings: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True, slots=True)
class Organization:
    services: tuple[LiveService, ...]
    agents: tuple[Agent, ...]
    state_machines: tuple[StateMachine, ...]


def read_organization(client: AmigoClient) -> Organization:
    """Every service (all pages, active or not: duplicates decide id pins), agents, state machines."""
    return Organization(
        services=fetch_services(client),
        agents=references_from_api(client.list_agents()),
        state_machines=references_from_api(client.list_state_machines()),
    )


# --- the pure core --------------------------------------------------------------


def export_manifests(
    services: Sequence[LiveService],
    agents: Sequence[Agent],
    state_machines: Sequence[StateMachine],
    *,
    active_only: bool = False,
    targets: Collection[str] = (),
    schema_ref: str | None = None,
) -> ExportResult:
    """One manifest per live service (all of them, or the active / targeted ones).

    `services` must be every live service of the organization even when filtering:
    whether an id is pinned depends on the names of all of them. `targets` are
    service names; one that names no live service is an error.
    """
    missing = sorted(set(targets) - {s.name for s in services})
    if missing:
        known = ", ".join(repr(n) for n in sorted({s.name for s in services})[:20]) or "none"
        raise UserError(
            [
                Diagnostic(
                    f"no live service is named {name!r} (services: {known})", field="--target"
                )
                for name in missing
            ]
        )
    name_counts = Counter(s.name for s in services)
    chosen = [
        s
        for s in services
        if (not active_only or s.is_active) and (not targets or s.name in targets)
    ]
    references = {
        f.name: _referable_names(state_machines if f.by_name != "agent" else agents)
        for f in SERVICE_FIELDS
        if f.by_name is not None
    }
    diagnostics: list[Diagnostic] = []
    documents = {
        s.id: _manifest(
            s,
            pin_id=name_counts[s.name] > 1,
            references=references,
            report=diagnostics.append,
        )
        for s in chosen
    }
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    if errors:
        raise UserError(errors)
    warnings = diagnostics
    names = file_names(chosen)
    files = []
    for service in chosen:
        body = dump_document(documents[service.id])
        text = f"{modeline(schema_ref)}{body}" if schema_ref else body
        files.append(ExportedFile(names[service.id], service.name, service.id, body, text))
    files.sort(key=lambda f: f.name)
    return ExportResult(files=tuple(files), warnings=tuple(warnings))


def modeline(schema_ref: str) -> str:
    return f"# yaml-language-server: $schema={schema_ref}\n"


def join_documents(files: Iterable[ExportedFile], schema_ref: str | None = None) -> str:
    """All documents as one YAML stream (stdout), separated by `---`."""
    head = modeline(schema_ref) if schema_ref else ""
    return head + "---\n".join(f.body for f in files)


def _manifest(
    service: LiveService,
    *,
    pin_id: bool,
    references: Mapping[str, Mapping[str, str]],
    report: Callable[[Diagnostic], None],
) -> dict[str, Any]:
    """One service's document, from `SERVICE_FIELDS`, checked by the manifests' own model."""

    def say(field: str, message: str, severity: Severity = Severity.WARNING) -> Diagnostic:
        return Diagnostic(
            f"{message} (service id {service.id})",
            severity=severity,
            field=field,
            service=service.name,
        )

    metadata: dict[str, Any] = {}
    spec: dict[str, Any] = {}
    for f in SERVICE_FIELDS:
        section, _, key = f.manifest.partition(".")
        value = getattr(service, f.name)
        if f.by_name is not None:
            key, value = _reference(f.by_name, value, references[f.name])
        elif f.shape is Shape.TAGS:
            value = {k: v for k, v in value.items() if k != OWNERSHIP_TAG_KEY}
            owner = service.tags.get(OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE)
            if owner != OWNERSHIP_TAG_VALUE:
                report(
                    say(
                        f"{f.manifest}.{OWNERSHIP_TAG_KEY}",
                        f"the live tag {OWNERSHIP_TAG_KEY}: {owner!r} is the reconciler's "
                        f"ownership tag; it is left out and becomes {OWNERSHIP_TAG_KEY}: "
                        f"{OWNERSHIP_TAG_VALUE} when the service is adopted",
                    )
                )
            value = _sorted_data(value)
        elif isinstance(value, str):
            # The loader strips names and descriptions; the API does too, so live values
            # are normally stripped already. Where not, say what the manifest will change.
            stripped = value.strip()
            if stripped and stripped != value and f.manifest == "metadata.name":
                pin_id = True
                report(
                    say(
                        f.manifest,
                        f"the live name {value!r} has surrounding whitespace, which a manifest "
                        f"cannot hold; written as {stripped!r} with the id pinned, so a plan "
                        "renames it",
                    )
                )
            elif stripped and stripped != value:
                report(
                    say(
                        f.manifest,
                        f"the live {key} has surrounding whitespace, which a manifest cannot "
                        "hold; written stripped, so a plan updates it",
                    )
                )
            value = _escape(stripped)
        else:
            value = _sorted_data(f.plain(value))
        (metadata if section == "metadata" else spec)[key] = value
    if pin_id:
        metadata["id"] = service.id
    spec["version_sets"] = {
        name: _version_set(service.version_sets[name])
        for name in sorted(service.version_sets, key=lambda n: (n != RELEASE, n))
        if name != EDGE
    }
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {k: spec[k] for k in SPEC_KEY_ORDER if k in spec},
    }

    notes: list[tuple[str, Diagnostic]] = []  # (part, diagnostic), reported in document order
    while problems := _problems(document):
        for part, problem in problems.items():
            if part.startswith(_VERSION_SETS):
                name = part.removeprefix(_VERSION_SETS)
                del document["spec"]["version_sets"][name]
                message = (
                    f"version set {name!r} left out: {problem}; it stays as it is, shown as "
                    "unmanaged drift (note: `--prune` would delete it)"
                )
                notes.append((part, say(part, message)))
            elif part in _OPTIONAL_FIELDS:
                key = _OPTIONAL_FIELDS[part]
                del document["spec"][key]
                message = f"{key} left out (unmanaged: live {key} stay as they are): {problem}"
                notes.append((part, say(part, message)))
            else:
                notes.append((part, say(part, f"cannot be exported: {problem}", Severity.ERROR)))
        if any(d.severity is Severity.ERROR for _, d in notes):
            break
    tags = document["spec"].get("tags")
    if tags is not None and len(tags) == MAX_TAGS and OWNERSHIP_TAG_KEY not in service.tags:
        message = (
            f"{MAX_TAGS} tags: adopting adds the ownership tag {OWNERSHIP_TAG_KEY}, which "
            f"would make {MAX_TAGS + 1} and the API allows {MAX_TAGS}; remove a tag from the "
            "manifest before applying"
        )
        notes.append(("spec.tags", say("spec.tags", message)))
    for _, diagnostic in sorted(notes, key=lambda note: _rank(note[0], document)):
        report(diagnostic)
    return document


_VERSION_SETS = "spec.version_sets."
# Fields a manifest may leave out (their live values then stay): export leaves out one
# whose live value the manifest model refuses, instead of changing it. Part -> spec key.
_OPTIONAL_FIELDS = {
    f.manifest: f.manifest.partition(".")[2]
    for f in SERVICE_FIELDS
    if not f.managed_when_omitted and f.manifest.startswith("spec.")
}


def _rank(part: str, document: Mapping[str, Any]) -> tuple[int, int, str]:
    """Where a part sits in the document, so diagnostics come in the order people read it."""
    section, _, rest = part.partition(".")
    key, _, name = rest.partition(".")
    if section != "spec":
        return (0, 0, part)
    order = SPEC_KEY_ORDER.index(key) if key in SPEC_KEY_ORDER else len(SPEC_KEY_ORDER)
    return (1, order, name if key != "version_sets" else _version_set_rank(name))


def _version_set_rank(name: str) -> str:
    return ("0" if name == RELEASE else "1") + name


def _problems(document: Mapping[str, Any]) -> dict[str, str]:
    """Part (`spec.tags`, `spec.version_sets.NAME`, ...) -> what is wrong with it.

    What is wrong is what the manifests' own model (`ServiceManifest`) says about the
    document, or, where it accepts it, a value it would read back differently (it
    strips surrounding whitespace): export never writes what would not load as itself.
    """
    try:
        parsed = ServiceManifest.model_validate(document)
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            problems.setdefault(_part(loc), _error_text(loc, error, document))
        return problems
    read_back = parsed.model_dump(exclude_unset=True)
    if read_back == document:  # strict: no value changes type, so equal is the same
        return {}
    problems = {}
    for loc in _differences(document, read_back, ()):
        problems.setdefault(_part(loc), _read_back_text(loc, document, read_back))
    return problems


def _part(loc: Sequence[Any]) -> str:
    if len(loc) >= 3 and tuple(loc[:2]) == ("spec", "version_sets"):
        return f"{_VERSION_SETS}{loc[2]}"
    return ".".join(str(x) for x in loc[:2])


def _lookup(data: Any, loc: Sequence[Any]) -> Any:
    for part in loc:
        data = data[part]
    return data


def _what(loc: Sequence[Any], document: Mapping[str, Any]) -> str:
    """`key 'team-name' of spec.tags`, `spec.keyterms[0] 'Upper Case'`: a value, for people."""
    if loc and loc[-1] == "[key]":
        return f"the key {loc[-2]!r} of {_dotted(loc[:-2])}"
    try:
        value = _lookup(document, loc)
    except (KeyError, IndexError, TypeError):
        return _dotted(loc)
    if isinstance(value, Mapping | list):
        return _dotted(loc)
    return f"{_dotted(loc)} {value!r}"


def _dotted(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _error_text(loc: Sequence[Any], error: Mapping[str, Any], document: Mapping[str, Any]) -> str:
    if error["type"] == "too_long":
        limit = (error.get("ctx") or {}).get("max_length")
        count = len(_lookup(document, loc))
        return f"{count} {loc[-1]}, a manifest allows at most {limit}"
    return f"{_what(loc, document)}: {error['msg']}"


def _read_back_text(loc: Sequence[Any], document: Mapping[str, Any], read_back: Any) -> str:
    try:
        _lookup(read_back, loc)
    except (KeyError, IndexError, TypeError):
        return (
            f"the key {loc[-1]!r} of {_dotted(loc[:-1])} would read back as another key "
            "(a manifest strips surrounding whitespace)"
        )
    return f"{_what(loc, document)} would read back as {_lookup(read_back, loc)!r}"


def _differences(written: Any, read: Any, loc: tuple[Any, ...]) -> Iterable[tuple[Any, ...]]:
    """Paths where the document as written and as the manifest model reads it differ."""
    if isinstance(written, Mapping) and isinstance(read, Mapping):
        for key in written:
            if key not in read:
                yield (*loc, key)  # read back as another key (stripped): this one is at fault
            else:
                yield from _differences(written[key], read[key], (*loc, key))
        if any(key not in written for key in read) and all(key in read for key in written):
            yield loc
    elif isinstance(written, list) and isinstance(read, list) and len(written) == len(read):
        for index, (a, b) in enumerate(zip(written, read, strict=True)):
            yield from _differences(a, b, (*loc, index))
    elif type(written) is not type(read) or written != read:
        yield loc


def _referable_names(catalog: Sequence[Agent]) -> dict[str, str]:
    """Id -> name, for entries whose name is unique in the catalog and reads back as itself."""
    counts = Counter(e.name for e in catalog)
    return {
        e.id: e.name for e in catalog if counts[e.name] == 1 and e.name and e.name.strip() == e.name
    }


def _reference(field: str, ref_id: str, names: Mapping[str, str]) -> tuple[str, str]:
    """By name where that name is unique in the organization, else by id."""
    name = names.get(ref_id)
    return (field, _escape(name)) if name is not None else (f"{field}_id", ref_id)


def _version_set(version_set: VersionSet) -> dict[str, Any]:
    return version_set.to_compact(_escape, _sorted_data)


def _sorted_data(value: Any) -> Any:
    """Mappings sorted by key, recursively, with `${` escaped in string values; list order kept.

    Keys are not escaped: the loader fills `${VAR}` in values only.
    """
    if isinstance(value, Mapping):
        return {str(k): _sorted_data(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_sorted_data(v) for v in value]
    if isinstance(value, str):
        return _escape(value)
    return value


def _escape(text: str) -> str:
    """`${` would be filled from the environment on load; `$${` reads back as a literal `${`."""
    return text.replace("${", "$${")


# --- file names -------------------------------------------------------------------


def _slug_text(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def slugify(name: str) -> str:
    """A lowercase `[a-z0-9-]` stem, safe as a file name on every OS."""
    slug = _slug_text(name)
    key = api_key()
    if key is not None:
        # Redaction of text is exact; a slug lower-cases and drops characters, so the
        # key is matched in its slug form too, before the stem is cut to length.
        key_slug = _slug_text(key)
        if len(key_slug) >= MIN_SECRET_LENGTH:
            slug = slug.replace(key_slug, REDACTED.lower())
    slug = slug[:MAX_SLUG_LENGTH].rstrip("-") or "service"
    if slug in _WINDOWS_RESERVED:
        slug = f"{slug}-service"
    return slug


def file_names(services: Sequence[LiveService]) -> dict[str, str]:
    """Service id -> file name; colliding slugs all get an id suffix (by id: predictable)."""
    by_slug: dict[str, list[LiveService]] = defaultdict(list)
    for service in services:
        by_slug[slugify(service.name)].append(service)
    plain = {slug for slug, group in by_slug.items() if len(group) == 1}
    names: dict[str, str] = {}
    taken = set(plain)
    for slug, group in sorted(by_slug.items()):
        if len(group) == 1:
            names[group[0].id] = f"{slug}.yaml"
            continue
        prefixes = Counter(s.id[:6].lower() for s in group)
        for service in sorted(group, key=lambda s: s.id):
            prefix = service.id[:6].lower()
            stem = f"{slug}-{prefix}"
            if prefixes[prefix] > 1 or stem in taken:
                stem = f"{slug}-{service.id.lower()}"
            n = 2
            while stem in taken:  # only with hand-made ids; still deterministic
                stem = f"{slug}-{service.id.lower()}-{n}"
                n += 1
            taken.add(stem)
            names[service.id] = f"{stem}.yaml"
    return names


# --- YAML -----------------------------------------------------------------------

# Plain scalars that some YAML reader (1.1 or 1.2, PyYAML, Go, JS) would not read as a
# string; PyYAML already quotes what *it* would mis-type, these cover the others.
_AMBIGUOUS_PLAIN = re.compile(
    r"""^(?:
        [yYnN]
      | [-+]?0o[0-7_]+ | [-+]?0x[0-9a-fA-F_]+ | [-+]?0b[01_]+
      | [-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?
      | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
      | ~ | null | Null | NULL | true | True | TRUE | false | False | FALSE
      | <<
    )$""",
    re.VERBOSE,
)


class _ManifestDumper(yaml.SafeDumper):
    """Block style, no anchors, strings quoted wherever a plain scalar could be mis-read."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key ("keyterms:\n  - a"), as people write them.
        super().increase_indent(flow, False)


# Line breaks other than \n fold or vanish in plain, single-quoted and block scalars.
_OTHER_BREAKS = re.compile("[\r\x85\u2028\u2029]")


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style: str | None = None
    if _OTHER_BREAKS.search(data):
        style = '"'  # escaped: the only form that keeps them
    elif "\n" in data:
        style = "|"  # PyYAML falls back to quotes when a block scalar cannot hold it
    elif _AMBIGUOUS_PLAIN.match(data):
        style = "'"
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_ManifestDumper.add_representer(str, _represent_str)


def dump_document(document: Mapping[str, Any]) -> str:
    return yaml.dump(
        document,
        Dumper=_ManifestDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1 << 30,
        indent=2,
    )


# --- the schema modeline ----------------------------------------------------------


def schema_ref_for(directory: Path) -> str | None:
    """The schema's path relative to `directory`, if a parent holds `schemas/service.schema.json`.

    Exports usually land in the repository that also keeps the schema (generated by
    `reconciler schema`); elsewhere the modeline is left out rather than pointing at
    a path that does not exist.
    """
    start = directory.resolve()
    for parent in (start, *start.parents):
        candidate = parent / SCHEMA_PATH_IN_REPO
        if candidate.is_file():
            return Path(os.path.relpath(candidate, start)).as_posix()
    return None


# --- writing --------------------------------------------------------------------


def write_export(files: Sequence[ExportedFile], out_dir: Path, *, force: bool) -> list[Path]:
    """Write every file into `out_dir` (created); nothing is written if any would be overwritten.

    Each file is written to a temporary name and renamed into place, so an
    interrupted export never leaves half a manifest.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(
            Diagnostic(f"{out_dir} exists and is not a directory; give a directory", field="--out")
        )
    targets = [out_dir / f.name for f in files]
    blocked = [p for p in targets if p.is_dir()]
    if blocked:
        raise UserError(
            [
                Diagnostic(f"{p} is a directory; cannot write a manifest there", field="--out")
                for p in blocked
            ]
        )
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise UserError(
            [Diagnostic(f"{p} already exists", field="--out") for p in existing]
            + [
                Diagnostic(
                    f"{len(existing)} file(s) would be overwritten; nothing was written "
                    "(use --force to overwrite them, or another --out directory)",
                    field="--out",
                )
            ]
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for file, path in zip(files, targets, strict=True):
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                temporary.write_text(redact(file.text), encoding="utf-8", newline="\n")
                os.replace(temporary, path)
            finally:
                temporary.unlink(missing_ok=True)
    except OSError as exc:
        raise UserError(
            Diagnostic(
                f"cannot write {exc.filename or out_dir}: {exc.strerror or exc}", field="--out"
            )
        ) from None
    return targets


# --- the organization as an emulator seed (`export --seed`) ---------------------------


def read_unit_tests(client: AmigoClient, services: Sequence[LiveService]) -> tuple[UnitTest, ...]:
    """The (not deleted) unit tests of these services: they pin version sets in the copy."""
    return fetch_unit_tests(client, [s.id for s in services])


def seed_header(organization: str) -> str:
    return (
        f"Amigo API emulator seed: a copy of organization {organization}, written by\n"
        "`reconciler export --seed`. Use it with `reconciler plan PATH --emulator FILE`.\n"
        "The credentials below are throwaway emulator values, not the organization's.\n"
        "The API does not say which LLMs are deprecated: list them under deprecated_llms.\n"
        "Format: docs/emulator.md."
    )


def write_seed_file(text: str, path: Path, *, force: bool) -> None:
    """Write the seed atomically; an existing file only with --force."""
    if path.is_dir():
        raise UserError(Diagnostic(f"{path} is a directory; give a file name", field="--seed"))
    if path.exists() and not force:
        raise UserError(
            Diagnostic(
                f"{path} already exists; nothing was written (use --force to overwrite it)",
                field="--seed",
            )
        )
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(redact(text), encoding="utf-8", newline="\n")
        os.replace(temporary, path)
    except OSError as exc:
        raise UserError(
            Diagnostic(
                f"cannot write {exc.filename or path}: {exc.strerror or exc}", field="--seed"
            )
        ) from None
    finally:
        temporary.unlink(missing_ok=True)


def export_seed(
    organization_id: str, organization: Organization, unit_tests: Sequence[UnitTest]
) -> tuple[str, tuple[Diagnostic, ...]]:
    """The seed file's text and warnings; an error when the copy would not load as a seed."""
    from reconciler.emulator.seed import load_seed
    from reconciler.emulator.seed_writer import dump_seed, seed_from_live

    exported = seed_from_live(
        organization_id,
        organization.services,
        organization.agents,
        organization.state_machines,
        unit_tests,
    )
    try:
        load_seed(exported.document)
    except UserError as exc:
        raise UserError(
            [
                Diagnostic(
                    f"the live organization cannot be copied as an emulator seed: {d.message}",
                    field=d.field,
                )
                for d in exc.diagnostics
            ]
        ) from None
    text = dump_seed(exported.document, header=seed_header(organization_id))
    return text, exported.warnings
