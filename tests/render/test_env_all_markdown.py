"""`plan --env all --format markdown`: the side-by-side comment is fitted to the cap like a
single plan's (issue 14 x 16 review), and its table shows what differs between environments."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from support.plans import balanced, big_plan

from reconciler.plan import Action, Change, Kind, Operation, Plan
from reconciler.render import MARKDOWN_MAX_CHARS, render_environments

NAMES = ["staging", "production", "eu", "us", "apac"]


def environments(ops: int, count: int) -> list[tuple[str, Plan, None]]:
    out = []
    for k, name in enumerate(NAMES[:count]):
        plan = replace(big_plan(ops, errors=2), organization=f"org-{name}", environment=name)
        plan = replace(
            plan,
            errors=tuple(replace(e, message=f"{e.message} in {name} #{k}") for e in plan.errors),
        )
        out.append((name, plan, None))
    return out


# 10,000 operations across 2 and 5 environments takes seconds a case: in the slow suite
# (which .ci/run also runs), so the default run stays fast.
@pytest.mark.parametrize("ops", [1, 10, 400, 1_600, pytest.param(10_000, marks=pytest.mark.slow)])
@pytest.mark.parametrize("count", [2, 5])
@pytest.mark.parametrize("cap", [2_000, MARKDOWN_MAX_CHARS])
def test_every_size_fits_the_cap_balanced_with_every_error(ops: int, count: int, cap: int) -> None:
    results = environments(ops, count)
    md = render_environments(results, "markdown", max_chars=cap)
    assert len(md) <= cap
    balanced(md)
    shown = md.replace("\\", "")
    missing = sum(e.message not in shown for _, plan, _ in results for e in plan.errors)
    if cap == MARKDOWN_MAX_CHARS:
        assert missing == 0
    elif missing:  # 2,000 characters cannot hold 10 long errors: the tail counts them
        assert f"{missing} errors" in md
    if ops >= 400:
        assert "Not shown here" in md


def test_the_default_cap_applies_without_max_chars() -> None:
    md = render_environments(environments(1_600, 2), "markdown")
    assert len(md) <= MARKDOWN_MAX_CHARS


def test_deactivation_banners_come_before_the_table() -> None:
    md = render_environments(environments(10_000, 3), "markdown", max_chars=4_000)
    for name in NAMES[:3]:
        assert f"The `{name}` plan deactivates" in md
    assert md.index("[!CAUTION]") < md.index("| Service | Change |")


def one_op(version: object) -> Operation:
    return Operation(
        key="op",
        action=Action.UPSERT_VERSION_SET,
        kind=Kind.UPDATE,
        service="billing",
        service_id="1" * 24,
        version_set="release",
        changes=(
            Change("description", None, "x" * 300),
            Change("agent_version_number", 2, version),
        ),
    )


def test_the_table_shows_the_fields_that_differ_between_environments() -> None:
    base = big_plan(0, errors=0)
    results: list[tuple[str, Plan, None]] = [
        ("staging", replace(base, environment="staging", operations=(one_op(None),)), None),
        ("production", replace(base, environment="production", operations=(one_op(3),)), None),
    ]
    md = render_environments(results, "markdown")
    row = next(line for line in md.split("\n") if line.startswith("| billing |"))
    assert "agent\\_version\\_number: null" in row
    assert "agent\\_version\\_number: 3" in row
    assert "≠" in row
    assert "xxxx" not in row  # the description is the same in both: not repeated
    assert re.search(r"\| Service \| Change \| staging \| production \|", md)


def test_every_github_annotation_names_its_environment() -> None:
    results = environments(8, 2)
    for _, plan, _ in results:
        assert plan.errors and plan.warnings
    out = render_environments(results, "github")
    lines = [line for line in out.splitlines() if line.startswith("::")]
    assert len(lines) == 2 * (2 + 1 + 8 + 1)  # errors, warning, notices, summary
    for name in ("staging", "production"):
        mine = [line for line in lines if f"title=[{name}] reconciler plan" in line]
        assert len(mine) == len(lines) // 2, name
    assert len(set(lines)) == len(lines)  # the same change in two environments, told apart
