"""Plan -> text for people (terminal, pull-request comment) and machines (json, annotations).

- `text`: terraform-like `+` create, `~` update, `-` delete/deactivate, one
  `path: old -> new` line per changed field, then drift, warnings, errors and
  `Plan: N to create, N to update, N to delete, N to deactivate.`;
- `markdown`: a pull-request comment (summary table, one `<details>` per
  service) kept under GitHub's 65,536-character limit;
- `json`: the saved plan file's content (documented in reconciler/planfile.py);
- `github`: `::error`/`::warning` workflow commands for plan errors and warnings.

Every format shows the plan's content digest (`planfile.plan_digest`); markdown also
starts with it as a hidden `<!-- amigo-reconciler plan-digest: ... -->` line.

Values come from the API and manifests, so they are always printed quoted and
escaped (JSON style): a service name cannot inject terminal escapes or markup.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from reconciler.diagnostics import workflow_command
from reconciler.diff import is_user_visible
from reconciler.model import OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE
from reconciler.plan import Action, Kind, Operation, Plan
from reconciler.planfile import plan_digest, plan_to_json
from reconciler.redaction import redact

if TYPE_CHECKING:
    from reconciler.policy import PolicyResult

FORMATS = ("text", "markdown", "json", "github")
GITHUB_COMMENT_LIMIT = 65_536
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


def render_plan(plan: Plan, fmt: str, *, color: bool = False) -> str:
    """The plan in one of FORMATS; `color` (text only) is for a TTY and the CLI decides it.

    Every format passes through the one redaction of the API key.
    """
    if fmt == "text":
        return redact(render_text(plan, color=color))
    if fmt == "markdown":
        return redact(render_markdown(plan))
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


def detail_lines(op: Operation, names: Mapping[str, str] | None = None) -> list[str]:
    """One line per user-visible change; the ownership tag only as the adoption note.

    `names` (a plan's reference_names) puts an agent's or state machine's name
    beside its id: `agent_id: "b4f7..." (named "Concierge")`.
    """
    known = names or {}

    def shown(v: Any) -> str:
        name = known.get(v) if isinstance(v, str) else None
        return f"{value(v)} (named {value(name)})" if name is not None else value(v)

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
    out.append(reads_line(plan))
    out.append(digest_line(plan))
    return "\n".join(out) + "\n"


# --- markdown ------------------------------------------------------------------


def _md_text(text: str) -> str:
    """Escape for Markdown table cells and inline text (no markup, no HTML)."""
    escaped = html.escape(text, quote=False)
    return re.sub(r"([\\`*_{}\[\]|#])", r"\\\1", escaped).replace("\n", " ")


def _fenced(lines: Sequence[str], lang: str = "diff") -> str:
    body = "\n".join(lines)
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


def _service_groups(plan: Plan) -> list[tuple[str, list[Operation]]]:
    groups: dict[str, list[Operation]] = {}
    for op in plan.operations:
        groups.setdefault(op.service, []).append(op)
    return list(groups.items())


def render_markdown(plan: Plan, *, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """A pull-request comment; details are dropped (with a notice) to stay under `limit`."""
    head: list[str] = [
        DIGEST_MARKER.format(digest=plan_digest(plan)),
        f"### Amigo reconciler plan for `{_md_text(plan.organization)}`"
        + (f" (environment `{_md_text(plan.environment)}`)" if plan.environment else ""),
        "",
    ]
    if plan.errors:
        n = len(plan.errors)
        head.append(f"> **{n} error{'s' if n != 1 else ''}: this plan cannot be applied.**")
        head.append("")
    head.append(f"**{closing_line(plan)}**")
    head.append("")
    groups = _service_groups(plan)
    if groups:
        head.extend(["| Service | Operations |", "| --- | --- |"])
        for service, ops in groups:
            kinds = ", ".join(f"{_SYMBOL[o.kind]} {_op_label(o)}" for o in ops)
            head.append(f"| {_md_text(service)} | {_md_text(kinds)} |")
        head.append("")

    details: list[str] = []
    for service, ops in groups:
        lines: list[str] = []
        for op in ops:
            lines.append(f"{headline(op)}  [{op.key}]")
            lines.extend(f"    {line}" for line in detail_lines(op, plan.reference_names))
        details.append(
            f"<details><summary>{html.escape(service)} ({len(ops)} "
            f"operation{'s' if len(ops) != 1 else ''})</summary>\n\n{_fenced(lines)}\n\n</details>"
        )

    tail: list[str] = []
    for title, items in (
        ("Errors", [str(e) for e in plan.errors]),
        ("Warnings", [str(w) for w in plan.warnings]),
        (
            "Left alone (not managed, or not pruned)",
            [
                f"service {value(d.service)} ({d.service_id})"
                + (f" version set {value(d.version_set)}" if d.version_set else "")
                + f": {d.message}"
                for d in plan.drift
            ],
        ),
    ):
        if items:
            tail.extend(["", f"#### {title}", "", *[f"- {_md_text(i)}" for i in items]])
    tail.extend(
        [
            "",
            f"<sub>{_md_text(reads_line(plan))} · plan created {plan.created_at} · "
            f"{_md_text(digest_line(plan))}</sub>",
        ]
    )

    def assemble(shown: int, tail_lines: list[str], notice: str | None) -> str:
        parts = ["\n".join(head), *details[:shown]]
        if notice:
            parts.append(notice)
        return "\n\n".join(parts) + "\n" + "\n".join(tail_lines) + "\n"

    text = assemble(len(details), tail, None)
    if len(text) <= limit:
        return text
    return _truncate(assemble, details, tail, limit)


def _truncate(
    assemble: Callable[[int, list[str], str | None], str],
    details: list[str],
    tail: list[str],
    limit: int,
) -> str:
    def notice(hidden: int) -> str:
        return (
            f"> **This plan is too long for one comment: {hidden} of {len(details)} service "
            "sections are not shown.** See the full plan in the workflow's plan artifact, or "
            "run `reconciler plan` locally (`--out plan.json` saves it)."
        )

    # Linear: the fixed part once, then as many whole sections as fit (each adds "\n\n").
    budget = limit - len(assemble(0, tail, notice(len(details))))
    shown = 0
    for section in details:
        if budget - (len(section) + 2) < 0:
            break
        budget -= len(section) + 2
        shown += 1
    while shown > 0 and len(assemble(shown, tail, notice(len(details) - shown))) > limit:
        shown -= 1
    text = assemble(shown, tail, notice(len(details) - shown))
    if len(text) > limit:  # the tail alone (errors, drift) is too long: cut it too
        cut = "\n\n> **Truncated here**: see the full plan artifact.\n"
        text = text[: limit - len(cut)] + cut
    return text


def _op_label(op: Operation) -> str:
    if op.version_set:
        verb = {Kind.CREATE: "create", Kind.DELETE: "delete"}.get(op.kind, "update")
        return f"{verb} version set {op.version_set}"
    return op.kind.value


# --- github --------------------------------------------------------------------


def render_github(plan: Plan) -> str:
    """Workflow commands: one annotation per error and warning, then a notice with the totals."""
    lines = [d.github_annotation() for d in (*plan.errors, *plan.warnings)]
    summary = closing_line(plan)
    if plan.environment is not None:
        summary = f"[{plan.environment}] {summary}"
    if plan.errors:
        summary += f" {len(plan.errors)} error(s): this plan cannot be applied."
    summary += f" {digest_line(plan)}"
    lines.append(workflow_command("notice", summary, {"title": "reconciler plan"}))
    return "\n".join(lines) + "\n"


# --- several environments (`plan --env all`) --------------------------------------


def render_environments(
    results: Sequence[tuple[str, Plan, PolicyResult | None]], fmt: str, *, color: bool = False
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
        return render_environments_markdown(results)
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


def render_environments_markdown(
    results: Sequence[tuple[str, Plan, PolicyResult | None]],
    *,
    limit: int = GITHUB_COMMENT_LIMIT,
) -> str:
    """One comment: a table with a column per environment (the same change side by side),
    then each environment's plan folded; details are cut to stay under `limit`."""
    from reconciler.policy.render import render as render_policy

    names = [name for name, _, _ in results]
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for name, plan, _ in results:
        for op in plan.operations:
            cell = rows.setdefault((op.service, _op_label(op)), {})
            changed = ", ".join(
                f"{c.path}: {value(c.new)}" for c in op.changes if is_user_visible(c)
            )
            text = f"{_SYMBOL[op.kind]} {op.kind.value}" + (f" ({changed})" if changed else "")
            # A cell stays short (a long description would crowd out the table).
            cell[name] = text if len(text) <= CELL_LIMIT else text[: CELL_LIMIT - 1] + "…"
    head = [
        "### Amigo reconciler plan for every environment",
        "",
        "| Environment | Organization | Plan | Digest |",
        "| --- | --- | --- | --- |",
    ]
    for name, plan, checked in results:
        verdict = closing_line(plan)
        if checked is not None and checked.denied:
            verdict += f" **{len(checked.denied)} policy denial(s)**"
        head.append(
            f"| {_md_text(name)} | `{_md_text(plan.organization)}` | {_md_text(verdict)} | "
            f"`{plan_digest(plan)[7:19]}` |"
        )
    head.append("")
    if rows:
        head.append("| Service | Change | " + " | ".join(_md_text(n) for n in names) + " |")
        head.append("| --- | --- |" + " --- |" * len(names))
        for (service, label), cells in rows.items():
            head.append(
                f"| {_md_text(service)} | {_md_text(label)} | "
                + " | ".join(_md_text(cells.get(n, "·")) for n in names)
                + " |"
            )
        head.append("")
        head.append("<sub>· : no change in that environment</sub>")
        head.append("")
    top = "\n".join(head)
    budget = max(0, (limit - len(top) - 200 * len(results)) // max(1, len(results)))
    sections = []
    for name, plan, checked in results:
        policy = render_policy(checked, "markdown") + "\n" if checked is not None else ""
        body = render_markdown(plan, limit=max(budget - len(policy), 2000))
        _, _, body = body.partition("\n")  # the digest marker belongs to single plans
        sections.append(
            f"<details><summary>environment {html.escape(name)}: "
            f"{html.escape(closing_line(plan))}</summary>\n\n{policy}{body}\n</details>"
        )
    text = top + "\n" + "\n\n".join(sections) + "\n"
    if len(text) > limit:
        cut = "\n\n> **Truncated here**: run `reconciler plan --env NAME` for one environment.\n"
        text = text[: limit - len(cut)] + cut
    return text
