"""Live state -> manifests: `reconciler export` lets a team adopt an organization as it stands.

The core (`export_manifests`) is pure: live services, agents and state machines in,
plain data out (a relative file name and YAML text per service, plus warnings).
Reading the organization (`read_organization`) and writing files (`write_export`)
are separate so each can be tested alone.

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
- A live value that a manifest cannot hold is never silently changed. Tags or
  keyterms that the manifest rules reject leave the whole field out (an omitted
  `tags` / `keyterms` is unmanaged: live values stay) with a warning; a version set
  the rules reject (name, version number below 1, padded LLM names) is left out
  with a warning (it becomes unmanaged drift, which `--prune` would delete). A
  padded name or description is written stripped with a warning (the loader strips
  them; a padded name also gets its id pinned). A blank name or description is an
  error: the one field a manifest cannot leave out.
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
  `MAX_SLUG_LENGTH` characters, never a reserved Windows device name) + `.yaml`;
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
from typing import Any, Protocol

import yaml

from reconciler.diagnostics import Diagnostic, Severity, UserError
from reconciler.limits import (
    KEYTERM_PATTERN,
    MAX_KEYTERMS,
    MAX_TAGS,
    TAG_PATTERN,
    VERSION_SET_NAME_MAX,
    VERSION_SET_NAME_PATTERN,
)
from reconciler.model import (
    EDGE,
    OWNERSHIP_TAG_KEY,
    OWNERSHIP_TAG_VALUE,
    RELEASE,
    Agent,
    LiveService,
    StateMachine,
    UnitTest,
    VersionSet,
)
from reconciler.redaction import redact

API_VERSION = "amigo.ai/v1"
KIND = "Service"
SCHEMA_PATH_IN_REPO = Path("schemas") / "service.schema.json"
MAX_SLUG_LENGTH = 60
# The order of keys inside `spec` (agent / state machine: the name or the `_id` form).
SPEC_KEY_ORDER = (
    "description",
    "is_active",
    "agent",
    "agent_id",
    "service_hierarchical_state_machine",
    "service_hierarchical_state_machine_id",
    "tags",
    "keyterms",
    "version_sets",
)
VERSION_SET_KEY_ORDER = (
    "agent_version_number",
    "service_hierarchical_state_machine_version_number",
    "llm_model_preferences",
)

# The manifest rules for fields a live value might break (the API's own limits).
_TAG_RE = re.compile(TAG_PATTERN)
_KEYTERM_RE = re.compile(KEYTERM_PATTERN)
_VERSION_SET_NAME_RE = re.compile(VERSION_SET_NAME_PATTERN)
MAX_VERSION_SET_NAME = VERSION_SET_NAME_MAX

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


class OrganizationReader(Protocol):
    """What export needs from the API client."""

    def list_services(
        self, *, ids: Sequence[str] = (), is_active: bool | None = None, tags: Sequence[str] = ()
    ) -> list[dict[str, Any]]: ...

    def list_agents(self) -> list[dict[str, Any]]: ...

    def list_state_machines(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Organization:
    services: tuple[LiveService, ...]
    agents: tuple[Agent, ...]
    state_machines: tuple[StateMachine, ...]


def read_organization(client: OrganizationReader) -> Organization:
    """Every service (all pages, active or not: duplicates decide id pins), agents, state machines."""
    return Organization(
        services=tuple(LiveService.from_api(s) for s in client.list_services()),
        agents=tuple(_catalog_entry(a) for a in client.list_agents()),
        state_machines=tuple(_catalog_entry(m) for m in client.list_state_machines()),
    )


def _catalog_entry(data: Mapping[str, Any]) -> Agent:
    return Agent(
        id=data["id"],
        name=data["name"],
        deprecated=bool(data.get("deprecated", False)),
        latest_version=data.get("latest_version"),
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
    agent_names = _referable_names(agents)
    state_machine_names = _referable_names(state_machines)
    diagnostics: list[Diagnostic] = []
    documents = {
        s.id: _manifest(
            s,
            pin_id=name_counts[s.name] > 1,
            agents=agent_names,
            state_machines=state_machine_names,
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
    agents: Mapping[str, str],
    state_machines: Mapping[str, str],
    report: Callable[[Diagnostic], None],
) -> dict[str, Any]:
    def say(field: str, message: str, severity: Severity = Severity.WARNING) -> None:
        report(
            Diagnostic(
                f"{message} (service id {service.id})",
                severity=severity,
                field=field,
                service=service.name,
            )
        )

    # The loader strips names and descriptions; the API does too, so live values are
    # normally stripped already. Where not, say what the manifest will change.
    name, description = service.name.strip(), service.description.strip()
    for field, value in (("metadata.name", name), ("spec.description", description)):
        if not value:
            say(field, "is empty: a manifest requires a non-blank value", Severity.ERROR)
    if name and name != service.name:
        pin_id = True
        say(
            "metadata.name",
            f"the live name {service.name!r} has surrounding whitespace, which a manifest "
            f"cannot hold; written as {name!r} with the id pinned, so a plan renames it",
        )
    if description and description != service.description:
        say(
            "spec.description",
            "the live description has surrounding whitespace, which a manifest cannot hold; "
            "written stripped, so a plan updates it",
        )

    metadata: dict[str, Any] = {"name": _escape(name)}
    if pin_id:
        metadata["id"] = service.id
    spec: dict[str, Any] = {"description": _escape(description), "is_active": service.is_active}
    key, value = _reference("agent", service.agent_id, agents)
    spec[key] = value
    key, value = _reference(
        "service_hierarchical_state_machine",
        service.service_hierarchical_state_machine_id,
        state_machines,
    )
    spec[key] = value

    tags = {k: v for k, v in service.tags.items() if k != OWNERSHIP_TAG_KEY}
    foreign_owner = service.tags.get(OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE)
    if foreign_owner != OWNERSHIP_TAG_VALUE:
        say(
            f"spec.tags.{OWNERSHIP_TAG_KEY}",
            f"the live tag {OWNERSHIP_TAG_KEY}: {foreign_owner!r} is the reconciler's ownership "
            f"tag; it is left out and becomes {OWNERSHIP_TAG_KEY}: {OWNERSHIP_TAG_VALUE} when "
            "the service is adopted",
        )
    problem = _tags_problem(tags)
    if problem:
        say("spec.tags", f"tags left out (unmanaged: live tags stay as they are): {problem}")
    else:
        spec["tags"] = {k: tags[k] for k in sorted(tags)}
        if len(tags) == MAX_TAGS and OWNERSHIP_TAG_KEY not in service.tags:
            say(
                "spec.tags",
                f"{MAX_TAGS} tags: adopting adds the ownership tag {OWNERSHIP_TAG_KEY}, which "
                f"would make {MAX_TAGS + 1} and the API allows {MAX_TAGS}; remove a tag from the "
                "manifest before applying",
            )

    problem = _keyterms_problem(service.keyterms)
    if problem:
        say(
            "spec.keyterms",
            f"keyterms left out (unmanaged: live keyterms stay as they are): {problem}",
        )
    else:
        spec["keyterms"] = list(service.keyterms)

    version_sets: dict[str, Any] = {}
    for set_name in sorted(service.version_sets, key=lambda n: (n != RELEASE, n)):
        if set_name == EDGE:
            continue
        problem = _version_set_problem(set_name, service.version_sets[set_name])
        if problem:
            say(
                f"spec.version_sets.{set_name}",
                f"version set {set_name!r} left out: {problem}; it stays as it is, shown as "
                "unmanaged drift (note: `--prune` would delete it)",
            )
            continue
        version_sets[set_name] = _version_set(service.version_sets[set_name])
    spec["version_sets"] = version_sets

    ordered_spec = {k: spec[k] for k in SPEC_KEY_ORDER if k in spec}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": ordered_spec}


def _version_set_problem(name: str, version_set: VersionSet) -> str | None:
    if not _VERSION_SET_NAME_RE.match(name) or len(name) > MAX_VERSION_SET_NAME:
        return (
            "a manifest's version set names match ^[A-Za-z0-9_-]+$ with at most "
            f"{MAX_VERSION_SET_NAME} characters"
        )
    for field in VERSION_SET_KEY_ORDER[:2]:
        number = getattr(version_set, field)
        if number is not None and number < 1:
            return f"{field} is {number}; a manifest's version numbers start at 1"
    for interaction, config in version_set.llm_model_preferences.items():
        for what, text in (("interaction", interaction), ("llm_name", config.llm_name)):
            if not text.strip() or text.strip() != text:
                return f"the LLM {what} {text!r} is blank or has surrounding whitespace"
    return None


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


def _tags_problem(tags: Mapping[str, str | None]) -> str | None:
    if len(tags) > MAX_TAGS:
        return f"{len(tags)} tags, a manifest allows at most {MAX_TAGS}"
    for key, value in sorted(tags.items()):
        if not _TAG_RE.match(key) or key.strip() != key:
            return f"tag key {key!r} is not letters, digits, '_' and inner spaces (^[\\w\\s]+$)"
        if value is not None and (not _TAG_RE.match(value) or value.strip() != value):
            return (
                f"the value {value!r} of tag {key!r} is not letters, digits, '_' and inner "
                "spaces (^[\\w\\s]+$) or null"
            )
    return None


def _keyterms_problem(keyterms: Sequence[str]) -> str | None:
    if len(keyterms) > MAX_KEYTERMS:
        return f"{len(keyterms)} keyterms, a manifest allows at most {MAX_KEYTERMS}"
    for term in keyterms:
        if not _KEYTERM_RE.match(term):
            return (
                f"keyterm {term!r} is not one to three words of lowercase letters and '-' "
                "(^[a-z-]+( [a-z-]+){0,2}$)"
            )
    return None


def _escape(text: str) -> str:
    """`${` would be filled from the environment on load; `$${` reads back as a literal `${`."""
    return text.replace("${", "$${")


# --- file names -------------------------------------------------------------------


def slugify(name: str) -> str:
    """A lowercase `[a-z0-9-]` stem, safe as a file name on every OS."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
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


class UnitTestReader(Protocol):
    def list_unit_tests(self, service_ids: Sequence[str]) -> list[dict[str, Any]]: ...


def read_unit_tests(
    client: UnitTestReader, services: Sequence[LiveService]
) -> tuple[UnitTest, ...]:
    """The (not deleted) unit tests of these services: they pin version sets in the copy."""
    from reconciler.live import unit_tests_from_api

    if not services:
        return ()
    return unit_tests_from_api(client.list_unit_tests([s.id for s in services]))


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
