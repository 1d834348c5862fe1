"""Plan -> text for people (terminal, pull-request comment) and machines (json, annotations).

- `text`: terraform-like `+` create, `~` update, `-` delete/deactivate, one
  `path: old -> new` line per changed field, then drift, warnings, errors and
  `Plan: N to create, N to update, N to delete, N to deactivate.`;
- `markdown`: a pull-request comment: deletion banner, errors and warnings, a summary
  table, one `<details>` per service with a `diff` fence per operation, links to the
  manifest lines; fitted to `--max-chars` by leaving out whole blocks (reconciler/fit.py);
- `json`: the saved plan file's content (documented in reconciler/planfile.py);
- `github`: workflow commands: `::error`/`::warning` for plan errors and warnings and
  what is left alone, a `::notice` on the manifest line of each operation.

Every format shows the plan's content digest (`planfile.plan_digest`); markdown also
starts with it as a hidden `<!-- amigo-reconciler plan-digest: ... -->` line.

Values come from the API and manifests, so they are always printed quoted and
escaped (JSON style): a service name cannot inject terminal escapes or markup.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

from reconciler.diagnostics import SourcePos, workflow_command
from reconciler.diff import is_user_visible
from reconciler.fit import GITHUB_COMMENT_LIMIT, SEPARATOR, Budget, fenced, take_lines
from reconciler.model import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE
from reconciler.plan import Action, Kind, Operation, Plan, Rehearsal
from reconciler.planfile import plan_digest, plan_to_json
from reconciler.redaction import redact

if TYPE_CHECKING:
    from reconciler.policy import PolicyResult

FORMATS = ("text", "markdown", "json", "github")
NO_CHANGES = "No changes. Live state matches the manifests."
# The hidden line a markdown plan starts with, so a workflow can find the digest of the
# plan a pull request showed (reconciler/github.py reads it back from the comment).
DIGEST_MARKER = "<!-- amigo-reconciler plan-digest: {digest} -->"
NO_OPERATIONS_WITH_ERRORS = (
    "No operations were planned because the plan has errors: fix them and plan again "
    "(live state may still differ from the manifests)."
)

_SYMBOL = {
    Kind.CREATE: "+",
    Kind.UPDATE: "~",
    Kind.ADOPT: "~",
    Kind.ACTIVATE: "~",
    Kind.DEACTIVATE: "-",
    Kind.DELETE: "-",
}
_COLOUR = {"+": "green", "~": "yellow", "-": "red"}


def render_plan(
    plan: Plan,
    fmt: str,
    *,
    color: bool = False,
    max_chars: int | None = None,
    link_base: str | None = None,
) -> str:
    """The plan in one of FORMATS; `color` (text only) is for a TTY and the CLI decides it.

    `max_chars` and `link_base` are for markdown (see `render_markdown`). Every format
    passes through the one redaction of the API key.
    """
    if fmt == "text":
        return redact(render_text(plan, color=color))
    if fmt == "markdown":
        limit = MARKDOWN_MAX_CHARS if max_chars is None else max_chars
        return redact(render_markdown(plan, limit=limit, link_base=link_base))
    if fmt == "json":
        return redact(plan_to_json(plan))
    if fmt == "github":
        return redact(render_github(plan))
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


# --- shared pieces -------------------------------------------------------------


def value(v: Any) -> str:
    """A value as JSON (strings quoted, control characters escaped)."""
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def counts(plan: Plan) -> dict[str, int]:
    """The closing line's four numbers (adopt and activate are updates to people)."""
    s = plan.summary
    return {
        "create": s[Kind.CREATE.value],
        "update": s[Kind.UPDATE.value] + s[Kind.ADOPT.value] + s[Kind.ACTIVATE.value],
        "delete": s[Kind.DELETE.value],
        "deactivate": s[Kind.DEACTIVATE.value],
    }


def closing_line(plan: Plan) -> str:
    """The plan's verdict: its counts, or why it has none (never "no changes" beside an error)."""
    if plan.operations:
        return summary_line(plan)
    if plan.errors:
        return NO_OPERATIONS_WITH_ERRORS
    return NO_CHANGES


