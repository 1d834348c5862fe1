"""Rehearsal (issue 19): every plan is applied first to an in-memory copy of live state.

The planner's checks and the emulator's rules are two readings of the API: each
plan-time check, bypassed, must be caught by the rehearsal; so must an ordering
defect made by hand, before any write.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner
from test_planner_scenarios import ID_A, ID_B, OWNED, Scenario, base_seed, manifest, svc

from reconciler import planner, workflow
from reconciler.api.client import AmigoClient
from reconciler.cli import main
from reconciler.connect import emulator_config
from reconciler.emulator import Emulator
from reconciler.live import fetch_live, fetch_services
from reconciler.manifests import load_manifests
from reconciler.plan import Kind, Plan, Rehearsal, RehearsalRefusal
from reconciler.planfile import load_plan, plan_digest, plan_to_dict, save_plan
from reconciler.rehearsal import rehearse
from reconciler.render import DISAGREEMENT, render_plan

CURRENT_LLM = "openai_gpt-5.1-2025-11-13"
RETIRED_LLM = "retired_model-2020"  # outside the API's LLMType list: a retired LLM

WRITES = ("create-service", "update-service", "upsert-service-version-set")
WRITES += ("delete-service-version-set",)

PLAIN = "description: {name} service\nagent: Concierge\nservice_hierarchical_state_machine: Flow"


def _scenario(tmp_path: Path, services: list[dict[str, Any]], **extra: Any) -> Scenario:
    return Scenario(tmp_path, base_seed(services, **extra))


def _plan(s: Scenario, *docs: str, prune: bool = False, rehearse: bool = True) -> Plan:
    (s.dir / "services.yaml").write_text("---\n".join(docs), encoding="utf-8")
    return workflow.make_plan(s.client, load_manifests([s.dir]), prune=prune, rehearse=rehearse)


def _writes(emulator: Emulator) -> int:
    return sum(emulator.request_counts.get(op, 0) for op in WRITES)


# --- each plan-time check, bypassed, fails its rehearsal ------------------------------


def _tag_limit(tmp_path: Path) -> tuple[Scenario, list[str], bool]:
    twenty = {f"k{i}": "v" for i in range(20)}  # the ownership tag would be the 21st
    return _scenario(tmp_path, [svc("Greeter", tags=twenty)]), [manifest("Greeter")], False


def _pins(tmp_path: Path) -> tuple[Scenario, list[str], bool]:
    doc = manifest(
        "Greeter",
        PLAIN + "\nversion_sets:\n  canary:\n    agent_version_number: 9",  # Concierge: 4
    )
    return _scenario(tmp_path, [svc("Greeter", tags=OWNED)]), [doc], False


def _has_versions(tmp_path: Path) -> tuple[Scenario, list[str], bool]:
    s = Scenario(
        tmp_path,
        {
            **base_seed([svc("Greeter", tags=OWNED)]),
            "agents": [
                {"name": "Concierge", "latest_version": 4},
                {"name": "Fresh", "latest_version": None},
            ],
        },
    )
    doc = manifest(
        "Greeter",
        "description: Greeter service\nagent: Fresh\nservice_hierarchical_state_machine: Flow",
    )
    return s, [doc], False


def _not_deprecated(tmp_path: Path) -> tuple[Scenario, list[str], bool]:
    # Activating on a deprecated agent: the documented 400 (not an interpretation).
    s = _scenario(tmp_path, [svc("Greeter", agent="Old Bot", is_active=False, tags=OWNED)])
    doc = manifest(
        "Greeter",
        "description: Greeter service\nagent: Old Bot\nservice_hierarchical_state_machine: Flow",
    )
    return s, [doc], False


def _retired_release(active: bool = False) -> dict[str, Any]:
    prefs = {"llm_model_preferences": {"conversation": {"llm_name": RETIRED_LLM}}}
    return svc("Greeter", id=ID_A, is_active=active, tags=OWNED, version_sets={"release": prefs})


def _retired_llms(tmp_path: Path) -> tuple[Scenario, list[str], bool]:
    # Release (kept: not declared) prefers a retired LLM: activation is refused whatever the order.
    s = _scenario(tmp_path, [_retired_release()], deprecated_llms=[RETIRED_LLM])
    return s, [manifest("Greeter")], False


def _fixing_release() -> str:
    return manifest(
        "Greeter",
        PLAIN
        + "\nversion_sets:\n  release:\n    llm_model_preferences:\n"
        + f"      conversation: {{llm_name: {CURRENT_LLM}}}",
    )


def _activate_last(tmp_path: Path) -> tuple[Scenario, list[str], bool]:
    # The plan fixes release and activates: the activation must wait for the fix.
    s = _scenario(tmp_path, [_retired_release()], deprecated_llms=[RETIRED_LLM])
    return s, [_fixing_release()], False


def _order_names(tmp_path: Path) -> tuple[Scenario, list[str], bool]:
    # A takes B's name while B moves on: B's rename must run first.
    s = _scenario(
        tmp_path,
        [svc("Alpha", id=ID_A, tags=OWNED), svc("Beta", id=ID_B, tags=OWNED)],
    )
    docs = [
        manifest("Beta", PLAIN.replace("{name}", "Alpha"), meta=f"id: {ID_A}"),
        manifest("Gamma", PLAIN.replace("{name}", "Beta"), meta=f"id: {ID_B}"),
    ]
    return s, docs, False


def _llm_names(tmp_path: Path) -> tuple[Scenario, list[str], bool]:
    doc = manifest(
        "Greeter",
        PLAIN
        + "\nversion_sets:\n  canary:\n    llm_model_preferences:\n"
        + "      conversation: {llm_name: not-a-model}",
    )
    return _scenario(tmp_path, [svc("Greeter", tags=OWNED)]), [doc], False


def _unit_tests(tmp_path: Path) -> tuple[Scenario, list[str], bool]:
    s = _scenario(
        tmp_path,
        [svc("Greeter", tags=OWNED, version_sets={"old": {}})],
        unit_tests=[{"name": "Says hi", "service": "Greeter", "version_set": "old"}],
    )
    return s, [manifest("Greeter")], True


# Each check of the planner (by its function), and a plan it turns into an error.
CHECKS: dict[str, Callable[[Path], tuple[Scenario, list[str], bool]]] = {
    "_check_tag_limit": _tag_limit,
    "_check_pins": _pins,
    "_check_has_versions": _has_versions,
    "_check_not_deprecated": _not_deprecated,
    "_check_retired_llms": _retired_llms,
    "_activate_last": _activate_last,
    "_order_names": _order_names,
    "_check_llm_names": _llm_names,
    "_check_unit_tests": _unit_tests,
}
ORDERINGS = {"_activate_last", "_order_names"}
# Checks that leave nothing to send when bypassed, or guard a flag rather than an API rule.
NOT_API_RULES = {
    "_check_targets": "--target naming nothing is a usage error (UserError), not an API rule",
}


def test_every_planner_check_has_a_rehearsal_test() -> None:
    """A new `_check_*` in the planner needs a row in CHECKS (or a reason in NOT_API_RULES)."""
    checks = {
        name
        for name, fn in inspect.getmembers(planner, inspect.isfunction)
        if name.startswith("_check_") and fn.__module__ == planner.__name__
    }
    assert checks == (set(CHECKS) | set(NOT_API_RULES)) - ORDERINGS


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_a_bypassed_check_fails_its_rehearsal(
    check: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allow_invalid_requests: None
) -> None:
    """The bypassed plan sends what the API refuses (some of it a 422: hence the fixture)."""
    s, docs, prune = CHECKS[check](tmp_path)
    checked = _plan(s, *docs, prune=prune)
    if check in ORDERINGS:  # an ordering, not an error: the plan in order rehearses cleanly
        assert checked.errors == () and checked.rehearsal is not None
        assert checked.rehearsal.converged, checked.rehearsal
    else:
        assert checked.errors, f"{check}: the scenario must trip the check"

    monkeypatch.setattr(planner, check, lambda *args, **kwargs: None)
    bypassed = _plan(s, *docs, prune=prune)
    assert bypassed.errors == (), bypassed.errors
    rehearsal = bypassed.rehearsal
    assert rehearsal is not None and rehearsal.failed, (check, rehearsal)
    refused = [r for r in rehearsal.refused if r.interpretation is None]
    assert refused, (check, rehearsal)
    assert refused[0].status is not None and refused[0].status >= 400
    text = render_plan(bypassed, "text")
    assert DISAGREEMENT in text and refused[0].rule in text
    assert _writes(s.emulator) == 0, "the rehearsal wrote to the organization"


def test_interpretation_only_refusal_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moving an active service to a deprecated agent is refused only on the emulator's
    reading (`deprecated-on-move`): a warning, not a failure."""
    s = _scenario(tmp_path, [svc("Greeter", tags=OWNED)])
    doc = manifest(
        "Greeter",
        "description: Greeter service\nagent: Old Bot\nservice_hierarchical_state_machine: Flow",
    )
    monkeypatch.setattr(planner, "_check_not_deprecated", lambda *a, **k: None)
    plan = _plan(s, doc)
    assert plan.rehearsal is not None
    (refusal,) = plan.rehearsal.refused
    assert refusal.interpretation == "deprecated-on-move"
    assert not plan.rehearsal.failed
    text = render_plan(plan, "text")
    assert "interpretation 'deprecated-on-move'" in text and "warning" in text


