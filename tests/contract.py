"""Contract checks: every exchange with an emulator, held against the published OpenAPI document.

The conftest registers a `ContractRecorder` as an observer of every `Emulator` (`session_observers`)
for the whole session, so every request any client sends to any Emulator (in-process
or over HTTP) and every answer the emulator gives is validated:

* the request: the operation exists (method and path); path, query and header
  parameters are declared and match their schemas; the JSON body matches the
  operation's requestBody schema; a bearer token is sent where the operation needs one;
* the answer: the status is documented for the operation; a documented JSON body
  matches its schema (422 against `HTTPValidationError`); 204 has no body; error
  answers carry FastAPI's `{"detail": ...}`; every answer carries the
  `X-RateLimit-*` headers with the documented limit, and a 429 a `Retry-After`.

Injected faults are the emulator impersonating a broken network or gateway, so
their answers (and dropped answers) are not held against the document; their
requests still are. Validators are compiled once per schema and cached.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

_FORMATS = FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if "T" not in value.upper():
        raise ValueError(f"{value!r} has no time part")
    parsed = dt.datetime.fromisoformat(value.replace("z", "Z"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no timezone")
    return True


_LIMIT_RE = re.compile(r"rate limit of (\d+) requests per minute")


class Operation:
    """One operation of the document: where it lives and what it accepts and answers."""

    def __init__(self, method: str, path: str, spec: Mapping[str, Any]) -> None:
        self.method = method.upper()
        self.path = path
        self.spec = spec
        self.operation_id: str = spec["operationId"]
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        self.path_re = re.compile(f"^{pattern}$")
        self.parameters = {(p["in"], p["name"].lower()): p for p in spec.get("parameters", [])}
        self.needs_bearer = "security" not in spec  # the document-wide default is bearer auth
        described = " ".join(str(r.get("description", "")) for r in spec["responses"].values())
        match = _LIMIT_RE.search(described)
        self.rate_limit = int(match.group(1)) if match else None


class ContractChecker:
    """Validates exchanges against the document; compiled validators are cached."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        self.components = spec.get("components", {})
        self.operations: dict[str, Operation] = {}
        for path, item in spec["paths"].items():
            for method, op in item.items():
                if isinstance(op, dict) and "operationId" in op:
                    self.operations[op["operationId"]] = Operation(method, path, op)
        self._validators: dict[str, Draft202012Validator] = {}
        self._memo: dict[tuple[str, str], list[str]] = {}
        self._lock = threading.Lock()

    def validator(self, key: str, schema: Mapping[str, Any]) -> Draft202012Validator:
        with self._lock:
            found = self._validators.get(key)
            if found is None:
                # Refs are "#/components/...": give the schema the document's components.
                rooted = {**schema, "components": self.components}
                found = Draft202012Validator(rooted, format_checker=_FORMATS)
                self._validators[key] = found
            return found

    def _errors(self, key: str, schema: Mapping[str, Any], value: Any) -> list[str]:
        # jsonschema is slow on big pages; identical values (repeated reads) are checked once.
        memo_key = (key, json.dumps(value, sort_keys=True, default=str))
        with self._lock:
            known = self._memo.get(memo_key)
        if known is not None:
            return known
        validator = self.validator(key, schema)
        errors = [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        ][:5]
        with self._lock:
            if len(self._memo) > 4096:
                self._memo.clear()
            self._memo[memo_key] = errors
        return errors

    # --- requests ------------------------------------------------------------------

    def request_problems(self, exchange: Any) -> list[str]:
        where = f"{exchange.method} {exchange.path}"
        if exchange.operation_id is None:
            return [f"{where}: no operation of the API contract has this method and path"]
        op = self.operations.get(exchange.operation_id)
        if op is None:
            return [f"{where}: operation {exchange.operation_id!r} is not in the API contract"]
        problems: list[str] = []
        match = op.path_re.match(exchange.path)
        if op.method != exchange.method or match is None:
            return [f"{where}: does not match {op.operation_id} ({op.method} {op.path})"]
        from urllib.parse import unquote

        for name, raw in match.groupdict().items():
            param = op.parameters.get(("path", name.lower()))
            if param is None:
                problems.append(f"{where}: path parameter {name!r} is not declared")
                continue
            schema = param.get("schema", {})
            value = _coerce(unquote(raw), schema)
            for error in self._errors(f"{op.operation_id}:path:{name}", schema, value):
                problems.append(f"{where}: path parameter {name}: {error}")
        values: dict[str, list[str]] = {}
        for name, value in exchange.query:
            values.setdefault(name, []).append(value)
        for name, given in values.items():
            param = op.parameters.get(("query", name.lower()))
            if param is None:
                declared = sorted(n for (loc, n) in op.parameters if loc == "query")
                problems.append(
                    f"{where}: query parameter {name!r} is not declared (declared: {declared})"
                )
                continue
            schema = param.get("schema", {})
            if _schema_type(schema) == "array":
                item_schema = schema.get("items", {})
                value: Any = [_coerce(v, item_schema) for v in given]
            else:
                if len(given) > 1:
                    problems.append(f"{where}: query parameter {name!r} given {len(given)} times")
                value = _coerce(given[-1], schema)
            for error in self._errors(f"{op.operation_id}:query:{name}", schema, value):
                problems.append(f"{where}: query parameter {name}: {error}")
        for (location, name), param in op.parameters.items():
            if param.get("required") and location == "query" and name not in values:
                problems.append(f"{where}: required query parameter {name!r} is missing")
            if param.get("required") and location == "header" and name not in exchange.headers:
                problems.append(f"{where}: required header {name!r} is missing")
        if op.needs_bearer and not exchange.headers.get("authorization", "").lower().startswith(
            "bearer "
        ):
            problems.append(f"{where}: no `Authorization: Bearer` token")
        body_spec = op.spec.get("requestBody")
        if body_spec is None:
            if exchange.body.strip():
                problems.append(f"{where}: sends a body but {op.operation_id} takes none")
            return problems
        schema = body_spec["content"]["application/json"]["schema"]
        content_type = exchange.headers.get("content-type", "")
        if "application/json" not in content_type:
            problems.append(f"{where}: body content-type is {content_type!r}, not application/json")
        try:
            body = json.loads(exchange.body)
        except ValueError:
            problems.append(f"{where}: body is not JSON")
            return problems
        for error in self._errors(f"{op.operation_id}:body", schema, body):
            problems.append(f"{where}: body {error}")
        return problems

    # --- answers ---------------------------------------------------------------------

    def response_problems(self, exchange: Any) -> list[str]:
        response = exchange.response
        if exchange.fault is not None and (response.drop or response.status >= 429):
            return []  # a fault the test injected: the emulator playing a broken gateway
        where = f"{exchange.method} {exchange.path} -> {response.status}"
        op = self.operations.get(exchange.operation_id or "")
        if op is None:
            return []  # unknown operation: already reported on the request side
        documented = op.spec["responses"].get(str(response.status))
        if documented is None:
            known = ", ".join(sorted(op.spec["responses"]))
            return [f"{where}: status not documented for {op.operation_id} (documented: {known})"]
        problems: list[str] = []
        headers = dict(response.headers)
        for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
            if name not in headers:
                problems.append(f"{where}: header {name} is missing")
        if op.rate_limit is not None and headers.get("x-ratelimit-limit") not in (
            None,
            str(op.rate_limit),
        ):
            problems.append(
                f"{where}: X-RateLimit-Limit {headers['x-ratelimit-limit']} but the document "
                f"says {op.rate_limit} a minute"
            )
        if response.status == 429 and "retry-after" not in headers:
            problems.append(f"{where}: a 429 without Retry-After")
        content = documented.get("content", {}).get("application/json")
        if response.status == 204 or (content is None and response.status < 300):
            if response.body:
                problems.append(f"{where}: body {response.body[:80]!r} where none is documented")
            return problems
        try:
            body = json.loads(response.body)
        except ValueError:
            return [*problems, f"{where}: body is not JSON: {response.body[:80]!r}"]
        if content is not None:
            schema = content.get("schema", {})
            key = f"{op.operation_id}:response:{response.status}"
        elif response.status == 422:
            schema = {"$ref": "#/components/schemas/HTTPValidationError", "required": ["detail"]}
            key = "HTTPValidationError"
        else:
            schema = {"type": "object", "required": ["detail"]}
            key = "error-detail"
        for error in self._errors(key, schema, body):
            problems.append(f"{where}: body {error}")
        return problems