def summary_line(plan: Plan) -> str:
    c = counts(plan)
    return (
        f"Plan: {c['create']} to create, {c['update']} to update, "
        f"{c['delete']} to delete, {c['deactivate']} to deactivate."
    )


def reads_line(plan: Plan) -> str:
    reads = {op: n for op, n in sorted(plan.api_reads.items()) if n}
    if not reads:
        return "API reads: 0"
    detail = ", ".join(f"{op} {n}" for op, n in reads.items())
    return f"API reads: {sum(reads.values())} ({detail})"


def environment_line(plan: Plan) -> str:
    """`Environment: staging (organization acme-staging)`: which one a plan is for."""
    return f"Environment: {plan.environment} (organization {plan.organization})"


def digest_line(plan: Plan) -> str:
    return f"Plan digest: {plan_digest(plan)}"


DISAGREEMENT = (
    "the planner expected this to succeed; the emulator's reading of the API refused it: "
)


def rehearsal_lines(rehearsal: Rehearsal | None) -> list[tuple[str, str]]:
    """(severity, line) for a rehearsal: "ok", "warning" or "error" (empty: not rehearsed).

    A refusal is a disagreement between the planner and the emulator, one of them
    wrong: the line says so and names the rule, so it can be reported with the plan.
    """
    if rehearsal is None:
        return []
    if rehearsal.error is not None:
        return [("warning", f"rehearsal: not made: {rehearsal.error}")]
    n = rehearsal.operations
    ops = f"{n} operation{'s' if n != 1 else ''}"
    lines: list[tuple[str, str]] = []
    for r in rehearsal.refused:
        status = f"{r.status} " if r.status is not None else ""
        if r.status is None:
            lines.append(
                (
                    "error",
                    f"rehearsal: {r.key} ({r.description}) failed on the emulator, "
                    f"{r.rule}: {r.detail}",
                )
            )
        elif r.interpretation is None:
            lines.append(
                (
                    "error",
                    f"rehearsal: {r.key} ({r.description}) would be refused; {DISAGREEMENT}"
                    f"{r.rule}: {status}{r.detail}",
                )
            )
        else:
            lines.append(
                (
                    "warning",
                    f"rehearsal: {r.key} ({r.description}) was refused only on the emulator's "
                    f"interpretation {r.interpretation!r} of an ambiguous API rule "
                    f"(docs/emulator.md), so this is a warning; {DISAGREEMENT}{status}{r.detail}",
                )
            )
    if rehearsal.refused:
        done = f"{rehearsal.accepted} of {ops} accepted, {len(rehearsal.refused)} refused"
        if rehearsal.skipped:
            done += f", {rehearsal.skipped} skipped (they depend on a refused one)"
        severity = "error" if rehearsal.failed else "warning"
        lines.append((severity, f"rehearsal: {done}"))
    elif not rehearsal.remaining:
        return [("ok", f"rehearsal: {ops} accepted, converged")]
    if rehearsal.remaining:
        severity = "error" if rehearsal.failed else "warning"
        head = (
            f"rehearsal: all {ops} accepted, but the plan does not converge in one apply "
            "(a planner defect to report); a second pass would still: "
            if not rehearsal.refused
            else "rehearsal: a second pass would still: "
        )
        lines.append((severity, head + "; ".join(rehearsal.remaining)))
    else:
        lines.append(("ok", "rehearsal: a second pass would change nothing"))
    return lines


def headline(op: Operation) -> str:
    """`+ create service "X"`, `- delete version set "canary" of "X" (id ...)`."""
    symbol = _SYMBOL[op.kind]
    where = f" ({op.service_id})" if op.service_id else ""
    if op.action in (Action.UPSERT_VERSION_SET, Action.DELETE_VERSION_SET):
        verb = {Kind.CREATE: "create", Kind.DELETE: "delete"}.get(op.kind, "update")
        what = f"{verb} version set {value(op.version_set)} of service {value(op.service)}{where}"
    else:
        what = f"{op.kind.value} service {value(op.service)}{where}"
    return f"{symbol} {what}"


def _shown(v: Any, names: Mapping[str, str] | None) -> str:
    """A value as JSON, with the name of the agent or state machine an id refers to."""
    name = (names or {}).get(v) if isinstance(v, str) else None
    return f"{value(v)} (named {value(name)})" if name is not None else value(v)


