"""`reconciler show FILE`: a saved plan or a saved apply report, rendered again.

One plan run gives the comment, the job summary and the annotations: the saved file
(read by `workflow.load_saved_output`, recognised by content) is rendered in any format
without manifests or the API.
"""

from __future__ import annotations

from typing import Any

from reconciler.plan import Plan
from reconciler.render import render_plan
from reconciler.report import render_report_document


def render_saved(
    saved: Plan | dict[str, Any],
    fmt: str,
    *,
    max_chars: int | None = None,
    link_base: str | None = None,
) -> str:
    """A plan as `plan --format FMT` shows it; an apply report's result."""
    if isinstance(saved, Plan):
        return render_plan(saved, fmt, max_chars=max_chars, link_base=link_base)
    return render_report_document(saved, fmt, max_chars=max_chars)
