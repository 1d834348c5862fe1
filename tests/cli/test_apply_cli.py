"""`reconciler apply` end to end against the in-process emulator (the sample organization)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from support.cli import cli_runner, emulator_client
from support.paths import REPO, SEED

from reconciler.api.client import AmigoClient
from reconciler.cli.apply import install_apply_sigint
from reconciler.emulator import Emulator, Fault

WRITES = (
    "create-service",
    "update-service",
    "upsert-service-version-set",
    "delete-service-version-set",
)

# Manifests for the sample organization: one update, one version set change and
# addition, two new services (one with an extra version set), one adoption-free edit.
MANIFESTS = """\
apiVersion: amigo.ai/v1
kind: Service
metadata:
  name: Meet & Greet
spec:
  description: Welcomes new patients and books their first visit
  agent: Concierge
  service_hierarchical_state_machine: Onboarding flow
  tags: {team: growth}
  keyterms: [brightside, meet and greet]
  version_sets:
    release:
      agent_version_number: 4
      service_hierarchical_state_machine_version_number: 5
      llm_model_preferences:
        conversation: {llm_name: openai_gpt-4.1-2025-04-14, params: {temperature: 0.3}}
    canary:
      agent_version_number: 4
---
apiVersion: amigo.ai/v1
kind: Service
metadata:
  name: Appointment Reminders
spec:
  description: Reminds patients of upcoming visits
  agent: Concierge
  service_hierarchical_state_machine: Onboarding flow
  tags: {team: growth}
  version_sets:
    release:
      agent_version_number: 3
    canary: {}
---
apiVersion: amigo.ai/v1
kind: Service
metadata:
  name: Insurance Intake
spec:
  description: Collects insurance details before a visit
  agent: Billing Assistant
  service_hierarchical_state_machine: Billing support
  keyterms: [copay]
---
apiVersion: amigo.ai/v1
kind: Service
metadata:
  name: After-hours Line
spec:
  description: Overnight triage line for all clinics
  agent: Triage Nurse
  service_hierarchical_state_machine: Symptom intake
"""


@pytest.fixture
def emulator() -> Emulator:
    return Emulator.from_seed(SEED, window_seconds=1.0)


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    path = tmp_path / "services"
    path.mkdir()
    (path / "services.yaml").write_text(MANIFESTS, encoding="utf-8")
    return path


@pytest.fixture
def run(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Invoke the CLI with every connection going to the one emulator of this test."""
    return cli_runner(emulator, monkeypatch)


@pytest.fixture
def client(emulator: Emulator) -> Iterator[AmigoClient]:
    with emulator_client(emulator) as c:
        yield c


def writes(emulator: Emulator) -> int:
    counts = emulator.request_counts
    return sum(counts.get(op, 0) for op in WRITES)


def active_names(emulator: Emulator) -> Counter[str]:
    return Counter(s["name"] for s in emulator.services() if s["is_active"])


def by_name(emulator: Emulator, name: str) -> dict[str, Any]:
    (service,) = [s for s in emulator.services() if s["name"] == name and s["is_active"]]
    return service


def assert_desired(emulator: Emulator) -> None:
    names = active_names(emulator)
    assert all(n == 1 for n in names.values()), names
    reminders = by_name(emulator, "Appointment Reminders")
    assert set(reminders["version_sets"]) == {"edge", "release", "canary"}
    assert reminders["version_sets"]["release"]["agent_version_number"] == 3
    assert {"key": "managed_by", "value": "amigo_reconciler"} in reminders["tags"]
    greet = by_name(emulator, "Meet & Greet")
    assert greet["version_sets"]["release"]["agent_version_number"] == 4
    assert greet["version_sets"]["canary"]["agent_version_number"] == 4
    assert by_name(emulator, "Insurance Intake")["keyterms"] == ["copay"]
    after_hours = by_name(emulator, "After-hours Line")
    assert after_hours["description"] == "Overnight triage line for all clinics"
    # Nothing lost: services the manifests do not mention are untouched.
    assert "experiment" in by_name(emulator, "Symptom Checker")["version_sets"]
    assert by_name(emulator, "Front Desk")["description"].startswith("Answers the phone")


# --- lifecycle -------------------------------------------------------------------------