def detail_lines(op: Operation, names: Mapping[str, str] | None = None) -> list[str]:
    """One line per user-visible change; the ownership tag only as the adoption note.

    `names` (a plan's reference_names) puts an agent's or state machine's name
    beside its id: `agent_id: "b4f7..." (named "Concierge")`.
    """

    def shown(v: Any) -> str:
        return _shown(v, names)

    lines: list[str] = []
    for change in op.changes:
        if not is_user_visible(change):
            continue
        if op.kind is Kind.CREATE or (change.old is None and op.action is Action.CREATE_SERVICE):
            lines.append(f"{change.path}: {shown(change.new)}")
        elif op.kind is Kind.DELETE:
            lines.append(f"{change.path}: {shown(change.old)}")
        else:
            lines.append(f"{change.path}: {shown(change.old)} -> {shown(change.new)}")
    adopts = any(not is_user_visible(c) and c.old is None for c in op.changes)
    if adopts and op.action is Action.UPDATE_SERVICE:
        lines.append(f"(adopt: adds the ownership tag {OWNERSHIP_TAG_KEY}: {OWNERSHIP_TAG_VALUE})")
    if op.depends_on:
        lines.append(f"(after {', '.join(op.depends_on)})")
    return lines


def _diagnostic_line(diag: Any) -> str:
    return str(diag)


# --- text ----------------------------------------------------------------------


def render_text(plan: Plan, *, color: bool = False) -> str:
    def paint(text: str, colour: str | None = None, bold: bool = False) -> str:
        return click.style(text, fg=colour, bold=bold) if color else text

    out: list[str] = []
    if plan.environment is not None:
        out.append(environment_line(plan))
        out.append("")
    if plan.operations:
        out.append("The reconciler will perform these operations, in this order:")
        out.append("")
        for op in plan.operations:
            head = headline(op)
            out.append(f"  {paint(head, _COLOUR[head[0]], bold=True)}  [{op.key}]")
            out.extend(f"      {line}" for line in detail_lines(op, plan.reference_names))
        out.append("")
    if plan.drift:
        out.append("Left alone (not managed, or not pruned):")
        for d in plan.drift:
            vs = f" version set {value(d.version_set)}" if d.version_set else ""
            out.append(f"  ! service {value(d.service)} ({d.service_id}){vs}: {d.message}")
        out.append("")
    if plan.warnings:
        out.append(paint("Warnings:", "yellow", bold=True))
        out.extend(f"  {_diagnostic_line(w)}" for w in plan.warnings)
        out.append("")
    if plan.errors:
        out.append(paint("Errors (apply refuses this plan):", "red", bold=True))
        out.extend(f"  {_diagnostic_line(e)}" for e in plan.errors)
        out.append("")
    out.append(closing_line(plan))
    if plan.errors:
        n = len(plan.errors)
        out.append(paint(f"{n} error{'s' if n != 1 else ''}: this plan cannot be applied.", "red"))
    for severity, line in rehearsal_lines(plan.rehearsal):
        out.append(paint(line, _REHEARSAL_COLOUR[severity]))
    out.append(reads_line(plan))
    out.append(digest_line(plan))
    return "\n".join(out) + "\n"


_REHEARSAL_COLOUR: Mapping[str, str | None] = {"ok": None, "warning": "yellow", "error": "red"}


# --- markdown ------------------------------------------------------------------

# The markdown default leaves 5,536 characters under GitHub's 65,536 for what the CI
# wraps around the plan (status line, marker, footer, the sticky-comment key) and a
# policy section; docs/ci.md documents the margin.
MARKDOWN_MAX_CHARS = GITHUB_COMMENT_LIMIT - 5_536
FULL_PLAN_AT = (
    "the saved plan file (`reconciler plan --out plan.json`; in CI, the workflow run's plan "
    "artifact), which `reconciler show plan.json` renders in full"
)
_BANNER_NAMES = 10  # services named in the deletion banner before "and N more"


def _md_text(text: str) -> str:
    """Escape for Markdown table cells and inline text (no markup, no HTML)."""
    escaped = html.escape(text, quote=False)
    return re.sub(r"([\\`*_{}\[\]|#])", r"\\\1", escaped).replace("\n", " ")