def _schema_type(schema: Mapping[str, Any]) -> str | None:
    if "type" in schema:
        return str(schema["type"])
    for option in schema.get("anyOf", []):
        if option.get("type") not in (None, "null"):
            return str(option["type"])
    return None


def _coerce(value: str, schema: Mapping[str, Any]) -> Any:
    """A query/path string as the typed value the schema describes (as the server parses it)."""
    kind = _schema_type(schema)
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            return value
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


class ContractRecorder:
    """The observer the conftest installs: collects problems per test, thread-safe."""

    def __init__(self, checker: ContractChecker) -> None:
        self.checker = checker
        self._lock = threading.Lock()
        self._problems: list[str] = []
        self.allow_invalid_requests = False
        self.exchanges_checked = 0

    @classmethod
    def from_path(cls, path: Path) -> ContractRecorder:
        return cls(ContractChecker(json.loads(path.read_text(encoding="utf-8"))))

    def __call__(self, exchange: Any) -> None:
        problems = [] if self.allow_invalid_requests else self.checker.request_problems(exchange)
        problems += self.checker.response_problems(exchange)
        with self._lock:
            self.exchanges_checked += 1
            self._problems.extend(problems)

    def begin(self, *, allow_invalid_requests: bool) -> None:
        with self._lock:
            self._problems = []
            self.allow_invalid_requests = allow_invalid_requests

    def end(self) -> list[str]:
        with self._lock:
            problems, self._problems = self._problems, []
            self.allow_invalid_requests = False
            return problems
