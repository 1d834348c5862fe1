"""Saved plans: round trip, and a tampered, foreign, unknown-version or malformed file refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.diagnostics import SourcePos, UserError
from reconciler.model import (
    DesiredService,
    DesiredState,
    LiveService,
    LiveState,
    VersionSet,
)
from reconciler.plan import live_fingerprint
from reconciler.planfile import check_plan_target, load_plan, plan_to_dict, save_plan
from reconciler.planner import plan_against

AGENT = "1" * 24
FLOW = "2" * 24
LIVE_ID = "3" * 24


def live_service(**changes: object) -> LiveService:
    fields: dict[str, object] = {
        "id": LIVE_ID,
        "name": "Greeter",
        "description": "old",
        "is_active": True,
        "agent_id": AGENT,
        "service_hierarchical_state_machine_id": FLOW,
        "tags": {"managed_by": "amigo_reconciler"},
        "keyterms": (),
        "version_sets": {"edge": VersionSet(), "release": VersionSet(), "old": VersionSet(1)},
    }
    fields.update(changes)
    return LiveService(**fields)  # type: ignore[arg-type]


def sample_plan():  # type: ignore[no-untyped-def]
    desired = DesiredState(
        services=(
            DesiredService(
                name="Greeter",
                description="new",
                source=SourcePos("services/greeter.yaml", 1, 1),
                agent_id=AGENT,
                service_hierarchical_state_machine_id=FLOW,
                version_sets={"canary": VersionSet(agent_version_number=2)},
            ),
            DesiredService(
                name="Fresh",
                description="brand new",
                source=SourcePos("services/fresh.yaml", 1, 1),
                agent_id=AGENT,
                service_hierarchical_state_machine_id=FLOW,
                version_sets={"release": VersionSet(agent_version_number=1)},
            ),
        ),
        digest="sha256:abc",
    )
    live = LiveState(services=(live_service(),))
    return plan_against(
        desired,
        live,
        organization="acme",
        base_url="https://user:hunter2@api.example.test",
        prune=True,
        created_at="2025-01-01T00:00:00+00:00",
    )


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    plan = sample_plan()
    path = tmp_path / "plan.json"
    save_plan(plan, path)
    loaded = load_plan(path)
    assert loaded.operations == plan.operations
    assert loaded.summary == plan.summary
    assert (loaded.organization, loaded.prune, loaded.live_fingerprint) == (
        "acme",
        True,
        plan.live_fingerprint,
    )
    assert plan_to_dict(loaded) == plan_to_dict(plan)


def test_saved_file_has_the_documented_keys_and_no_credentials(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(sample_plan(), path)
    text = path.read_text()
    data = json.loads(text)
    for key in (
        "format_version",
        "organization",
        "base_url",
        "manifests_digest",
        "live_fingerprint",
        "created_at",
        "operations",
        "summary",
        "drift",
        "warnings",
        "errors",
        "prune",
        "targets",
        "api_reads",
        "checksum",
    ):
        assert key in data, key
    for op in data["operations"]:
        assert {
            "key",
            "action",
            "kind",
            "service",
            "service_id",
            "version_set",
            "changes",
            "request",
            "depends_on",
            "service_from",
            "source",
        } <= set(op)
    assert "hunter2" not in text and data["base_url"] == "https://api.example.test"


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(sample_plan(), path)
    data = json.loads(path.read_text())
    data["operations"][0]["request"]["description"] = "sneaky"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match="modified after it was written"):
        load_plan(path)


def test_unknown_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(sample_plan(), path)
    data = json.loads(path.read_text())
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match="format_version 99"):
        load_plan(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json at all", "is not JSON"),
        ("[1, 2]", "not a reconciler plan"),
        ('{"hello": 1}', "not a reconciler plan"),
    ],
)
def test_malformed_file_names_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "weird.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as caught:
        load_plan(path)
    assert "weird.json" in str(caught.value)


def test_wrong_shape_with_a_valid_checksum_is_refused(tmp_path: Path) -> None:
    from reconciler.planfile import checksum

    path = tmp_path / "plan.json"
    save_plan(sample_plan(), path)
    data = json.loads(path.read_text())
    del data["operations"][0]["action"]
    data["checksum"] = checksum(data)
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"operations\[0\]\.action is missing"):
        load_plan(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read plan file"):
        load_plan(tmp_path / "absent.json")


def test_foreign_plan_is_refused() -> None:
    plan = sample_plan()
    check_plan_target(plan, organization="acme", base_url="https://api.example.test/")
    with pytest.raises(UserError, match="organization 'acme'"):
        check_plan_target(plan, organization="other", base_url="https://api.example.test")
    with pytest.raises(UserError, match="made against"):
        check_plan_target(plan, organization="acme", base_url="https://elsewhere.test")


def test_live_fingerprint_changes_with_live_state_and_ignores_order() -> None:
    a, b = live_service(), live_service(id="4" * 24, name="Other")
    assert live_fingerprint(LiveState((a, b))) == live_fingerprint(LiveState((b, a)))
    changed = live_service(description="edited by someone")
    assert live_fingerprint(LiveState((a,))) != live_fingerprint(LiveState((changed,)))
    assert live_fingerprint(LiveState((a,))) == live_fingerprint(LiveState((live_service(),)))


def test_live_fingerprint_is_the_sha256_of_the_sorted_canonical_records() -> None:
    """Built from per-service serializations, it still equals the documented formula."""
    import hashlib

    from reconciler.plan import canonical_json, live_service_record

    services = (live_service(id="9" * 24, name="Zeta"), live_service(name='Ünïcode "q"'))
    records = sorted((live_service_record(s) for s in services), key=lambda r: r["id"])
    expected = "sha256:" + hashlib.sha256(canonical_json(records)).hexdigest()
    assert live_fingerprint(LiveState(services)) == expected
    assert live_fingerprint(()) == "sha256:" + hashlib.sha256(b"[]").hexdigest()


def test_live_services_record_each_service_and_follow_its_fields() -> None:
    from reconciler.plan import live_service_digests, live_snapshot

    a, b = live_service(), live_service(id="4" * 24, name="Other")
    digests = live_service_digests(LiveState((b, a)))
    assert list(digests) == [LIVE_ID, "4" * 24]
    assert digests[LIVE_ID][0] == "Greeter" and len(digests[LIVE_ID][1]) == 16
    assert live_snapshot((a, b)) == (live_fingerprint((a, b)), digests)
    edited = live_service_digests((live_service(description="edited"), b))
    assert edited[LIVE_ID] != digests[LIVE_ID] and edited["4" * 24] == digests["4" * 24]


def test_plan_file_keeps_live_services_sorted_and_checksummed(tmp_path: Path) -> None:
    from reconciler.planfile import checksum

    plan = sample_plan()
    assert plan.live_services is not None and set(plan.live_services) == {LIVE_ID}
    path = tmp_path / "plan.json"
    save_plan(plan, path)
    data = json.loads(path.read_text())
    assert data["live_services"] == {LIVE_ID: list(plan.live_services[LIVE_ID])}
    assert load_plan(path).live_services == plan.live_services

    data["live_services"][LIVE_ID][1] = "0" * 16  # an edit is caught by the checksum
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match="modified after it was written"):
        load_plan(path)

    data["live_services"] = {LIVE_ID: "Greeter"}  # a wrong shape is named
    data["checksum"] = checksum(data)
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match="live_services is not a map"):
        load_plan(path)


def test_plan_file_from_before_live_services_still_loads(tmp_path: Path) -> None:
    from reconciler.planfile import checksum

    path = tmp_path / "plan.json"
    save_plan(sample_plan(), path)
    data = json.loads(path.read_text())
    del data["live_services"]
    data["checksum"] = checksum(data)
    path.write_text(json.dumps(data))
    loaded = load_plan(path)
    assert loaded.live_services is None
    assert "live_services" not in plan_to_dict(loaded)
