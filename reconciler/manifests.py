"""YAML manifests -> validated desired state, with source positions and `${VAR}` filling.

Loading is one pass per document: libyaml composes the text into nodes (which
carry line and column), and a small walker turns the nodes into plain Python
values while recording where every field came from. Pydantic models (strict,
no unknown keys) then check the shape against the API's own limits, and every
error is mapped back to the YAML node it is about. All problems in all files
are collected and raised together as one `UserError`, so a single run tells
the author everything that needs fixing.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from reconciler.api.config import ENV_API_KEY
from reconciler.diagnostics import Diagnostic, Severity, SourcePos, UserError
from reconciler.gcpause import fewer_collections
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
from reconciler.model import (
    EDGE,
    OWNERSHIP_TAG_KEY,
    OWNERSHIP_TAG_VALUE,
    DesiredService,
    DesiredState,
    LLMConfig,
    VersionSet,
)
from reconciler.redaction import (
    CREDENTIAL_VARIABLES,
    SECRET_VARIABLES,
    api_key,
)

API_VERSION = "amigo.ai/v1"
KIND = "Service"
MANIFEST_SUFFIXES = (".yaml", ".yml")

# Limits that keep a hostile or mistaken input from hanging the loader. A service
# manifest is a few hundred bytes and a few dozen YAML nodes; these are far above that.
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_NODES_PER_DOCUMENT = 10_000  # counted after aliases are expanded (defeats alias bombs)
MAX_DEPTH = 64

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


class MetadataSpec(_Strict):
    name: NonBlankString = Field(description="The service's name: its identity.")
    id: ObjectId | None = Field(
        default=None,
        description="Pin this manifest to one existing service (for renames and ambiguous names).",
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


def _fields_at(loc: Sequence[str | int]) -> tuple[str, ...]:
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


def did_you_mean(word: str, candidates: Sequence[str]) -> str | None:
    """The closest candidate to a misspelled word, if one is close enough."""
    lowered = {c.lower(): c for c in candidates}
    if word.lower() in lowered:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


# --- reading files -------------------------------------------------------------------


_CONSTRUCTOR = SafeConstructor()
_SCALAR_CONSTRUCTORS = SafeConstructor.yaml_constructors
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOOL_VALUES: dict[str, bool] = SafeConstructor.bool_values
_SCALAR_TAGS_ALLOWED = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("int", "float", "timestamp", "binary")
)
_ENV_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# Plain-scalar resolution as pyyaml's SafeLoader does it (YAML 1.1: `on` is a bool),
# minus the `=` (value) and `!&*` (yaml) tags nothing constructs: those stay strings.
_IMPLICIT_RESOLVERS: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    first: tuple(
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:value", "tag:yaml.org,2002:yaml")
    )
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
    if first is not None
}
_DEFAULT_TAGS: dict[type, str] = {
    ScalarNode: _STR_TAG,
    SequenceNode: _SEQ_TAG,
    MappingNode: _MAP_TAG,
}


# Numbers YAML 1.2's core schema reads that pyyaml's YAML 1.1 rules leave as text:
# `5e-1`, `1e3`, `1.5E3` (1.1 wants a dot and a signed exponent) and `0o17`. A plain
# scalar only: quoting still makes a string.
_YAML12_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_YAML12_OCTAL = re.compile(r"0o[0-7]+\Z")


class _FastResolution:
    """Pyyaml's SafeLoader tag resolution without the per-node path-resolver bookkeeping.

    The stock resolver is about 40% of composing a manifest; this one gives the
    same tags (manifests use no path resolvers) in a fraction of the time.
    """

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode and implicit[0]:
            for tag, regexp in _IMPLICIT_RESOLVERS.get(value[:1], ()):
                if regexp.match(value):
                    return tag
            if _YAML12_FLOAT.match(value):
                return _FLOAT_TAG
            if _YAML12_OCTAL.match(value):
                return _INT_TAG
            return _STR_TAG
        return _DEFAULT_TAGS[kind]


if yaml.__with_libyaml__:  # composing runs in C

    class _Composer(_FastResolution, yaml.CSafeLoader):
        pass

else:  # pragma: no cover - pyyaml built without libyaml

    class _Composer(_FastResolution, yaml.SafeLoader):  # type: ignore[no-redef]
        pass


def _pos(file: str, node: Node) -> SourcePos:
    mark = node.start_mark
    return SourcePos(file, mark.line + 1, mark.column + 1)


class _TooLarge(Exception):
    """A document expands past the node budget or nesting limit."""


@dataclass
class _Document:
    """One YAML document turned into plain values, with where each field came from."""

    file: str
    root: Node
    data: Any = None
    # dotted path -> (key node or None for list items and the root, value node)
    index: dict[str, tuple[Node | None, Node]] = field(default_factory=dict)
    # paths whose value is already reported (bad tag, undefined variable): no second error
    reported: set[str] = field(default_factory=set)


class _DocumentBuilder:
    """Walks a composed node tree once, building values and the position index together."""

    def __init__(
        self,
        doc: _Document,
        env: Mapping[str, str],
        filled: list[str],
        diagnostics: list[Diagnostic],
    ) -> None:
        self.doc = doc
        self.file = doc.file
        self.index = doc.index
        self.env = env
        self.filled = filled
        self.diagnostics = diagnostics
        self.budget = MAX_NODES_PER_DOCUMENT
        self.api_key = api_key(env)

    def error(self, node: Node, path: str, message: str) -> None:
        self.doc.reported.add(path)
        self.diagnostics.append(Diagnostic(message, pos=_pos(self.file, node), field=path or None))

    def build(self, node: Node, path: str, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0 or depth > MAX_DEPTH:
            raise _TooLarge
        cls = node.__class__
        if cls is ScalarNode:
            tag = node.tag
            value: str = node.value
            if tag == _STR_TAG:
                if "$" in value:
                    return self.fill(value, node, path)
                return value
            if tag == _NULL_TAG:
                return None
            if tag == _MERGE_TAG:  # a plain `<<` that is not a key: just text
                return value
            if tag == _BOOL_TAG:
                return _BOOL_VALUES[value.lower()]
            if tag == _INT_TAG and value.isdecimal() and (value[0] != "0" or value == "0"):
                return int(value)  # the common case; YAML 1.1 octal, hex, 1_000 go below
            if tag in _SCALAR_TAGS_ALLOWED:
                try:
                    result = _SCALAR_CONSTRUCTORS[tag](_CONSTRUCTOR, node)
                except (ValueError, yaml.YAMLError):
                    self.error(node, path, f"cannot read the value {value!r}; quote it")
                    return value
                if result.__class__ is float and not math.isfinite(result):
                    self.error(
                        node,
                        path,
                        f"{value!r} is not a finite number, and JSON (what the API reads) "
                        "has no NaN or infinity; write a finite number, or quote it for text",
                    )
                    return None
                if tag != _INT_TAG and tag != _FLOAT_TAG:  # a date or bytes: not JSON
                    what = "binary data" if tag.endswith(":binary") else "a date"
                    self.error(
                        node,
                        path,
                        f"{what} is not a value JSON (what the API reads) can carry; "
                        "write it in quotes to make it a string",
                    )
                    return None
                return result
            self.error(node, path, f"unsupported YAML tag {tag}; remove the tag")
            return None
        if cls is MappingNode:
            if node.tag != _MAP_TAG:
                self.error(node, path, f"unsupported YAML tag {node.tag}; use a plain mapping")
                return None
            return self.build_mapping(node, path, depth)
        if cls is SequenceNode:
            if node.tag != _SEQ_TAG:
                self.error(node, path, f"unsupported YAML tag {node.tag}; use a plain list")
                return None
            prefix = path + "." if path else ""
            items = []
            index = self.index
            for i, item in enumerate(node.value):
                child = prefix + str(i)
                index[child] = (None, item)
                items.append(self.build(item, child, depth + 1))
            return items
        self.error(node, path, "unexpected YAML node")  # pragma: no cover - pyyaml has 3 kinds
        return None

    def build_mapping(self, node: Node, path: str, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        prefix = path + "." if path else ""
        index = self.index
        merges: list[Node] = []
        padded = False  # a key with surrounding whitespace: check for stripped collisions
        for key_node, value_node in node.value:
            if key_node.__class__ is not ScalarNode:
                self.error(key_node, path, "a mapping key must be a plain string, not a collection")
                continue
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key: str = key_node.value
            child = prefix + key
            if key in result:
                first = index[child][0]
                where = f" (first at line {first.start_mark.line + 1})" if first else ""
                self.error(
                    key_node, child, f"duplicate key '{key}'{where}; a key may appear only once"
                )
                continue
            index[child] = (key_node, value_node)
            result[key] = self.build(value_node, child, depth + 1)
            if not padded and key and (key[0].isspace() or key[-1].isspace()):
                padded = True
        for merge in merges:
            sources = merge.value if merge.__class__ is SequenceNode else [merge]
            for source in sources:
                if source.__class__ is not MappingNode:
                    self.error(source, path, "a merge key '<<' needs a mapping or list of mappings")
                    continue
                # Explicit keys win over merged ones, in the values and in the positions.
                self.index = {}
                try:
                    merged = self.build_mapping(source, path, depth + 1)
                finally:
                    merged_positions, self.index = self.index, index
                for child, entry in merged_positions.items():
                    index.setdefault(child, entry)
                for key, value in merged.items():
                    result.setdefault(key, value)
                padded = True  # merged keys were not looked at: check them below
        if padded:
            self.check_stripped_keys(result, prefix)
        return result

    def check_stripped_keys(self, result: dict[str, Any], prefix: str) -> None:
        """Keys that differ only by surrounding whitespace are one key once validated.

        Tag keys, version set names and LLM purposes are stripped, so `team` and
        `team ` would silently merge (one value lost): each such pair is an error.
        """
        first_of: dict[str, str] = {}
        for key in result:
            first = first_of.setdefault(key.strip(), key)
            if first == key:
                continue
            first_entry = self.index.get(prefix + first)
            entry = self.index.get(prefix + key)
            first_node = first_entry[0] if first_entry else None
            node = entry[0] if entry else None
            if node is None:  # pragma: no cover - every mapping entry is indexed
                continue
            where = f" at line {first_node.start_mark.line + 1}" if first_node else ""
            self.error(
                node,
                prefix + key,
                f"the keys {first!r}{where} and {key!r} are the same key once surrounding "
                "whitespace is removed, so one would silently replace the other; "
                "keep one of them",
            )

    def fill(self, text: str, node: Node, path: str) -> str:
        """Replace `${VAR}` / `${VAR:-default}` from the environment; `$${` is a literal `${`."""
        out: list[str] = []
        last = 0
        for match in _ENV_REFERENCE.finditer(text):
            out.append(text[last : match.start()])
            last = match.end()
            token = match.group(0)
            if token == "$${":
                out.append("${")
                continue
            inner = match.group(1)
            if inner is None:
                self.error_at(
                    node,
                    path,
                    match.start(),
                    "'${' without a closing '}'; write '$${' for a literal '${'",
                )
                out.append(token)
                continue
            name, sep, default = inner.partition(":-")
            if not _ENV_NAME.match(name):
                self.error_at(
                    node,
                    path,
                    match.start(),
                    f"'{token}' is not a variable reference: use ${{NAME}} or "
                    "${NAME:-default} (NAME of letters, digits and '_'); write '$${' for a literal '${'",
                )
                out.append(token)
                continue
            if "${" in default:
                self.error_at(
                    node,
                    path,
                    match.start() + len("${") + len(name) + len(":-") + default.index("${"),
                    f"the default of ${{{name}:-...}} holds '${{': nested references are "
                    f"not expanded, and a default may not contain '${{'; set {name}, or "
                    "write the default as plain text",
                )
                out.append(token)
                continue
            if name in CREDENTIAL_VARIABLES:
                what = "API key, a secret" if name in SECRET_VARIABLES else "credentials"
                self.error_at(
                    node,
                    path,
                    match.start(),
                    f"${{{name}}} is the reconciler's own {what}; a manifest may not use it "
                    "(its value would be sent to the API and shown in plans, comments and "
                    "plan files); remove the reference",
                )
                out.append(token)
                continue
            value = self.env.get(name)
            if value is None or (sep and value == ""):
                if not sep:
                    self.error_at(
                        node,
                        path,
                        match.start(),
                        f"environment variable {name} is not set; set it, or give a default: "
                        f"${{{name}:-value}}",
                    )
                    out.append(token)
                    continue
                value = default
            if self.api_key is not None and self.api_key in value:
                self.error_at(
                    node,
                    path,
                    match.start(),
                    f"the value of ${{{name}}} holds the API key ({ENV_API_KEY}); a manifest "
                    "may not use it (it would be sent to the API and shown in plans); "
                    f"use another variable, or unset {name}",
                )
                out.append(token)
                continue
            self.filled.append(f"{name}={value}")
            out.append(value)
        out.append(text[last:])
        filled = "".join(out)
        if self.api_key is not None and path not in self.doc.reported and self.api_key in filled:
            self.error(
                node,
                path,
                f"the filled value holds the API key ({ENV_API_KEY}); a manifest may not "
                "use it (it would be sent to the API and shown in plans)",
            )
            return text
        return filled

    def error_at(self, node: Node, path: str, offset: int, message: str) -> None:
        """An error inside a string: exact column where the scalar is plain and on one line."""
        start, end = node.start_mark, node.end_mark
        column = start.column + 1
        if getattr(node, "style", None) in (None, "") and start.line == end.line:  # plain
            column += offset
        self.doc.reported.add(path)
        self.diagnostics.append(
            Diagnostic(message, pos=SourcePos(self.file, start.line + 1, column), field=path)
        )


@dataclass(frozen=True, slots=True)
class _File:
    path: Path
    display: str
    # The real path of the directory this file was found in by walking; None when the
    # user named the file. A walked file must stay inside it (see `_open`).
    tree: str | None = None


def _collect_files(paths: Sequence[str | Path], diagnostics: list[Diagnostic]) -> list[_File]:
    """Files named directly, plus `*.yaml` / `*.yml` under directories (hidden ones skipped).

    Nothing is opened here: `_read` checks each file as it opens it. Symbolic links
    to directories are not descended.
    """
    files: list[_File] = []
    seen: set[str] = set()

    def add(path: Path, display: str, tree: str | None) -> None:
        key = os.path.normcase(os.path.abspath(path))  # one file named twice is read once
        if key not in seen:
            seen.add(key)
            files.append(_File(path, display, tree))

    for raw in paths:
        path = Path(raw)
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            diagnostics.append(Diagnostic(f"{raw}: no such file or directory"))
            continue
        except OSError as exc:
            diagnostics.append(Diagnostic(f"{raw}: cannot read it: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(mode):
            tree = os.path.realpath(path)
            found: list[str] = []
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(
                    os.path.join(root, n)
                    for n in names
                    if n.endswith(MANIFEST_SUFFIXES) and not n.startswith(".")
                )
            if not found:
                diagnostics.append(
                    Diagnostic(
                        f"{raw}: the directory holds no manifests (*.yaml or *.yml files, "
                        "searched recursively, hidden directories skipped)"
                    )
                )
            for name in sorted(found):
                add(Path(name), os.path.normpath(name), tree)
        elif stat.S_ISREG(mode) or stat.S_ISFIFO(mode):  # a FIFO named: `<(...)`, /dev/stdin
            add(path, os.path.normpath(raw), None)
        else:
            diagnostics.append(
                Diagnostic(f"{raw}: not a regular file or directory ({_file_kind(mode)})")
            )
    return files


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


_BLOCKING_FLAGS = os.O_RDONLY | getattr(os, "O_NOCTTY", 0)
_OPEN_FLAGS = _BLOCKING_FLAGS | getattr(os, "O_NONBLOCK", 0)


def _inside(real: str, tree: str) -> bool:
    return real == tree or real.startswith(tree.rstrip(os.sep) + os.sep)


def _open(file: _File) -> tuple[int, str | None]:
    """A descriptor for the file's content, or None and why it is refused.

    A walked file must resolve to a regular file inside the directory it was found
    in: a link that leaves the tree is refused before anything is opened, and the
    resolved path is opened with O_NOFOLLOW and O_NONBLOCK, then checked with fstat
    on the open descriptor (so a FIFO or device swapped in after the check is
    caught, and opening never blocks). A file the user named may be a link to
    anywhere, or a FIFO (`<(...)`, /dev/stdin), read blocking: they chose it.
    """
    if file.tree is not None:
        real = os.path.realpath(file.path)
        if not _inside(real, file.tree):
            return -1, (
                "is a symbolic link to a file outside the manifest directory; links that "
                "leave the directory are not followed (copy the file into it, or name it "
                "on the command line)"
            )
        descriptor = os.open(real, _OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0))
    else:  # a FIFO is opened blocking, or a read could see EOF before its writer opens it
        named_fifo = stat.S_ISFIFO(os.stat(file.path).st_mode)
        descriptor = os.open(file.path, _BLOCKING_FLAGS if named_fifo else _OPEN_FLAGS)
    mode = os.fstat(descriptor).st_mode
    if stat.S_ISREG(mode):
        return descriptor, None
    if stat.S_ISFIFO(mode) and file.tree is None:
        os.set_blocking(descriptor, True)  # swapped in after the stat: read it all the same
        return descriptor, None
    os.close(descriptor)
    return -1, (
        f"is {_file_kind(mode)}, not a regular file; only regular files are read as "
        "manifests (remove it from the manifest directory)"
    )


def _read_bounded(descriptor: int, limit: int) -> bytes:
    """At most `limit` + 1 bytes: enough to tell a file over the limit, whatever st_size says."""
    chunks: list[bytes] = []
    left = limit + 1
    while left > 0:
        chunk = os.read(descriptor, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read(file: _File, diagnostics: list[Diagnostic]) -> bytes | None:
    """The file's bytes, refusing non-regular, escaping, oversized and non-UTF-8 files.

    Errors say where, never what the bytes were: the file may not be a manifest.
    """
    at = SourcePos(file.display, 1, 1)
    limit = f"a manifest file may be at most {MAX_FILE_BYTES // 1024 // 1024} MiB"
    try:
        descriptor, refused = _open(file)
        if refused is not None:
            diagnostics.append(Diagnostic(refused, pos=at))
            return None
        try:
            size = os.fstat(descriptor).st_size
            if size > MAX_FILE_BYTES:
                diagnostics.append(
                    Diagnostic(
                        f"the file is {size / 1024 / 1024:.1f} MiB; {limit} "
                        "(split it into several files)",
                        pos=at,
                    )
                )
                return None
            data = _read_bounded(descriptor, MAX_FILE_BYTES)
        finally:
            os.close(descriptor)
    except OSError as exc:
        diagnostics.append(Diagnostic(f"cannot read the file: {exc.strerror or exc}", pos=at))
        return None
    if len(data) > MAX_FILE_BYTES:  # grew after the stat, or st_size said nothing
        diagnostics.append(Diagnostic(f"the file is larger than allowed: {limit}", pos=at))
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start
        line, column = _line_and_column(data, offset)
        diagnostics.append(
            Diagnostic(
                f"the file is not UTF-8 text: the byte at byte offset {offset} cannot be "
                "decoded; save the file as UTF-8",
                pos=SourcePos(file.display, line, column),
            )
        )
        return None
    return data


def _line_and_column(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset into UTF-8 text."""
    offset = max(0, min(offset, len(data)))
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_HARMLESS_QUOTED = re.compile(r"<[\w ]+>|[^\w\s]|\\[a-z0-9]{1,4}|\s", re.ASCII)


