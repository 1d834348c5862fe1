"""Simulation runs in the emulator (issue 18 item 5) and `reconciler verify` over them (item 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from support.cli import emulator_client
from support.simulation import seed

from reconciler.api.client import AmigoClient
from reconciler.api.errors import ApiError
from reconciler.cli import main
from reconciler.connect import emulator_config
from reconciler.diagnostics import UserError
from reconciler.emulator import Emulator
from reconciler.verify import Outcome, VerifyTarget, run_verification


def client_for(emulator: Emulator) -> AmigoClient:
    return emulator_client(emulator)


def verify(emulator: Emulator, *targets: VerifyTarget, **kwargs: Any) -> Any:
    with client_for(emulator) as client:
        return run_verification(client, targets, poll_seconds=0, **kwargs)


CANARY = VerifyTarget("Front Desk", "canary")


def test_a_passing_canary_passes_with_its_reads_counted() -> None:
    result = verify(Emulator.from_seed(seed()), CANARY)
    assert result.passed
    [smoke] = result.test_sets
    assert (smoke.name, smoke.outcome, smoke.covers) == (
        "Smoke",
        Outcome.PASSED,
        (("Front Desk", "canary"),),
    )
    metrics = {m.name: (m.passed, m.failed) for t in smoke.unit_tests for m in t.metrics}
    assert metrics == {"Greeting": (2, 0), "Politeness": (2, 0), "Booked": (2, 0)}
    assert result.runs_started == 1
    assert result.api_reads == {
        "get-services": 1,
        "get-simulation-unit-tests": 1,
        "get-simulation-unit-test-sets": 1,
        "get-simulation-unit-test-set-runs": 1,
    }


def test_a_failing_metric_is_named() -> None:
    result = verify(Emulator.from_seed(seed(canary_agent=5)), CANARY)
    assert not result.passed
    [smoke] = result.test_sets
    assert smoke.outcome is Outcome.FAILED
    assert smoke.failed_metrics == ("Politeness",)


def test_an_errored_run_is_errored_with_the_api_message() -> None:
    result = verify(Emulator.from_seed(seed(canary_agent=2)), CANARY)
    [smoke] = result.test_sets
    assert smoke.outcome is Outcome.ERRORED
    assert any("persona crashed" in e for t in smoke.unit_tests for e in t.errors)


def test_a_slow_run_times_out_and_a_second_run_is_refused_while_it_runs() -> None:
    emulator = Emulator.from_seed(seed(duration_seconds=600))
    result = verify(emulator, CANARY, timeout=0.05)
    [smoke] = result.test_sets
    assert smoke.outcome is Outcome.TIMED_OUT
    again = verify(emulator, CANARY, timeout=0.05)  # the first run is still going: awaited
    assert again.test_sets[0].outcome is Outcome.TIMED_OUT
    # Found and awaited until the timeout (or the timeout passed while looking it up).
    assert "still unfinished" in again.test_sets[0].message
    with client_for(emulator) as client, pytest.raises(ApiError) as caught:
        client.create_unit_test_set_run(smoke.unit_test_set_id)
    assert caught.value.status == 409


def test_a_second_verify_awaits_the_unfinished_run_then_runs_its_own() -> None:
    """Review of #18: the API's 409 ("still unfinished") was reported as errored."""
    emulator = Emulator.from_seed(seed(duration_seconds=1))
    messages: list[str] = []
    with client_for(emulator) as client:  # polls paced: the second needs reads left
        first = run_verification(client, [CANARY], timeout=0.05, poll_seconds=0.02)
    assert first.test_sets[0].outcome is Outcome.TIMED_OUT  # its run keeps going
    with client_for(emulator) as client:
        second = run_verification(
            client, [CANARY], timeout=30, poll_seconds=0.25, on_progress=messages.append
        )
    assert second.passed, second
    [smoke] = second.test_sets
    assert smoke.run_id not in (None, first.test_sets[0].run_id)  # a fresh run, not the old
    assert any(f"unfinished run {first.test_sets[0].run_id}" in m for m in messages)
    assert second.runs_started == 1


def test_the_timeout_bounds_rate_limit_waits_too() -> None:
    """Review of #18: a 429 on sign-in held `verify --timeout 2` for its whole Retry-After."""
    import time

    from reconciler.api.operations import SIGN_IN
    from reconciler.emulator.faults import Fault

    emulator = Emulator.from_seed(seed())
    emulator.fault_retry_after = 34  # the reviewer's wait
    emulator.inject(SIGN_IN, Fault.STATUS_429)
    started = time.monotonic()
    result = verify(emulator, CANARY, timeout=2)
    assert time.monotonic() - started < 3
    assert not result.passed and not result.test_sets
    [error] = result.errors
    assert "overall timeout (2s) before any run started" in error.message
    assert "sign-in-with-api-key failed" in error.message and "rate limit" in error.message


