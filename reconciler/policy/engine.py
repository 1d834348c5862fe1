"""The Rego engine behind a small interface: the only module that imports regopy.

regopy (Microsoft's rego-cpp, an optional extra) is used through its ctypes
layer rather than its `Output` class: reading a failed query's output through
`Output` can crash the process, and an error must always become one clear line
at the policy file's line. Everything the rest of the code needs is `Engine`
(compile modules, set the input, evaluate a reference) and `PolicyError`.
"""

from __future__ import annotations

import ctypes
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.diagnostics import Diagnostic, SourcePos, UserError

INSTALL_HINT = (
    "policy checks need the Rego engine regopy, an optional extra: "
    "pip install 'amigo-reconciler[policy]'"
)

# rego-cpp's compiler fails with this internal message when a rule that calls a
# built-in function is evaluated under `with input as {...}` (regopy 1.0 to 1.5.2).
_WITH_INPUT_BUG = "rego-localref"


@dataclass(frozen=True, slots=True)
class Module:
    """One policy file: where it came from (for error positions) and its text."""

    path: str
    text: str


class PolicyError(UserError):
    """A policy that does not parse or fails at evaluation: one line at the file's position."""


class EngineMissing(UserError):
    """regopy is not installed."""


def _load() -> Any:
    try:
        import regopy  # type: ignore[import-untyped]
        from regopy import rego_shared
    except ImportError:
        raise EngineMissing(INSTALL_HINT) from None
    except Exception as exc:  # the wheel is there but its library will not load
        raise EngineMissing(f"{INSTALL_HINT} (regopy failed to load: {exc})") from None
    return regopy, rego_shared


def engine_version() -> str:
    regopy, _ = _load()
    return str(regopy.__version__)


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a byte offset into `text` (UTF-8)."""
    head = text.encode("utf-8")[: max(offset, 0)].decode("utf-8", errors="replace")
    line = head.count("\n") + 1
    return line, len(head) - (head.rfind("\n") + 1) + 1


_ERROR = re.compile(r"\(error (?:(\d+):)?")
_MESSAGE = re.compile(r"\(errormsg (\d+):")
_LOCATION = re.compile(r"\|(\d+)\|(\d+)")


def _length_prefixed(text: str, match: re.Match[str]) -> str:
    return text[match.end() : match.end() + int(match.group(1))]


def parse_errors(raw: str, modules: Sequence[Module]) -> list[Diagnostic]:
    """rego-cpp's error tree (`(error 12:file.rego|65|1 (errormsg 27:...)...)`) as diagnostics."""
    by_path = {m.path: m for m in modules}
    found: list[Diagnostic] = []
    starts = [m for m in _ERROR.finditer(raw)]
    for index, start in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(raw)
        block = raw[start.start() : end]
        pos: SourcePos | None = None
        if start.group(1):
            name = _length_prefixed(raw, start)
            rest = raw[start.end() + len(name) :]
            location = _LOCATION.match(rest)
            if name in by_path and location:
                line, column = position(by_path[name].text, int(location.group(1)))
                pos = SourcePos(name, line, column)
        message_match = _MESSAGE.search(block)
        message = _length_prefixed(block, message_match) if message_match else block.strip()
        found.append(Diagnostic(f"policy: {message}", pos=pos))
    return found


def _first_line(modules: Sequence[Module], pattern: str) -> SourcePos | None:
    regex = re.compile(pattern)
    for module in modules:
        for number, line in enumerate(module.text.splitlines(), start=1):
            if regex.search(line):
                return SourcePos(module.path, number, 1)
    return None


