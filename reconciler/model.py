"""The normalized shapes that desired state (manifests) and live state (API) share.

Both sides are brought to these shapes before they are compared, so the diff is
a plain field-by-field comparison: tags are a map (the API returns a list),
`params` defaults to `{}`, version sets are keyed by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.diagnostics import Diagnostic, SourcePos

OWNERSHIP_TAG_KEY = "managed_by"
OWNERSHIP_TAG_VALUE = "amigo_reconciler"
EDGE = "edge"
RELEASE = "release"

Tags = Mapping[str, str | None]


class Shape(StrEnum):
    """How a field's value travels: the API's form, the model's, and the plain form
    that the diff, the plan record and export compare and write."""

    SCALAR = "scalar"  # str / bool / int, the same everywhere
    LIST = "list"  # API list -> tuple -> list; ordered, compared whole
    TAGS = "tags"  # API [{key, value}] -> map -> dict; compared key by key


@dataclass(frozen=True, slots=True)
class ServiceField:
    """One field of a service that update_service sets: the one table (`SERVICE_FIELDS`)
    that the model, the diff, the plan record and export derive from.

    `name` is the API's field name and the attribute on `LiveService` and
    `DesiredService`; `manifest` is where a manifest declares it. `managed_when_omitted`
    False means a manifest may leave it out and the live value then stays
    (`DesiredService` holds None). `by_name` names the manifest's alternative field
    that gives the referenced record by name (`agent` for `agent_id`).
    """

    name: str
    manifest: str
    shape: Shape = Shape.SCALAR
    managed_when_omitted: bool = True
    by_name: str | None = None

    def from_api(self, data: Mapping[str, Any]) -> Any:
        """The model's value from an API `ServiceInstance`."""
        if self.shape is Shape.TAGS:
            return {t["key"]: t.get("value") for t in data.get(self.name) or []}
        if self.shape is Shape.LIST:
            return tuple(data.get(self.name) or ())
        return data[self.name]

    def empty(self) -> Any:
        """The value of a field a new service's manifest leaves unmanaged."""
        return {} if self.shape is Shape.TAGS else () if self.shape is Shape.LIST else None

    def plain(self, value: Any) -> Any:
        """The model's value as plain JSON data (what a request carries, a diff compares)."""
        if self.shape is Shape.TAGS:
            return dict(value)
        if self.shape is Shape.LIST:
            return list(value)
        return value


# In the order people read them (diffs, requests). Adding a field: one entry here, the
# attribute on LiveService and DesiredService, and the manifest's schema (docs/adding-a-field.md).
SERVICE_FIELDS: tuple[ServiceField, ...] = (
    ServiceField("name", "metadata.name"),
    ServiceField("description", "spec.description"),
    ServiceField("is_active", "spec.is_active"),
    ServiceField("agent_id", "spec.agent_id", by_name="agent"),
    ServiceField(
        "service_hierarchical_state_machine_id",
        "spec.service_hierarchical_state_machine_id",
        by_name="service_hierarchical_state_machine",
    ),
    ServiceField("keyterms", "spec.keyterms", Shape.LIST, managed_when_omitted=False),
    ServiceField("tags", "spec.tags", Shape.TAGS, managed_when_omitted=False),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in SERVICE_FIELDS)


@dataclass(frozen=True, slots=True)
class LLMConfig:
    llm_name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {"llm_name": self.llm_name, "params": dict(self.params)}


@dataclass(frozen=True, slots=True)
class VersionSet:
    """A version set declared whole: None version numbers mean "latest"."""

    agent_version_number: int | None = None
    service_hierarchical_state_machine_version_number: int | None = None
    llm_model_preferences: Mapping[str, LLMConfig] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The API's `VersionSet-Input` body."""
        return {
            "agent_version_number": self.agent_version_number,
            "service_hierarchical_state_machine_version_number": (
                self.service_hierarchical_state_machine_version_number
            ),
            "llm_model_preferences": {
                k: v.to_api() for k, v in sorted(self.llm_model_preferences.items())
            },
        }

    def to_compact(
        self,
        text: Callable[[str], str] = str,
        data: Callable[[Mapping[str, Any]], Any] = dict,
    ) -> dict[str, Any]:
        """The form manifests and seeds are written in: null numbers and empty params left
        out, interactions sorted; `text` / `data` shape LLM names and params."""
        out: dict[str, Any] = {}
        if self.agent_version_number is not None:
            out["agent_version_number"] = self.agent_version_number
        number = self.service_hierarchical_state_machine_version_number
        if number is not None:
            out["service_hierarchical_state_machine_version_number"] = number
        if self.llm_model_preferences:
            prefs: dict[str, Any] = {}
            for interaction in sorted(self.llm_model_preferences):
                config = self.llm_model_preferences[interaction]
                entry: dict[str, Any] = {"llm_name": text(config.llm_name)}
                if config.params:
                    entry["params"] = data(config.params)
                prefs[interaction] = entry
            out["llm_model_preferences"] = prefs
        return out

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> VersionSet:
        prefs = data.get("llm_model_preferences") or {}
        return cls(
            agent_version_number=data.get("agent_version_number"),
            service_hierarchical_state_machine_version_number=data.get(
                "service_hierarchical_state_machine_version_number"
            ),
            llm_model_preferences={
                k: LLMConfig(llm_name=v["llm_name"], params=dict(v.get("params") or {}))
                for k, v in prefs.items()
            },
        )


