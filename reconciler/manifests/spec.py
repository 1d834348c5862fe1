"""The manifest's shape: pydantic models checked against the API's own limits.

Strict (no unknown keys), with the hints that say what a constrained string must
look like; `fields_at` lists the fields allowed at each level for "did you mean".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from reconciler.limits import (
    ID_PATTERN,
    KEYTERM_PATTERN,
    LLM_NAMES,
    MAX_KEYTERMS,
    MAX_TAGS,
    TAG_PATTERN,
    VERSION_SET_NAME_MAX,
    VERSION_SET_NAME_PATTERN,
)
from reconciler.model import EDGE, OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE

API_VERSION = "amigo.ai/v1"
KIND = "Service"

# Field limits: the API's own (reconciler/limits.py), shared with the emulator and export.
NOT_BLANK_PATTERN = r"\S"
KNOWN_LLM_NAMES = LLM_NAMES  # a name outside it is a warning: the list grows with new models

# What each constrained string must look like, said for people (keyed by pattern).
PATTERN_HINTS: dict[str, str] = {
    ID_PATTERN: "an id is 24 lowercase hexadecimal characters, like 6618791275130b73714e8d1c",
    TAG_PATTERN: "tag keys and values may hold only letters, digits, underscores and spaces",
    KEYTERM_PATTERN: (
        "a keyterm is one to three lowercase words of letters and hyphens, "
        "separated by single spaces, like 'meet and greet'"
    ),
    VERSION_SET_NAME_PATTERN: (
        "a version set name may hold only letters, digits, '_' and '-' "
        f"(at most {VERSION_SET_NAME_MAX} characters)"
    ),
    NOT_BLANK_PATTERN: "it must not be empty or only whitespace",
}


# --- the manifest shape ------------------------------------------------------------


def _reject_reserved_tag(key: str) -> str:
    if key == OWNERSHIP_TAG_KEY:
        raise PydanticCustomError(
            "reserved_tag",
            "the tag key '{key}' is reserved: the reconciler itself sets "
            "'{key}: {value}' on every service it manages; remove it from the manifest",
            {"key": OWNERSHIP_TAG_KEY, "value": OWNERSHIP_TAG_VALUE},
        )
    return key


def _reject_edge(name: str) -> str:
    if name == EDGE:
        raise PydanticCustomError(
            "edge_declared",
            "the 'edge' version set is read-only (the API keeps it at the latest versions "
            "with no LLM preferences); remove it, or declare another name such as 'canary'",
        )
    return name


NonBlankString = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, pattern=NOT_BLANK_PATTERN)
]
ObjectId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
TagString = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, pattern=TAG_PATTERN)
]
TagKey = Annotated[
    TagString,
    AfterValidator(_reject_reserved_tag),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "pattern": TAG_PATTERN, "not": {"const": "managed_by"}}
    ),
]
Keyterm = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, pattern=KEYTERM_PATTERN)
]
VersionSetName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=VERSION_SET_NAME_MAX,
        pattern=VERSION_SET_NAME_PATTERN,
    ),
    AfterValidator(_reject_edge),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": VERSION_SET_NAME_MAX,
            "pattern": VERSION_SET_NAME_PATTERN,
            "not": {"const": EDGE},
        }
    ),
]
VersionNumber = Annotated[int, Field(ge=1)]
LLMName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1),
    WithJsonSchema(
        {
            "anyOf": [{"enum": list(KNOWN_LLM_NAMES)}, {"type": "string", "minLength": 1}],
            "description": "One of the API's LLMType names (others are accepted with a warning).",
        }
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class LLMConfigSpec(_Strict):
    """The API's `LLMConfig-Input`."""

    llm_name: LLMName
    params: dict[str, JsonValue] = Field(
        default_factory=dict, description="LLM-specific parameters, e.g. temperature."
    )


class VerifySpec(_Strict):
    """How `reconciler verify` checks this version set (never sent to the API)."""

    unit_test_sets: Annotated[list[NonBlankString], Field(min_length=1)] = Field(
        description="Simulation unit test sets to run, by name (resolved in the organization)."
    )