def _without_content(message: str) -> str:
    """A pyyaml message with the file's text taken out (an alias or tag name, a word).

    Token names (`'<scalar>'`), punctuation and escapes stay; they say what went
    wrong without repeating what a file that may not be a manifest holds.
    """

    def shown(match: re.Match[str]) -> str:
        inner = match.group(0)[1:-1]
        return match.group(0) if _HARMLESS_QUOTED.fullmatch(inner) else "'...'"

    return _QUOTED.sub(shown, message)


def _yaml_error(display: str, exc: yaml.YAMLError, data: bytes) -> Diagnostic:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if isinstance(exc, yaml.MarkedYAMLError):
        problem = _without_content(exc.problem or "invalid YAML")
        context = f" ({_without_content(exc.context)})" if exc.context else ""
        text = f"not valid YAML: {problem}{context}"
    elif isinstance(exc, yaml.reader.ReaderError):
        char = exc.character
        shown = f"#x{char:04x}" if isinstance(char, int) else repr(char)
        text = f"not valid YAML: {exc.reason} (character {shown})"
        line, column = _line_and_column(data, exc.position)
        return Diagnostic(text, pos=SourcePos(display, line, column))
    else:
        text = f"not valid YAML: {exc}"
    if mark is not None:
        return Diagnostic(text, pos=SourcePos(display, mark.line + 1, mark.column + 1))
    return Diagnostic(text, pos=SourcePos(display, 1, 1))


