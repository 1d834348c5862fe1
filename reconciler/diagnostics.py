"""Diagnostics: the one shape every user-facing problem takes.

Manifest errors, plan-time errors and warnings all become a `Diagnostic` so that
the renderers (text, markdown, json, GitHub annotations) treat them alike and
every message can point at a file, line and column.
"""

from __future__ import annotations

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

    def github_annotation(self) -> str:
        """`::error file=F,line=L,col=C::message` for GitHub Actions."""
        props = []
        if self.pos:
            props = [f"file={self.pos.file}", f"line={self.pos.line}", f"col={self.pos.column}"]
        head = (
            f"::{self.severity.value} " + ",".join(props) if props else f"::{self.severity.value}"
        )
        text = f"{self.field}: {self.message}" if self.field else self.message
        # GitHub annotation escaping for the message part.
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return f"{head}::{text}"


class UserError(Exception):
    """A problem the user can fix, carrying diagnostics; the CLI prints them without a traceback."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic | str) -> None:
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(diagnostics)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))
