"""`reconciler show FILE`: a saved plan, apply report, multi-environment plan or
verification, rendered again.

One plan run gives the comment, the job summary and the annotations: the saved file
(read by `workflow.load_saved_output`, recognised by content) is rendered in any format
without manifests or the API.
"""

from __future__ import annotations

from typing import Any

from reconciler.plan import Plan
from reconciler.render import render_environments, render_plan
from reconciler.render_verify import render_verification
from reconciler.report import render_report_document, report_succeeded
from reconciler.verify import Verification


def render_saved(
    saved: Plan | dict[str, Any] | Verification | tuple[tuple[str, Plan], ...],
    fmt: str,
    *,
    max_chars: int | None = None,
    link_base: str | None = None,
) -> str:
    """A plan as `plan --format FMT` shows it (`--env all`: every environment); an apply
    report's result; a verification as `verify --format FMT` shows it."""
    if isinstance(saved, Plan):
        return render_plan(saved, fmt, max_chars=max_chars, link_base=link_base)
    if isinstance(saved, Verification):
        return render_verification(saved, fmt)
    if isinstance(saved, tuple):
        results = [(name, plan, None) for name, plan in saved]
        return render_environments(results, fmt, max_chars=max_chars, link_base=link_base)
    return render_report_document(saved, fmt, max_chars=max_chars)


def saved_exit_code(
    saved: Plan | dict[str, Any] | Verification | tuple[tuple[str, Plan], ...],
) -> int:
    """The exit code of the command that wrote the file, for what it records: 1 for an
    apply report of an apply that failed, did not converge, was cancelled or was not
    verified, and for a verification that did not pass; 0 otherwise (a plan is shown)."""
    if isinstance(saved, Verification):
        return 0 if saved.passed else 1
    if isinstance(saved, dict):
        return 0 if report_succeeded(saved) else 1
    return 0
