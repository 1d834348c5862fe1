"""`apply --verify [--rollback-on-failure]` and the loop it closes (issue 18, items 2 and "done when").

Against one emulator per test: a canary change that passes is verified, promoted by one
command, and the promotion's plan shows only the release change; a failing one is rolled
back through the applier, the organization ends exactly as before, the report names the
failed metric, and the verification's reads are counted and stay within the rate limits.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from support.simulation import HEADER, seed

from reconciler import cli
from reconciler.api.client import AmigoClient
from reconciler.applier import ApplyReport, OperationResult, Status
from reconciler.cli.shared import Runtime
from reconciler.connect import emulator_config
from reconciler.emulator import Emulator
from reconciler.plan import Action, Kind, Operation, Plan
from reconciler.planfile import load_plan, plan_digest, save_plan
from reconciler.rollback import plan_rollback


def manifest(tmp_path: Path, canary: int, extra: str = "", *, machine: int | None = None) -> Path:
    folder = tmp_path / "services"
    folder.mkdir(exist_ok=True)
    pin = (
        "" if machine is None else f", service_hierarchical_state_machine_version_number: {machine}"
    )
    (folder / "front.yaml").write_text(
        HEADER + f"    canary: {{agent_version_number: {canary}{pin}}}  # try here\n" + extra
    )
    return folder


Run = Callable[..., Result]


@pytest.fixture
def emulator() -> Emulator:
    return Emulator.from_seed(seed(canary_agent=3))


@pytest.fixture
def run(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Run:
    def open_client(settings: Any, *, emulator_seed: Any = None, on_wait: Any = None) -> Any:
        return AmigoClient(
            emulator_config(emulator), transport=emulator.transport(), on_wait=on_wait
        )

    monkeypatch.setenv("AMIGO_RECONCILER_DEBUG", "")

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(
            cli.main, list(args), catch_exceptions=False, obj=Runtime(open_client=open_client)
        )

    return invoke


VERIFY = ("--auto-approve", "--verify", "--verify-poll-seconds", "0")


def test_a_failing_canary_is_rolled_back_and_the_organization_ends_as_before(
    tmp_path: Path, emulator: Emulator, run: Run
) -> None:
    before = copy.deepcopy(emulator.services())
    folder = manifest(tmp_path, canary=5)  # agent 5 fails the Politeness metric
    result = run("apply", str(folder), *VERIFY, "--rollback-on-failure", "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["outcome"] == "converged"  # the apply itself worked
    verification = report["verification"]
    assert verification["passed"] is False
    assert verification["test_sets"][0]["failed_metrics"] == ["Politeness"]
    assert verification["api_reads"]["get-simulation-unit-test-set-runs"] >= 1
    assert verification["runs_started"] == 1
    rollback = report["rollback"]
    assert rollback["outcome"] == "rolled_back"
    assert [(o["action"], o["version_set"], o["status"]) for o in rollback["operations"]] == [
        ("upsert_version_set", "canary", "done")
    ]
    assert rollback["left_alone"] == [] and rollback["differences"] == []
    assert rollback["api_reads"] == {"get-services": 2}  # the safety read and the re-read
    assert emulator.services() == before
    assert emulator.rate_limited_count == 0
    assert "rolling back" in result.stderr


def test_a_version_set_the_apply_created_is_deleted_by_the_rollback(
    tmp_path: Path, emulator: Emulator, run: Run
) -> None:
    before = copy.deepcopy(emulator.services())
    # 'beta' is new and no test set covers it: with --require-coverage that is a failure.
    folder = manifest(tmp_path, canary=4, extra="    beta: {agent_version_number: 4}\n")
    result = run("apply", str(folder), *VERIFY, "--rollback-on-failure", "--require-coverage")
    assert result.exit_code == 1, result.output
    assert "no simulation unit test set covers it" in result.stdout
    assert "Rolled back: 2 version set(s) restored" in result.stdout
    assert "rollback rollback-001: done delete 'Front Desk' version set 'beta'" in result.stdout
    assert "rollback rollback-002: done update 'Front Desk' version set 'canary'" in result.stdout
    assert emulator.services() == before


def test_an_uncovered_set_is_not_verified_and_not_rolled_back(
    tmp_path: Path, emulator: Emulator, run: Run
) -> None:
    # canary=4 passes Smoke; 'beta' is covered by no unit test: nothing failed (review of #18).
    folder = manifest(tmp_path, canary=4, extra="    beta: {agent_version_number: 4}\n")
    result = run("apply", str(folder), *VERIFY, "--rollback-on-failure", "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["verification"]["passed"] is False
    assert report["verification"]["uncovered"] == [{"service": "Front Desk", "version_set": "beta"}]
    assert [s["outcome"] for s in report["verification"]["test_sets"]] == ["passed"]
    assert report["rollback"]["outcome"] == "not_attempted"
    assert "no test failed" in report["rollback"]["skipped"]
    [service] = emulator.services()
    assert service["version_sets"]["beta"]["agent_version_number"] == 4  # left in place


def test_an_uncovered_set_says_not_verified_in_text(tmp_path: Path, run: Run) -> None:
    folder = manifest(tmp_path, canary=4, extra="    beta: {agent_version_number: 4}\n")
    result = run("apply", str(folder), *VERIFY, "--rollback-on-failure")
    assert result.exit_code == 1, result.output
    assert "NOT VERIFIED (nothing failed, but not everything was tested)" in result.stdout
    assert "1 version set(s) not covered by any unit test" in result.stdout
    assert "Not rolled back: no test failed" in result.stdout
    assert "Rolled back" not in result.stdout


def test_require_coverage_needs_rollback(tmp_path: Path, run: Run) -> None:
    result = run("apply", str(manifest(tmp_path, canary=4)), *VERIFY, "--require-coverage")
    assert result.exit_code == 64  # a usage error, as --rollback-on-failure without --verify
    assert "--require-coverage needs --verify --rollback-on-failure" in result.output


def test_without_rollback_a_failure_is_reported_and_left_in_place(
    tmp_path: Path, emulator: Emulator, run: Run
) -> None:
    result = run("apply", str(manifest(tmp_path, canary=5)), *VERIFY)
    assert result.exit_code == 1, result.output
    assert "FAILED  Smoke" in result.stdout and "Politeness" in result.stdout
    assert "Rolled back" not in result.stdout
    [service] = emulator.services()
    assert service["version_sets"]["canary"]["agent_version_number"] == 5


def test_a_passing_canary_is_promoted_and_the_promotion_plan_is_only_the_release_change(
    tmp_path: Path, emulator: Emulator, run: Run
) -> None:
    folder = manifest(tmp_path, canary=4, machine=3)  # pinned: promote refuses "latest"
    applied = run("apply", str(folder), *VERIFY, "--rollback-on-failure", "--format", "json")
    assert applied.exit_code == 0, applied.output
    report = json.loads(applied.stdout)
    assert report["verification"]["passed"] is True and report["rollback"] is None
    text = (folder / "front.yaml").read_text()

    promoted = run(
        "promote", "Front Desk", "--from", "canary", "--to", "release", "--manifests", str(folder)
    )
    assert promoted.exit_code == 0, promoted.output
    edited = (folder / "front.yaml").read_text()
    assert edited == text.replace(
        "release: {agent_version_number: 3}",
        "release: {agent_version_number: 4, service_hierarchical_state_machine_version_number: 3}",
    )

    planned = run("plan", str(folder), "--format", "json")
    assert planned.exit_code in (0, 2), planned.output
    plan = json.loads(planned.stdout)
    assert [(o["action"], o["version_set"]) for o in plan["operations"]] == [
        ("upsert_version_set", "release")
    ]
    assert [(c["path"], c["old"], c["new"]) for c in plan["operations"][0]["changes"]] == [
        ("agent_version_number", 3, 4),
        ("service_hierarchical_state_machine_version_number", None, 3),
    ]


def test_an_apply_that_changes_no_version_set_has_nothing_to_verify(
    tmp_path: Path, run: Run
) -> None:
    result = run("apply", str(manifest(tmp_path, canary=3)), *VERIFY, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verification"] == {
        "passed": False,
        "skipped": "the apply changed no version set: nothing to verify",
    }
    assert report["rollback"] is None


def test_rollback_needs_verify(tmp_path: Path, run: Run) -> None:
    result = run("apply", str(manifest(tmp_path, canary=4)), "--rollback-on-failure")
    assert result.exit_code == 64
    assert "--rollback-on-failure needs --verify" in result.output


# --- the rollback plan, on its own --------------------------------------------------


def _upsert(key: str, kind: Kind, request: dict[str, Any], before: Any) -> Operation:
    return Operation(
        key,
        Action.UPSERT_VERSION_SET,
        kind,
        "Front Desk",
        "s1",
        version_set="canary",
        request=request,
        before=before,
    )


def _set(agent: int) -> dict[str, Any]:
    return {
        "agent_version_number": agent,
        "service_hierarchical_state_machine_version_number": None,
        "llm_model_preferences": {},
    }


def _plan(*ops: Operation) -> Plan:
    return Plan("org", "http://127.0.0.1", "m", "f", "2026-01-01T00:00:00Z", operations=ops)


def _done(*ops: Operation, status: Status = Status.DONE) -> ApplyReport:
    return ApplyReport(
        tuple(
            OperationResult(o.key, o.action, o.kind, o.service, o.version_set, status) for o in ops
        ),
        1.0,
    )


def test_a_set_changed_since_the_apply_is_not_overwritten() -> None:
    op = _upsert("op-001", Kind.UPDATE, _set(5), _set(3))
    someone_else = [{"id": "s1", "version_sets": {"canary": _set(6)}}]
    planned = plan_rollback(_plan(op), _done(op), someone_else)
    assert planned.plan.operations == ()
    [left] = planned.left_alone
    assert "changed since this apply wrote it" in left.reason


def test_a_set_already_back_as_before_is_reported_so_not_as_a_failure() -> None:
    from reconciler.report import render_apply_verification_text, rollback_outcome
    from reconciler.rollback import ApplyVerification, RollbackOutcome
    from reconciler.verify import Verification

    changed = _upsert("op-001", Kind.UPDATE, _set(5), _set(3))
    created = replace(_upsert("op-002", Kind.CREATE, _set(4), None), version_set="beta")
    restored = [{"id": "s1", "version_sets": {"canary": _set(3)}}]  # beta gone, canary at 3
    planned = plan_rollback(_plan(changed, created), _done(changed, created), restored)
    assert planned.plan.operations == () and planned.left_alone == ()
    assert planned.already == (("Front Desk", "canary"), ("Front Desk", "beta"))
    outcome = RollbackOutcome(planned.plan, None, planned.left_alone, already=planned.already)
    assert rollback_outcome(outcome) == "rolled_back"
    text = render_apply_verification_text(
        ApplyVerification(Verification("org", ()), rollback=outcome)
    )
    assert "already as before: Front Desk / canary (nothing to restore)" in text
    assert "FAILED" not in text.split("Verification")[-1].split("\n", 1)[1]
    assert "by hand" not in text


def test_only_done_upserts_are_rolled_back_and_old_plans_say_why_not() -> None:
    failed = _upsert("op-001", Kind.UPDATE, _set(5), _set(3))
    live = [{"id": "s1", "version_sets": {"canary": _set(5)}}]
    assert (
        plan_rollback(_plan(failed), _done(failed, status=Status.FAILED), live).plan.operations
        == ()
    )
    old = _upsert("op-001", Kind.UPDATE, _set(5), None)  # a plan file from before `before`
    [left] = plan_rollback(_plan(old), _done(old), live).left_alone
    assert "did not record" in left.reason
    restore = _upsert("op-001", Kind.UPDATE, _set(5), _set(3))
    [op] = plan_rollback(_plan(restore), _done(restore), live).plan.operations
    assert (op.key, op.action, op.request) == ("rollback-001", Action.UPSERT_VERSION_SET, _set(3))


def test_the_saved_plan_keeps_before_outside_its_digest(tmp_path: Path) -> None:
    op = _upsert("op-001", Kind.UPDATE, _set(5), _set(3))
    path = tmp_path / "plan.json"
    save_plan(_plan(op), path)
    loaded = load_plan(path)
    assert loaded.operations[0].before == _set(3)
    without = _plan(_upsert("op-001", Kind.UPDATE, _set(5), None))
    assert plan_digest(loaded) == plan_digest(without)


def test_a_rollback_plan_meets_the_same_policies_as_the_apply(
    tmp_path: Path, emulator: Emulator, run: Run
) -> None:
    policy = tmp_path / "no_deletes.rego"
    policy.write_text(
        "package main\n\nimport rego.v1\n\n"
        'deny contains {"msg": "version sets are never deleted here"} if {\n'
        "\tsome op in input.operations\n"
        '\top.kind == "delete"\n'
        "}\n"
    )
    folder = manifest(tmp_path, canary=4, extra="    beta: {agent_version_number: 4}\n")
    result = run(
        "apply", str(folder), *VERIFY, "--rollback-on-failure", "--require-coverage", "--policy", str(policy),
        "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    rollback = json.loads(result.stdout)["rollback"]
    assert rollback["outcome"] == "failed" and rollback["operations"] == []
    assert "version sets are never deleted here" in rollback["error"]
    [service] = emulator.services()
    assert "beta" in service["version_sets"]  # nothing was sent


def _apply_directly(emulator: Emulator, folder: Path) -> tuple[AmigoClient, Any, Any]:
    import threading

    from reconciler.workflow import apply_and_check, load_for_apply

    client = AmigoClient(emulator_config(emulator), transport=emulator.transport())
    applying = load_for_apply(client, [str(folder)], saved=False)
    outcome = apply_and_check(
        client,
        applying,
        on_event=lambda _result: None,
        cancel=threading.Event(),
        abort=threading.Event(),
        running=threading.Event(),
    )
    assert outcome.report.ok and outcome.convergence is not None
    return client, applying, outcome


def test_ctrl_c_as_the_rollback_starts_sends_nothing_and_says_so(
    tmp_path: Path, emulator: Emulator
) -> None:
    import threading

    from reconciler.report import rollback_outcome
    from reconciler.workflow import verify_applied

    client, applying, outcome = _apply_directly(emulator, manifest(tmp_path, canary=5))
    cancel = threading.Event()

    def progress(message: str) -> None:
        if "rolling back" in message:
            cancel.set()  # what the first Ctrl-C does

    with client:
        verified = verify_applied(
            client, applying, outcome, rollback=True, timeout=30, poll_seconds=0,
            on_progress=progress, on_event=lambda _r: None, cancel=cancel,
        )  # fmt: skip
    assert verified.rollback is not None and verified.rollback.report is not None
    assert [r.status for r in verified.rollback.report.results] == [Status.NOT_STARTED]
    assert rollback_outcome(verified.rollback) == "failed"
    [service] = emulator.services()
    assert service["version_sets"]["canary"]["agent_version_number"] == 5  # as reported


def test_a_cancelled_verification_is_never_rolled_back(tmp_path: Path, emulator: Emulator) -> None:
    import threading

    from reconciler.workflow import verify_applied

    client, applying, outcome = _apply_directly(emulator, manifest(tmp_path, canary=5))
    cancel = threading.Event()
    cancel.set()
    with client:
        verified = verify_applied(
            client, applying, outcome, rollback=True, timeout=30, poll_seconds=0,
            on_progress=lambda _m: None, on_event=lambda _r: None, cancel=cancel,
        )  # fmt: skip
    assert verified.rollback is None
    assert verified.rollback_skipped == "verification was cancelled: nothing was rolled back"


# --- `reconciler show` of what apply --verify and verify saved ----------------------------


def test_show_renders_a_saved_verification_and_rollback_and_exits_as_apply_did(
    tmp_path: Path, run: Run
) -> None:
    folder = manifest(tmp_path, canary=5)  # agent 5 fails the Politeness metric
    applied = run("apply", str(folder), *VERIFY, "--rollback-on-failure", "--format", "json")
    assert applied.exit_code == 1, applied.output
    saved = tmp_path / "report.json"
    saved.write_text(applied.stdout)

    text = run("show", str(saved))
    assert text.exit_code == 1, text.output  # as the apply exited: not verified
    first = text.stdout.splitlines()[0]
    assert "verification did not pass (rolled back)" in first
    assert "Verification FAILED" in text.stdout and "Politeness" in text.stdout
    assert "Rolled back: 1 version set(s) restored" in text.stdout
    assert "upsert" in text.stdout or "canary" in text.stdout
    markdown = run("show", str(saved), "--format", "markdown")
    assert markdown.exit_code == 1
    assert "Politeness" in markdown.stdout and "Rolled back:" in markdown.stdout
    github = run("show", str(saved), "--format", "github")
    assert github.stdout.startswith("::error")
    assert "::error title=verify" in github.stdout and "Rollback rolled_back" in github.stdout
    as_json = run("show", str(saved), "--format", "json")
    assert json.loads(as_json.stdout)["rollback"]["outcome"] == "rolled_back"


def test_show_renders_a_saved_verify_output(tmp_path: Path, run: Run) -> None:
    folder = manifest(tmp_path, canary=5)
    assert run("apply", str(folder), "--auto-approve").exit_code == 0
    verified = run(
        "verify",
        "--service",
        "Front Desk",
        "--version-set",
        "canary",
        "--poll-seconds",
        "0",
        "--format",
        "json",
    )
    assert verified.exit_code == 1, verified.output
    saved = tmp_path / "verify.json"
    saved.write_text(verified.stdout)
    shown = run("show", str(saved))
    assert shown.exit_code == 1, shown.output
    assert "Verification FAILED" in shown.stdout and "Politeness" in shown.stdout
    again = run("show", str(saved), "--format", "json")
    assert json.loads(again.stdout) == json.loads(verified.stdout)
