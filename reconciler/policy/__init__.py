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

import json
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
from reconciler.policy import sandbox
from reconciler.policy.engine import Engine, Module, PolicyError, Rule
from reconciler.policy.sandbox import Limits, Policies

__all__ = [
    "DEFAULT_NAMESPACE",
    "Finding",
    "JsonInput",
    "Level",
    "Limits",
    "Policies",
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

_RULE = re.compile(r"(deny|violation|warn)(_\w+)?")
_TEST = re.compile(r"test_\w+")


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
    *,
    limits: Limits | None = None,
) -> PolicyResult:
    """Every deny/violation/warn rule of `namespaces` against `document` (in the sandbox)."""
    if isinstance(document, JsonInput):
        text = document.text
        positions = _service_positions(document.services)
    else:
        text = json.dumps(document)
        positions = _service_positions(document.get("services") or ())
    answer = sandbox.run("evaluate", modules, input_text=text, namespaces=namespaces, limits=limits)
    findings: list[Finding] = []
    for raw in answer.get("findings") or []:
        where = SourcePos(*raw["where"])
        level = Level(raw["level"])
        findings.append(_finding(level, raw["rule"], raw["message"], positions, where))
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


def check_modules(modules: Sequence[Module], *, limits: Limits | None = None) -> None:
    """Compile the policies and refuse unsafe ones (in the sandbox): fail fast, before any call."""
    sandbox.run("compile", modules, limits=limits)


# In the worker: the engine's own view of the policies.

NON_HERMETIC = {
    "http.send": "it makes HTTP requests",
    "net.lookup_ip_addr": "it makes DNS queries",
    "opa.runtime": "it reads the host's environment",
}


def _checked_rules(engine: Engine) -> list[Rule]:
    """The engine's rules, refused when a rule calls out of the sandbox or a function recurses."""
    rules = engine.rules()
    for rule in rules:
        for call in rule.calls:
            if call.name in NON_HERMETIC:
                raise PolicyError(
                    Diagnostic(
                        f"policy: {call.name} is not allowed ({NON_HERMETIC[call.name]}); "
                        "a policy decides from its input alone (docs/policy.md)",
                        pos=call.pos,
                    )
                )
    functions: dict[tuple[str, str], Rule] = {}
    for rule in rules:
        if rule.function:
            functions.setdefault((rule.package, rule.name), rule)
    calls: dict[tuple[str, str], set[tuple[str, str]]] = {key: set() for key in functions}
    for rule in rules:
        if rule.function:
            for call in rule.calls:
                name = call.name.removeprefix(f"data.{rule.package}.")
                if (rule.package, name) in functions:
                    calls[(rule.package, rule.name)].add((rule.package, name))
    for start, rule in functions.items():
        seen: set[tuple[str, str]] = set()
        todo = list(calls[start])
        while todo:
            key = todo.pop()
            if key == start:
                raise PolicyError(
                    Diagnostic(
                        f"policy: function {rule.name} calls itself, directly or through other functions "
                        "(recursion is not allowed in Rego; the engine would crash)",
                        pos=rule.pos,
                    )
                )
            if key not in seen:
                seen.add(key)
                todo.extend(calls[key])
    return rules


def _selected(
    rules: Sequence[Rule], pattern: re.Pattern[str], namespaces: Sequence[str] | None
) -> list[Rule]:
    """The first definition of each matching (package, name), in file order."""
    found: dict[tuple[str, str], Rule] = {}
    for rule in rules:
        if rule.function or (namespaces is not None and rule.package not in namespaces):
            continue
        if pattern.fullmatch(rule.name):
            found.setdefault((rule.package, rule.name), rule)
    return list(found.values())


def evaluate_here(
    modules: Sequence[Module], input_text: str, namespaces: Sequence[str]
) -> list[dict[str, Any]]:
    """The worker's side of `evaluate`: each rule's raw messages, with the rule's position."""
    engine = Engine(modules)
    rules = _selected(_checked_rules(engine), _RULE, namespaces)
    engine.set_input_json(input_text)
    raw: list[dict[str, Any]] = []
    for rule in rules:
        level = Level.WARN if rule.name.startswith("warn") else Level.DENY
        ref = f"{rule.package}.{rule.name}"
        where = [rule.pos.file, rule.pos.line, rule.pos.column]
        for message in _messages(engine.query(f"data.{ref}", where=rule.pos)):
            raw.append({"level": level.value, "rule": ref, "message": message, "where": where})
    return raw


def compile_here(modules: Sequence[Module]) -> None:
    """The worker's side of `check_modules`."""
    _checked_rules(Engine(modules))


# --- tests ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TestResult:
    name: str  # data.<package>.test_x
    pos: SourcePos
    passed: bool


def run_tests(modules: Sequence[Module], *, limits: Limits | None = None) -> list[TestResult]:
    """Each `test_` rule passes when it evaluates to true (as `opa test`), with no input."""
    answer = sandbox.run("tests", modules, limits=limits)
    return [
        TestResult(t["name"], SourcePos(*t["pos"]), bool(t["passed"]))
        for t in answer.get("tests") or []
    ]


def run_tests_here(modules: Sequence[Module]) -> list[dict[str, Any]]:
    """The worker's side of `run_tests`."""
    engine = Engine(modules)
    results: list[dict[str, Any]] = []
    for rule in _selected(_checked_rules(engine), _TEST, None):
        ref = f"data.{rule.package}.{rule.name}"
        passed = engine.query(ref, where=rule.pos) is True
        pos = [rule.pos.file, rule.pos.line, rule.pos.column]
        results.append({"name": ref, "pos": pos, "passed": passed})
    return results
