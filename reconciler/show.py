"""`reconciler show FILE`: a saved plan or a saved apply report, rendered again.

Recognised by content (not by name), read without manifests or the API, so one plan
run gives the comment, the job summary and the annotations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.diagnostics import UserError
from reconciler.plan import Plan
from reconciler.planfile import plan_from_dict, read_json
from reconciler.render import render_plan
from reconciler.report import is_report_document, render_report_document


def load_saved(path: str | Path) -> Plan | dict[str, Any]:
    """The plan (checked like `apply` checks it) or the apply report's JSON object."""
    source = Path(path)
    data = read_json(
        source,
        "file",
        "pass a file written by `reconciler plan --out FILE` or "
        "`reconciler apply --format json > FILE`",
    )
    if is_report_document(data):
        return dict(data)
    if isinstance(data, dict) and "checksum" in data:
        return plan_from_dict(data, name=f"plan file {source}")
    raise UserError(
        f"{source} is neither a saved plan (`reconciler plan --out FILE`) nor an apply report "
        "(`reconciler apply --format json > FILE`)"
    )


def render_saved(
    saved: Plan | dict[str, Any],
    fmt: str,
    *,
    max_chars: int | None = None,
    link_base: str | None = None,
) -> str:
    if isinstance(saved, Plan):
        return render_plan(saved, fmt, max_chars=max_chars, link_base=link_base)
    return render_report_document(saved, fmt, max_chars=max_chars)