# --- an ordering defect made by hand is caught before any write -------------------------


def test_activation_reordered_before_its_version_set_fix_is_caught(tmp_path: Path) -> None:
    s, docs, _ = _activate_last(tmp_path)
    good = _plan(s, *docs, rehearse=False)
    assert [op.kind for op in good.operations] == [Kind.UPDATE, Kind.ACTIVATE]
    upsert, activate = good.operations
    defective = replace(
        good,
        operations=(replace(activate, depends_on=()), replace(upsert, depends_on=())),
    )
    desired = load_manifests([s.dir])
    live = fetch_live(s.client, fetch_services(s.client), agents=True, state_machines=True)

    result = rehearse(defective, desired, live)
    assert result.failed
    assert [r.key for r in result.refused] == [activate.key]
    assert "deprecated LLM" in result.refused[0].detail
    assert rehearse(good, desired, live).converged
    assert _writes(s.emulator) == 0


def test_a_plan_missing_an_operation_does_not_converge(tmp_path: Path) -> None:
    s = _scenario(tmp_path, [svc("Greeter", tags=OWNED)])
    doc = manifest(
        "Greeter",
        "description: New words\nagent: Concierge\nservice_hierarchical_state_machine: Flow\nkeyterms: [hi]",
    )
    plan = _plan(s, doc, rehearse=False)
    desired = load_manifests([s.dir])
    live = fetch_live(s.client, fetch_services(s.client), agents=False, state_machines=False)
    truncated = replace(plan, operations=())
    assert rehearse(truncated, desired, live).converged  # nothing applied, nothing to re-plan
    dropped = replace(
        plan,
        operations=(replace(plan.operations[0], request={"description": "New words"}),),
    )
    result = rehearse(dropped, desired, live)
    assert result.failed and not result.refused
    assert result.remaining and "keyterms" in result.remaining[0]
    assert "does not converge" in render_plan(replace(plan, rehearsal=result), "text")