def _fenced(lines: Sequence[str], lang: str = "diff") -> str:
    return fenced("\n".join(lines), lang)


def _service_groups(plan: Plan) -> list[tuple[str, list[Operation]]]:
    groups: dict[str, list[Operation]] = {}
    for op in plan.operations:
        groups.setdefault(op.service, []).append(op)
    return list(groups.items())


def source_link(link_base: str | None, pos: SourcePos | None) -> str | None:
    """`{link_base}/{path}#L{line}` for a manifest position, or None (no base, or a file
    outside the working tree, which the reviewed commit cannot hold)."""
    if not link_base or pos is None or link_base_problem(link_base):
        return None
    path = pos.file
    if os.path.isabs(path):
        try:
            path = os.path.relpath(path)
        except ValueError:
            return None
    path = path.replace(os.sep, "/")
    while path.startswith("./"):
        path = path[2:]
    if path.startswith("../") or not path:
        return None
    return f"{safe_link_base(link_base).rstrip('/')}/{quote(path, safe='/')}#L{pos.line}"


def safe_link_base(link_base: str) -> str:
    """`link_base` with what would end a markdown link (`(`, `)`, whitespace) percent-encoded."""
    return re.sub(r"[()\s]", lambda m: "%" + format(ord(m[0]), "02X"), link_base)


