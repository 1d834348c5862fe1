"""Request models of the emulated endpoints, shaped like the API's own pydantic models.

The Amigo API is a FastAPI application: a request that breaks its models gets a
422 whose body lists every problem as `{"loc": [...], "msg": ..., "type": ...}`.
Validating with pydantic models written from the OpenAPI schemas gives the
emulator the same answers (stripped non-empty strings, patterns, item limits,
the LLM enum) without reading the OpenAPI document at runtime.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from reconciler.limits import (
    ID_PATTERN as OBJECT_ID_PATTERN,
)
from reconciler.limits import (
    KEYTERM_PATTERN,
    MAX_KEYTERMS,
    MAX_TAGS,
    TAG_PATTERN,
    VERSION_SET_NAME_PATTERN,
)
from reconciler.limits import (
    VERSION_SET_NAME_MAX as MAX_VERSION_SET_NAME,
)


class LLMType(StrEnum):
    """The `LLMType` enum of the API contract (copied: the project never reads the spec at runtime)."""

    AZURE_GPT_4_1 = "azure_gpt-4.1-2025-04-14"
    OPENAI_GPT_4_1 = "openai_gpt-4.1-2025-04-14"
    AZURE_GPT_4_1_MINI = "azure_gpt-4.1-mini-2025-04-14"
    OPENAI_GPT_4_1_MINI = "openai_gpt-4.1-mini-2025-04-14"
    AZURE_GPT_5_NANO = "azure_gpt-5-nano-2025-08-07"
    AZURE_GPT_5_1 = "azure_gpt-5.1-2025-11-13"
    OPENAI_GPT_5_1 = "openai_gpt-5.1-2025-11-13"
    AZURE_GPT_5_2 = "azure_gpt-5.2-2025-12-11"
    OPENAI_GPT_5_NANO = "openai_gpt-5-nano-2025-08-07"
    OPENAI_GPT_5_2 = "openai_gpt-5.2-2025-12-11"
    GOOGLE_CLAUDE_SONNET_4_5 = "google_claude-sonnet-4-5@20250929"
    AWS_CLAUDE_SONNET_4_5 = "aws_claude-sonnet-4-5-20250929"
    GOOGLE_GEMINI_2_5_PRO = "google_gemini-2.5-pro"
    GOOGLE_GEMINI_2_5_FLASH = "google_gemini-2.5-flash"


ObjectId = Annotated[str, StringConstraints(pattern=OBJECT_ID_PATTERN)]
StrippedNonempty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
TagText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, pattern=TAG_PATTERN)
]
Keyterm = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, pattern=KEYTERM_PATTERN)
]
VersionSetName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=MAX_VERSION_SET_NAME,
        pattern=VERSION_SET_NAME_PATTERN,
    ),
]
Tags = Annotated[dict[TagText, TagText | None], Field(max_length=MAX_TAGS)]
Keyterms = Annotated[list[Keyterm], Field(max_length=MAX_KEYTERMS)]


class LLMConfigIn(BaseModel):
    llm_name: LLMType
    params: dict[str, Any] = Field(default_factory=dict)


class VersionSetIn(BaseModel):
    """`VersionSet-Input`: every field required (nullable numbers mean "latest")."""

    agent_version_number: int | None
    service_hierarchical_state_machine_version_number: int | None
    llm_model_preferences: dict[str, LLMConfigIn]

    def to_stored(self) -> dict[str, Any]:
        return stored_version_set(self)


class _StoredPreference(typing.Protocol):
    @property
    def llm_name(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...


class _StoredVersionSet(typing.Protocol):
    @property
    def agent_version_number(self) -> int | None: ...
    @property
    def service_hierarchical_state_machine_version_number(self) -> int | None: ...
    @property
    def llm_model_preferences(self) -> typing.Mapping[str, _StoredPreference]: ...


def stored_version_set(version_set: _StoredVersionSet) -> dict[str, Any]:
    """A version set as the emulator stores it (and answers it: `VersionSet-Output`)."""
    return {
        "agent_version_number": version_set.agent_version_number,
        "service_hierarchical_state_machine_version_number": (
            version_set.service_hierarchical_state_machine_version_number
        ),
        "llm_model_preferences": {
            key: {"llm_name": str(cfg.llm_name), "params": dict(cfg.params)}
            for key, cfg in version_set.llm_model_preferences.items()
        },
    }


class CreateServiceRequest(BaseModel):
    service_hierarchical_state_machine_id: ObjectId
    agent_id: ObjectId
    name: StrippedNonempty
    description: StrippedNonempty
    is_active: bool
    release_version_set: VersionSetIn | None = None
    keyterms: Keyterms
    tags: Tags


class UpdateServiceRequest(BaseModel):
    name: StrippedNonempty | None = None
    description: StrippedNonempty | None = None
    is_active: bool | None = None
    agent_id: ObjectId | None = None
    service_hierarchical_state_machine_id: ObjectId | None = None
    tags: Tags | None = None
    keyterms: Keyterms | None = None


class UpsertVersionSetRequest(BaseModel):
    version_set: VersionSetIn


# --- query parameters ------------------------------------------------------------


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore")


class GetServicesQuery(_Query):
    id: list[ObjectId] = Field(default_factory=list)
    is_active: bool | None = None
    sort_by: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    limit: Annotated[int, Field(gt=0, le=20)] = 10
    continuation_token: int = 0


class GetAgentsQuery(_Query):
    deprecated: bool | None = None
    id: list[ObjectId] = Field(default_factory=list)
    limit: Annotated[int, Field(gt=0, le=20)] = 10
    continuation_token: int = 0


class GetStateMachinesQuery(_Query):
    deprecated: bool | None = None
    id: list[ObjectId] = Field(default_factory=list)
    limit: Annotated[int, Field(ge=0, le=50)] = 50
    continuation_token: int = 0


class GetUnitTestsQuery(_Query):
    id: list[ObjectId] = Field(default_factory=list)
    service_id: list[ObjectId] = Field(default_factory=list)
    persona_id: list[ObjectId] = Field(default_factory=list)
    scenario_id: list[ObjectId] = Field(default_factory=list)
    metric_id: list[ObjectId] = Field(default_factory=list)
    creator: list[str] = Field(default_factory=list)
    tag: list[str] = Field(default_factory=list)
    sort_by: list[str] = Field(default_factory=list)
    is_deleted: bool | None = None
    limit: Annotated[int, Field(ge=0, le=500)] = 50
    continuation_token: int = 0


class RequestInvalid(Exception):
    """The request broke a model: carries the FastAPI-style `detail` list of a 422."""

    def __init__(self, detail: list[dict[str, Any]], interpretation: str | None = None) -> None:
        self.detail = detail
        self.interpretation = interpretation  # set when the refusal rests on one reading
        super().__init__(json.dumps(detail))


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def validation_detail(exc: ValidationError, location: str) -> list[dict[str, Any]]:
    """Pydantic errors as FastAPI reports them: loc prefixed with body / query / path."""
    detail: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False):
        item: dict[str, Any] = {
            "type": error["type"],
            "loc": [location, *error["loc"]],
            "msg": error["msg"],
            "input": _jsonable(error.get("input")),
        }
        if "ctx" in error:
            item["ctx"] = _jsonable(error["ctx"])
        detail.append(item)
    return detail


M = typing.TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], body: bytes) -> M:
    """JSON body -> model, or RequestInvalid with FastAPI's 422 detail."""
    if not body.strip():
        raise RequestInvalid(
            [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
        )
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        position = exc.pos if isinstance(exc, json.JSONDecodeError) else exc.start
        raise RequestInvalid(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body", position],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": str(exc)},
                }
            ]
        ) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestInvalid(validation_detail(exc, "body")) from None