# --- no network, no secrets, no extra reads --------------------------------------------


class _ClosingTransport(httpx.BaseTransport):
    """Delegates to the emulator until closed; then refuses every request."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.closed = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.closed.is_set():
            raise AssertionError(f"request after planning: {request.method} {request.url}")
        return self.inner.handle_request(request)


def test_the_rehearsal_sends_nothing_after_planning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = base_seed(
        [svc("Greeter", tags=OWNED, version_sets={"old": {}})],
        unit_tests=[{"name": "Smoke", "service": "Greeter"}],
    )
    emulator = Emulator.from_seed(seed)
    transport = _ClosingTransport(emulator.transport())
    real = workflow.rehearse_plan

    def closing(*args: Any, **kwargs: Any) -> Plan:
        transport.closed.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(workflow, "rehearse_plan", closing)
    services = tmp_path / "services"
    services.mkdir()
    (services / "g.yaml").write_text(
        manifest("Greeter", PLAIN + "\nversion_sets:\n  canary:\n    agent_version_number: 2")
    )
    with AmigoClient(emulator_config(emulator), transport=transport) as client:
        plan = workflow.make_plan(client, load_manifests([services]), prune=True, rehearse=True)
        reads = dict(client.request_counts)
    assert transport.closed.is_set()
    assert plan.rehearsal is not None and plan.rehearsal.converged, plan.rehearsal
    assert plan.rehearsal.accepted == len(plan.operations) == 2
    # The plan's own reads, nothing more (the unit tests: one call, for the deletion).
    assert plan.api_reads == {k: v for k, v in reads.items() if k.startswith("get-")}
    assert reads["get-simulation-unit-tests"] == 1
    assert _writes(emulator) == 0
    text = json.dumps(plan_to_dict(plan)) + render_plan(plan, "text")
    assert "k-not-secret" not in text  # the organization's key; the copy uses throwaway ones


def test_rehearsal_over_real_http(tmp_path: Path) -> None:
    s, docs, _ = _activate_last(tmp_path)
    (s.dir / "services.yaml").write_text("---\n".join(docs), encoding="utf-8")
    with s.emulator.serve() as server:
        config = emulator_config(s.emulator, server.base_url)
        with AmigoClient(config) as client:
            plan = workflow.make_plan(client, load_manifests([s.dir]), rehearse=True)
    assert plan.rehearsal is not None and plan.rehearsal.converged, plan.rehearsal
    assert plan.rehearsal.accepted == 2
    assert _writes(s.emulator) == 0


# --- the plan file, the digest, every format ----------------------------------------------


def test_the_plan_file_records_the_rehearsal_outside_the_digest(tmp_path: Path) -> None:
    s, docs, _ = _activate_last(tmp_path)
    rehearsed = _plan(s, *docs)
    plain = replace(rehearsed, rehearsal=None)
    assert plan_digest(rehearsed) == plan_digest(plain)
    path = tmp_path / "plan.json"
    save_plan(rehearsed, path)
    assert load_plan(path).rehearsal == rehearsed.rehearsal
    # An older plan file (no rehearsal key) still loads.
    save_plan(plain, path)
    assert "rehearsal" not in json.loads(path.read_text())
    assert load_plan(path).rehearsal is None
    refused = Rehearsal(
        operations=2,
        accepted=0,
        skipped=1,
        refused=(
            RehearsalRefusal(
                "op-001", "G", "activate 'G'", "update-service answers 400", "no", 400
            ),
        ),
    )
    save_plan(replace(plain, rehearsal=refused), path)
    assert load_plan(path).rehearsal == refused


@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "github"])
def test_every_format_reports_the_rehearsal(
    fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, docs, _ = _activate_last(tmp_path)
    ok = _plan(s, *docs)
    monkeypatch.setattr(planner, "_activate_last", lambda *a, **k: None)
    bad = _plan(s, *docs)
    shown_ok, shown_bad = render_plan(ok, fmt), render_plan(bad, fmt)
    if fmt == "json":
        assert json.loads(shown_ok)["rehearsal"]["accepted"] == 2
        assert json.loads(shown_bad)["rehearsal"]["refused"][0]["status"] == 400
        return
    assert "rehearsal: 2 operations accepted, converged" in shown_ok
    assert "would be refused" in shown_bad and "update-service answers 400" in shown_bad
    if fmt == "github":
        assert "::error title=reconciler rehearsal::" in shown_bad


# --- the command line ------------------------------------------------------------------------


def _cli_env(tmp_path: Path) -> tuple[Path, Path]:
    seed = tmp_path / "seed.yaml"
    seed.write_text(yaml.safe_dump(base_seed([_retired_release()], deprecated_llms=[RETIRED_LLM])))
    services = tmp_path / "manifests"
    services.mkdir()
    (services / "g.yaml").write_text(_fixing_release())
    return seed, services


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), env={"AMIGO_API_KEY": None})


def test_cli_a_refused_rehearsal_fails_the_plan_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed, services = _cli_env(tmp_path)
    ok = _run("plan", str(services), "--emulator", str(seed))
    assert ok.exit_code == 0, ok.output
    assert "rehearsal: 2 operations accepted, converged" in ok.stdout

    monkeypatch.setattr(planner, "_activate_last", lambda *a, **k: None)
    out = tmp_path / "plan.json"
    bad = _run("plan", str(services), "--emulator", str(seed), "--out", str(out))
    assert bad.exit_code == 1, bad.output
    assert DISAGREEMENT in bad.stdout
    assert load_plan(out).rehearsal is not None  # saved, to report it with the plan

    allowed = _run("plan", str(services), "--emulator", str(seed), "--allow-rehearsal-failure")
    assert allowed.exit_code == 0, allowed.output
    assert "--allow-rehearsal-failure" in allowed.stderr

    skipped = _run("plan", str(services), "--emulator", str(seed), "--no-rehearse")
    assert skipped.exit_code == 0, skipped.output
    assert "rehearsal" not in skipped.stdout


def test_cli_apply_shows_the_saved_rehearsal(tmp_path: Path) -> None:
    seed, services = _cli_env(tmp_path)
    out = tmp_path / "plan.json"
    made = _run("plan", str(services), "--emulator", str(seed), "--out", str(out))
    assert made.exit_code == 0, made.output
    applied = _run("apply", str(out), "--emulator", str(seed), "--auto-approve")
    assert "rehearsal: 2 operations accepted, converged" in applied.output


def test_a_create_in_a_partial_copy_does_not_shadow_a_live_service(tmp_path: Path) -> None:
    """The copy holds only the services the plan's requests can depend on; the ids the
    emulator gives created services must not be those of live services left out of it
    (a re-plan then saw a live service vanish and planned to create it again)."""
    s = _scenario(tmp_path, [svc("Alpha", tags=OWNED), svc("Beta", tags=OWNED)])
    plan = _plan(s, manifest("Alpha"), manifest("Beta"), manifest("Gamma"))
    assert [op.kind for op in plan.operations] == [Kind.CREATE]
    assert plan.rehearsal is not None and plan.rehearsal.converged, plan.rehearsal


def test_cli_apply_from_manifests_rehearses_and_refuses_before_the_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`apply PATH...` checks as much as `plan`: a failed rehearsal writes nothing."""
    seed, services = _cli_env(tmp_path)
    before = seed.read_text(encoding="utf-8")
    monkeypatch.setattr(planner, "_activate_last", lambda *a, **k: None)
    bad = _run("apply", str(services), "--emulator", str(seed), "--auto-approve")
    assert bad.exit_code == 1, bad.output
    assert DISAGREEMENT in bad.output
    assert "Refusing to apply: the rehearsal failed" in bad.stderr
    assert seed.read_text(encoding="utf-8") == before
    assert "Apply " not in bad.output  # refused before the prompt / any operation

    monkeypatch.undo()
    skipped = _run(
        "apply", str(services), "--emulator", str(seed), "--no-rehearse", "--auto-approve"
    )
    assert "rehearsal" not in skipped.output

    (tmp_path / "again").mkdir()
    seed, services = _cli_env(tmp_path / "again")
    ok = _run("apply", str(services), "--emulator", str(seed), "--auto-approve")
    assert ok.exit_code == 0, ok.output
    assert "rehearsal: 2 operations accepted, converged" in ok.output


def test_cli_apply_allow_rehearsal_failure_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed, services = _cli_env(tmp_path)
    monkeypatch.setattr(planner, "_activate_last", lambda *a, **k: None)
    allowed = _run(
        "apply",
        str(services),
        "--emulator",
        str(seed),
        "--auto-approve",
        "--allow-rehearsal-failure",
    )
    assert "applying because of --allow-rehearsal-failure" in allowed.stderr
    assert "Refusing to apply" not in allowed.stderr
