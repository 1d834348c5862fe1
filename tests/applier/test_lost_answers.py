"""Issue 12, items 1 and 6: a server still working after the client gave up.

The emulator's Fault.COMMIT_LATE holds a write for longer than the client's
timeout and then commits it anyway. A look-up made in between finds nothing:
a create must not be re-sent on the strength of it (the API has no idempotency
key). The apply says *outcome unknown*, skips the dependents, exits non-zero,
and the next run (made once the server has finished) converges with no
duplicate. Updates, upserts and deletes may be re-sent: they set state, so a
late commit of the first send writes what the second already wrote.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from _reliability import http_client, manifest, realistic_seed, write_manifests

from reconciler.applier import Status, apply_plan
from reconciler.emulator import Emulator, Fault
from reconciler.manifests import load_manifests
from reconciler.model import DesiredState
from reconciler.plan import Action
from reconciler.workflow import check_convergence, make_plan

pytestmark = pytest.mark.http

CLIENT_TIMEOUT = 0.4
LATE_SECONDS = 1.0  # longer than the client's timeout: the write lands after it gave up
# An inactive create is looked up again for about 2 x the timeout (0.8 s) after the
# first look-up: a commit 1 s after sending lands within that, one after 3 s does not.
LATE_BEYOND_LOOK_UPS = 3.0


def _desired(tmp_path: Path, *, active: bool) -> DesiredState:
    text = manifest(
        "Late Bloomer",
        f"""
        description: created while the client was not looking
        is_active: {"true" if active else "false"}
        agent: Triage
        service_hierarchical_state_machine: Billing flow
        version_sets:
          canary: {{agent_version_number: 2}}
        """,
    )
    return load_manifests([write_manifests(tmp_path / "services", text)])


def _names(emulator: Emulator) -> Counter[str]:
    return Counter(s["name"] for s in emulator.services())


@pytest.mark.parametrize(
    ("active", "late"),
    [(True, LATE_SECONDS), (False, LATE_BEYOND_LOOK_UPS)],
    ids=["active", "inactive-later-than-the-look-ups"],
)
def test_a_create_committed_after_the_client_gave_up_is_never_duplicated(
    tmp_path: Path, active: bool, late: float
) -> None:
    desired = _desired(tmp_path, active=active)
    emulator = Emulator.from_seed(realistic_seed(), slow_seconds=late)
    with emulator.serve() as server:
        with http_client(emulator, server.base_url, timeout=CLIENT_TIMEOUT) as client:
            plan = make_plan(client, desired)
            assert [op.action for op in plan.operations] == [
                Action.CREATE_SERVICE,
                Action.UPSERT_VERSION_SET,
            ]
            emulator.inject("create-service", Fault.COMMIT_LATE)
            report = apply_plan(client, plan)
            create, upsert = report.results
            assert create.status is Status.OUTCOME_UNKNOWN, create
            assert "not sent again" in (create.message or "")
            assert "failed" not in (create.message or "")  # it may well have happened
            assert "wait" in (create.message or "") and "run plan again" in (create.message or "")
            assert upsert.status is Status.SKIPPED
            assert not report.ok
            assert emulator.request_counts["create-service"] == 1
            assert emulator.settle(10)
            assert _names(emulator)["Late Bloomer"] == 1
        # The next run (a new process) finds the late service and finishes the job.
        with http_client(emulator, server.base_url, timeout=CLIENT_TIMEOUT) as client:
            again = make_plan(client, desired)
            assert [op.action for op in again.operations] == [Action.UPSERT_VERSION_SET]
            assert apply_plan(client, again).ok
            assert make_plan(client, desired).operations == ()
    assert _names(emulator)["Late Bloomer"] == 1
    assert emulator.request_counts["create-service"] == 1


@pytest.mark.parametrize(
    ("endpoint", "service", "version_set"),
    [
        ("update-service", "Owned 1", None),
        ("upsert-service-version-set", "Owned 1", "canary"),
        ("delete-service-version-set", "Owned 1", "old"),
    ],
)
def test_other_writes_committed_after_the_client_gave_up_converge_in_one_apply(
    tmp_path: Path, endpoint: str, service: str, version_set: str | None
) -> None:
    text = manifest(
        "Owned 1",
        """
        description: Owned service 1, now documented
        agent: Concierge
        service_hierarchical_state_machine: Intake
        version_sets:
          release: {agent_version_number: 3}
          canary: {agent_version_number: 5}
        """,
    )
    desired = load_manifests([write_manifests(tmp_path / "services", text)])
    emulator = Emulator.from_seed(realistic_seed(), slow_seconds=LATE_SECONDS)
    with (
        emulator.serve() as server,
        http_client(emulator, server.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        plan = make_plan(client, desired, prune=True)
        assert any(
            op.service == service and op.version_set == version_set for op in plan.operations
        )
        emulator.inject(endpoint, Fault.COMMIT_LATE, service_name=service)
        report = apply_plan(client, plan)
        assert report.ok, report.results
        assert emulator.request_counts[endpoint] >= 2  # re-sent: safe for these
        assert emulator.settle(10)
        # The late first send wrote what the second had: still converged.
        assert make_plan(client, desired, prune=True).operations == ()
    assert _names(emulator)["Owned 1"] == 1


def _one_inactive_create(tmp_path: Path) -> tuple[Emulator, DesiredState]:
    return Emulator.from_seed(realistic_seed()), _desired(tmp_path, active=False)


@pytest.mark.parametrize("saved", [False, True], ids=["manifests", "saved-plan"])
def test_convergence_never_says_converged_with_two_services_for_one_manifest(
    tmp_path: Path, saved: bool
) -> None:
    emulator, desired = _one_inactive_create(tmp_path)
    with emulator.serve() as server, http_client(emulator, server.base_url) as client:
        plan = make_plan(client, desired)
        report = apply_plan(client, plan)
        assert report.ok
        # What a re-sent create whose first send landed late would leave behind.
        emulator.add_service(
            "Late Bloomer",
            agent="Triage",
            state_machine="Billing flow",
            is_active=False,
            tags={"managed_by": "amigo_reconciler"},
        )
        convergence = check_convergence(client, plan, report, None if saved else desired)
    assert not convergence.converged
    assert any("'Late Bloomer' exists 2 times" in d for d in convergence.differences), (
        convergence.differences
    )


def test_an_inactive_create_landing_late_is_found_by_the_follow_up_look_ups(
    tmp_path: Path,
) -> None:
    """Inactive services may share a name (no 409 protects a re-run), so the applier
    looks again for a while before leaving the create as outcome unknown."""
    desired = _desired(tmp_path, active=False)
    emulator = Emulator.from_seed(realistic_seed(), slow_seconds=LATE_SECONDS)
    with (
        emulator.serve() as server,
        http_client(emulator, server.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        plan = make_plan(client, desired)
        emulator.inject("create-service", Fault.COMMIT_LATE)
        report = apply_plan(client, plan)
        create, upsert = report.results
        assert create.status is Status.DONE, create
        assert "found" in (create.message or "") and "later" in (create.message or "")
        assert upsert.status is Status.DONE and report.ok
        assert emulator.request_counts["create-service"] == 1
        assert emulator.request_counts["get-services"] >= 3  # plan, first look-up, follow-ups
        assert make_plan(client, desired).operations == ()
    assert _names(emulator)["Late Bloomer"] == 1


def test_a_rerun_before_a_late_inactive_create_lands_is_named_by_the_next_plan(
    tmp_path: Path,
) -> None:
    """What the follow-ups cannot prevent: a re-run before the late commit lands creates
    a second inactive service (the API allows it). The plan after that says exactly what
    happened and how to resolve it, and the pin it asks for resolves it."""
    desired = _desired(tmp_path, active=False)
    emulator = Emulator.from_seed(realistic_seed(), slow_seconds=LATE_BEYOND_LOOK_UPS)
    with (
        emulator.serve() as server,
        http_client(emulator, server.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        emulator.inject("create-service", Fault.COMMIT_LATE)
        first = apply_plan(client, make_plan(client, desired))
        assert first.results[0].status is Status.OUTCOME_UNKNOWN
        rerun = make_plan(client, desired)  # too soon: the first create has not landed
        assert apply_plan(client, rerun).ok
        assert emulator.settle(10)
        assert _names(emulator)["Late Bloomer"] == 2
        after = make_plan(client, desired)
        (error,) = after.errors
        twins = [s for s in emulator.services() if s["name"] == "Late Bloomer"]
        # the re-run's has its version set (the lost create's upsert was skipped): pin that one
        ids = [s["id"] for s in sorted(twins, key=lambda s: -len(s.get("version_sets") or {}))]
        assert "identical fields" in error.message and "answer was lost" in error.message
        assert f"metadata.id: {ids[0]}" in error.message and ids[1] in error.message
        assert "left exactly as it is" in error.message
        pinned = load_manifests(
            [
                write_manifests(
                    tmp_path / "pinned",
                    manifest(
                        "Late Bloomer",
                        """
                        description: created while the client was not looking
                        is_active: false
                        agent: Triage
                        service_hierarchical_state_machine: Billing flow
                        version_sets:
                          canary: {agent_version_number: 2}
                        """,
                    ).replace("name: Late Bloomer", f"name: Late Bloomer\n  id: {ids[0]}"),
                )
            ]
        )
        settled = make_plan(client, pinned)
        assert settled.errors == ()
        assert Action.CREATE_SERVICE not in [op.action for op in settled.operations]
