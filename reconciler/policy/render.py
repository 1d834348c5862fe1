"""Policy findings as text, a markdown section (top of the PR comment) and GitHub annotations."""

from __future__ import annotations

import html
import json
import re

from reconciler.policy import PolicyResult


def summary(result: PolicyResult) -> str:
    denied, warned = len(result.denied), len(result.warned)
    files = f"{result.files} policy file{'s' if result.files != 1 else ''}"
    if not result.findings:
        return f"Policy checks passed ({files})."
    verdict = "failed" if denied else "passed with warnings"
    return (
        f"Policy checks {verdict}: {denied} denied, {warned} warning"
        f"{'s' if warned != 1 else ''} ({files})."
    )


def render_text(result: PolicyResult) -> str:
    lines = ["Policy checks:"] if result.findings else []
    lines.extend(f"  {finding.diagnostic()}" for finding in result.findings)
    lines.append(summary(result))
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    escaped = html.escape(text, quote=False)
    return re.sub(r"([\\`*_{}\[\]|#])", r"\\\1", escaped).replace("\n", " ")


def render_markdown(result: PolicyResult) -> str:
    """A section for the top of the pull-request comment."""
    out = [f"#### {_md(summary(result))}", ""]
    for finding in result.findings:
        mark = "**deny**" if finding.level.value == "deny" else "warn"
        where = f" — `{finding.pos.file}:{finding.pos.line}`" if finding.pos else ""
        service = f" service {_md(json.dumps(finding.service))}" if finding.service else ""
        out.append(f"- {mark} `{finding.rule}`{service}: {_md(finding.message)}{where}")
    if result.findings:
        out.append("")
    return "\n".join(out) + "\n"


def render_github(result: PolicyResult) -> str:
    lines = [finding.diagnostic().github_annotation() for finding in result.findings]
    lines.append(f"::notice title=reconciler policy::{summary(result)}")
    return "\n".join(lines) + "\n"


def render(result: PolicyResult, fmt: str) -> str:
    if fmt == "markdown":
        return render_markdown(result)
    if fmt == "github":
        return render_github(result)
    return render_text(result)
