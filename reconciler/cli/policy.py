"""`reconciler policy ...`: work with Rego policies (docs/policy.md)."""

from __future__ import annotations

import sys

import click

from reconciler.cli.shared import echo, fail, handle_errors, policy_timeout_option


@click.group("policy")
def policy_group() -> None:
    """Work with Rego policies (docs/policy.md)."""


@policy_group.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@policy_timeout_option
@handle_errors
def policy_test(paths: tuple[str, ...], policy_timeout: float | None) -> None:
    """Run the policies' own `test_` rules (as `opa test` / `conftest verify`).

    Exit 0 when every test passes, 1 when one fails or a policy is broken.
    """
    from reconciler.workflow import test_policies

    results = test_policies(paths, policy_timeout)
    for result in results:
        verdict = "PASS" if result.passed else "FAIL"
        echo(f"{verdict}: {result.name} ({result.pos.file}:{result.pos.line})")
    failed = sum(1 for r in results if not r.passed)
    echo(f"{len(results) - failed} passed, {failed} failed")
    if not results:
        fail("no test_ rules found (tests live in *_test.rego files)")
    if failed:
        sys.exit(1)
