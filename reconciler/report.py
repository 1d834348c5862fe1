"""Apply results for people and machines: progress lines, a progress bar, the final report.

Pure rendering (strings and plain dicts): the CLI decides where they go. Text
goes to a terminal or a CI log; `apply_report_json` is the `--format json`
document, stable for scripts (keys documented in the README).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import click
from pydantic import BaseModel, ConfigDict, Field

from reconciler.applier import ApplyReport, OperationResult, Status, describe
from reconciler.convergence import Convergence, convergence_from_plan
from reconciler.plan import Plan
from reconciler.redaction import redact

if TYPE_CHECKING:
    from reconciler.rollback import ApplyVerification, RollbackOutcome

REPORT_FORMAT_VERSION = 1

__all__ = ["Convergence", "convergence_from_plan"]  # re-exported: renderers take them

_STATUS_COLOR = {
    Status.DONE: "green",
    Status.FAILED: "red",
    Status.OUTCOME_UNKNOWN: "red",
    Status.SKIPPED: "yellow",
    Status.NOT_STARTED: "yellow",
}
_STATUS_LABEL = {
    Status.DONE: "done",
    Status.FAILED: "FAILED",
    Status.OUTCOME_UNKNOWN: "UNKNOWN",
    Status.SKIPPED: "skipped",
    Status.NOT_STARTED: "not started",
}


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def progress_line(result: OperationResult, index: int, total: int, *, color: bool = False) -> str:
    """One line as an operation finishes: `[ 3/12] done     create 'A' version set 'x' (0.4s)`."""
    width = len(str(total))
    label = _STATUS_LABEL[result.status].ljust(11)
    if color:
        label = click.style(label, fg=_STATUS_COLOR[result.status], bold=True)
    line = f"[{index:>{width}}/{total}] {label} {describe(result)}"
    if result.status in (Status.DONE, Status.FAILED, Status.OUTCOME_UNKNOWN):
        line += f" ({format_duration(result.duration)})"
    if result.message:
        line += f": {result.message}"
    return redact(line)


def render_apply_text(
    report: ApplyReport, convergence: Convergence | None, *, color: bool = False
) -> str:
    """The summary after an apply: counts, what failed and why, then convergence."""

    def style(text: str, fg: str) -> str:
        return click.style(text, fg=fg, bold=True) if color else text

    counts = report.counts
    parts = [f"{counts['done']} done"]
    for status in (Status.FAILED, Status.OUTCOME_UNKNOWN, Status.SKIPPED, Status.NOT_STARTED):
        if counts[status.value]:
            parts.append(f"{counts[status.value]} {status.value.replace('_', ' ')}")
    lines = [f"Apply finished in {format_duration(report.elapsed)}: {', '.join(parts)}."]
    if report.cancelled:
        lines.append(
            style("Cancelled: operations not started were left for the next run.", "yellow")
        )
    failed = report.by_status(Status.FAILED)
    if failed:
        lines.append("")
        lines.append(style("Failed:", "red"))
        lines += [f"  {r.key} {describe(r)}: {r.message}" for r in failed]
    unknown = report.by_status(Status.OUTCOME_UNKNOWN)
    if unknown:
        lines.append("")
        lines.append(style("Outcome unknown (may or may not have taken effect):", "red"))
        lines += [f"  {r.key} {describe(r)}: {r.message}" for r in unknown]
    not_started = report.by_status(Status.NOT_STARTED)
    if report.cancelled and not_started:
        lines.append(style("Not started:", "yellow"))
        lines += [f"  {r.key} {describe(r)}" for r in not_started]
    skipped = report.by_status(Status.SKIPPED)
    if skipped:
        lines.append(style("Skipped:", "yellow"))
        lines += [f"  {r.key} {describe(r)}: {r.message}" for r in skipped]
    if convergence is not None:
        lines.append("")
        if convergence.error is not None:
            lines.append(style(f"Convergence not checked: {convergence.error}", "red"))
        elif convergence.converged:
            lines.append(style("Converged.", "green"))
        else:
            lines.append(
                style("Not converged: live state still differs from the manifests:", "red")
            )
            lines += [f"  {d}" for d in convergence.differences]
            lines.append(_next_step(failed))
    return redact("\n".join(lines))


# The API's verdicts on the request's content: sending it again gets the same answer,
# and what to change is in the manifests. (A 404 or 409 may clear when apply re-plans; a
# 403 needs a permission, not a manifest change: those keep the retry advice.)
_REFUSALS = frozenset({400, 422})


def _next_step(failed: list[OperationResult]) -> str:
    """What to do after a failed apply: a retry only when a retry can help.

    A 400 (or another refusal) is the API's verdict on the request itself, for
    example activating a service whose version set prefers an LLM the API has
    deprecated (the API publishes no deprecated list, so no plan can catch it).
    """
    refused = [r for r in failed if r.api_status in _REFUSALS]
    if not refused:
        return "Run apply again to retry; fix what failed first if it keeps failing."
    keys = ", ".join(f"{r.key} (HTTP {r.api_status})" for r in refused)
    return (
        f"The API refused {keys}: the same request gets the same answer, so do not just "
        "run apply again. Change in the manifests what the API's message names (a "
        "deprecated LLM: set a current llm_name in that version set), then plan and apply."
    )


def apply_report_json(
    plan: Plan,
    report: ApplyReport | None,
    convergence: Convergence | None,
    verified: ApplyVerification | None = None,
) -> dict[str, Any]:
    """The machine-readable report (`--format json`). `report` None: nothing to apply;
    `verified` None: no --verify (the `verification` and `rollback` keys are null)."""
    results = report.results if report else ()
    counts = report.counts if report else {s.value: 0 for s in Status}
    if report is not None and report.cancelled:
        outcome = "cancelled"
    elif report is not None and report.counts[Status.FAILED.value]:
        outcome = "failed"
    elif report is not None and not report.ok:
        outcome = "outcome_unknown"
    elif convergence is not None and convergence.error is not None:
        outcome = "unchecked"
    elif convergence is not None and not convergence.converged:
        outcome = "not_converged"
    else:
        outcome = "converged" if convergence is not None or not plan.operations else "applied"
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "organization": plan.organization,
        "base_url": plan.base_url,
        "outcome": outcome,
        "converged": (
            convergence.converged if convergence is not None and convergence.error is None else None
        ),
        "convergence_error": convergence.error if convergence is not None else None,
        "differences": list(convergence.differences) if convergence is not None else [],
        "summary": counts,
        "elapsed_seconds": round(report.elapsed, 3) if report else 0.0,
        "operations": [_result_json(r) for r in results],
        "verification": _verification_json(verified),
        "rollback": _rollback_json(verified),
    }


def _result_json(r: OperationResult) -> dict[str, Any]:
    return {
        "key": r.key,
        "action": r.action.value,
        "kind": r.kind.value,
        "service": r.service,
        "service_id": r.service_id,
        "version_set": r.version_set,
        "status": r.status.value,
        "api_status": r.api_status,
        "error": r.error_class,
        "detail": r.detail,
        "message": r.message,
        "duration_seconds": round(r.duration, 3),
    }


def _verification_json(verified: ApplyVerification | None) -> dict[str, Any] | None:
    if verified is None:
        return None
    from reconciler.render_verify import verification_to_dict

    if verified.verification is None:
        return {"passed": False, "skipped": verified.skipped}
    return {**verification_to_dict(verified.verification), "skipped": None}


def rollback_outcome(rollback: RollbackOutcome) -> str:
    """`rolled_back` (every changed set restored, checked by a re-read), `partial` (some
    were), `failed` (none were)."""
    if rollback.complete:
        return "rolled_back"
    sent = rollback.report is not None and rollback.report.counts[Status.DONE.value] > 0
    return "partial" if sent else "failed"


def _rollback_json(verified: ApplyVerification | None) -> dict[str, Any] | None:
    if verified is None or (verified.rollback is None and verified.rollback_skipped is None):
        return None
    rollback = verified.rollback
    if rollback is None:
        return {"outcome": "not_attempted", "skipped": verified.rollback_skipped}
    return {
        "outcome": rollback_outcome(rollback),
        "skipped": None,
        "operations": [
            _result_json(r) for r in (rollback.report.results if rollback.report else ())
        ],
        "already_as_before": [{"service": svc, "version_set": vs} for svc, vs in rollback.already],
        "left_alone": [
            {"service": n.service, "version_set": n.version_set, "reason": n.reason}
            for n in rollback.left_alone
        ],
        "differences": list(rollback.differences),
        "error": rollback.error,
        "api_reads": dict(rollback.api_reads),
    }


def rollback_line(result: OperationResult) -> str:
    """One line as a rollback operation finishes (the rollback's size is not known ahead)."""
    line = f"rollback {result.key}: {_STATUS_LABEL[result.status]} {describe(result)}"
    return redact(line + (f": {result.message}" if result.message else ""))


def render_apply_verification_text(verified: ApplyVerification) -> str:
    """What `apply --verify` adds after the apply summary: the verification, the rollback
    (rendered from the report's own keys, so `reconciler show` prints the same)."""
    saved = {"verification": _verification_json(verified), "rollback": _rollback_json(verified)}
    return redact("\n".join(_verification_lines(saved)))


def cancelled_report_json(organization: str, base_url: str) -> dict[str, Any]:
    """The `--format json` report of an apply cancelled before anything was sent
    (Ctrl-C while planning or at the prompt, or the prompt declined): stdout is
    never empty, and it says no operation ran."""
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "organization": organization,
        "base_url": base_url,
        "outcome": "cancelled",
        "converged": None,
        "convergence_error": None,
        "differences": [],
        "summary": {s.value: 0 for s in Status},
        "elapsed_seconds": 0.0,
        "operations": [],
        "verification": None,
        "rollback": None,
    }


