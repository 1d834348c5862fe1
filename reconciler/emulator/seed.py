"""The emulator's seed: a YAML description of one organization, validated like user input.

A seed names the organization, its throwaway credentials, the deprecated LLMs,
agents and state machines (with their latest versions), services with their
version sets, and simulation unit tests (docs/emulator.md has the format;
`seed_writer.py` writes one from live state). Every mistake is reported once, with file:line:column,
what was wrong and what would be valid; several mistakes are reported together.

Ids left out are derived from the organization and the entry's position, so the
same seed always yields the same ids (reproducible plans and snapshots).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from reconciler.diagnostics import Diagnostic, SourcePos, UserError
from reconciler.emulator.models import (
    Keyterms,
    LLMType,
    ObjectId,
    StrippedNonempty,
    Tags,
    VersionSetName,
    stored_version_set,
)
from reconciler.emulator.simulation import SeedOutcome, SeedUnitTestSet, UnitTestSetRecord
from reconciler.yaml_diagnostics import Entry, error_node, node_pos, yaml_error

EDGE = "edge"
RELEASE = "release"
_LLM_NAMES = frozenset(item.value for item in LLMType)

Path_ = tuple[str | int, ...]
_R = TypeVar("_R", "VersionedRecord", "ServiceRecord")


def derived_id(organization: str, kind: str, index: int) -> str:
    """A stable 24-hex id (the shape of a Mongo ObjectId) for the index-th `kind` of an org."""
    digest = hashlib.sha256(f"{organization}/{kind}/{index}".encode()).hexdigest()
    return digest[:24]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class SeedCredentials(_Strict):
    api_key: NonEmpty
    api_key_id: NonEmpty
    user_id: NonEmpty


class SeedVersioned(_Strict):
    """An agent or a service hierarchical state machine."""

    name: StrippedNonempty
    id: ObjectId | None = None
    latest_version: Annotated[int, Field(ge=1)] | None = 1
    deprecated: bool = False


class SeedLLMConfig(_Strict):
    """An LLM preference as stored: a name of the LLMType enum, or one in `deprecated_llms`."""

    llm_name: StrippedNonempty
    params: dict[str, Any] = Field(default_factory=dict)


class SeedVersionSet(_Strict):
    """A version set in a seed: omitted numbers mean latest, omitted preferences none."""

    agent_version_number: int | None = None
    service_hierarchical_state_machine_version_number: int | None = None
    llm_model_preferences: dict[str, SeedLLMConfig] = Field(default_factory=dict)

    def to_stored(self) -> dict[str, Any]:
        return stored_version_set(self)


class SeedService(_Strict):
    name: StrippedNonempty
    description: StrippedNonempty
    id: ObjectId | None = None
    is_active: bool = True
    agent: NonEmpty
    service_hierarchical_state_machine: NonEmpty
    tags: Tags = Field(default_factory=dict)
    keyterms: Keyterms = Field(default_factory=list)
    version_sets: dict[VersionSetName, SeedVersionSet] = Field(default_factory=dict)


class SeedUnitTest(_Strict):
    name: StrippedNonempty
    service: NonEmpty
    version_set: VersionSetName = RELEASE
    id: ObjectId | None = None
    description: str = ""
    is_deleted: bool = False
    tags: dict[NonEmpty, str | None] = Field(default_factory=dict)
    persona_id: ObjectId | None = None
    scenario_id: ObjectId | None = None
    updated_at: AwareDatetime | None = None
    # Simulation (emulator/simulation.py): success criteria names, outcomes, run time.
    metrics: list[StrippedNonempty] = Field(default_factory=list)
    outcomes: list[SeedOutcome] = Field(default_factory=list)
    duration_seconds: Annotated[float, Field(ge=0, le=3600)] = 0.0


class SeedDocument(_Strict):
    organization: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"^[^/\s]+$")
    ]
    credentials: SeedCredentials
    deprecated_llms: list[StrippedNonempty] = Field(default_factory=list)
    agents: list[SeedVersioned] = Field(default_factory=list)
    state_machines: list[SeedVersioned] = Field(default_factory=list)
    services: list[SeedService] = Field(default_factory=list)
    unit_tests: list[SeedUnitTest] = Field(default_factory=list)
    unit_test_sets: list[SeedUnitTestSet] = Field(default_factory=list)


# --- the resolved seed ---------------------------------------------------------


@dataclass
class VersionedRecord:
    id: str
    name: str
    latest_version: int | None
    deprecated: bool


@dataclass
class ServiceRecord:
    id: str
    name: str
    description: str
    is_active: bool
    agent_id: str
    state_machine_id: str
    tags: dict[str, str | None]
    keyterms: list[str]
    version_sets: dict[str, dict[str, Any]]
    creator: dict[str, str]
    updated_by: dict[str, str]


@dataclass
class UnitTestRecord:
    id: str
    name: str
    description: str
    service_id: str
    version_set: str
    is_deleted: bool
    created_at: str
    updated_at: str
    persona_id: str
    scenario_id: str
    creator: dict[str, str]
    tags: dict[str, str | None] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)
    outcomes: list[SeedOutcome] = field(default_factory=list)
    duration_seconds: float = 0.0


@dataclass
class Seed:
    organization: str
    api_key: str
    api_key_id: str
    user_id: str
    deprecated_llms: frozenset[str] = frozenset()
    agents: list[VersionedRecord] = field(default_factory=list)
    state_machines: list[VersionedRecord] = field(default_factory=list)
    services: list[ServiceRecord] = field(default_factory=list)
    unit_tests: list[UnitTestRecord] = field(default_factory=list)
    unit_test_sets: list[UnitTestSetRecord] = field(default_factory=list)

    def __repr__(self) -> str:  # the api key stays out of reprs, even a throwaway one
        return (
            f"Seed(organization={self.organization!r}, "
            f"deprecated_llms={len(self.deprecated_llms)}, agents={len(self.agents)}, "
            f"state_machines={len(self.state_machines)}, services={len(self.services)}, "
            f"unit_tests={len(self.unit_tests)})"
        )


SEED_TIMESTAMP = "2025-01-01T00:00:00Z"


# --- positions -----------------------------------------------------------------


class _Positions:
    """Where each value (and each mapping key) of a YAML document starts."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.entries: dict[Path_, Entry] = {}

    def record(self, node: yaml.Node, path: Path_ = (), key_node: yaml.Node | None = None) -> None:
        if self.file is None:
            return
        self.entries[path] = (key_node, node)
        if isinstance(node, yaml.MappingNode):
            for key, value_node in node.value:
                self.record(value_node, (*path, key.value), key)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.record(item, (*path, index))

    def at(self, path: Path_, kind: str = "") -> SourcePos | None:
        """Where an error of pydantic type `kind` at `path` points (yaml_diagnostics' rules)."""
        if self.file is None:
            return None
        node = error_node(self.entries.get, path, kind)
        return None if node is None else node_pos(self.file, node)


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _read(source: str | Path | Mapping[str, Any]) -> tuple[Any, _Positions]:
    if isinstance(source, Mapping):
        return dict(source), _Positions(None)
    path = Path(source)
    name = str(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"emulator seed {name}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"emulator seed {name}: cannot be read ({exc})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(yaml_error(name, exc, text.encode())) from None
    positions = _Positions(name)
    if node is not None:
        positions.record(node)
    return data, positions


_EXPECTED: dict[tuple[str | int, ...], type[BaseModel]] = {
    (): SeedDocument,
    ("credentials",): SeedCredentials,
    ("agents", 0): SeedVersioned,
    ("state_machines", 0): SeedVersioned,
    ("services", 0): SeedService,
    ("services", 0, "version_sets", ""): SeedVersionSet,
    ("services", 0, "version_sets", "", "llm_model_preferences", ""): SeedLLMConfig,
    ("unit_tests", 0): SeedUnitTest,
    ("unit_test_sets", 0): SeedUnitTestSet,
}


def _allowed_keys(path: Path_) -> list[str]:
    shape = tuple(0 if isinstance(p, int) else p for p in path)
    if len(shape) >= 4 and shape[:3] == ("services", 0, "version_sets"):
        shape = (*shape[:3], "", *shape[4:])
    if len(shape) == 6 and shape[4] == "llm_model_preferences":
        shape = (*shape[:5], "")
    model = _EXPECTED.get(shape)
    return sorted(model.model_fields) if model else []


def _pydantic_diagnostics(exc: ValidationError, positions: _Positions) -> list[Diagnostic]:
    diagnostics = []
    for error in exc.errors(include_url=False):
        path: Path_ = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(path[:-1]))
            message = f"unknown key {path[-1]!r}; expected one of: {allowed}"
        elif error["type"] == "missing":
            message = "required key is missing"
        else:
            message = f"{error['msg']} (got {error.get('input')!r})"
        pos = positions.at(path, error["type"])
        diagnostics.append(Diagnostic(message, pos=pos, field=_dotted(path)))
    return diagnostics