def test_a_deadline_reached_while_polling_is_timed_out_not_an_error() -> None:
    from reconciler.api.operations import GET_UNIT_TEST_SET_RUNS
    from reconciler.emulator.faults import Fault

    emulator = Emulator.from_seed(seed(duration_seconds=600))
    emulator.inject(GET_UNIT_TEST_SET_RUNS, Fault.STATUS_429, times=5)
    result = verify(emulator, CANARY, timeout=2)
    [smoke] = result.test_sets
    assert smoke.outcome is Outcome.TIMED_OUT and not result.errors


def test_runs_in_progress_show_null_results_then_complete() -> None:
    now = [1000.0]
    emulator = Emulator.from_seed(seed(duration_seconds=30), clock=lambda: now[0])
    with client_for(emulator) as client:
        [smoke] = [s for s in client.list_unit_test_sets() if s["name"] == "Smoke"]
        run_id = client.create_unit_test_set_run(smoke["id"])
        [run] = client.list_unit_test_set_runs([run_id])
        assert not run["is_completed"]
        assert None in run["unit_test_run_results"]
        now[0] += 31
        [run] = client.list_unit_test_set_runs([run_id])
        assert run["is_completed"] and None not in run["unit_test_run_results"]


def test_declared_sets_are_resolved_by_name_with_did_you_mean() -> None:
    emulator = Emulator.from_seed(seed())
    result = verify(emulator, VerifyTarget("Front Desk", "release", ("Billing regresions",)))
    assert not result.passed
    assert "did you mean 'Billing regressions'?" in result.errors[0].message
    ok = verify(emulator, VerifyTarget("Front Desk", "release", ("Billing regressions",)))
    assert ok.passed and [s.name for s in ok.test_sets] == ["Billing regressions"]


def test_unknown_service_and_uncovered_set_are_errors() -> None:
    emulator = Emulator.from_seed(seed())
    result = verify(
        emulator, VerifyTarget("Frnt Desk", "canary"), VerifyTarget("Front Desk", "edge")
    )
    messages = [e.message for e in result.errors]
    assert "did you mean 'Front Desk'?" in messages[0]
    assert "no simulation unit test set covers it" in messages[1]
    assert not result.passed


def test_seed_rejects_an_outcome_on_an_undeclared_metric() -> None:
    bad = seed(outcomes=[{"result": "fail", "failed_metrics": ["Kindness"]}])
    with pytest.raises(UserError, match="'Kindness' is not one of this unit test's metrics"):
        Emulator.from_seed(bad)


