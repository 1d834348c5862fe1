"""Positioned YAML: manifest files read safely, composed, and walked into values and positions.

Loading is one pass per document: libyaml composes the text into nodes (which
carry line and column), and a small walker turns the nodes into plain Python
values while recording where every field came from (`Document.index`). Files
are read with limits that keep a hostile or mistaken input from hanging the
loader: regular files only, bounded reads, walked files stay inside their tree.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from reconciler.diagnostics import Diagnostic, SourcePos
from reconciler.manifests.variables import fill
from reconciler.redaction import api_key
from reconciler.yaml_diagnostics import line_and_column, node_pos, yaml_error

MANIFEST_SUFFIXES = (".yaml", ".yml")

# Limits that keep a hostile or mistaken input from hanging the loader. A service
# manifest is a few hundred bytes and a few dozen YAML nodes; these are far above that.
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_NODES_PER_DOCUMENT = 10_000  # counted after aliases are expanded (defeats alias bombs)
MAX_DEPTH = 64

# --- reading files -------------------------------------------------------------------


_CONSTRUCTOR = SafeConstructor()
_SCALAR_CONSTRUCTORS = SafeConstructor.yaml_constructors
_STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
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

    class Composer(_FastResolution, yaml.CSafeLoader):
        pass

else:  # pragma: no cover - pyyaml built without libyaml

    class Composer(_FastResolution, yaml.SafeLoader):  # type: ignore[no-redef]
        pass


class TooLarge(Exception):
    """A document expands past the node budget or nesting limit."""


@dataclass
class Document:
    """One YAML document turned into plain values, with where each field came from."""

    file: str
    root: Node
    data: Any = None
    # dotted path -> (key node or None for list items and the root, value node)
    index: dict[str, tuple[Node | None, Node]] = field(default_factory=dict)
    # paths whose value is already reported (bad tag, undefined variable): no second error
    reported: set[str] = field(default_factory=set)


class DocumentBuilder:
    """Walks a composed node tree once, building values and the position index together."""

    def __init__(
        self,
        doc: Document,
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
        self.diagnostics.append(
            Diagnostic(message, pos=node_pos(self.file, node), field=path or None)
        )

    def build(self, node: Node, path: str, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0 or depth > MAX_DEPTH:
            raise TooLarge
        cls = node.__class__
        if cls is ScalarNode:
            tag = node.tag
            value: str = node.value
            if tag == _STR_TAG:
                if "$" in value:
                    return self.fill(value, node, path)
                return value
            if tag == NULL_TAG:
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
        """`${VAR}` filling (variables.py), its problems reported at the scalar."""
        filled, problems = fill(
            text, self.env, self.api_key, self.filled, reported=path in self.doc.reported
        )
        for problem in problems:
            if problem.offset is None:
                self.error(node, path, problem.message)
            else:
                self.error_at(node, path, problem.offset, problem.message)
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
class ManifestFile:
    path: Path
    display: str
    # The real path of the directory this file was found in by walking; None when the
    # user named the file. A walked file must stay inside it (see `_open`).
    tree: str | None = None


def collect_files(paths: Sequence[str | Path], diagnostics: list[Diagnostic]) -> list[ManifestFile]:
    """Files named directly, plus `*.yaml` / `*.yml` under directories (hidden ones skipped).

    Nothing is opened here: `read_file` checks each file as it opens it. Symbolic links
    to directories are not descended.
    """
    files: list[ManifestFile] = []
    seen: set[str] = set()

    def add(path: Path, display: str, tree: str | None) -> None:
        key = os.path.normcase(os.path.abspath(path))  # one file named twice is read once
        if key not in seen:
            seen.add(key)
            files.append(ManifestFile(path, display, tree))

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


def _open(file: ManifestFile) -> tuple[int, str | None]:
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


def read_file(file: ManifestFile, diagnostics: list[Diagnostic]) -> bytes | None:
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
        line, column = line_and_column(data, offset)
        diagnostics.append(
            Diagnostic(
                f"the file is not UTF-8 text: the byte at byte offset {offset} cannot be "
                "decoded; save the file as UTF-8",
                pos=SourcePos(file.display, line, column),
            )
        )
        return None
    return data


def compose(display: str, data: bytes, diagnostics: list[Diagnostic]) -> Iterator[Node]:
    """The documents of one file; unreadable YAML becomes one diagnostic."""
    try:
        yield from yaml.compose_all(data, Loader=Composer)
    except yaml.YAMLError as exc:
        diagnostics.append(yaml_error(display, exc, data))


def is_empty(root: Node) -> bool:
    """An empty document (a stray '---', or only comments)."""
    return root.__class__ is ScalarNode and root.tag == NULL_TAG and root.value == ""