def load_seed(source: str | Path | Mapping[str, Any]) -> Seed:
    """Read, validate and resolve a seed; UserError with every problem found."""
    data, positions = _read(source)
    if not isinstance(data, Mapping):
        raise UserError(
            Diagnostic(
                "an emulator seed must be a mapping with organization, credentials, agents, "
                "state_machines, services and unit_tests",
                pos=positions.at(()),
            )
        )
    try:
        document = SeedDocument.model_validate(data)
    except ValidationError as exc:
        raise UserError(_pydantic_diagnostics(exc, positions)) from None
    return _Resolver(document, positions).resolve()


class _Resolver:
    """Cross-references: names -> ids, version bounds, unique active names, unit-test targets."""

    def __init__(self, document: SeedDocument, positions: _Positions) -> None:
        self.doc = document
        self.positions = positions
        self.problems: list[Diagnostic] = []
        self.org = document.organization
        self._indexes: dict[int, tuple[int, dict[str, Any], dict[str, list[Any]]]] = {}

    def problem(self, path: Path_, message: str) -> None:
        self.problems.append(Diagnostic(message, pos=self.positions.at(path), field=_dotted(path)))

    def _versioned(self, kind: str, entries: list[SeedVersioned]) -> list[VersionedRecord]:
        records = []
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            ident = entry.id or derived_id(self.org, kind, index)
            if ident in seen:
                self.problem(
                    (kind, index, "id"), f"id {ident} is already used by {kind}[{seen[ident]}]"
                )
            seen[ident] = index
            records.append(
                VersionedRecord(ident, entry.name, entry.latest_version, entry.deprecated)
            )
        return records

    def _index(self, records: list[_R]) -> tuple[dict[str, _R], dict[str, list[_R]]]:
        """(first record of each id, records of each name), built once per complete list.

        References are resolved through these maps, not by scanning: a copy of a
        large organization (thousands of services and unit tests) loads in linear time.
        """
        key = id(records)
        if key not in self._indexes or self._indexes[key][0] != len(records):
            ids: dict[str, Any] = {}
            names: dict[str, list[Any]] = {}
            for record in records:
                ids.setdefault(record.id, record)
                names.setdefault(record.name, []).append(record)
            self._indexes[key] = (len(records), ids, names)
        _, ids, names = self._indexes[key]
        return ids, names

    def _lookup(
        self, path: Path_, ref: str, records: list[VersionedRecord], what: str
    ) -> VersionedRecord | None:
        ids, names = self._index(records)
        if ref in ids:
            return ids[ref]
        by_name = names.get(ref, [])
        if len(by_name) == 1:
            return by_name[0]
        known = ", ".join(sorted({r.name for r in records})) or "none declared"
        if by_name:
            self.problem(path, f"{len(by_name)} {what}s are named {ref!r}; refer to one by id")
        else:
            self.problem(path, f"no {what} named or with id {ref!r}; known {what}s: {known}")
        return None

    def _check_versions(
        self, path: Path_, version_set: SeedVersionSet, agent: VersionedRecord, sm: VersionedRecord
    ) -> None:
        pairs = (
            ("agent_version_number", version_set.agent_version_number, agent, "agent"),
            (
                "service_hierarchical_state_machine_version_number",
                version_set.service_hierarchical_state_machine_version_number,
                sm,
                "state machine",
            ),
        )
        for key, number, owner, what in pairs:
            if number is None:
                continue
            latest = owner.latest_version
            if latest is None or not 1 <= number <= latest:
                valid = f"1..{latest}" if latest else "none: it has no versions"
                self.problem(
                    (*path, key),
                    f"{what} {owner.name!r} has no version {number} (valid: {valid})",
                )

    def _deprecated_llms(self) -> frozenset[str]:
        seen: dict[str, int] = {}
        for index, name in enumerate(self.doc.deprecated_llms):
            if name in seen:
                self.problem(
                    ("deprecated_llms", index), f"{name!r} is already listed ({seen[name]})"
                )
            seen[name] = index
        return frozenset(seen)

    def _check_llms(
        self, path: Path_, version_set: SeedVersionSet, deprecated: frozenset[str]
    ) -> None:
        for key, cfg in version_set.llm_model_preferences.items():
            if cfg.llm_name in _LLM_NAMES or cfg.llm_name in deprecated:
                continue
            self.problem(
                (*path, "llm_model_preferences", key, "llm_name"),
                f"unknown LLM {cfg.llm_name!r}: not in the API's LLMType list "
                f"({', '.join(sorted(_LLM_NAMES))}); a retired LLM a stored version set "
                "still names must be listed under deprecated_llms",
            )

    def resolve(self) -> Seed:
        doc = self.doc
        creds = doc.credentials
        user = {"org_id": self.org, "user_id": creds.user_id}
        seed = Seed(
            self.org,
            creds.api_key,
            creds.api_key_id,
            creds.user_id,
            deprecated_llms=self._deprecated_llms(),
        )
        seed.agents = self._versioned("agents", doc.agents)
        seed.state_machines = self._versioned("state_machines", doc.state_machines)

        service_ids: dict[str, int] = {}
        active_names: dict[str, int] = {}
        for index, entry in enumerate(doc.services):
            path: Path_ = ("services", index)
            ident = entry.id or derived_id(self.org, "services", index)
            if ident in service_ids:
                self.problem(
                    (*path, "id"), f"id {ident} is already used by services[{service_ids[ident]}]"
                )
            service_ids[ident] = index
            if entry.is_active:
                if entry.name in active_names:
                    self.problem(
                        (*path, "name"),
                        f"services[{active_names[entry.name]}] is already an active service "
                        f"named {entry.name!r}; only one active service may hold a name "
                        "(set is_active: false on one of them)",
                    )
                active_names[entry.name] = index
            agent = self._lookup((*path, "agent"), entry.agent, seed.agents, "agent")
            sm = self._lookup(
                (*path, "service_hierarchical_state_machine"),
                entry.service_hierarchical_state_machine,
                seed.state_machines,
                "state machine",
            )
            if EDGE in entry.version_sets:
                self.problem(
                    (*path, "version_sets", EDGE),
                    "`edge` is created automatically (latest versions, no preferences); "
                    "remove it from the seed",
                )
            if agent is None or sm is None:
                continue
            for owner, what in ((agent, "agent"), (sm, "state machine")):
                if owner.latest_version is None:
                    self.problem(
                        path, f"{what} {owner.name!r} has no versions; a service cannot use it"
                    )
            edge = SeedVersionSet().to_stored()
            version_sets = {EDGE: edge, RELEASE: dict(edge)}
            for name, version_set in entry.version_sets.items():
                if name == EDGE:
                    continue
                self._check_versions((*path, "version_sets", name), version_set, agent, sm)
                self._check_llms((*path, "version_sets", name), version_set, seed.deprecated_llms)
                version_sets[name] = version_set.to_stored()
            seed.services.append(
                ServiceRecord(
                    id=ident,
                    name=entry.name,
                    description=entry.description,
                    is_active=entry.is_active,
                    agent_id=agent.id,
                    state_machine_id=sm.id,
                    tags=dict(entry.tags),
                    keyterms=list(entry.keyterms),
                    version_sets=version_sets,
                    creator=dict(user),
                    updated_by=dict(user),
                )
            )

        for index, test in enumerate(doc.unit_tests):
            path = ("unit_tests", index)
            target = self._service_ref((*path, "service"), test.service, seed.services)
            if target is None:
                continue
            if test.version_set not in target.version_sets:
                known = ", ".join(sorted(target.version_sets))
                self.problem(
                    (*path, "version_set"),
                    f"service {target.name!r} has no version set {test.version_set!r} "
                    f"(it has: {known})",
                )
                continue
            stamp = SEED_TIMESTAMP if test.updated_at is None else _iso_z(test.updated_at)
            seed.unit_tests.append(
                UnitTestRecord(
                    id=test.id or derived_id(self.org, "unit_tests", index),
                    name=test.name,
                    description=test.description or f"Checks {target.name}",
                    service_id=target.id,
                    version_set=test.version_set,
                    is_deleted=test.is_deleted,
                    created_at=stamp,
                    updated_at=stamp,
                    persona_id=test.persona_id or derived_id(self.org, "personas", index),
                    scenario_id=test.scenario_id or derived_id(self.org, "scenarios", index),
                    creator=dict(user),
                    tags=dict(test.tags),
                    metrics=list(test.metrics),
                    outcomes=list(test.outcomes),
                    duration_seconds=test.duration_seconds,
                )
            )
            self._check_outcomes(path, test)
        seed.unit_test_sets = self._unit_test_sets(seed, user)
        if self.problems:
            raise UserError(self.problems)
        return seed

    def _check_outcomes(self, path: Path_, test: SeedUnitTest) -> None:
        for i, outcome in enumerate(test.outcomes):
            for name in outcome.failed_metrics:
                if name not in test.metrics:
                    known = ", ".join(test.metrics) or "none declared"
                    self.problem(
                        (*path, "outcomes", i, "failed_metrics"),
                        f"{name!r} is not one of this unit test's metrics ({known})",
                    )

    def _unit_test_sets(self, seed: Seed, user: dict[str, str]) -> list[UnitTestSetRecord]:
        records = []
        for index, entry in enumerate(self.doc.unit_test_sets):
            runs = []
            for i, ref in enumerate(entry.unit_tests):
                found = [t for t in seed.unit_tests if ref in (t.id, t.name)]
                if len(found) != 1:
                    known = ", ".join(sorted(t.name for t in seed.unit_tests)) or "none"
                    what = "several unit tests are" if found else "no unit test is"
                    self.problem(
                        ("unit_test_sets", index, "unit_tests", i),
                        f"{what} named {ref!r}; known unit tests: {known}",
                    )
                    continue
                runs.append((found[0].id, entry.run_count))
            records.append(
                UnitTestSetRecord(
                    id=entry.id or derived_id(self.org, "unit_test_sets", index),
                    name=entry.name,
                    description=entry.description,
                    unit_test_runs=runs,
                    is_deleted=entry.is_deleted,
                    created_at=SEED_TIMESTAMP,
                    creator=dict(user),
                    updated_at="" if entry.updated_at is None else _iso_z(entry.updated_at),
                )
            )
        return records

    def _service_ref(
        self, path: Path_, ref: str, services: list[ServiceRecord]
    ) -> ServiceRecord | None:
        ids, names = self._index(services)
        if ref in ids:
            return ids[ref]
        by_name = names.get(ref, [])
        if len(by_name) == 1:
            return by_name[0]
        if by_name:
            self.problem(path, f"{len(by_name)} services are named {ref!r}; refer to one by id")
        else:
            known = ", ".join(sorted({s.name for s in services})) or "none declared"
            self.problem(path, f"no service named or with id {ref!r}; known services: {known}")
        return None


def _iso_z(moment: datetime) -> str:
    """UTC, millisecond precision, `Z`: the form the emulator answers with."""
    utc = moment.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_seed_path() -> Path | None:
    """The sample organization `examples/emulator-seed.yaml` of a source checkout, if present."""
    candidate = Path(__file__).resolve().parents[2] / "examples" / "emulator-seed.yaml"
    return candidate if candidate.is_file() else None
