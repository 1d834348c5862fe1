"""Apply report rendering: progress lines, the progress bar, text and json reports."""

from __future__ import annotations

import json

from reconciler.applier import ApplyReport, OperationResult, Status
from reconciler.diff import Change
from reconciler.plan import Action, Kind, Operation, Plan
from reconciler.report import (
    ApplyProgress,
    Convergence,
    ProgressBar,
    apply_report_json,
    convergence_from_plan,
    format_duration,
    progress_line,
    render_apply_text,
)


def result(key: str, status: Status, **kw: object) -> OperationResult:
    fields: dict[str, object] = {
        "key": key,
        "action": Action.UPSERT_VERSION_SET,
        "kind": Kind.UPDATE,
        "service": "Meet & Greet",
        "version_set": "canary",
        "status": status,
        "duration": 1.25,
    }
    fields.update(kw)
    return OperationResult(**fields)  # type: ignore[arg-type]


def plan(*ops: Operation) -> Plan:
    return Plan("org-1", "http://localhost", "d", "f", "2025-01-01T00:00:00Z", operations=ops)


def test_progress_line_says_status_service_version_set_and_elapsed() -> None:
    line = progress_line(result("op-001", Status.DONE), 3, 12)
    assert line == "[ 3/12] done        update 'Meet & Greet' version set 'canary' (1.2s)"
    failed = progress_line(
        result("op-002", Status.FAILED, message="upsert failed: HTTP 400: bad version"), 4, 12
    )
    assert failed.endswith("(1.2s): upsert failed: HTTP 400: bad version")
    assert "FAILED" in failed
    skipped = progress_line(result("op-3", Status.SKIPPED, message="op-002 failed"), 5, 12)
    assert "skipped" in skipped and "(1.2s)" not in skipped


def test_format_duration() -> None:
    assert format_duration(0.04) == "0.0s"
    assert format_duration(59.4) == "59.4s"
    assert format_duration(61) == "1m01s"


def test_progress_bar_estimates_time_left_from_pace_so_far() -> None:
    now = [100.0]
    written: list[str] = []
    bar = ProgressBar(10, written.append, width=10, clock=lambda: now[0])
    assert bar.text() == "[----------] 0/10 ETA --"
    now[0] = 104.0
    bar.advance()
    bar.advance()
    assert bar.text() == "[##--------] 2/10 ETA 16.0s"
    assert written[-1].startswith("\r\x1b[2K[##")
    bar.clear()
    assert written[-1] == "\r\x1b[2K"


def test_apply_progress_keeps_the_bar_below_the_lines() -> None:
    out: list[str] = []
    raw: list[str] = []
    progress = ApplyProgress(2, out.append, raw.append)
    progress.event(result("a", Status.DONE))
    progress.note("waiting 3s for rate limit on create-service")
    progress.event(result("b", Status.DONE))
    progress.close()
    assert out[0].startswith("[1/2] done")
    assert out[1].startswith("waiting")
    assert out[2].startswith("[2/2] done")
    assert raw[-1] == "\r\x1b[2K"  # cleared at the end
    assert any("2/2" in r for r in raw)


def test_apply_progress_without_a_terminal_prints_only_lines() -> None:
    out: list[str] = []
    progress = ApplyProgress(1, out.append, None)
    progress.event(result("a", Status.DONE))
    progress.close()
    assert len(out) == 1


def test_text_report_lists_failures_skips_and_convergence() -> None:
    report = ApplyReport(
        results=(
            result("a", Status.DONE),
            result("b", Status.FAILED, message="create-service failed: HTTP 409: taken"),
            result("c", Status.SKIPPED, message="b (create 'X') failed"),
        ),
        elapsed=3.5,
    )
    text = render_apply_text(report, Convergence(False, ("create 'X'",)))
    assert "Apply finished in 3.5s: 1 done, 1 failed, 1 skipped." in text
    assert "Failed:\n  b update 'Meet & Greet' version set 'canary': create-service failed" in text
    assert "Skipped:\n  c " in text
    assert "Not converged" in text and "  create 'X'" in text
    assert "Converged." in render_apply_text(
        ApplyReport((result("a", Status.DONE),), 1.0), Convergence(True)
    )


def test_json_report_outcomes() -> None:
    ok = ApplyReport((result("a", Status.DONE),), 1.0)
    doc = apply_report_json(plan(), ok, Convergence(True))
    assert doc["outcome"] == "converged"
    assert json.loads(json.dumps(doc))["operations"][0] == {
        "key": "a",
        "action": "upsert_version_set",
        "kind": "update",
        "service": "Meet & Greet",
        "service_id": None,
        "version_set": "canary",
        "status": "done",
        "api_status": None,
        "error": None,
        "detail": None,
        "message": None,
        "duration_seconds": 1.25,
    }
    assert apply_report_json(plan(), ok, Convergence(False, ("x",)))["outcome"] == "not_converged"
    failed = ApplyReport((result("a", Status.FAILED, api_status=503),), 1.0)
    assert apply_report_json(plan(), failed, Convergence(False))["outcome"] == "failed"
    cancelled = ApplyReport((result("a", Status.NOT_STARTED),), 1.0, cancelled=True)
    assert apply_report_json(plan(), cancelled, None)["outcome"] == "cancelled"
    assert apply_report_json(plan(), None, Convergence(True))["operations"] == []


def test_convergence_from_a_fresh_plan() -> None:
    assert convergence_from_plan(plan()).converged
    op = Operation(
        "op-001",
        Action.UPDATE_SERVICE,
        Kind.UPDATE,
        "Front Desk",
        "1" * 24,
        changes=(Change("description", "a", "b"),),
    )
    left = convergence_from_plan(plan(op))
    assert not left.converged
    assert left.differences == ("update 'Front Desk' (description)",)


def test_a_refused_request_is_not_met_with_retry_advice() -> None:
    """A 400 (a deprecated LLM at activation, which no plan can see) gets the same answer
    when re-sent: the report says what to change, never "run apply again to retry"."""
    refused = ApplyReport(
        (
            result(
                "op-003",
                Status.FAILED,
                api_status=400,
                message="update-service failed: HTTP 400: uses deprecated LLM 'x'",
            ),
        ),
        1.0,
    )
    text = render_apply_text(refused, Convergence(False, ("activate 'Greeter'",)))
    assert "retry" not in text.lower()
    assert "The API refused op-003 (HTTP 400)" in text
    assert "llm_name" in text and "then plan and apply" in text
    lost = ApplyReport((result("op-004", Status.FAILED, api_status=503, message="down"),), 1.0)
    assert "Run apply again to retry" in render_apply_text(lost, Convergence(False, ("x",)))
