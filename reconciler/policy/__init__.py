"""Policy checks: Rego policies over manifests and plans, the conftest way.

- Policies are `.rego` files (a directory is read recursively); rules named
  `deny`, `violation` or `warn` (or prefixed `deny_`, ...) in `package main`
  (or the `--namespace` given) produce findings, as conftest's do.
- The input document is versioned and documented in docs/policy.md: for plan and
  apply it is the plan file itself (`plan_input`), so the same policies run
  unchanged under `conftest test` on `reconciler plan --format json`.
- `*_test.rego` files hold `test_` rules: `run_tests` runs them (`reconciler policy
  test`); validate/plan/apply do not load them.

The engine (regorus) is imported only by reconciler.policy.engine, and only when
policies are actually given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from reconciler.declared import declared_services
from reconciler.diagnostics import Diagnostic, Severity, SourcePos, UserError
from reconciler.gcpause import fewer_collections
from reconciler.model import DesiredState
from reconciler.plan import FORMAT_VERSION, Plan
from reconciler.planfile import plan_to_canonical_json, plan_to_dict
from reconciler.policy.engine import Engine, Module, PolicyError

__all__ = [
    "DEFAULT_NAMESPACE",
    "Finding",
    "JsonInput",
    "Level",
    "PolicyError",
    "PolicyResult",
    "TestResult",
    "evaluate",
    "load_modules",
    "plan_input",
    "plan_input_json",
    "run_tests",
    "validate_input",
]

DEFAULT_NAMESPACE = "main"
MAX_POLICY_FILE_BYTES = 1024 * 1024

_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
_RULE = re.compile(r"^(deny|violation|warn)(_\w+)?\b(?!\s*\()", re.MULTILINE)
_TEST = re.compile(r"^(test_\w+)\b(?!\s*\()", re.MULTILINE)


class Level(StrEnum):
    DENY = "deny"  # deny and violation rules: the plan fails, apply refuses
    WARN = "warn"


@dataclass(frozen=True, slots=True)
class Finding:
    """One message from one rule; `pos` is the named service's manifest position."""

    level: Level
    rule: str  # e.g. "main.deny"
    message: str
    service: str | None = None
    pos: SourcePos | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def diagnostic(self) -> Diagnostic:
        severity = Severity.ERROR if self.level is Level.DENY else Severity.WARNING
        return Diagnostic(
            f"policy {self.rule}: {self.message}",
            severity=severity,
            pos=self.pos,
            service=self.service,
        )


@dataclass(frozen=True, slots=True)
class PolicyResult:
    findings: tuple[Finding, ...]
    files: int

    @property
    def denied(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level is Level.DENY)

    @property
    def warned(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level is Level.WARN)


# --- input documents ------------------------------------------------------------


def validate_input(
    desired: DesiredState, *, organization: str | None = None, environment: str | None = None
) -> dict[str, Any]:
    """The input for `validate`: the plan file's shape without the plan (no operations)."""
    return {
        "format_version": FORMAT_VERSION,
        "environment": environment,
        "organization": organization,
        "services": list(declared_services(desired)),
    }


def plan_input(plan: Plan) -> dict[str, Any]:
    """The input for plan/apply: exactly the plan file (`plan --format json`)."""
    return plan_to_dict(plan)


@dataclass(frozen=True, slots=True)
class JsonInput:
    """An input document as JSON text (parsed by the engine), with its declared services."""

    text: str
    services: Sequence[Mapping[str, Any]] = ()


@fewer_collections()
def plan_input_json(plan: Plan) -> JsonInput:
    """`plan_input` as JSON text: the same document, at a third of the cost (serialized once)."""
    return JsonInput(plan_to_canonical_json(plan), plan.services or ())


# --- loading --------------------------------------------------------------------


def _rego_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*.rego") if p.is_file())
    return [path]


def load_modules(paths: Iterable[str], *, tests: bool = False) -> list[Module]:
    """Every `.rego` file under `paths` (directories recursively); `*_test.rego` only if `tests`."""
    modules: list[Module] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise UserError(f"--policy {given}: no such file or directory")
        if path.is_file() and path.suffix != ".rego":
            raise UserError(f"--policy {given}: not a .rego file (give .rego files or a directory)")
        for file in _rego_files(path):
            if file in seen or (not tests and file.name.endswith("_test.rego")):
                continue
            seen.add(file)
            try:
                if file.stat().st_size > MAX_POLICY_FILE_BYTES:
                    raise UserError(f"{file}: policy file larger than 1 MiB")
                text = file.read_text(encoding="utf-8")
            except OSError as exc:
                raise UserError(f"{file}: cannot read policy file: {exc.strerror or exc}") from None
            except UnicodeDecodeError:
                raise UserError(f"{file}: policy file is not UTF-8 text") from None
            modules.append(Module(str(file), text))
    if not modules:
        what = "policy or test files" if tests else "policy files (*.rego, tests excluded)"
        raise UserError(f"--policy {', '.join(paths)}: no {what} found")
    return modules


