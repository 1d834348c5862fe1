"""Plans and markdown checks shared by the rendering tests (a plan of any size; whether
a comment's fences and `<details>` balance)."""

from __future__ import annotations

import re

from reconciler.diagnostics import Diagnostic, Severity, SourcePos
from reconciler.plan import Action, Change, Kind, Operation, Plan


def balanced(md: str) -> None:
    """Every fence closes (with the same run of backticks) and every <details> closes,
    and no <details> tag sits inside a fence."""
    fence: str | None = None
    depth = 0
    for line in md.split("\n"):
        if fence is None:
            opened = re.match(r"^(`{3,})[a-z]*$", line)
            if opened:
                fence = opened.group(1)
                continue
            depth += line.count("<details>") - line.count("</details>")
            assert depth >= 0, "a </details> closes nothing"
        elif line == fence:
            fence = None
    assert fence is None, "a code fence is left open"
    assert depth == 0, "a <details> is left open"


def big_plan(n: int, *, errors: int = 3) -> Plan:
    """`n` operations over n/4 services, each with long values, and `errors` errors."""
    ops = []
    for i in range(n):
        service = f"service-{i // 4:05d}"
        ops.append(
            Operation(
                key=f"op-{i:05d}",
                action=Action.UPDATE_SERVICE,
                kind=[Kind.UPDATE, Kind.DEACTIVATE, Kind.UPDATE, Kind.ACTIVATE][i % 4],
                service=service,
                service_id=f"{i:024x}",
                changes=(Change("description", "old " * 20, "new ```` " * 20),),
                source=SourcePos(f"services/{service}.yaml", 3 + i % 4, 3),
            )
        )
    return Plan(
        organization="acme",
        base_url="https://api.example.test",
        manifests_digest="sha256:d",
        live_fingerprint="sha256:l",
        created_at="2025-01-01T00:00:00+00:00",
        operations=tuple(ops),
        errors=tuple(
            Diagnostic(
                f"problem number {k}: agent version {k} does not exist",
                pos=SourcePos(f"services/e{k}.yaml", k + 1, 5),
                field="spec.version_sets.canary.agent_version_number",
            )
            for k in range(errors)
        ),
        warnings=(Diagnostic("an odd thing", severity=Severity.WARNING),),
    )