def _write_seed(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["verify", "--service", "Front Desk", "--version-set", "canary", "--poll-seconds", "0"]
    ok = runner.invoke(main, [*args, "--emulator", _write_seed(tmp_path, seed())])
    assert ok.exit_code == 0, ok.output
    assert "passed  Smoke" in ok.stdout
    failing = _write_seed(tmp_path, seed(canary_agent=5))
    bad = runner.invoke(main, [*args, "--emulator", failing, "--format", "json"])
    assert bad.exit_code == 1
    report = json.loads(bad.stdout)
    assert report["passed"] is False
    assert report["test_sets"][0]["failed_metrics"] == ["Politeness"]
    assert report["api_reads"]["get-services"] == 1


def test_cli_reads_declared_sets_from_manifests(tmp_path: Path) -> None:
    manifest = tmp_path / "front.yaml"
    manifest.write_text(
        "apiVersion: amigo.ai/v1\nkind: Service\nmetadata: {name: Front Desk}\nspec:\n"
        "  description: Front\n  agent: Concierge\n  service_hierarchical_state_machine: Flow\n"
        "  version_sets:\n    release:\n      agent_version_number: 3\n"
        "      verify: {unit_test_sets: [Billing regressions]}\n"
    )
    result = CliRunner().invoke(
        main,
        [
            "verify",
            "--service",
            "Front Desk",
            "--version-set",
            "release",
            "--manifests",
            str(manifest),
            "--poll-seconds",
            "0",
            "--format",
            "markdown",
            "--emulator",
            _write_seed(tmp_path, seed()),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Billing regressions" in result.stdout


def test_polling_stays_within_the_documented_rate_limits() -> None:
    """Polls as fast as allowed (no poll interval): the client's pacing keeps every call in budget."""
    import dataclasses

    emulator = Emulator.from_seed(seed(duration_seconds=1.2), window_seconds=0.4)
    config = dataclasses.replace(emulator_config(emulator), rate_window_seconds=0.4)
    with AmigoClient(config, transport=emulator.transport()) as client:
        result = run_verification(client, [CANARY], poll_seconds=0, timeout=30)
    assert result.passed
    assert result.api_reads["get-simulation-unit-test-set-runs"] > 50  # pacing was needed
    assert emulator.rate_limited_count == 0


def test_cli_verifies_the_sets_a_saved_plan_changes(tmp_path: Path) -> None:
    seed_file = _write_seed(tmp_path, seed())
    manifest = tmp_path / "front.yaml"
    manifest.write_text(
        "apiVersion: amigo.ai/v1\nkind: Service\nmetadata: {name: Front Desk}\nspec:\n"
        "  description: Front\n  agent: Concierge\n  service_hierarchical_state_machine: Flow\n"
        "  version_sets:\n    release: {agent_version_number: 3}\n"
        "    canary: {agent_version_number: 3}\n"
    )
    runner = CliRunner()
    plan_file = tmp_path / "plan.json"
    made = runner.invoke(
        main, ["plan", str(manifest), "--out", str(plan_file), "--emulator", seed_file]
    )
    assert made.exit_code == 0, made.output
    result = runner.invoke(
        main,
        ["verify", "--plan", str(plan_file), "--poll-seconds", "0", "--emulator", seed_file],
    )
    assert result.exit_code == 0, result.output
    assert "Smoke  (Front Desk / canary)" in result.stdout
    both = runner.invoke(main, ["verify", "--plan", str(plan_file), "--service", "Front Desk"])
    assert both.exit_code == 64 and "not both" in both.output  # a usage error


def test_cancel_stops_waiting_and_reports_what_finished() -> None:
    import threading

    cancel = threading.Event()
    emulator = Emulator.from_seed(seed(duration_seconds=600))
    with client_for(emulator) as client:
        result = run_verification(
            client,
            [CANARY],
            poll_seconds=5,
            cancel=cancel,
            on_progress=lambda message: cancel.set() if "finished" in message else None,
        )
    assert result.cancelled and not result.passed
    assert result.test_sets[0].outcome is Outcome.TIMED_OUT
    assert result.elapsed_seconds < 5


def test_runs_of_unknown_or_deleted_sets_are_404() -> None:
    data = seed()
    data["unit_test_sets"].append({"name": "Old", "unit_tests": ["Books"], "is_deleted": True})
    emulator = Emulator.from_seed(data)
    with client_for(emulator) as client:
        names = {s["name"] for s in client.list_unit_test_sets()}
        assert names == {"Smoke", "Billing regressions"}
        old = emulator.simulations.sets
        [deleted] = [s.id for s in old.values() if s.name == "Old"]
        for ident in (deleted, "f" * 24):
            with pytest.raises(ApiError) as caught:
                client.create_unit_test_set_run(ident)
            assert caught.value.status == 404


def test_seed_rejects_a_set_naming_an_unknown_unit_test() -> None:
    data = seed()
    data["unit_test_sets"][0]["unit_tests"] = ["Greets", "Bookz"]
    with pytest.raises(UserError, match="no unit test is named 'Bookz'"):
        Emulator.from_seed(data)


def test_a_verify_declaration_is_never_part_of_the_plan(tmp_path: Path) -> None:
    from reconciler.manifests import load_manifests
    from reconciler.workflow import make_plan

    manifest = tmp_path / "front.yaml"
    manifest.write_text(
        "apiVersion: amigo.ai/v1\nkind: Service\nmetadata: {name: Front Desk}\nspec:\n"
        "  description: Front\n  agent: Concierge\n  service_hierarchical_state_machine: Flow\n"
        "  version_sets:\n    release: {agent_version_number: 3}\n"
        "    canary:\n      agent_version_number: 4\n      verify: {unit_test_sets: [Smoke]}\n"
    )
    with client_for(Emulator.from_seed(seed())) as client:
        assert make_plan(client, load_manifests([manifest])).operations == ()
    manifest.write_text(manifest.read_text().replace("unit_test_sets: [Smoke]", "unit_tests: []"))
    with pytest.raises(
        UserError, match="unknown field 'unit_tests'; did you mean 'unit_test_sets'"
    ):
        load_manifests([manifest])
