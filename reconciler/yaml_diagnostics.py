"""Positioned YAML -> `Diagnostic`: shared by the manifest loader and the emulator's seed.

Both read YAML whose every value must be traced back to a line and column, and
both turn a pydantic error into a message at the node it is about. The rules
for where an error points (an unknown key at the key, a missing field at the
mapping that should hold it, anything else at its value or nearest enclosing
one) and for reporting unreadable YAML (without echoing the file's content)
live here once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import yaml
from yaml.nodes import Node

from reconciler.diagnostics import Diagnostic, SourcePos

Loc = tuple[str | int, ...]
# (key node, or None for list items and the root; value node)
Entry = tuple[Node | None, Node]


def node_pos(file: str, node: Node) -> SourcePos:
    """Where a node starts, 1-based."""
    mark = node.start_mark
    return SourcePos(file, mark.line + 1, mark.column + 1)


def error_node(
    find: Callable[[Loc], Entry | None], loc: Loc, kind: str, *, on_key: bool = False
) -> Node | None:
    """The node a pydantic error at `loc` is about.

    An unknown key (`extra_forbidden`) points at the key; a missing field at the
    mapping that should hold it; anything else (a bad mapping key, when `on_key`)
    at its value, or at the nearest enclosing value that has a position. None
    when nothing does.
    """
    if kind == "missing":
        loc = loc[:-1]
    entry = find(loc)
    if entry is not None:
        key_node, value_node = entry
        to_key = on_key or kind == "extra_forbidden"
        return key_node if to_key and key_node is not None else value_node
    while loc:
        loc = loc[:-1]
        entry = find(loc)
        if entry is not None:
            return entry[1]
    return None


def line_and_column(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset into UTF-8 text."""
    offset = max(0, min(offset, len(data)))
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_HARMLESS_QUOTED = re.compile(r"<[\w ]+>|[^\w\s]|\\[a-z0-9]{1,4}|\s", re.ASCII)


def without_content(message: str) -> str:
    """A pyyaml message with the file's text taken out (an alias or tag name, a word).

    Token names (`'<scalar>'`), punctuation and escapes stay; they say what went
    wrong without repeating what a file that may not be YAML at all holds.
    """

    def shown(match: re.Match[str]) -> str:
        inner = match.group(0)[1:-1]
        return match.group(0) if _HARMLESS_QUOTED.fullmatch(inner) else "'...'"

    return _QUOTED.sub(shown, message)


def yaml_error(display: str, exc: yaml.YAMLError, data: bytes) -> Diagnostic:
    """Unreadable YAML as one diagnostic at the place the parser stopped."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if isinstance(exc, yaml.MarkedYAMLError):
        problem = without_content(exc.problem or "invalid YAML")
        context = f" ({without_content(exc.context)})" if exc.context else ""
        text = f"not valid YAML: {problem}{context}"
    elif isinstance(exc, yaml.reader.ReaderError):
        char = exc.character
        shown = f"#x{char:04x}" if isinstance(char, int) else repr(char)
        text = f"not valid YAML: {exc.reason} (character {shown})"
        line, column = line_and_column(data, exc.position)
        return Diagnostic(text, pos=SourcePos(display, line, column))
    else:
        text = f"not valid YAML: {exc}"
    if mark is not None:
        return Diagnostic(text, pos=SourcePos(display, mark.line + 1, mark.column + 1))
    return Diagnostic(text, pos=SourcePos(display, 1, 1))


def dotted(loc: Sequence[str | int]) -> str:
    """A field path as manifests write it: `spec.version_sets.release`."""
    return ".".join(str(part) for part in loc)