class VersionSetSpec(_Strict):
    """The API's `VersionSet-Input`, declared whole: omitted numbers mean the latest version."""

    agent_version_number: VersionNumber | None = Field(
        default=None, description="The agent version to use; null or omitted: the latest."
    )
    service_hierarchical_state_machine_version_number: VersionNumber | None = Field(
        default=None, description="The state machine version to use; null or omitted: the latest."
    )
    llm_model_preferences: dict[NonBlankString, LLMConfigSpec] = Field(
        default_factory=dict,
        description="LLM per interaction type; omitted means no preferences.",
    )
    verify: VerifySpec | None = Field(
        default=None,
        description="Unit test sets `reconciler verify` runs for this set (not sent to the API).",
    )


# An environment of reconciler.yaml, as reconciler/project.py accepts its names.
EnvironmentName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class MetadataSpec(_Strict):
    name: NonBlankString = Field(description="The service's name: its identity.")
    id: ObjectId | None = Field(
        default=None,
        description="Pin this manifest to one existing service (for renames and ambiguous names).",
    )
    environments: list[EnvironmentName] | None = Field(
        default=None,
        min_length=1,
        description="Only in these environments of reconciler.yaml (absent: in every one; "
        "left out when no --env is given). Never sent to the API.",
    )


_ONE_OF_AGENT_AND_STATE_MACHINE: JsonDict = {
    "allOf": [
        {"oneOf": [{"required": ["agent"]}, {"required": ["agent_id"]}]},
        {
            "oneOf": [
                {"required": ["service_hierarchical_state_machine"]},
                {"required": ["service_hierarchical_state_machine_id"]},
            ]
        },
    ]
}


class ServiceSpec(_Strict):
    model_config = ConfigDict(json_schema_extra=_ONE_OF_AGENT_AND_STATE_MACHINE)

    description: NonBlankString = Field(description="A description of this service.")
    is_active: bool = Field(default=True, description="Inactive services are retired.")
    agent: NonBlankString | None = Field(
        default=None, description="The agent's name, resolved in the organization."
    )
    agent_id: ObjectId | None = Field(default=None, description="The agent's id.")
    service_hierarchical_state_machine: NonBlankString | None = Field(
        default=None, description="The state machine's name, resolved in the organization."
    )
    service_hierarchical_state_machine_id: ObjectId | None = Field(
        default=None, description="The state machine's id."
    )
    tags: Annotated[dict[TagKey, TagString | None], Field(max_length=MAX_TAGS)] | None = Field(
        default=None,
        description="Omitted: live tags are left alone; {} clears them. Values may be null.",
    )
    keyterms: Annotated[list[Keyterm], Field(max_length=MAX_KEYTERMS)] | None = Field(
        default=None, description="Omitted: live keyterms are left alone; [] clears them."
    )
    version_sets: dict[VersionSetName, VersionSetSpec] = Field(
        default_factory=dict,
        description="Managed version sets ('edge' is read-only; 'release' only when declared).",
    )


class ServiceManifest(_Strict):
    """One YAML document describing one Amigo service."""

    model_config = ConfigDict(title="Amigo service manifest")

    apiVersion: Literal["amigo.ai/v1"]
    kind: Literal["Service"]
    metadata: MetadataSpec
    spec: ServiceSpec


# Fields allowed at each level, for "did you mean" on unknown keys.
_FIELDS_AT: dict[str, tuple[str, ...]] = {
    "": tuple(ServiceManifest.model_fields),
    "metadata": tuple(MetadataSpec.model_fields),
    "spec": tuple(ServiceSpec.model_fields),
    "version_set": tuple(VersionSetSpec.model_fields),
    "llm_config": tuple(LLMConfigSpec.model_fields),
    "verify": tuple(VerifySpec.model_fields),
}


def fields_at(loc: Sequence[str | int]) -> tuple[str, ...]:
    if len(loc) == 0:
        return _FIELDS_AT[""]
    if len(loc) == 1 and loc[0] in ("metadata", "spec"):
        return _FIELDS_AT[str(loc[0])]
    if len(loc) == 3 and loc[:2] == ("spec", "version_sets"):
        return _FIELDS_AT["version_set"]
    if len(loc) == 4 and loc[:2] == ("spec", "version_sets") and loc[3] == "verify":
        return _FIELDS_AT["verify"]
    if len(loc) == 5 and loc[:2] == ("spec", "version_sets") and loc[3] == "llm_model_preferences":
        return _FIELDS_AT["llm_config"]
    return ()