def _compose(display: str, data: bytes, diagnostics: list[Diagnostic]) -> Iterator[Node]:
    try:
        yield from yaml.compose_all(data, Loader=_Composer)
    except yaml.YAMLError as exc:
        diagnostics.append(_yaml_error(display, exc, data))


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
        allowed = _fields_at(loc[:-1])
        key = str(loc[-1])
        guess = did_you_mean(key, allowed)
        hint = f"; did you mean '{guess}'?" if guess else ""
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


def _dotted(loc: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in loc)


def _pydantic_diagnostics(doc: _Document, exc: ValidationError) -> list[Diagnostic]:
    diagnostics = []
    errors = exc.errors(include_url=False)
    # A misspelled required field shows as "unknown 'descripton'" and "missing
    # 'description'": the first (with its "did you mean") says it all.
    suggested = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            parent = tuple(error["loc"][:-1])
            guess = did_you_mean(str(error["loc"][-1]), _fields_at(parent))
            if guess:
                suggested.add((*parent, guess))
    for error in errors:
        loc: tuple[str | int, ...] = tuple(error["loc"])
        if error["type"] == "missing" and loc in suggested:
            continue
        on_key = bool(loc) and loc[-1] == "[key]"
        if on_key:
            loc = loc[:-1]
        path = _dotted(loc)
        if path in doc.reported:
            continue
        entry = doc.index.get(path)
        node: Node
        if entry is not None:
            key_node, value_node = entry
            node = key_node if on_key and key_node is not None else value_node
            if error["type"] == "extra_forbidden" and key_node is not None:
                node = key_node
        else:  # a missing field: point at the mapping that should hold it
            parent = loc[:-1]
            while _dotted(parent) not in doc.index and parent:
                parent = parent[:-1]
            node = doc.index[_dotted(parent)][1]
        message = _message_for(error, loc, node)
        diagnostics.append(Diagnostic(message, pos=_pos(doc.file, node), field=path or None))
    return diagnostics