def test_apply_converges_and_a_second_apply_is_a_no_op(
    run: Callable[..., Result], emulator: Emulator, manifests: Path
) -> None:
    result = run("apply", str(manifests), "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "Converged." in result.output
    assert "create 'Appointment Reminders'" in result.output
    assert "done" in result.output
    assert_desired(emulator)

    before = writes(emulator)
    again = run("apply", str(manifests), "--auto-approve")
    assert again.exit_code == 0, again.output
    assert "No changes." in again.output
    assert writes(emulator) == before


def test_json_report_is_machine_readable_and_stdout_is_pure_json(
    run: Callable[..., Result], emulator: Emulator, manifests: Path
) -> None:
    result = run("apply", str(manifests), "--auto-approve", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["outcome"] == "converged" and report["converged"] is True
    assert report["summary"]["done"] == len(report["operations"]) > 0
    op = next(o for o in report["operations"] if o["action"] == "create_service")
    assert set(op) >= {
        "key",
        "action",
        "kind",
        "service",
        "version_set",
        "status",
        "api_status",
        "message",
        "duration_seconds",
    }
    assert op["status"] == "done" and len(op["service_id"]) == 24
    assert "[" in result.stderr  # progress lines went to stderr

    empty = run("apply", str(manifests), "--auto-approve", "--format", "json")
    assert json.loads(empty.stdout)["operations"] == []


def test_plan_with_errors_is_refused(
    run: Callable[..., Result], emulator: Emulator, manifests: Path
) -> None:
    text = MANIFESTS.replace("agent: Billing Assistant", "agent: Billing Assistent")
    (manifests / "services.yaml").write_text(text, encoding="utf-8")
    result = run("apply", str(manifests), "--auto-approve")
    assert result.exit_code == 1
    assert "Refusing to apply" in result.stderr
    assert "Billing Assistent" in result.stderr
    assert writes(emulator) == 0


# --- confirmation ----------------------------------------------------------------------


def test_yes_at_the_prompt_applies(
    run: Callable[..., Result],
    emulator: Emulator,
    manifests: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run("apply", str(manifests), input="yes\n", terminal=True)
    assert result.exit_code == 0, result.output
    assert "Only 'yes' will be accepted" in result.output
    assert "Converged." in result.output


@pytest.mark.parametrize("answer", ["no\n", "y\n", "\n"])
def test_anything_but_yes_changes_nothing(
    run: Callable[..., Result],
    emulator: Emulator,
    manifests: Path,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
) -> None:
    result = run("apply", str(manifests), input=answer, terminal=True)
    assert result.exit_code == 1
    assert "Apply cancelled; nothing was changed." in result.stderr
    assert writes(emulator) == 0


def test_without_a_terminal_it_does_not_prompt_but_asks_for_auto_approve(
    run: Callable[..., Result], emulator: Emulator, manifests: Path
) -> None:
    result = run("apply", str(manifests), input="yes\n")  # CliRunner's stdin is no terminal
    assert result.exit_code == 1
    assert "--auto-approve" in result.stderr
    assert "Only 'yes'" not in result.output
    assert writes(emulator) == 0


# --- saved plans -----------------------------------------------------------------------


def _save_plan(client: AmigoClient, manifests: Path, path: Path, **changes: Any) -> Path:
    from reconciler.manifests import load_manifests
    from reconciler.planfile import save_plan
    from reconciler.workflow import make_plan

    plan = make_plan(client, load_manifests([manifests]))
    save_plan(dataclasses.replace(plan, **changes), path)
    return path


def test_saved_plan_is_applied_as_is(
    run: Callable[..., Result],
    emulator: Emulator,
    client: AmigoClient,
    manifests: Path,
    tmp_path: Path,
) -> None:
    plan_file = _save_plan(client, manifests, tmp_path / "plan.json")
    # The manifests change after planning: the saved plan, not the files, is applied.
    (manifests / "services.yaml").write_text("", encoding="utf-8")
    result = run("apply", str(plan_file), "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "Converged." in result.output
    assert_desired(emulator)


def test_stale_saved_plan_is_refused(
    run: Callable[..., Result],
    emulator: Emulator,
    client: AmigoClient,
    manifests: Path,
    tmp_path: Path,
) -> None:
    plan_file = _save_plan(client, manifests, tmp_path / "plan.json")
    front_desk = by_name(emulator, "Front Desk")
    client.update_service(front_desk["id"], {"description": "changed by hand"}, service="x")
    billing = by_name(emulator, "Billing Questions")
    client.update_service(billing["id"], {"name": "Billing Desk"}, service="x")
    added = emulator.add_service("Night Desk", agent="Concierge", state_machine="Onboarding flow")
    before = writes(emulator)
    result = run("apply", str(plan_file), "--auto-approve")
    assert result.exit_code == 1
    assert "live state changed since the plan was made; run plan again" in result.stderr
    # Which services, so a user can tell an expected edit from a surprise.
    assert "3 service(s) differ from when the plan was made:" in result.stderr
    assert f'changed: "Front Desk" (id {front_desk["id"]})\n' in result.stderr
    assert (
        f'changed: "Billing Desk" (id {billing["id"]}), renamed from "Billing Questions"'
    ) in result.stderr
    assert f'added: "Night Desk" (id {added})' in result.stderr
    assert "removed:" not in result.stderr and "more" not in result.stderr
    assert writes(emulator) == before


def test_stale_plan_file_from_before_live_services_gets_the_generic_refusal(
    run: Callable[..., Result],
    emulator: Emulator,
    client: AmigoClient,
    manifests: Path,
    tmp_path: Path,
) -> None:
    from reconciler.planfile import checksum

    plan_file = _save_plan(client, manifests, tmp_path / "plan.json")
    data = json.loads(plan_file.read_text(encoding="utf-8"))
    del data["live_services"]  # as written before the field existed
    data["checksum"] = checksum(data)
    plan_file.write_text(json.dumps(data), encoding="utf-8")
    front_desk = by_name(emulator, "Front Desk")
    client.update_service(front_desk["id"], {"description": "changed by hand"}, service="x")
    before = writes(emulator)
    result = run("apply", str(plan_file), "--auto-approve")
    assert result.exit_code == 1
    assert "live state changed since the plan was made; run plan again" in result.stderr
    assert "differ" not in result.stderr and "Front Desk" not in result.stderr
    assert writes(emulator) == before


def test_saved_plan_for_another_organization_is_refused(
    run: Callable[..., Result],
    emulator: Emulator,
    client: AmigoClient,
    manifests: Path,
    tmp_path: Path,
) -> None:
    plan_file = _save_plan(client, manifests, tmp_path / "plan.json", organization="elsewhere")
    result = run("apply", str(plan_file), "--auto-approve")
    assert result.exit_code == 1
    assert "'elsewhere'" in result.stderr and "plan again" in result.stderr
    assert writes(emulator) == 0


def test_modified_saved_plan_is_refused(
    run: Callable[..., Result],
    emulator: Emulator,
    client: AmigoClient,
    manifests: Path,
    tmp_path: Path,
) -> None:
    plan_file = _save_plan(client, manifests, tmp_path / "plan.json")
    text = plan_file.read_text(encoding="utf-8")
    plan_file.write_text(text.replace("Appointment Reminders", "Appointment Remindrs"), "utf-8")
    result = run("apply", str(plan_file), "--auto-approve")
    assert result.exit_code == 1
    assert "plan" in result.stderr.lower()
    assert "Traceback" not in result.output
    assert writes(emulator) == 0


def test_saved_plan_does_not_take_planning_flags(
    run: Callable[..., Result], client: AmigoClient, manifests: Path, tmp_path: Path
) -> None:
    plan_file = _save_plan(client, manifests, tmp_path / "plan.json")
    result = run("apply", str(plan_file), "--auto-approve", "--prune")
    assert result.exit_code == 64  # EX_USAGE, never 2 (= changes)
    assert "saved plan" in result.output


# --- faults, failures, convergence -----------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "fault", "times", "service"),
    [
        ("create-service", Fault.STATUS_503, 1, "Appointment Reminders"),
        ("create-service", Fault.DROP_AFTER, 1, "Appointment Reminders"),
        ("create-service", Fault.DROP_BEFORE, 1, "Insurance Intake"),
        # A 429 storm and a long 503 run wait for real (Retry-After, backoff): slow suite.
        pytest.param("create-service", Fault.STATUS_429, 4, None, marks=pytest.mark.slow),
        ("update-service", Fault.DROP_AFTER, 1, "After-hours Line"),
        # Answered 503 twice: looked up, re-sent once, fails; the re-run converges.
        ("update-service", Fault.STATUS_503, 2, "After-hours Line"),
        ("upsert-service-version-set", Fault.DROP_AFTER, 1, None),
        pytest.param(
            "upsert-service-version-set",
            Fault.STATUS_503,
            6,
            "Meet & Greet",
            marks=pytest.mark.slow,
        ),
        pytest.param("update-service", Fault.STATUS_502, 2, None, marks=pytest.mark.slow),
    ],
)
def test_faults_mid_apply_converge_on_rerun_without_duplicates(
    run: Callable[..., Result],
    emulator: Emulator,
    manifests: Path,
    operation: str,
    fault: Fault,
    times: int,
    service: str | None,
) -> None:
    emulator.inject(operation, fault, times=times, service_name=service)
    first = run("apply", str(manifests), "--auto-approve")
    assert first.exit_code in (0, 1), first.output
    assert "Traceback" not in first.output
    assert emulator.pending_faults == 0  # the fault did hit this apply
    assert all(n == 1 for n in active_names(emulator).values())

    second = run("apply", str(manifests), "--auto-approve")
    assert second.exit_code == 0, second.output
    assert ("Converged." in second.output) or ("No changes." in second.output)
    assert_desired(emulator)


def test_failed_create_skips_its_dependents_and_convergence_check_reports_it(
    run: Callable[..., Result], emulator: Emulator, manifests: Path
) -> None:
    # Answered 500: the API may have acted before failing, and the look-up finds
    # nothing, so the create is not re-sent; its outcome is unknown (issue 12).
    emulator.inject(
        "create-service", Fault.STATUS_500, times=5, service_name="Appointment Reminders"
    )
    result = run("apply", str(manifests), "--auto-approve", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    ops = {(o["service"], o["action"], o["version_set"]): o for o in report["operations"]}
    create = ops[("Appointment Reminders", "create_service", None)]
    assert create["status"] == "outcome_unknown" and create["api_status"] == 500
    assert create["error"] == "OutcomeUnknown"
    assert emulator.request_counts["create-service"] == 2  # each create sent once
    canary = ops[("Appointment Reminders", "upsert_version_set", "canary")]
    assert canary["status"] == "skipped"
    assert create["key"] in canary["message"]
    assert ops[("Insurance Intake", "create_service", None)]["status"] == "done"
    assert ops[("Meet & Greet", "upsert_version_set", "canary")]["status"] == "done"
    assert report["outcome"] == "outcome_unknown"
    assert report["summary"]["outcome_unknown"] == 1 and report["summary"]["failed"] == 0
    assert report["converged"] is False
    assert any("Appointment Reminders" in d for d in report["differences"])
    assert "Appointment Reminders" not in active_names(emulator)

    emulator.clear_faults()
    again = run("apply", str(manifests), "--auto-approve")
    assert again.exit_code == 0, again.output
    assert_desired(emulator)


def test_text_report_names_the_failure_and_what_still_differs(
    run: Callable[..., Result], emulator: Emulator, manifests: Path
) -> None:
    emulator.inject("create-service", Fault.STATUS_500, times=5, service_name="Insurance Intake")
    result = run("apply", str(manifests), "--auto-approve")
    assert result.exit_code == 1
    assert "UNKNOWN" in result.output and "Outcome unknown" in result.output
    assert "HTTP 500" in result.output
    assert "Not converged" in result.output
    assert "create 'Insurance Intake'" in result.output.split("Not converged")[1]


# --- cancel ----------------------------------------------------------------------------


def test_cancel_reports_what_did_not_start_and_exits_130(
    run: Callable[..., Result],
    emulator: Emulator,
    manifests: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import reconciler.applier as applier

    real = applier.apply_plan

    def cancel_after_first(
        client: Any, plan: Any, *, on_event: Any, cancel: Any, abort: Any
    ) -> Any:
        def event(result: Any) -> None:
            cancel.set()
            on_event(result)

        return real(client, plan, on_event=event, cancel=cancel, max_workers=1, abort=abort)

    monkeypatch.setattr(applier, "apply_plan", cancel_after_first)
    result = run("apply", str(manifests), "--auto-approve")
    assert result.exit_code == 130
    assert "not started" in result.output
    assert "Cancelled" in result.output
    assert writes(emulator) == 1


def test_first_ctrl_c_sets_cancel_and_the_handler_is_restored() -> None:
    cancel = threading.Event()
    before = signal.getsignal(signal.SIGINT)
    restore = install_apply_sigint(cancel, threading.Event(), threading.Event())
    try:
        os.kill(os.getpid(), signal.SIGINT)
        assert cancel.wait(2)
    finally:
        restore()
    assert signal.getsignal(signal.SIGINT) is before


# --- the shipped examples --------------------------------------------------------------

EXAMPLES = REPO / "examples" / "services"


@pytest.fixture
def examples() -> Path:
    return EXAMPLES


def test_examples_full_lifecycle_through_a_saved_plan_with_prune(
    run: Callable[..., Result], emulator: Emulator, examples: Path, tmp_path: Path
) -> None:
    plan_file = tmp_path / "plan.json"
    planned = run("plan", str(examples), "--prune", "--out", str(plan_file))
    assert planned.exit_code == 0, planned.output
    assert writes(emulator) == 0

    applied = run("apply", str(plan_file), "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert "Converged." in applied.output
    refills = by_name(emulator, "Refill Requests")
    assert set(refills["version_sets"]) == {"edge", "release", "canary"}
    after_hours = [s for s in emulator.services() if s["name"] == "After-hours Line"]
    assert [s["is_active"] for s in after_hours] == [False]
    assert "experiment" not in by_name(emulator, "Symptom Checker")["version_sets"]
    front_desk = by_name(emulator, "Front Desk")
    assert {"key": "managed_by", "value": "amigo_reconciler"} in front_desk["tags"]
    assert all(n == 1 for n in active_names(emulator).values())

    # The manifests and live state now agree: nothing to do, and the old plan is stale.
    again = run("apply", str(examples), "--prune", "--auto-approve")
    assert again.exit_code == 0, again.output
    assert "No changes." in again.output
    stale = run("apply", str(plan_file), "--auto-approve")
    assert stale.exit_code == 1
    assert "live state changed since the plan was made" in stale.stderr


def test_examples_with_target_touch_only_that_service(
    run: Callable[..., Result], emulator: Emulator, examples: Path
) -> None:
    result = run("apply", str(examples), "--target", "Refill Requests", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "Converged." in result.output
    counts = emulator.request_counts
    assert counts.get("create-service") == 1
    assert counts.get("upsert-service-version-set") == 1
    assert not counts.get("update-service")


@pytest.mark.parametrize(
    ("operation", "fault"),
    [
        ("delete-service-version-set", Fault.DROP_AFTER),
        ("delete-service-version-set", Fault.STATUS_503),
        ("update-service", Fault.DROP_AFTER),
        ("update-service", Fault.DROP_BEFORE),
    ],
)
def test_examples_prune_faults_converge_without_losing_anything(
    run: Callable[..., Result],
    emulator: Emulator,
    examples: Path,
    operation: str,
    fault: Fault,
) -> None:
    service = "Symptom Checker" if operation.startswith("delete") else "After-hours Line"
    emulator.inject(operation, fault, service_name=service)
    first = run("apply", str(examples), "--prune", "--auto-approve")
    assert first.exit_code in (0, 1), first.output
    assert emulator.pending_faults == 0
    second = run("apply", str(examples), "--prune", "--auto-approve")
    assert second.exit_code == 0, second.output
    checker = by_name(emulator, "Symptom Checker")
    assert set(checker["version_sets"]) == {"edge", "release"}
    assert [s["is_active"] for s in emulator.services() if s["name"] == "After-hours Line"] == [
        False
    ]
    assert len([s for s in emulator.services() if s["name"] == "Refill Requests"]) == 1


def test_a_failed_convergence_check_still_reports_what_was_applied(
    run: Callable[..., Result],
    emulator: Emulator,
    manifests: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import reconciler.workflow as workflow
    from reconciler.api.errors import ServerError

    real = workflow.make_plan
    calls: list[int] = []

    def make_plan(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            raise ServerError("get-services", status=500, detail="Internal Server Error")
        return real(*args, **kwargs)

    monkeypatch.setattr(workflow, "make_plan", make_plan)
    result = run("apply", str(manifests), "--auto-approve")
    assert result.exit_code == 1
    assert "Apply finished" in result.output
    assert "Convergence not checked: get-services failed: HTTP 500" in result.output
    assert_desired(emulator)
