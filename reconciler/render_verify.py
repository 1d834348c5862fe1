"""A `Verification` as text, markdown (a pull-request comment), JSON, or GitHub annotations."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reconciler.verify import Outcome, TestSetResult, Verification

_LABEL = {
    Outcome.PASSED: "passed",
    Outcome.FAILED: "FAILED",
    Outcome.ERRORED: "ERRORED",
    Outcome.TIMED_OUT: "TIMED OUT",
}


def render_verification(result: Verification, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(verification_to_dict(result), indent=2) + "\n"
    if fmt == "markdown":
        return _markdown(result)
    if fmt == "github":
        return _github(result)
    return _text(result)


def _reads(result: Verification) -> str:
    total = sum(result.api_reads.values())
    detail = ", ".join(f"{op} {n}" for op, n in sorted(result.api_reads.items()))
    return (
        f"API: {total} read{'s' if total != 1 else ''} ({detail}), "
        f"{result.runs_started} run{'s' if result.runs_started != 1 else ''} started, "
        f"{result.elapsed_seconds:.0f}s"
    )


def _detail(test_set: TestSetResult) -> list[str]:
    lines = []
    if test_set.message:
        lines.append(test_set.message)
    for test in test_set.unit_tests:
        if test.errors:
            lines.append(f"{test.name}: errored: {test.errors[0]}")
        elif test.failed_metrics:
            failed = ", ".join(
                f"{m.name} ({m.failed}/{m.passed + m.failed} runs)"
                for m in test.metrics
                if m.failed
            )
            lines.append(f"{test.name}: failed metrics: {failed}")
    if test_set.outcome is Outcome.TIMED_OUT:
        lines.append("the run did not finish before the timeout")
    return lines


def _covers(test_set: TestSetResult) -> str:
    return ", ".join(f"{service} / {vs}" for service, vs in test_set.covers)


def _summary(result: Verification) -> str:
    counts = {o: sum(1 for s in result.test_sets if s.outcome is o) for o in Outcome}
    parts = [f"{counts[o]} {o.value.replace('_', ' ')}" for o in Outcome if counts[o]]
    verdict = "Verification passed" if result.passed else "Verification FAILED"
    if not result.passed and not result.failed():
        verdict = "NOT VERIFIED (nothing failed, but not everything was tested)"
    if result.cancelled:
        verdict = "Verification CANCELLED (runs already started keep running)"
    if result.uncovered:
        parts.append(f"{len(result.uncovered)} version set(s) not covered by any unit test")
    shown = ", ".join(parts) or "no test sets run"
    return f"{verdict}: {shown}" + (f"; {len(result.errors)} problem(s)" if result.errors else "")


def _text(result: Verification) -> str:
    lines = []
    for error in result.errors:
        lines.append(f"error: {error.message}")
    for test_set in result.test_sets:
        lines.append(f"{_LABEL[test_set.outcome]:>9}  {test_set.name}  ({_covers(test_set)})")
        lines.extend(f"           {line}" for line in _detail(test_set))
    lines.append("")
    lines.append(_summary(result))
    lines.append(_reads(result))
    return "\n".join(lines) + "\n"


def _markdown(result: Verification) -> str:
    icon = {
        Outcome.PASSED: "✅",
        Outcome.FAILED: "❌",
        Outcome.ERRORED: "⚠️",
        Outcome.TIMED_OUT: "⏱️",
    }
    lines = [f"### {_summary(result)}", ""]
    for error in result.errors:
        lines.append(f"- ⚠️ {error.message}")
    if result.errors:
        lines.append("")
    if result.test_sets:
        lines += ["| | Test set | Verifies | Details |", "|---|---|---|---|"]
        for s in result.test_sets:
            detail = "<br>".join(_detail(s)).replace("|", "\\|") or "all metrics passed"
            lines.append(
                f"| {icon[s.outcome]} | {s.name} | {_covers(s)} | {detail} |".replace("\n", " ")
            )
        lines.append("")
    lines.append(f"<sub>{_reads(result)}</sub>")
    return "\n".join(lines) + "\n"


def _github(result: Verification) -> str:
    lines = [f"::error title=verify::{error.message}" for error in result.errors]
    for s in result.test_sets:
        if s.outcome is Outcome.PASSED:
            lines.append(f"::notice title=verify {s.name}::passed ({_covers(s)})")
        else:
            detail = "; ".join(_detail(s))
            lines.append(f"::error title=verify {s.name}::{s.outcome.value}: {detail}")
    lines.append(_summary(result))
    lines.append(_reads(result))
    return "\n".join(lines) + "\n"


def verification_to_dict(result: Verification) -> dict[str, Any]:
    return {
        "organization": result.organization,
        "passed": result.passed,
        "cancelled": result.cancelled,
        "targets": [
            {
                "service": t.service,
                "version_set": t.version_set,
                "unit_test_sets": list(t.unit_test_sets),
            }
            for t in result.targets
        ],
        "errors": [e.message for e in result.errors],
        "uncovered": [{"service": svc, "version_set": vs} for svc, vs in result.uncovered],
        "test_sets": [
            {
                "id": s.unit_test_set_id,
                "name": s.name,
                "run_id": s.run_id,
                "outcome": s.outcome.value,
                "verifies": [{"service": a, "version_set": b} for a, b in s.covers],
                "failed_metrics": list(s.failed_metrics),
                "message": s.message or None,
                "unit_tests": [
                    {
                        "id": t.unit_test_id,
                        "name": t.name,
                        "outcome": t.outcome.value,
                        "errors": list(t.errors),
                        "metrics": [
                            {
                                "name": m.name,
                                "metric_id": m.metric_id,
                                "passed": m.passed,
                                "failed": m.failed,
                            }
                            for m in t.metrics
                        ],
                    }
                    for t in s.unit_tests
                ],
            }
            for s in result.test_sets
        ],
        "api_reads": dict(result.api_reads),
        "runs_started": result.runs_started,
        "elapsed_seconds": round(result.elapsed_seconds, 1),
    }


# --- a saved verification (`verify --format json`, an apply report's `verification`) ----


class _Saved(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class _SavedPair(_Saved):
    service: str
    version_set: str


class _SavedTarget(_SavedPair):
    unit_test_sets: list[str] = []


class _SavedMetric(_Saved):
    name: str
    metric_id: str
    passed: int = Field(ge=0)
    failed: int = Field(ge=0)


class _SavedUnitTest(_Saved):
    id: str
    name: str
    outcome: Outcome = Field(strict=False)
    errors: list[str] = []
    metrics: list[_SavedMetric] = []


class _SavedTestSet(_Saved):
    id: str
    name: str
    run_id: str | None = None
    outcome: Outcome = Field(strict=False)
    verifies: list[_SavedPair] = []
    message: str | None = None
    unit_tests: list[_SavedUnitTest] = []


class SavedVerification(_Saved):
    """What `verification_to_dict` writes: read back to render it again (`reconciler show`)."""

    organization: str
    passed: bool
    cancelled: bool = False
    targets: list[_SavedTarget]
    errors: list[str] = []
    uncovered: list[_SavedPair] = []
    test_sets: list[_SavedTestSet]
    api_reads: dict[str, int] = {}
    runs_started: int = Field(default=0, ge=0)
    elapsed_seconds: float = Field(default=0.0, ge=0)


def verification_from_dict(data: Any) -> Verification:
    """A saved verification, checked (pydantic's ValidationError names a bad field)."""
    from reconciler.diagnostics import Diagnostic
    from reconciler.verify import MetricResult, UnitTestResult, VerifyTarget

    saved = SavedVerification.model_validate(data)
    return Verification(
        organization=saved.organization,
        targets=tuple(
            VerifyTarget(t.service, t.version_set, tuple(t.unit_test_sets)) for t in saved.targets
        ),
        test_sets=tuple(
            TestSetResult(
                unit_test_set_id=s.id,
                name=s.name,
                covers=tuple((p.service, p.version_set) for p in s.verifies),
                outcome=s.outcome,
                run_id=s.run_id,
                unit_tests=tuple(
                    UnitTestResult(
                        unit_test_id=t.id,
                        name=t.name,
                        outcome=t.outcome,
                        metrics=tuple(
                            MetricResult(m.name, m.metric_id, m.passed, m.failed) for m in t.metrics
                        ),
                        errors=tuple(t.errors),
                    )
                    for t in s.unit_tests
                ),
                message=s.message or "",
            )
            for s in saved.test_sets
        ),
        errors=tuple(Diagnostic(message) for message in saved.errors),
        uncovered=tuple((p.service, p.version_set) for p in saved.uncovered),
        api_reads=dict(saved.api_reads),
        runs_started=saved.runs_started,
        elapsed_seconds=saved.elapsed_seconds,
        cancelled=saved.cancelled,
    )