def _exactly_one(doc: _Document, spec: Any, name_field: str, what: str) -> list[Diagnostic]:
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
                pos=_pos(doc.file, node),
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
                pos=_pos(doc.file, doc.index["spec"][1]),
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


def _to_desired(doc: _Document, manifest: ServiceManifest) -> DesiredService:
    file = doc.file
    positions = _Positions(
        file, {path: value.start_mark for path, (_key, value) in doc.index.items() if path}
    )
    spec = manifest.spec
    return DesiredService(
        name=manifest.metadata.name,
        description=spec.description,
        source=_pos(file, doc.root),
        id=manifest.metadata.id,
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
            guess = did_you_mean(config.llm_name, KNOWN_LLM_NAMES)
            hint = f"did you mean '{guess}'?" if guess else f"known: {', '.join(KNOWN_LLM_NAMES)}"
            warnings.append(
                Diagnostic(
                    f"'{config.llm_name}' is not in the API's LLMType list known to this "
                    f"release, so the API may reject it; {hint}",
                    severity=Severity.WARNING,
                    pos=service.pos(path),
                    field=path,
                    service=service.name,
                )
            )
    return warnings


def _duplicates(services: Sequence[DesiredService]) -> list[Diagnostic]:
    """Two documents claiming one service: the same pinned id, or the same name.

    Documents that share a name are distinct services only when both pin different
    ids and at most one is active (the API lets only one active service hold a name).
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


def _validate(doc: _Document, diagnostics: list[Diagnostic]) -> DesiredService | None:
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
                pos=_pos(doc.file, doc.root),
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
                pos=_pos(doc.file, doc.root),
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
    files = _collect_files(paths, diagnostics)
    digest = hashlib.sha256()
    services: list[DesiredService] = []
    for file in sorted(files, key=lambda f: f.display):
        data = _read(file, diagnostics)
        if data is None:
            continue
        filled: list[str] = []
        for root in _compose(file.display, data, diagnostics):
            if root.__class__ is ScalarNode and root.tag == _NULL_TAG and root.value == "":
                continue  # an empty document (a stray '---', or only comments)
            doc = _Document(file.display, root)
            doc.index[""] = (None, root)
            builder = _DocumentBuilder(doc, environment, filled, diagnostics)
            try:
                doc.data = builder.build(root, "", 0)
            except _TooLarge:
                diagnostics.append(
                    Diagnostic(
                        f"the document is too large or too deeply nested once its aliases are "
                        f"expanded (more than {MAX_NODES_PER_DOCUMENT} values or {MAX_DEPTH} "
                        "levels); a service manifest needs far fewer: is it an alias bomb?",
                        pos=_pos(file.display, root),
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
        roots = list(yaml.compose_all(text, Loader=_Composer))
    except yaml.YAMLError as exc:
        raise UserError([_yaml_error(display, exc, text.encode())]) from None
    for root in roots:
        if root.__class__ is ScalarNode and root.tag == _NULL_TAG and root.value == "":
            continue
        doc = _Document(display, root)
        doc.index[""] = (None, root)
        try:
            doc.data = _DocumentBuilder(doc, environment, [], diagnostics).build(root, "", 0)
        except _TooLarge:
            raise UserError(
                [Diagnostic("the document is too large to edit", pos=_pos(display, root))]
            ) from None
        documents.append(IndexedDocument(root, dict(doc.index)))
    return documents


def _ordered(diagnostics: list[Diagnostic], files: Sequence[_File]) -> list[Diagnostic]:
    """Path problems first, then by file (in load order), line and column."""
    order = {f.display: i for i, f in enumerate(sorted(files, key=lambda f: f.display))}

    def key(d: Diagnostic) -> tuple[int, int, int]:
        if d.pos is None:
            return (-1, 0, 0)
        return (order.get(d.pos.file, len(order)), d.pos.line, d.pos.column)

    return sorted(diagnostics, key=key)
