"""`reconciler show FILE`: a saved plan or a saved apply report, rendered again.

Recognised by content (not by name), read without manifests or the API, so one plan
run gives the comment, the job summary and the annotations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler.diagnostics import UserError
from reconciler.plan import Plan
from reconciler.planfile import plan_from_dict
from reconciler.render import render_plan
from reconciler.report import is_report_document, render_report_document


def load_saved(path: str | Path) -> Plan | dict[str, Any]:
    """The plan (checked like `apply` checks it) or the apply report's JSON object."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{source} is not UTF-8 text (not a saved plan or report)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{source}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}); pass a file written by "
            "`reconciler plan --out FILE` or `reconciler apply --format json > FILE`"
        ) from None
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