@dataclass(frozen=True, slots=True)
class DesiredService:
    """One manifest document, validated, with `${VAR}` filled in.

    `agent` / `service_hierarchical_state_machine` are names still to be
    resolved against the organization; exactly one of name or id is set.
    `tags` / `keyterms` of None mean "not managed" (live values stay).
    `version_sets` holds only declared sets (never `edge`).
    """

    name: str
    description: str
    source: SourcePos
    id: str | None = None
    is_active: bool = True
    agent: str | None = None
    agent_id: str | None = None
    service_hierarchical_state_machine: str | None = None
    service_hierarchical_state_machine_id: str | None = None
    tags: Tags | None = None
    keyterms: tuple[str, ...] | None = None
    version_sets: Mapping[str, VersionSet] = field(default_factory=dict)
    # metadata.environments: the reconciler.yaml environments it is in (None: every one).
    environments: tuple[str, ...] | None = None
    # Version set -> unit test set names `verify` runs for it (never sent to the API).
    verify: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Dotted field path ("spec.agent", "spec.version_sets.canary.agent_version_number")
    # -> position, so plan-time errors can point into the manifest.
    positions: Mapping[str, SourcePos] = field(default_factory=dict)

    def declared(self) -> dict[str, Any]:
        """Manifest path -> plain value, for every `SERVICE_FIELDS` field the manifest gives
        (a reference by name or by id, under the key it was given as); unmanaged ones left out."""
        out: dict[str, Any] = {}
        for f in SERVICE_FIELDS:
            section, _, key = f.manifest.partition(".")
            for attribute in (f.by_name, key) if f.by_name else (f.name,):
                value = getattr(self, attribute)
                if value is not None:
                    out[f"{section}.{attribute}"] = value if attribute != f.name else f.plain(value)
        return out

    def pos(self, path: str) -> SourcePos:
        """Position of a field, falling back to its nearest declared parent, then the document."""
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path.rpartition(".")[0]
        return self.source


@dataclass(frozen=True, slots=True)
class DesiredState:
    services: tuple[DesiredService, ...]
    digest: str  # sha256 over the manifest files' bytes and the filled values
    warnings: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True, slots=True)
class LiveService:
    id: str
    name: str
    description: str
    is_active: bool
    agent_id: str
    service_hierarchical_state_machine_id: str
    tags: Tags
    keyterms: tuple[str, ...]
    version_sets: Mapping[str, VersionSet]

    @property
    def owned(self) -> bool:
        return self.tags.get(OWNERSHIP_TAG_KEY) == OWNERSHIP_TAG_VALUE

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> LiveService:
        """From the API's `ServiceInstance` (tags list -> map)."""
        return cls(
            id=data["id"],
            version_sets={
                k: VersionSet.from_api(v) for k, v in (data.get("version_sets") or {}).items()
            },
            **{f.name: f.from_api(data) for f in SERVICE_FIELDS},
        )

    def fields(self) -> dict[str, Any]:
        """The `SERVICE_FIELDS`, as plain values (what a diff compares)."""
        return {f.name: f.plain(getattr(self, f.name)) for f in SERVICE_FIELDS}


@dataclass(frozen=True, slots=True)
class Agent:
    """An agent or a state machine: both are named, versioned and may be deprecated."""

    id: str
    name: str
    deprecated: bool
    latest_version: int | None


StateMachine = Agent


@dataclass(frozen=True, slots=True)
class UnitTest:
    id: str
    name: str
    service_id: str
    version_set: str


@dataclass(frozen=True, slots=True)
class LiveState:
    """What was read from the API. None means "not fetched" (not needed by this plan)."""

    services: tuple[LiveService, ...]
    agents: tuple[Agent, ...] | None = None
    state_machines: tuple[StateMachine, ...] | None = None
    unit_tests: tuple[UnitTest, ...] | None = None