def _is_list_field(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list


def parse_query(model: type[M], pairs: Sequence[tuple[str, str]]) -> M:
    """Query multi-dict -> model: list fields take every value, others the last one (Starlette)."""
    data: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        values = [value for key, value in pairs if key == name]
        if not values:
            continue
        data[name] = values if _is_list_field(field.annotation) else values[-1]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestInvalid(validation_detail(exc, "query")) from None


_OBJECT_ID = TypeAdapter(ObjectId)
_VERSION_SET_NAME = TypeAdapter(VersionSetName)


def parse_object_id_path(name: str, value: str) -> str:
    try:
        return _OBJECT_ID.validate_python(value)
    except ValidationError as exc:
        raise RequestInvalid(
            [{**item, "loc": ["path", name]} for item in validation_detail(exc, "path")]
        ) from None


def parse_version_set_name_path(value: str) -> str:
    try:
        return _VERSION_SET_NAME.validate_python(value)
    except ValidationError as exc:
        raise RequestInvalid(
            [
                {**item, "loc": ["path", "version_set_name"]}
                for item in validation_detail(exc, "path")
            ]
        ) from None


def query_error(
    name: str, message: str, value: Any, *, interpretation: str | None = None
) -> RequestInvalid:
    return RequestInvalid(
        [{"type": "value_error", "loc": ["query", name], "msg": message, "input": value}],
        interpretation,
    )


def header_error(
    name: str, message: str, value: Any, *, interpretation: str | None
) -> RequestInvalid:
    return RequestInvalid(
        [{"type": "value_error", "loc": ["header", name], "msg": message, "input": value}],
        interpretation,
    )