def _package(module: Module) -> str | None:
    match = _PACKAGE.search(module.text)
    return match.group(1) if match else None


def _line_of(module: Module, offset: int) -> int:
    return module.text.count("\n", 0, offset) + 1


def _rules(
    modules: Sequence[Module], pattern: re.Pattern[str], namespaces: Sequence[str] | None
) -> list[tuple[str, str, SourcePos]]:
    """(package, rule name, first definition) for each matching rule, in file order."""
    found: dict[tuple[str, str], SourcePos] = {}
    for module in modules:
        package = _package(module)
        if package is None or (namespaces is not None and package not in namespaces):
            continue
        for match in pattern.finditer(module.text):
            name = match.group(0)
            found.setdefault(
                (package, name), SourcePos(module.path, _line_of(module, match.start()), 1)
            )
    return [(package, name, pos) for (package, name), pos in found.items()]


# --- evaluation -----------------------------------------------------------------


def _messages(value: Any) -> list[Any]:
    if value is None or value is False:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _service_positions(services: Iterable[Mapping[str, Any]]) -> dict[str, SourcePos]:
    positions: dict[str, SourcePos] = {}
    for service in services:
        name = (service.get("metadata") or {}).get("name")
        source = service.get("source") or {}
        if isinstance(name, str) and name not in positions and source.get("file"):
            positions[name] = SourcePos(
                str(source["file"]), int(source.get("line", 1)), int(source.get("column", 1))
            )
    return positions


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """Control characters (terminal escapes, newlines) from manifests or policies, escaped."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _finding(
    level: Level, rule: str, message: Any, positions: Mapping[str, SourcePos], where: SourcePos
) -> Finding:
    finding = _raw_finding(level, rule, message, positions, where)
    return replace(
        finding,
        message=_printable(finding.message),
        service=None if finding.service is None else _printable(finding.service),
    )


def _raw_finding(
    level: Level, rule: str, message: Any, positions: Mapping[str, SourcePos], where: SourcePos
) -> Finding:
    if isinstance(message, dict):
        text = message.get("msg")
        if not isinstance(text, str):
            raise PolicyError(
                Diagnostic(
                    f"policy: {rule} produced an object without a string `msg` "
                    f'({sorted(message)}); a message is a string or {{"msg": ..., ...}}',
                    pos=where,
                )
            )
        service = message.get("service")
        service = service if isinstance(service, str) else None
        details = {k: v for k, v in message.items() if k not in ("msg", "service")}
        return Finding(level, rule, text, service, positions.get(service or ""), details)
    if isinstance(message, str):
        return Finding(level, rule, message)
    if message is True:
        return Finding(level, rule, rule)
    return Finding(level, rule, str(message))


def evaluate(
    modules: Sequence[Module],
    document: Mapping[str, Any] | JsonInput,
    namespaces: Sequence[str] = (DEFAULT_NAMESPACE,),
) -> PolicyResult:
    """Every deny/violation/warn rule of `namespaces` against `document`."""
    engine = Engine(modules)
    if isinstance(document, JsonInput):
        engine.set_input_json(document.text)
        positions = _service_positions(document.services)
    else:
        engine.set_input(document)
        positions = _service_positions(document.get("services") or ())
    findings: list[Finding] = []
    for package, name, where in _rules(modules, _RULE, namespaces):
        level = Level.WARN if name.startswith("warn") else Level.DENY
        rule = f"{package}.{name}"
        for message in _messages(engine.query(f"data.{rule}", where=where)):
            findings.append(_finding(level, rule, message, positions, where))
    findings.sort(
        key=lambda f: (
            f.level is not Level.DENY,
            f.pos.file if f.pos else "\uffff",
            f.pos.line if f.pos else 0,
            f.rule,
            f.message,
        )
    )
    return PolicyResult(tuple(findings), len(modules))


# --- tests ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TestResult:
    name: str  # data.<package>.test_x
    pos: SourcePos
    passed: bool


def run_tests(modules: Sequence[Module]) -> list[TestResult]:
    """Each `test_` rule passes when it evaluates to true (as `opa test`), with no input."""
    engine = Engine(modules)
    results: list[TestResult] = []
    for package, name, pos in _rules(modules, _TEST, None):
        ref = f"data.{package}.{name}"
        results.append(TestResult(ref, pos, engine.query(ref, where=pos) is True))
    return results