class ProgressBar:
    """A one-line bar with ETA, redrawn in place on a terminal (`\\r`, erase line).

    `write` receives raw text without a newline. Lines printed meanwhile must go
    through `above(...)` so the bar is cleared first and redrawn after.
    """

    def __init__(
        self,
        total: int,
        write: Callable[[str], None],
        *,
        width: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.finished = 0
        self.write = write
        self.width = width
        self.clock = clock
        self.start = clock()
        self.visible = False

    def text(self) -> str:
        filled = int(self.width * self.finished / self.total) if self.total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = self.clock() - self.start
        if self.finished and self.finished < self.total:
            eta = f"ETA {format_duration(elapsed / self.finished * (self.total - self.finished))}"
        elif self.finished >= self.total:
            eta = f"in {format_duration(elapsed)}"
        else:
            eta = "ETA --"
        return f"[{bar}] {self.finished}/{self.total} {eta}"

    def draw(self) -> None:
        self.write("\r\x1b[2K" + self.text())
        self.visible = True

    def clear(self) -> None:
        if self.visible:
            self.write("\r\x1b[2K")
            self.visible = False

    def advance(self) -> None:
        self.finished += 1
        self.draw()


class ApplyProgress:
    """Routes progress to the console: a line per finished operation, waits and notes,
    and (on a terminal) a progress bar kept at the bottom.

    `line` prints one line (newline added); `bar_write` writes raw text to the
    terminal the bar lives on, or is None for no bar (CI logs, pipes, json).
    Called from the applier's dispatcher thread and the client's worker threads.
    """

    def __init__(
        self,
        total: int,
        line: Callable[[str], None],
        bar_write: Callable[[str], None] | None = None,
        *,
        color: bool = False,
    ) -> None:
        self.total = total
        self.index = 0
        self.line = line
        self.color = color
        self.bar = ProgressBar(total, bar_write) if bar_write is not None else None
        self.lock = threading.Lock()

    def event(self, result: OperationResult) -> None:
        with self.lock:
            self.index += 1
            self._above(progress_line(result, self.index, self.total, color=self.color))
            if self.bar is not None:
                self.bar.advance()

    def note(self, message: str) -> None:
        """A message from the client (e.g. waiting for a rate limit)."""
        with self.lock:
            self._above(message)
            if self.bar is not None and self.index < self.total:
                self.bar.draw()

    def close(self) -> None:
        with self.lock:
            if self.bar is not None:
                self.bar.clear()

    def _above(self, text: str) -> None:
        if self.bar is not None:
            self.bar.clear()
        self.line(text)


# --- a saved apply report (`reconciler show`, the merged pull request's comment) --------

_OUTCOME_TEXT = {
    "converged": "Applied, and the live state converged.",
    "applied": "Applied (convergence was not checked).",
    "failed": "The apply failed: some operations failed.",
    "outcome_unknown": "Outcome unknown: some writes may or may not have taken effect.",
    "cancelled": "Cancelled: operations not started were left for the next run.",
    "unchecked": "Applied, but convergence could not be checked.",
    "not_converged": "Applied, but the live state still differs from the manifests.",
}
REPORT_KEYS = ("format_version", "outcome", "summary", "operations", "elapsed_seconds")


def is_report_document(data: Any) -> bool:
    """Whether decoded JSON is an apply report (`apply --format json`), not a plan."""
    return (
        isinstance(data, dict)
        and all(key in data for key in REPORT_KEYS)
        and "checksum" not in data
        and isinstance(data.get("operations"), list)
        and isinstance(data.get("summary"), dict)
    )


def _op_line(op: Any) -> str:
    what = f"{op.get('kind', '?')} service {op.get('service')!r}"
    if op.get("version_set"):
        what += f" version set {op.get('version_set')!r}"
    message = f": {op['message']}" if op.get("message") else ""
    return f"{op.get('key', '?')} {what}{message}"


def report_lines(data: dict[str, Any]) -> list[str]:
    """A saved report as plain lines: outcome, counts, every operation not done, convergence."""
    counts = data.get("summary") or {}
    parts = [f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n]
    headline = _OUTCOME_TEXT.get(str(data.get("outcome")), f"Outcome: {data.get('outcome')}")
    if data.get("outcome") in ("converged", "applied") and not report_succeeded(data):
        rollback = (data.get("rollback") or {}).get("outcome")
        after = {"rolled_back": " (rolled back)", "partial": " (rollback PARTIAL)"}
        headline += " But verification did not pass" + after.get(str(rollback), "") + "."
    lines = [
        headline,
        f"Operations: {', '.join(parts) or 'none'} "
        f"(in {format_duration(float(data.get('elapsed_seconds') or 0))}).",
    ]
    for status, title in (
        ("failed", "Failed"),
        ("outcome_unknown", "Outcome unknown (may or may not have taken effect)"),
        ("not_started", "Not started"),
        ("skipped", "Skipped"),
    ):
        ops = [
            op for op in data["operations"] if isinstance(op, dict) and op.get("status") == status
        ]
        if ops:
            lines.append(f"{title}:")
            lines += [f"  {_op_line(op)}" for op in ops]
    if data.get("convergence_error"):
        lines.append(f"Convergence not checked: {data['convergence_error']}")
    elif data.get("converged") is True:
        lines.append("Converged.")
    elif data.get("converged") is False:
        lines.append("Not converged: live state still differs from the manifests:")
        lines += [f"  {d}" for d in data.get("differences") or []]
    verified = _verification_lines(data)
    return [*lines, *([""] if verified else []), *verified]


def render_report_document(data: dict[str, Any], fmt: str, *, max_chars: int | None = None) -> str:
    """A saved apply report in text, markdown (fitted to `max_chars`), json or github."""
    import json

    from reconciler.diagnostics import workflow_command
    from reconciler.fit import fenced, take_lines

    lines = report_lines(data)
    if fmt == "json":
        return redact(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    if fmt == "text":
        return redact("\n".join(lines) + "\n")
    if fmt == "github":
        command = "notice" if report_succeeded(data) else "error"
        head = workflow_command(command, " ".join(lines[:2]), {"title": "reconciler apply"})
        verification = data.get("verification")
        if verification is not None and verification.get("skipped") is None:
            from reconciler.render_verify import render_verification, verification_from_dict

            head += "\n" + render_verification(verification_from_dict(verification), "github")
        elif verification is not None:
            head += "\n" + workflow_command(
                "warning", f"Not verified: {verification['skipped']}.", {"title": "verify"}
            )
        rollback = data.get("rollback")
        if rollback:
            rolled = rollback.get("outcome")
            done = sum(1 for op in rollback.get("operations") or [] if op.get("status") == "done")
            head += "\n" + workflow_command(
                "notice" if rolled == "rolled_back" else "error",
                f"Rollback {rolled}: {done} operation(s) done."
                + (f" {rollback['skipped']}" if rollback.get("skipped") else ""),
                {"title": "rollback"},
            )
        return redact(head.rstrip("\n") + "\n")
    if fmt == "markdown":
        org = str(data.get("organization", "")).replace("`", "'")
        title = f"### Amigo reconciler apply for `{org}`\n\n"
        head = f"{title}**{lines[0]}** {lines[1]}"
        room = (max_chars or 60_000) - len(head) - 200
        body, _ = take_lines(lines[2:], room, more="… and {n} more lines: see the run log")
        return redact(head + ("\n\n" + fenced("\n".join(body)) if body else "") + "\n")
    raise ValueError(f"unknown format {fmt!r}")


# --- checking a saved report against apply-report.v1's essentials -----------------------

ReportOutcome = Literal[
    "converged", "applied", "failed", "outcome_unknown", "cancelled", "unchecked", "not_converged"
]
OperationStatus = Literal["done", "failed", "outcome_unknown", "skipped", "not_started"]


class _Saved(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class _SavedSummary(_Saved):
    done: int = Field(ge=0)
    failed: int = Field(ge=0)
    outcome_unknown: int = Field(ge=0)
    skipped: int = Field(ge=0)
    not_started: int = Field(ge=0)


class _SavedOperation(_Saved):
    key: str
    kind: Literal["create", "update", "adopt", "activate", "deactivate", "delete"]
    service: str
    version_set: str | None
    status: OperationStatus
    message: str | None


class _SavedRollback(_Saved):
    outcome: Literal["rolled_back", "partial", "failed", "not_attempted"]
    skipped: str | None = None
    operations: list[_SavedOperation] = []
    already_as_before: list[dict[str, str]] = []
    left_alone: list[dict[str, str]] = []
    differences: list[str] = []
    error: str | None = None
    api_reads: dict[str, int] = {}


class _SavedVerificationSkipped(_Saved):
    passed: Literal[False]
    skipped: str


class SavedReport(_Saved):
    """The essentials of schemas/apply-report.v1.schema.json, to refuse a malformed report
    rather than render `Outcome: 5`."""

    format_version: Literal[1]
    organization: str
    base_url: str
    outcome: ReportOutcome
    converged: bool | None
    convergence_error: str | None
    differences: list[str]
    summary: _SavedSummary
    elapsed_seconds: float = Field(ge=0)
    operations: list[_SavedOperation]
    verification: dict[str, Any] | None = None
    rollback: _SavedRollback | None = None


def report_problems(data: dict[str, Any]) -> list[str]:
    """What makes `data` not an apply report of format_version 1 (empty: it is one)."""
    from pydantic import ValidationError

    from reconciler.render_verify import verification_from_dict

    problems: list[str] = []
    try:
        saved = SavedReport.model_validate(data)
    except ValidationError as exc:
        problems += [pydantic_problem(e) for e in exc.errors()]
        return problems
    verification = saved.verification
    if verification is not None and verification.get("skipped") is not None:
        try:
            _SavedVerificationSkipped.model_validate(verification)
        except ValidationError as exc:
            problems += [pydantic_problem(e, "verification") for e in exc.errors()]
    elif verification is not None:
        try:
            verification_from_dict(verification)
        except ValidationError as exc:
            problems += [pydantic_problem(e, "verification") for e in exc.errors()]
    return problems


def pydantic_problem(error: Any, prefix: str = "") -> str:
    where = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
    got = error.get("input")
    shown = (
        repr(got)
        if isinstance(got, str | int | float | bool) or got is None
        else type(got).__name__
    )
    return f"`{where or '(document)'}`: {error['msg']} (got {shown})"


def report_succeeded(data: dict[str, Any]) -> bool:
    """Whether the apply that wrote this report exited 0: applied (converged when checked)
    and, with --verify, verified."""
    verification = data.get("verification")
    verified = verification is None or verification.get("passed") is True
    return data.get("outcome") in ("converged", "applied") and verified


def _describe_saved(op: dict[str, Any]) -> str:
    """`describe` for a saved operation."""
    where = f"{op.get('service')!r}"
    if op.get("version_set"):
        where += f" version set {op.get('version_set')!r}"
    return f"{op.get('kind')} {where}"


def _verification_lines(data: dict[str, Any]) -> list[str]:
    """A report's `verification` and `rollback` keys, as apply --verify prints them."""
    from reconciler.render_verify import render_verification, verification_from_dict

    verification = data.get("verification")
    if verification is None:
        return []
    if verification.get("skipped") is not None:
        return [f"Not verified: {verification['skipped']}."]
    shown = render_verification(verification_from_dict(verification), "text")
    lines = [shown.rstrip("\n")]
    rollback = data.get("rollback")
    if not rollback:
        return lines
    if rollback.get("outcome") == "not_attempted":
        return [*lines, f"Not rolled back: {rollback.get('skipped')}."]
    operations = rollback.get("operations") or []
    done = [op for op in operations if op.get("status") == "done"]
    lines.append("")
    if rollback["outcome"] == "rolled_back":
        already = rollback.get("already_as_before") or []
        more = f"; {len(already)} already as before" if already else ""
        lines.append(
            f"Rolled back: {len(done)} version set(s) restored to their contents before "
            f"this apply (checked by a fresh read){more}."
        )
    else:
        lines.append(f"Rollback {str(rollback['outcome']).upper()}: {len(done)} operation(s) done.")
    lines += [f"  {op.get('key')} {_describe_saved(op)}" for op in done]
    lines += [
        f"  {op.get('key')} {_describe_saved(op)}: {op.get('status')}: {op.get('message')}"
        for op in operations
        if op.get("status") != "done"
    ]
    lines += [
        f"  already as before: {a.get('service')} / {a.get('version_set')} (nothing to restore)"
        for a in rollback.get("already_as_before") or []
    ]
    lines += [
        f"  not rolled back: {n.get('service')} / {n.get('version_set')}: {n.get('reason')}"
        for n in rollback.get("left_alone") or []
    ]
    lines += [f"  still differs: {d}" for d in rollback.get("differences") or []]
    if rollback.get("error"):
        lines.append(f"  {rollback['error']}")
    total = sum((rollback.get("api_reads") or {}).values())
    lines.append(f"Rollback API: {total} read{'s' if total != 1 else ''}.")
    return lines
