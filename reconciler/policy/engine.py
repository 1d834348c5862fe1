"""The Rego engine behind a small interface: the only module that imports it.

The engine is regorus (Microsoft's Rego interpreter in Rust), installed by the
`policy` extra as the `gordon-to-regorus` wheel: Microsoft publishes no Python
package of regorus, and this one builds the `regorus` module from it. It was
chosen over regopy (rego-cpp) after measuring both (docs/policy.md, "The engine"):
regopy took 78 s of CPU for the example policies over 5,000 services, and
miscompiled `with input as {...}` in tests. Everything the rest of the code needs
is `Engine` (compile modules, set the input, evaluate a reference) and
`PolicyError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.diagnostics import Diagnostic, SourcePos, UserError

DISTRIBUTION = "gordon-to-regorus"
INSTALL_HINT = (
    "policy checks need the Rego engine regorus, an optional extra: "
    "pip install 'amigo-reconciler[policy]'"
)


@dataclass(frozen=True, slots=True)
class Module:
    """One policy file: where it came from (for error positions) and its text."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class Call:
    """A call in a rule's body: the function's dotted name (`http.send`) and where."""

    name: str
    pos: SourcePos


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule (or function, `function`) as the engine parsed it, with the calls it makes."""

    package: str
    name: str
    pos: SourcePos
    function: bool
    calls: tuple[Call, ...]


def _ref_names(ref: Any) -> list[str]:
    """`a.b.c` (Var / RefDot nodes) as ["a", "b", "c"]; [] for anything else."""
    if not isinstance(ref, dict) or len(ref) != 1:
        return []
    ((kind, node),) = ref.items()
    if kind == "Var":
        return [str(node.get("value"))]
    if kind == "RefDot":
        field = node.get("field")
        name = field[1] if isinstance(field, list) and len(field) == 2 else None
        return [*_ref_names(node.get("refr")), str(name)] if name is not None else []
    if kind == "RefBrack":
        return _ref_names(node.get("refr"))
    return []


def _calls(node: Any, source: str) -> tuple[Call, ...]:
    """Every `Call` node under `node`, iteratively (a deep AST must not recurse here)."""
    found: list[Call] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            call = item.get("Call")
            if isinstance(call, dict):
                span = call.get("span") or {}
                name = ".".join(_ref_names(call.get("fcn")))
                pos = SourcePos(source, int(span.get("line", 1)), int(span.get("col", 1)))
                found.append(Call(name, pos))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    found.sort(key=lambda c: (c.pos.line, c.pos.column))
    return tuple(found)


class PolicyError(UserError):
    """A policy that does not parse or fails at evaluation: one line at the file's position."""


class EngineMissing(UserError):
    """The engine is not installed."""


def _load() -> Any:
    try:
        import regorus  # type: ignore[import-untyped]
    except ImportError:
        raise EngineMissing(INSTALL_HINT) from None
    except Exception as exc:  # the wheel is there but its library will not load
        raise EngineMissing(f"{INSTALL_HINT} (regorus failed to load: {exc})") from None
    return regorus


def ensure_engine() -> None:
    """EngineMissing (saying how to install it) unless the engine imports."""
    _load()


def engine_version() -> str:
    """The engine's distribution and version, e.g. `gordon-to-regorus 0.13.0`."""
    from importlib.metadata import PackageNotFoundError, version

    _load()
    try:
        return f"{DISTRIBUTION} {version(DISTRIBUTION)}"
    except PackageNotFoundError:
        return "regorus (version unknown)"


_WHERE = re.compile(r"-->\s*(?P<file>.+?):(?P<line>\d+):(?P<column>\d+)")
_MESSAGE = re.compile(r"^error:\s*(?P<message>.+)$", re.MULTILINE)


def parse_error(raw: str, fallback: SourcePos | None = None) -> Diagnostic:
    """regorus's error (`--> file:line:col ... error: message`, then a backtrace) as one line."""
    text = raw.split("Stack backtrace:", 1)[0].strip()
    where = _WHERE.search(text)
    message = _MESSAGE.search(text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if message:
        detail = message.group("message").strip()
    else:
        detail = lines[-1] if lines else "unknown engine error"
    pos = (
        SourcePos(where.group("file"), int(where.group("line")), int(where.group("column")))
        if where
        else fallback
    )
    return Diagnostic(f"policy: {detail}", pos=pos)


class Engine:
    """Compiled policy modules; evaluate references against one input document."""

    def __init__(self, modules: Sequence[Module]) -> None:
        regorus = _load()
        self._engine = regorus.Engine()
        for module in modules:
            try:
                self._engine.add_policy(module.path, module.text)
            except Exception as exc:
                raise PolicyError(parse_error(str(exc), SourcePos(module.path, 1, 1))) from None

    def rules(self) -> list[Rule]:
        """Every rule the engine parsed (functions included), at its file and line."""
        found: list[Rule] = []
        for policy in self._ast():
            source = str((policy.get("source") or {}).get("file", "?"))
            ast = policy.get("ast") or {}
            package = ".".join(_ref_names((ast.get("package") or {}).get("refr")))
            for spec in ast.get("rules") or []:
                spec = spec.get("Spec") if isinstance(spec, dict) else None
                if not isinstance(spec, dict):
                    continue
                ((kind, head),) = (spec.get("head") or {"?": {}}).items()
                names = _ref_names(head.get("refr"))
                span = head.get("span") or {}
                pos = SourcePos(source, int(span.get("line", 1)), int(span.get("col", 1)))
                if names:
                    found.append(Rule(package, names[0], pos, kind == "Func", _calls(spec, source)))
        return found

    def _ast(self) -> list[dict[str, Any]]:
        try:
            parsed = json.loads(self._engine.get_ast_as_json())
        except Exception as exc:
            raise PolicyError(
                f"policy: the engine could not describe the policies: {exc}"
            ) from None
        return [p for p in parsed if isinstance(p, dict)] if isinstance(parsed, list) else []

    def set_input(self, document: Any) -> None:
        """The input document (plain JSON-like data) for the following queries."""
        try:
            self._engine.set_input(document)
        except Exception as exc:
            raise PolicyError(f"policy input could not be handed to the engine: {exc}") from None

    def set_input_json(self, text: str) -> None:
        """The input document as JSON text (the engine parses it: cheaper for big documents)."""
        try:
            self._engine.set_input_json(text)
        except Exception as exc:
            raise PolicyError(f"policy input could not be handed to the engine: {exc}") from None

    def query(self, ref: str, *, where: SourcePos | None = None) -> Any:
        """The value of `ref` (e.g. `data.main.deny`; sets come back as lists); None if undefined.

        `where` is the rule's position, used when the engine reports no position.
        """
        try:
            raw = self._engine.eval_query_as_json(ref)
        except Exception as exc:
            diagnostic = parse_error(str(exc), where)
            raise PolicyError(
                Diagnostic(
                    f"{diagnostic.message} (evaluating {ref})",
                    pos=diagnostic.pos,
                )
            ) from None
        results = json.loads(raw).get("result") or []
        if not results:
            return None
        expressions = results[0].get("expressions") or []
        return expressions[0].get("value") if expressions else None
