"""The normalized shapes that desired state (manifests) and live state (API) share.

Both sides are brought to these shapes before they are compared, so the diff is
a plain field-by-field comparison: tags are a map (the API returns a list),
`params` defaults to `{}`, version sets are keyed by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.diagnostics import Diagnostic, SourcePos

OWNERSHIP_TAG_KEY = "managed_by"
OWNERSHIP_TAG_VALUE = "amigo_reconciler"
EDGE = "edge"
RELEASE = "release"

Tags = Mapping[str, str | None]


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
    # Version set -> unit test set names `verify` runs for it (never sent to the API).
    verify: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Dotted field path ("spec.agent", "spec.version_sets.canary.agent_version_number")
    # -> position, so plan-time errors can point into the manifest.
    positions: Mapping[str, SourcePos] = field(default_factory=dict)

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
            name=data["name"],
            description=data["description"],
            is_active=data["is_active"],
            agent_id=data["agent_id"],
            service_hierarchical_state_machine_id=data["service_hierarchical_state_machine_id"],
            tags={t["key"]: t.get("value") for t in data.get("tags") or []},
            keyterms=tuple(data.get("keyterms") or ()),
            version_sets={
                k: VersionSet.from_api(v) for k, v in (data.get("version_sets") or {}).items()
            },
        )


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