def link_base_problem(link_base: str) -> str | None:
    """Why `link_base` cannot prefix links in a comment (None: it can): http(s) with a host
    only, so no `javascript:` or `file:` link reaches a reviewer."""
    from urllib.parse import urlsplit

    parts = urlsplit(link_base.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "must be an http:// or https:// URL with a host"
    return None


def _linked(label: str, url: str | None) -> str:
    """`[label](url)` (label already escaped), or the label alone."""
    return f"[{label}]({url})" if url else label


def diff_lines(op: Operation, names: Mapping[str, str] | None = None) -> list[str]:
    """The operation's changes as `-` (removed) and `+` (added) lines for a `diff` fence."""

    def shown(v: Any) -> str:
        return _shown(v, names)

    lines: list[str] = []
    for change in op.changes:
        if not is_user_visible(change):
            continue
        created = op.kind is Kind.CREATE or (
            change.old is None and op.action is Action.CREATE_SERVICE
        )
        if not created and (op.kind is Kind.DELETE or change.old is not None):
            lines.append(f"- {change.path}: {shown(change.old)}")
        if op.kind is not Kind.DELETE and (created or change.new is not None):
            lines.append(f"+ {change.path}: {shown(change.new)}")
    adopts = any(not is_user_visible(c) and c.old is None for c in op.changes)
    if adopts and op.action is Action.UPDATE_SERVICE:
        lines.append(f"+ tags.{OWNERSHIP_TAG_KEY}: {value(OWNERSHIP_TAG_VALUE)}  (adopt)")
    if op.depends_on:
        lines.append(f"  (after {', '.join(op.depends_on)})")
    return lines


def _banner(plan: Plan) -> str | None:
    """The caution at the top when the plan deletes or deactivates anything."""
    deletes = [op for op in plan.operations if op.kind is Kind.DELETE]
    deactivates = [op for op in plan.operations if op.kind is Kind.DEACTIVATE]
    if not deletes and not deactivates:
        return None
    parts = []
    if deletes:
        parts.append(f"deletes {len(deletes)} version set{'s' if len(deletes) != 1 else ''}")
    if deactivates:
        n = len(deactivates)
        parts.append(f"deactivates {n} service{'s' if n != 1 else ''}")
    named = [
        f"`{_md_text(op.service)}`"
        + (f" version set `{_md_text(op.version_set)}`" if op.version_set else "")
        for op in (*deactivates, *deletes)
    ]
    shown = ", ".join(named[:_BANNER_NAMES])
    if len(named) > _BANNER_NAMES:
        shown += f" and {len(named) - _BANNER_NAMES} more"
    return f"> [!CAUTION]\n> **This plan {' and '.join(parts)}:** {shown}."


def _service_section(
    service: str, ops: Sequence[Operation], plan: Plan, link_base: str | None
) -> str:
    parts = [
        f"<details><summary>{html.escape(service)} ({len(ops)} "
        f"operation{'s' if len(ops) != 1 else ''})</summary>"
    ]
    for op in ops:
        where = op.source
        label = _md_text(f"{where.file}:{where.line}") if where else "no manifest line"
        # Not the headline: a line starting with "+" or "-" would render as a list item.
        parts.append(f"`{op.key}` · {_linked(label, source_link(link_base, where))}")
        parts.append(_fenced([headline(op), *diff_lines(op, plan.reference_names)]))
    parts.append("</details>")
    return "\n\n".join(parts)


def _table(rows: Sequence[str]) -> str:
    return "\n".join(["| Service | Operations |", "| --- | --- |", *rows])


def _drift_items(plan: Plan) -> list[str]:
    return [
        f"service {value(d.service)} ({d.service_id})"
        + (f" version set {value(d.version_set)}" if d.version_set else "")
        + f": {d.message}"
        for d in plan.drift
    ]


def render_markdown(
    plan: Plan,
    *,
    limit: int = MARKDOWN_MAX_CHARS,
    link_base: str | None = None,
    full_plan_at: str = FULL_PLAN_AT,
) -> str:
    """A pull-request comment of at most `limit` characters, always valid markdown.

    Order of importance: the digest marker, verdict and deletion banner; every error
    and warning in full; a summary row per service (compacted to "and N more" only when
    the table itself does not fit); then per-service details and what is left alone,
    while they fit. What is left out is whole blocks, named in the tail with where the
    full plan is (reconciler/fit.py). `link_base` (`https://github.com/O/R/blob/SHA`)
    links each service and operation to its manifest line.
    """
    head = [DIGEST_MARKER.format(digest=plan_digest(plan))]
    head.append(
        f"### Amigo reconciler plan for `{_md_text(plan.organization)}`"
        + (f" (environment `{_md_text(plan.environment)}`)" if plan.environment else "")
    )
    banner = _banner(plan)
    if banner:
        head.append(banner)
    if plan.errors:
        n = len(plan.errors)
        head.append(f"> **{n} error{'s' if n != 1 else ''}: this plan cannot be applied.**")
    head.append(f"**{closing_line(plan)}**")
    rehearsed = rehearsal_lines(plan.rehearsal)
    if rehearsed:
        mark = {"ok": "✅", "warning": "⚠️", "error": "❌"}
        head.append("\n".join(f"- {mark[sev]} {_md_text(line)}" for sev, line in rehearsed))
    footer = (
        f"<sub>{_md_text(reads_line(plan))} · plan created {_md_text(plan.created_at)} · "
        f"{_md_text(digest_line(plan))}</sub>"
    )
    groups = _service_groups(plan)
    drift = _drift_items(plan)

    def notice(left_out: Sequence[str]) -> str:
        return (
            f"> **Not shown here (too long for one comment): {'; '.join(left_out)}.** "
            f"The full plan is in {full_plan_at}."
        )

    worst = [
        f"{len(plan.errors)} errors",
        f"{len(plan.warnings)} warnings",
        f"{len(groups)} of {len(groups)} service rows",
        f"the details of {len(groups)} of {len(groups)} services",
        f"{len(drift)} left-alone items",
    ]
    budget = Budget(limit - len(notice(worst)) - len(footer) - 2 * len(SEPARATOR) - 1)
    budget.force("\n".join(head[:2]))
    for block in head[2:]:
        budget.force(block)
    left_out: list[str] = []

    for title, items, what in (
        ("Errors", [str(e) for e in plan.errors], "errors"),
        ("Warnings", [str(w) for w in plan.warnings], "warnings"),
    ):
        if not items:
            continue
        lines, left = take_lines(
            [f"- {_md_text(i)}" for i in items],
            budget.room - len(f"#### {title}\n\n") - len(SEPARATOR),
            more="- … and {n} more " + what,
        )
        if left:
            left_out.append(f"{left} {what}")
        budget.add(f"#### {title}\n\n" + "\n".join(lines))

    if groups:
        rows = []
        for service, ops in groups:
            url = source_link(link_base, ops[0].source)
            kinds = ", ".join(f"{_SYMBOL[o.kind]} {_op_label(o)}" for o in ops)
            rows.append(f"| {_linked(_md_text(service), url)} | {_md_text(kinds)} |")
        if not budget.add(_table(rows)):
            room = budget.room - len(_table([])) - 1 - len(SEPARATOR)
            kept, left = take_lines(rows, room, more="| … and {n} more services | |")
            budget.add(_table(kept))
            left_out.append(f"{left} of {len(rows)} service rows")

    hidden = 0
    for service, ops in groups:
        if hidden or not budget.add(_service_section(service, ops, plan, link_base)):
            hidden += 1
    if hidden:
        left_out.append(f"the details of {hidden} of {len(groups)} services")
    if drift:
        items = [f"- {_md_text(i)}" for i in drift]
        block = "#### Left alone (not managed, or not pruned)\n\n" + "\n".join(items)
        if not budget.add(block):
            left_out.append(f"{len(drift)} left-alone items")
    if left_out:
        budget.force(notice(left_out))
    budget.force(footer)
    return budget.text() + "\n"


def _op_label(op: Operation) -> str:
    if op.version_set:
        verb = {Kind.CREATE: "create", Kind.DELETE: "delete"}.get(op.kind, "update")
        return f"{verb} version set {op.version_set}"
    return op.kind.value


# --- github --------------------------------------------------------------------


_ANNOTATION_CHANGES = 4  # field changes named in one annotation before "and N more"


def annotation_text(op: Operation, names: Mapping[str, str] | None = None) -> str:
    """One line for an operation's annotation: `~ update: agent_version_number 3 → 4`."""
    fields = []
    for line in detail_lines(op, names):
        if line.startswith("("):
            continue
        path, _, rest = line.partition(": ")
        fields.append(f"{path} {rest.replace(' -> ', ' → ')}")
    shown = ", ".join(fields[:_ANNOTATION_CHANGES])
    if len(fields) > _ANNOTATION_CHANGES:
        shown += f", and {len(fields) - _ANNOTATION_CHANGES} more"
    what = _op_label(op)
    return f"{_SYMBOL[op.kind]} {what}: {shown}" if shown else f"{_SYMBOL[op.kind]} {what}"


def render_github(plan: Plan) -> str:
    """Workflow commands, so the plan shows in the pull request's *Files changed* view:
    `::error` per plan-time error and `::warning` per warning (at their manifest
    position), a `::notice` on the manifest line of each planned operation,
    `::warning` for each thing left alone, then a notice with the totals. An operation
    with no manifest line (a prune of an undeclared service) is annotated without a file,
    so it shows in the run's summary. Escaping: diagnostics.workflow_command."""
    # Under `--env all` the same change is annotated once per environment: each title
    # names its environment, so two identical notices are told apart.
    title = "reconciler plan"
    if plan.environment is not None:
        title = f"[{plan.environment}] {title}"
    env_title = title if plan.environment is not None else None
    lines = [d.github_annotation(env_title) for d in (*plan.errors, *plan.warnings)]
    for op in plan.operations:
        props: dict[str, object] = {}
        if op.source is not None:
            props = {"file": op.source.file, "line": op.source.line, "col": op.source.column}
        props["title"] = f"{title}: {op.service}"
        lines.append(workflow_command("notice", annotation_text(op, plan.reference_names), props))
    for item in _drift_items(plan):
        lines.append(workflow_command("warning", f"left alone: {item}", {"title": title}))
    rehearsal_title = title.replace("reconciler plan", "reconciler rehearsal")
    rehearsed = rehearsal_lines(plan.rehearsal)
    for severity, line in rehearsed:
        if severity != "ok":
            lines.append(workflow_command(severity, line, {"title": rehearsal_title}))
    summary = closing_line(plan)
    if plan.environment is not None:
        summary = f"[{plan.environment}] {summary}"
    if plan.errors:
        summary += f" {len(plan.errors)} error(s): this plan cannot be applied."
    summary += "".join(f" {line}." for severity, line in rehearsed if severity == "ok")
    summary += f" {digest_line(plan)}"
    lines.append(workflow_command("notice", summary, {"title": title}))
    return "\n".join(lines) + "\n"


# --- several environments (`plan --env all`) --------------------------------------


def render_environments(
    results: Sequence[tuple[str, Plan, PolicyResult | None]],
    fmt: str,
    *,
    color: bool = False,
    max_chars: int | None = None,
    link_base: str | None = None,
) -> str:
    """One report for the same manifests planned against each environment, in file order."""
    from reconciler.policy.render import render as render_policy

    if fmt == "json":
        from reconciler.planfile import plan_to_dict

        return (
            json.dumps(
                {"environments": {name: plan_to_dict(plan) for name, plan, _ in results}},
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
    if fmt == "markdown":
        return render_environments_markdown(
            results, limit=max_chars or MARKDOWN_MAX_CHARS, link_base=link_base
        )
    parts: list[str] = []
    for name, plan, checked in results:
        if fmt == "github":
            parts.append(render_github(plan))
            if checked is not None:
                parts.append(render_policy(checked, "github"))
            continue
        parts.append(f"=== environment {name} ===\n")
        parts.append(render_text(plan, color=color))
        if checked is not None:
            parts.append(render_policy(checked, "text"))
        parts.append("\n")
    return "".join(parts)


CELL_LIMIT = 160  # characters of one environment's change shown in the side-by-side table


def _side_by_side_rows(
    results: Sequence[tuple[str, Plan, PolicyResult | None]],
) -> list[str]:
    """A row per (service, change), a cell per environment.

    A cell names only the fields whose new values differ between the environments
    making that change (all of them when none differ), so a cut cell never hides the
    difference the table exists to show (`null` against `3` stays visible).
    """
    names = [name for name, _, _ in results]
    found: dict[tuple[str, str], dict[str, tuple[Operation, dict[str, str]]]] = {}
    for name, plan, _ in results:
        for op in plan.operations:
            fields = {c.path: value(c.new) for c in op.changes if is_user_visible(c)}
            found.setdefault((op.service, _op_label(op)), {})[name] = (op, fields)
    rows = []
    for (service, label), cells in found.items():
        paths = list(dict.fromkeys(p for _, fields in cells.values() for p in fields))
        differing = [
            p
            for p in paths
            if len({fields.get(p, "(unchanged)") for _, fields in cells.values()}) > 1
        ]
        shown_paths = differing or paths
        texts = []
        for name in names:
            if name not in cells:
                texts.append("·")
                continue
            op, fields = cells[name]
            changed = ", ".join(f"{p}: {fields.get(p, '(unchanged)')}" for p in shown_paths)
            text = f"{_SYMBOL[op.kind]} {op.kind.value}" + (f" ({changed})" if changed else "")
            if differing and len(cells) > 1:
                text = "≠ " + text
            # A cell stays short (a long description would crowd out the table).
            texts.append(text if len(text) <= CELL_LIMIT else text[: CELL_LIMIT - 1] + "…")
        rows.append(
            f"| {_md_text(service)} | {_md_text(label)} | "
            + " | ".join(_md_text(t) for t in texts)
            + " |"
        )
    return rows


def render_environments_markdown(
    results: Sequence[tuple[str, Plan, PolicyResult | None]],
    *,
    limit: int = MARKDOWN_MAX_CHARS,
    link_base: str | None = None,
    full_plan_at: str = FULL_PLAN_AT,
) -> str:
    """One comment of at most `limit` characters: every environment's verdict, its
    deletion/deactivation banner and its errors first, then a side-by-side table
    (a column per environment, rows compacted to "and N more" when it would not fit),
    then each environment's plan folded while it fits. Shortened only by leaving out
    whole blocks (reconciler/fit.py), so fences and `<details>` stay balanced.
    """
    from reconciler.policy.render import render as render_policy

    names = [name for name, _, _ in results]
    summary = [
        "### Amigo reconciler plan for every environment",
        "",
        "| Environment | Organization | Plan | Digest |",
        "| --- | --- | --- | --- |",
    ]
    for name, plan, checked in results:
        verdict = closing_line(plan)
        if checked is not None and checked.denied:
            verdict += f" **{len(checked.denied)} policy denial(s)**"
        summary.append(
            f"| {_md_text(name)} | `{_md_text(plan.organization)}` | {_md_text(verdict)} | "
            f"`{plan_digest(plan)[7:19]}` |"
        )
    n_rows = sum(len({(o.service, _op_label(o)) for o in p.operations}) for _, p, _ in results)
    n_errors = sum(len(p.errors) for _, p, _ in results)

    def notice(left_out: Sequence[str]) -> str:
        return (
            f"> **Not shown here (too long for one comment): {'; '.join(left_out)}.** "
            f"The full plans: {full_plan_at}, or `reconciler plan --env NAME`."
        )

    worst = notice(
        [
            f"{n_errors} errors",
            f"{n_rows} of {n_rows} changes in the side-by-side table",
            f"{len(results)} environment sections",
        ]
    )
    budget = Budget(limit - len(worst) - len(SEPARATOR) - 1)
    budget.force("\n".join(summary))
    left_out: list[str] = []
    # The cautions come first, whatever else is left out: in full (with the names) when
    # they fit, else one line per environment with the counts.
    cautions = [
        banner.replace("This plan", f"The `{_md_text(name)}` plan", 1)
        for name, plan, _ in results
        if (banner := _banner(plan))
    ]
    if cautions and not budget.add(
        "\n>\n".join(c.removeprefix("> [!CAUTION]\n") if i else c for i, c in enumerate(cautions))
    ):
        short = []
        for name, plan, _ in results:
            kinds = Counter(op.kind for op in plan.operations)
            parts = [
                f"{verb} {kinds[kind]}"
                for kind, verb in ((Kind.DELETE, "deletes"), (Kind.DEACTIVATE, "deactivates"))
                if kinds[kind]
            ]
            if parts:
                short.append(f"`{_md_text(name)}` {' and '.join(parts)}")
        budget.force("> [!CAUTION]\n> **" + "; ".join(short) + ".**")
    errors_left = 0
    for name, plan, _ in results:
        if not plan.errors:
            continue
        title = f"#### Errors in `{_md_text(name)}`: this plan cannot be applied\n\n"
        lines, left = take_lines(
            [f"- {_md_text(str(e))}" for e in plan.errors],
            max(0, budget.room - len(title) - len(SEPARATOR)),
            more="- … and {n} more errors",
        )
        if budget.add(title + "\n".join(lines)):
            errors_left += left
        else:  # no room at all: the tail counts them
            errors_left += len(plan.errors)
    if errors_left:
        left_out.append(f"{errors_left} errors")
    rows = _side_by_side_rows(results)
    if rows:
        header = [
            "| Service | Change | " + " | ".join(_md_text(n) for n in names) + " |",
            "| --- | --- |" + " --- |" * len(names),
        ]
        key = "\n\n<sub>· : no change in that environment; ≠ : the environments differ</sub>"
        table = "\n".join([*header, *rows]) + key
        if not budget.add(table):
            room = budget.room - len("\n".join(header)) - len(key) - 1 - len(SEPARATOR)
            more = "| … and {n} more changes | |" + " |" * len(names)
            kept, left = take_lines(rows, room, more=more)
            if budget.add("\n".join([*header, *kept]) + key):
                left_out.append(f"{left} of {len(rows)} changes in the side-by-side table")
            else:
                left_out.append(f"{len(rows)} of {len(rows)} changes in the side-by-side table")
    hidden = 0
    for index, (name, plan, checked) in enumerate(results):
        policy = render_policy(checked, "markdown") + "\n" if checked is not None else ""
        wrap = (
            f"<details><summary>environment {html.escape(name)}: "
            f"{html.escape(closing_line(plan))}</summary>\n\n"
        )
        share = (budget.room - len(SEPARATOR)) // (len(results) - index)
        room = share - len(wrap) - len(policy) - len("\n</details>")
        if room < 2_000:  # render_markdown's own floor: too little to say anything useful
            hidden += 1
            continue
        body = render_markdown(plan, limit=room, link_base=link_base, full_plan_at=full_plan_at)
        _, _, body = body.partition("\n")  # the digest marker belongs to single plans
        if not budget.add(f"{wrap}{policy}{body}\n</details>"):
            hidden += 1
    if hidden:
        left_out.append(f"{hidden} of {len(results)} environment sections")
    if left_out:
        budget.force(notice(left_out))
    return budget.text() + "\n"