class Engine:
    """Compiled policy modules; evaluate references against one input document."""

    def __init__(self, modules: Sequence[Module]) -> None:
        regopy, self._shared = _load()
        self._modules = tuple(modules)
        self._interpreter = regopy.Interpreter()
        # Errors come back to us, never printed. (Not set_default_log_level: a second
        # call aborts the process.)
        self._interpreter.log_level = regopy.LogLevel.NONE
        for module in self._modules:
            try:
                self._interpreter.add_module(module.path, module.text)
            except regopy.RegoError as exc:
                diagnostics = parse_errors(str(exc), [module]) or [
                    Diagnostic(f"policy: {exc}", pos=SourcePos(module.path, 1, 1))
                ]
                raise PolicyError(diagnostics) from None

    def set_input(self, document: Any) -> None:
        """The input document (plain JSON-like data) for the following queries."""
        try:
            self._interpreter.set_input(document)
        except Exception as exc:
            raise PolicyError(f"policy input could not be handed to the engine: {exc}") from None

    def query(self, ref: str, *, where: SourcePos | None = None) -> Any:
        """The value of `ref` (e.g. `data.main.deny`; sets come back as lists); None if undefined.

        `where` is the rule's position, used when the engine reports no position.
        """
        shared = self._shared
        impl = self._interpreter._impl
        output = shared.rego.regoQuery(impl, ctypes.create_string_buffer(ref.encode("utf-8")))
        if not output:
            raise self._failure(shared.rego_get_error(impl), ref, where)
        try:
            if not shared.rego_output_ok(output):
                raise self._failure(shared.rego_get_error(impl), ref, where)
            text = shared.rego_output_string(output)
            if text.startswith("(error"):
                raise self._failure(text, ref, where)
            if not text.strip() or text.strip() == "undefined":
                return None
            # The values come from the node tree, not the JSON text: rego-cpp's JSON
            # does not escape quotes inside strings.
            terms = shared.rego_output_expressions_at_index(output, 0)
            if not terms or shared.rego_node_size(terms) == 0:
                return None
            return self._value(shared.rego_node_get(terms, 0))
        finally:
            shared.rego_free_output(output)

    def _value(self, node: Any) -> Any:
        """A result node as plain Python data (sets become lists)."""
        shared = self._shared
        kinds = shared.NodeKind
        kind = shared.rego_node_type(node)
        size = shared.rego_node_size(node)
        children = [shared.rego_node_get(node, i) for i in range(size)]
        if kind in (kinds.Term, kinds.Scalar):
            return self._value(children[0]) if children else None
        if kind in (kinds.Array, kinds.Set, kinds.Terms):
            return [self._value(child) for child in children]
        if kind == kinds.Object:
            result: dict[str, Any] = {}
            for item in children:
                key = self._value(shared.rego_node_get(item, 0))
                result[key if isinstance(key, str) else json.dumps(key)] = self._value(
                    shared.rego_node_get(item, 1)
                )
            return result
        raw = shared.rego_node_value(node)
        if kind == kinds.Int:
            return int(raw)
        if kind == kinds.Float:
            return float(raw)
        if kind == kinds.Boolean:
            return raw == "true"
        if kind == kinds.Null:
            return None
        if kind == kinds.String:
            # Strings made by built-ins (concat, upper, ...) come back JSON-quoted.
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                try:
                    decoded = json.loads(raw)
                except ValueError:
                    return raw
                return decoded if isinstance(decoded, str) else raw
            return raw
        if kind == kinds.Undefined:
            return None
        raise PolicyError(f"policy: unexpected value of kind {kind.name} in the result")

    def _failure(self, raw: str, ref: str, where: SourcePos | None) -> PolicyError:
        if _WITH_INPUT_BUG in raw:
            pos = _first_line(self._modules, r"\bwith\s+input\s+as\b")
            return PolicyError(
                Diagnostic(
                    "policy: the Rego engine (rego-cpp) cannot evaluate `with input as {...}` "
                    "when the rules use built-in functions; replace the whole input by its "
                    "parts instead, e.g. `with input.services as [...] with input.operations "
                    "as [...]` (docs/policy.md, 'Writing tests')",
                    pos=pos,
                )
            )
        diagnostics = parse_errors(raw, self._modules)
        if diagnostics and any(d.pos for d in diagnostics):
            return PolicyError(diagnostics)
        detail = next((d.message.removeprefix("policy: ") for d in diagnostics), raw.strip())
        detail = detail if detail and detail != "<error>" else "no detail from the engine"
        return PolicyError(
            Diagnostic(
                f"policy: evaluating {ref} failed ({detail}); a common cause is a complete "
                "rule (`x := ...`) that gets two different values",
                pos=where,
            )
        )
