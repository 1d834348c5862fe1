"""--link-base: http(s) only, and what would end a markdown link is percent-encoded."""

from __future__ import annotations

import re

from click.testing import CliRunner
from support.paths import EXAMPLE_SERVICES, SEED
from support.plans import big_plan

from reconciler.cli import main
from reconciler.render import render_markdown


def test_parentheses_and_spaces_in_the_base_are_encoded() -> None:
    md = render_markdown(big_plan(4), link_base="https://git.example/a (b)/blob/c")
    links = re.findall(r"\]\((\S+?)\)", md)
    assert links and all(
        link.startswith("https://git.example/a%20%28b%29/blob/c/") for link in links
    )


def test_a_base_that_is_not_http_links_nothing() -> None:
    md = render_markdown(big_plan(4), link_base="javascript:alert(1)//")
    assert "javascript" not in md


def test_the_flag_refuses_a_base_that_is_not_http() -> None:
    args = ["plan", str(EXAMPLE_SERVICES), "--emulator", str(SEED), "--format", "markdown"]
    for bad in ("javascript:alert(1)", "file:///etc", "example.com/x"):
        result = CliRunner().invoke(main, [*args, "--link-base", bad])
        assert result.exit_code == 64, result.output
        assert f"--link-base {bad!r}: must be an http:// or https:// URL" in result.output
    ok = CliRunner().invoke(main, [*args, "--link-base", "https://github.com/o/r/blob/" + "c" * 40])
    assert ok.exit_code in (0, 1), ok.output  # 1: the example's own plan-time checks
    assert "https://github.com/o/r/blob/" in ok.output
