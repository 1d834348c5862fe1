"""Diagnostics: the one shape every user-facing problem takes.

Manifest errors, plan-time errors and warnings all become a `Diagnostic` so that
the renderers (text, markdown, json, GitHub annotations) treat them alike and
every message can point at a file, line and column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class SourcePos:
    """A position in a manifest file; line and column are 1-based."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem, said once: where, which field, what is wrong and what would be right."""

    message: str
    severity: Severity = Severity.ERROR
    pos: SourcePos | None = None
    field: str | None = None  # dotted path inside the document, e.g. "spec.tags.team-name"
    service: str | None = None

    def __str__(self) -> str:
        where = f"{self.pos}: " if self.pos else ""
        field = f"{self.field}: " if self.field else ""
        return f"{where}{self.severity.value}: {field}{self.message}"

    def github_annotation(self, title: str | None = None) -> str:
        """`::error file=F,line=L,col=C::message` for GitHub Actions (`title`: its heading,
        e.g. which environment's plan found it)."""
        props: dict[str, object] = {}
        if self.pos:
            props = {"file": self.pos.file, "line": self.pos.line, "col": self.pos.column}
        if title:
            props["title"] = title
        text = f"{self.field}: {self.message}" if self.field else self.message
        return workflow_command(self.severity.value, text, props)


def workflow_command(command: str, message: str, properties: Mapping[str, object]) -> str:
    """One GitHub Actions workflow command, escaped by GitHub's rules (the one place that does).

    A property value (a file name can hold anything) escapes `%`, CR, LF, `:` and
    `,`, which would otherwise end the value or the property list; the message
    escapes `%`, CR and LF, which would otherwise end the command or be decoded.
    """
    props = ",".join(f"{name}={_escape_property(str(v))}" for name, v in properties.items())
    head = f"::{command} {props}" if props else f"::{command}"
    return f"{head}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def close_matches(
    word: str, choices: Iterable[str], *, limit: int = 1, cutoff: float = 0.6
) -> list[str]:
    """The choices closest to a misspelled word, best first (case-insensitive); [] if none.

    The one "did you mean" matcher of the code base: field names, service names,
    version sets, agents, LLM names all use it, so a near miss is caught alike.
    """
    import difflib  # only on a miss: valid input never pays its import

    lowered = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=limit, cutoff=cutoff)
    return [lowered[match] for match in close]


def did_you_mean(word: str, choices: Iterable[str], *, limit: int = 1) -> str:
    """The hint "; did you mean 'X'?" (or "'X' or 'Y'") for the closest choices, or ''."""
    close = close_matches(word, choices, limit=limit)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{match}'" for match in close) + "?"


class UserError(Exception):
    """A problem the user can fix, carrying diagnostics; the CLI prints them without a traceback."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic | str) -> None:
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(diagnostics)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


class UsageProblem(UserError):
    """A flag given a value the command cannot take (`--env nosuch`): the CLI exits 64."""
