"""The executor against a fake client: ordering, concurrency, failures, lost answers, cancel."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from reconciler.api.errors import BadRequest, Conflict, NotFound, OutcomeUnknown, ServerError
from reconciler.applier import (
    ApplyReport,
    OperationResult,
    Status,
    apply_plan,
    rate_limit_floor,
    update_holds,
)
from reconciler.convergence import remaining_differences
from reconciler.diagnostics import Diagnostic
from reconciler.plan import Action, Drift, Kind, Operation, Plan

OWNED = {"managed_by": "amigo_reconciler"}
AGENT = "a" * 24
MACHINE = "b" * 24


class FakeClient:
    """An in-memory service store with scripted faults, recording every write.

    `faults[(method, service_name, version_set)]` is a list consumed one per call:
    "lost_after" (applied, answer lost), "lost_before" (not applied, answer lost),
    or an exception instance to raise without applying.
    """

    def __init__(self, services: Sequence[dict[str, Any]] = ()) -> None:
        self.services: dict[str, dict[str, Any]] = {s["id"]: s for s in services}
        self.faults: dict[tuple[str, str, str | None], list[Any]] = {}
        self.calls: list[tuple[str, str, str | None]] = []
        self.lock = threading.Lock()
        self.ids = (f"{n:024x}" for n in itertools.count(0xC0FFEE))
        self.active: dict[str, int] = {}
        self.max_active: dict[str, int] = {}
        self.max_total = 0
        self.gates: dict[str, threading.Event] = {}  # method -> held until set
        self.started: dict[str, threading.Event] = {}

    def _enter(self, method: str, name: str, version_set: str | None) -> Any:
        with self.lock:
            self.calls.append((method, name, version_set))
            self.active[method] = self.active.get(method, 0) + 1
            self.max_active[method] = max(self.max_active.get(method, 0), self.active[method])
            self.max_total = max(self.max_total, sum(self.active.values()))
            queue = self.faults.get((method, name, version_set)) or []
            fault = queue.pop(0) if queue else None
        if method in self.started:
            self.started[method].set()
        if method in self.gates:
            assert self.gates[method].wait(5), f"{method} gate never opened"
        return fault

    def _leave(self, method: str) -> None:
        with self.lock:
            self.active[method] -= 1

    def _call(self, method: str, name: str, version_set: str | None, apply: Any) -> Any:
        fault = self._enter(method, name, version_set)
        try:
            if isinstance(fault, Exception):
                raise fault
            if fault == "lost_before":
                raise OutcomeUnknown(method, service=name, detail="connection dropped")
            result = apply()
            if fault == "lost_after":
                raise OutcomeUnknown(method, service=name, detail="connection dropped")
            return result
        finally:
            self._leave(method)

    # --- the ApplyClient protocol ----------------------------------------------------
    def list_services(
        self, *, ids: Sequence[str] = (), is_active: bool | None = None, tags: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        with self.lock:
            self.calls.append(("list_services", ",".join(ids), None))
            out = []
            for s in self.services.values():
                if ids and s["id"] not in ids:
                    continue
                if is_active is not None and s["is_active"] != is_active:
                    continue
                pairs = {f"{t['key']}:{t['value']}" for t in s["tags"]}
                if any(t not in pairs for t in tags):
                    continue
                out.append(_copy(s))
            return out

    def create_service(self, body: Mapping[str, Any], *, service: str) -> str:
        def apply() -> str:
            with self.lock:
                sid = next(self.ids)
                if body["is_active"] and any(
                    s["name"] == body["name"] and s["is_active"] for s in self.services.values()
                ):
                    raise Conflict(
                        "create-service", status=409, detail="name taken", service=service
                    )
                release = body.get("release_version_set") or _vs()
                self.services[sid] = {
                    "id": sid,
                    "name": body["name"],
                    "description": body["description"],
                    "is_active": body["is_active"],
                    "agent_id": body["agent_id"],
                    "service_hierarchical_state_machine_id": body[
                        "service_hierarchical_state_machine_id"
                    ],
                    "tags": [{"key": k, "value": v} for k, v in body["tags"].items()],
                    "keyterms": list(body["keyterms"]),
                    "version_sets": {"edge": _vs(), "release": dict(release)},
                }
                return sid

        return self._call("create_service", service, None, apply)  # type: ignore[no-any-return]

    def update_service(self, service_id: str, body: Mapping[str, Any], *, service: str) -> None:
        def apply() -> None:
            with self.lock:
                live = self._get(service_id, service)
                for key, value in body.items():
                    if value is None:
                        continue
                    if key == "tags":
                        live["tags"] = [{"key": k, "value": v} for k, v in value.items()]
                    else:
                        live[key] = value

        self._call("update_service", service, None, apply)

    def upsert_version_set(
        self, service_id: str, name: str, version_set: Mapping[str, Any], *, service: str
    ) -> None:
        def apply() -> None:
            with self.lock:
                self._get(service_id, service)["version_sets"][name] = dict(version_set)

        self._call("upsert_version_set", service, name, apply)

    def delete_version_set(self, service_id: str, name: str, *, service: str) -> None:
        def apply() -> None:
            with self.lock:
                sets = self._get(service_id, service)["version_sets"]
                if name not in sets:
                    raise NotFound(
                        "delete-service-version-set",
                        status=404,
                        detail="version set not found",
                        service=service,
                    )
                del sets[name]

        self._call("delete_version_set", service, name, apply)

    def _get(self, service_id: str, service: str) -> dict[str, Any]:
        if service_id not in self.services:
            raise NotFound("service", status=404, detail="service not found", service=service)
        return self.services[service_id]

    def writes(self, method: str | None = None) -> list[tuple[str, str, str | None]]:
        return [c for c in self.calls if c[0] != "list_services" and (not method or c[0] == method)]


def _copy(service: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(service)
    out["tags"] = [dict(t) for t in service["tags"]]
    out["version_sets"] = {k: dict(v) for k, v in service["version_sets"].items()}
    return out


def _vs(agent: int | None = None) -> dict[str, Any]:
    return {
        "agent_version_number": agent,
        "service_hierarchical_state_machine_version_number": None,
        "llm_model_preferences": {},
    }


def live_service(sid: str, name: str, *, active: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "id": sid,
        "name": name,
        "description": f"{name} service",
        "is_active": active,
        "agent_id": AGENT,
        "service_hierarchical_state_machine_id": MACHINE,
        "tags": [{"key": "managed_by", "value": "amigo_reconciler"}],
        "keyterms": [],
        "version_sets": {"edge": _vs(), "release": _vs(), **extra.pop("version_sets", {})},
        **extra,
    }


_keys = itertools.count(1)


def op_create(name: str, *, active: bool = True, key: str | None = None, **kw: Any) -> Operation:
    return Operation(
        key=key or f"op-{next(_keys):03d}",
        action=Action.CREATE_SERVICE,
        kind=Kind.CREATE,
        service=name,
        service_id=None,
        request={
            "name": name,
            "description": f"{name} service",
            "is_active": active,
            "agent_id": AGENT,
            "service_hierarchical_state_machine_id": MACHINE,
            "tags": dict(OWNED),
            "keyterms": [],
            "release_version_set": _vs(1),
        },
        **kw,
    )


def op_upsert(
    name: str, vs: str, *, sid: str | None = None, key: str | None = None, **kw: Any
) -> Operation:
    return Operation(
        key=key or f"op-{next(_keys):03d}",
        action=Action.UPSERT_VERSION_SET,
        kind=Kind.CREATE,
        service=name,
        service_id=sid,
        version_set=vs,
        request=_vs(2),
        **kw,
    )


def op_update(name: str, sid: str, request: Mapping[str, Any], **kw: Any) -> Operation:
    return Operation(
        key=kw.pop("key", None) or f"op-{next(_keys):03d}",
        action=Action.UPDATE_SERVICE,
        kind=kw.pop("kind", Kind.UPDATE),
        service=name,
        service_id=sid,
        request=dict(request),
        **kw,
    )


def op_delete(name: str, sid: str, vs: str, **kw: Any) -> Operation:
    return Operation(
        key=kw.pop("key", None) or f"op-{next(_keys):03d}",
        action=Action.DELETE_VERSION_SET,
        kind=Kind.DELETE,
        service=name,
        service_id=sid,
        version_set=vs,
        **kw,
    )


def make_plan(*ops: Operation, **kw: Any) -> Plan:
    return Plan(
        organization="org",
        base_url="http://localhost",
        manifests_digest="d",
        live_fingerprint="f",
        created_at="2025-01-01T00:00:00Z",
        operations=ops,
        **kw,
    )


def statuses(report: ApplyReport) -> dict[str, Status]:
    return {r.key: r.status for r in report.results}


# --- order and ids -------------------------------------------------------------------


def test_work_on_a_new_service_waits_for_its_create_and_gets_its_id() -> None:
    client = FakeClient()
    create = op_create("Alpha", key="c")
    canary = op_upsert("Alpha", "canary", key="u1", service_from="c")
    beta = op_upsert("Alpha", "beta", key="u2", service_from="c", depends_on=("u1",))
    report = apply_plan(client, make_plan(create, canary, beta))

    assert report.ok, report
    assert [c[0] for c in client.writes()] == [
        "create_service",
        "upsert_version_set",
        "upsert_version_set",
    ]
    new_id = report.created_ids["c"]
    assert set(client.services[new_id]["version_sets"]) == {"edge", "release", "canary", "beta"}
    assert {r.service_id for r in report.results} == {new_id}
    assert [r.key for r in report.results] == ["c", "u1", "u2"]


def test_every_result_is_reported_once_through_on_event_in_finish_order() -> None:
    client = FakeClient([live_service("1" * 24, "Old")])
    events: list[OperationResult] = []
    plan = make_plan(
        op_create("Alpha", key="c"),
        op_upsert("Alpha", "x", key="u", service_from="c"),
        op_update("Old", "1" * 24, {"description": "new"}, key="d"),
    )
    report = apply_plan(client, plan, on_event=events.append)
    assert sorted(e.key for e in events) == ["c", "d", "u"]
    assert [e.key for e in events].index("c") < [e.key for e in events].index("u")
    assert all(e.duration >= 0 for e in events)
    assert report.counts == {
        "done": 3,
        "failed": 0,
        "outcome_unknown": 0,
        "skipped": 0,
        "not_started": 0,
    }


# --- failures --------------------------------------------------------------------------


def test_failed_operation_skips_its_dependents_and_independent_work_goes_on() -> None:
    client = FakeClient([live_service("1" * 24, "Other")])
    client.faults[("create_service", "Alpha", None)] = [
        Conflict("create-service", status=409, detail="Service name is taken.", service="Alpha")
    ]
    plan = make_plan(
        op_create("Alpha", key="c"),
        op_upsert("Alpha", "canary", key="u1", service_from="c"),
        op_upsert("Alpha", "beta", key="u2", service_from="c", depends_on=("u1",)),
        op_create("Beta", key="c2"),
        op_upsert("Beta", "canary", key="u3", service_from="c2"),
        op_update("Other", "1" * 24, {"description": "changed"}, key="o"),
    )
    report = apply_plan(client, plan)

    assert not report.ok
    assert statuses(report) == {
        "c": Status.FAILED,
        "u1": Status.SKIPPED,
        "u2": Status.SKIPPED,
        "c2": Status.DONE,
        "u3": Status.DONE,
        "o": Status.DONE,
    }
    failed = report.by_status(Status.FAILED)[0]
    assert (failed.error_class, failed.api_status, failed.detail) == (
        "Conflict",
        409,
        "Service name is taken.",
    )
    assert "Alpha" in (failed.message or "") and "409" in (failed.message or "")
    skipped = {r.key: r.message for r in report.by_status(Status.SKIPPED)}
    assert "c (create 'Alpha') failed" in (skipped["u1"] or "")
    assert "c (create 'Alpha') failed" in (skipped["u2"] or "")
    # Nothing was sent for the skipped work.
    assert ("upsert_version_set", "Alpha", "canary") not in client.calls
    assert client.services["1" * 24]["description"] == "changed"


def test_failure_of_one_of_several_dependencies_skips_the_dependent() -> None:
    sid = "1" * 24
    client = FakeClient([live_service(sid, "S")])
    client.faults[("update_service", "S", None)] = [
        BadRequest("update-service", status=400, detail="in use by a unit test", service="S")
    ]
    plan = make_plan(
        op_upsert("S", "a", sid=sid, key="a"),
        op_update("S", sid, {"agent_id": "c" * 24}, key="up"),
        op_upsert("S", "b", sid=sid, key="b", depends_on=("a", "up")),
    )
    report = apply_plan(client, plan)
    assert statuses(report) == {"a": Status.DONE, "up": Status.FAILED, "b": Status.SKIPPED}


def test_transitive_dependents_are_skipped_naming_the_failed_operation() -> None:
    sid = "1" * 24
    client = FakeClient([live_service(sid, "S")])
    client.faults[("upsert_version_set", "S", "a")] = [
        BadRequest("upsert-service-version-set", status=400, detail="no", service="S")
    ]
    plan = make_plan(
        op_upsert("S", "a", sid=sid, key="a"),
        op_upsert("S", "b", sid=sid, key="b", depends_on=("a",)),
        op_upsert("S", "c", sid=sid, key="c", depends_on=("b",)),
    )
    report = apply_plan(client, plan)
    assert statuses(report) == {"a": Status.FAILED, "b": Status.SKIPPED, "c": Status.SKIPPED}
    assert report.results[2].message == "depends on a (create 'S' version set 'a'), which failed"


def test_unexpected_exception_is_reported_against_its_operation() -> None:
    client = FakeClient()
    client.faults[("create_service", "A", None)] = [RuntimeError("boom")]
    report = apply_plan(client, make_plan(op_create("A", key="c"), op_create("B", key="d")))
    assert statuses(report) == {"c": Status.FAILED, "d": Status.DONE}
    assert "internal error" in (report.results[0].message or "")


def test_a_plan_with_errors_is_never_applied() -> None:
    client = FakeClient()
    plan = make_plan(op_create("A"), errors=(Diagnostic("unknown agent"),))
    with pytest.raises(ValueError, match="error"):
        apply_plan(client, plan)
    assert client.calls == []


def test_dependency_on_an_unknown_operation_is_skipped_not_hung() -> None:
    client = FakeClient()
    report = apply_plan(client, make_plan(op_create("A", key="c", depends_on=("ghost",))))
    assert statuses(report) == {"c": Status.SKIPPED}
    assert "ghost" in (report.results[0].message or "")


# --- lost answers ------------------------------------------------------------------------


def test_lost_create_answer_after_commit_finds_the_service_and_does_not_resend() -> None:
    client = FakeClient()
    client.faults[("create_service", "Alpha", None)] = ["lost_after"]
    plan = make_plan(
        op_create("Alpha", key="c"), op_upsert("Alpha", "canary", key="u", service_from="c")
    )
    report = apply_plan(client, plan)

    assert report.ok, report
    assert len(client.writes("create_service")) == 1
    assert [s["name"] for s in client.services.values()] == ["Alpha"]
    (sid,) = client.services
    assert report.created_ids["c"] == sid
    assert "canary" in client.services[sid]["version_sets"]
    assert "found" in (report.results[0].message or "")


def test_lost_create_answer_with_nothing_found_is_never_sent_again() -> None:
    # The server may still be working on it (issue 12, item 1): one look-up that
    # finds nothing proves nothing, so the create is not re-sent.
    client = FakeClient()
    client.faults[("create_service", "Alpha", None)] = ["lost_before"]
    plan = make_plan(op_create("Alpha", key="c"), op_upsert("Alpha", "x", service_from="c"))
    report = apply_plan(client, plan)
    assert len(client.writes("create_service")) == 1
    assert [r.status for r in report.results] == [Status.OUTCOME_UNKNOWN, Status.SKIPPED]
    assert not report.ok
    first, skipped = report.results
    assert first.error_class == "OutcomeUnknown"
    assert "not sent again" in (first.message or "") and "run plan again" in (first.message or "")
    assert "may or may not have taken effect" in (skipped.message or "")
    assert client.services == {}


def test_lost_create_does_not_mistake_a_known_same_named_service_for_the_new_one() -> None:
    # An owned, inactive "Alpha" already exists (the plan knows it as drift); a new
    # inactive "Alpha" is created and its answer lost after it took effect.
    old = live_service("9" * 24, "Alpha", active=False)
    client = FakeClient([old])
    client.faults[("create_service", "Alpha", None)] = ["lost_after"]
    plan = make_plan(
        op_create("Alpha", active=False, key="c"),
        drift=(Drift("Alpha", "9" * 24, "owned, not in the manifests"),),
    )
    report = apply_plan(client, plan)
    assert report.ok
    assert report.created_ids["c"] != "9" * 24
    assert len(client.services) == 2


def test_lost_create_answer_then_a_failed_look_up_is_outcome_unknown_not_failed() -> None:
    # Issue 12, item 6: the create happened; "failed" would say it did not.
    client = FakeClient()
    client.faults[("create_service", "Alpha", None)] = ["lost_after"]
    broken_list = ServerError("get-services", status=502, detail="bad gateway")

    def list_services(**_: Any) -> list[dict[str, Any]]:
        raise broken_list

    client.list_services = list_services  # type: ignore[method-assign]
    plan = make_plan(op_create("Alpha", key="c"), op_upsert("Alpha", "x", service_from="c"))
    report = apply_plan(client, plan)
    assert [r.status for r in report.results] == [Status.OUTCOME_UNKNOWN, Status.SKIPPED]
    assert report.results[0].error_class == "OutcomeUnknown"
    assert "look-up" in (report.results[0].message or "")
    assert len(client.writes("create_service")) == 1 and len(client.services) == 1


def test_lost_update_answer_then_a_failed_look_up_is_outcome_unknown() -> None:
    sid = "1" * 24
    client = FakeClient([live_service(sid, "S")])
    client.faults[("update_service", "S", None)] = ["lost_after"]

    def list_services(**_: Any) -> list[dict[str, Any]]:
        raise ServerError("get-services", status=503, detail="maintenance")

    client.list_services = list_services  # type: ignore[method-assign]
    report = apply_plan(client, make_plan(op_update("S", sid, {"is_active": False})))
    assert report.results[0].status is Status.OUTCOME_UNKNOWN
    assert len(client.writes("update_service")) == 1


def test_lost_update_answer_after_commit_is_not_resent() -> None:
    sid = "1" * 24
    client = FakeClient([live_service(sid, "S")])
    client.faults[("update_service", "S", None)] = ["lost_after"]
    request = {"description": "new", "tags": {"managed_by": "amigo_reconciler", "team": "x"}}
    report = apply_plan(client, make_plan(op_update("S", sid, request)))
    assert report.ok
    assert len(client.writes("update_service")) == 1
    assert "taken effect" in (report.results[0].message or "")


def test_lost_update_answer_before_commit_is_resent() -> None:
    sid = "1" * 24
    client = FakeClient([live_service(sid, "S")])
    client.faults[("update_service", "S", None)] = ["lost_before"]
    report = apply_plan(client, make_plan(op_update("S", sid, {"is_active": False})))
    assert report.ok
    assert len(client.writes("update_service")) == 2
    assert client.services[sid]["is_active"] is False


def test_delete_404_on_a_version_set_already_gone_is_done() -> None:
    sid = "1" * 24
    client = FakeClient([live_service(sid, "S")])  # no "canary": an earlier attempt deleted it
    report = apply_plan(client, make_plan(op_delete("S", sid, "canary")))
    assert report.ok
    assert "already absent" in (report.results[0].message or "")


def test_delete_404_because_the_service_is_gone_fails() -> None:
    client = FakeClient()
    report = apply_plan(client, make_plan(op_delete("S", "1" * 24, "canary")))
    assert report.results[0].status is Status.FAILED
    assert report.results[0].api_status == 404


def test_delete_whose_answer_stayed_lost_through_the_clients_retries_is_outcome_unknown() -> None:
    sid = "1" * 24
    client = FakeClient([live_service(sid, "S", version_sets={"canary": _vs(1)})])
    client.faults[("delete_version_set", "S", "canary")] = ["lost_after"]
    report = apply_plan(client, make_plan(op_delete("S", sid, "canary")))
    assert report.results[0].status is Status.OUTCOME_UNKNOWN
    assert len(client.writes("delete_version_set")) == 1


def test_server_error_that_persisted_is_a_failure_with_status() -> None:
    sid = "1" * 24
    client = FakeClient([live_service(sid, "S")])
    client.faults[("upsert_version_set", "S", "x")] = [
        ServerError("upsert-service-version-set", status=503, detail="unavailable", service="S")
    ]
    report = apply_plan(client, make_plan(op_upsert("S", "x", sid=sid)))
    assert (report.results[0].status, report.results[0].api_status) == (Status.FAILED, 503)


# --- concurrency -------------------------------------------------------------------------


def test_independent_operations_run_concurrently() -> None:
    client = FakeClient([live_service(f"{i:024x}", f"S{i}") for i in range(1, 5)])
    client.gates["upsert_version_set"] = gate = threading.Event()
    opener = threading.Timer(0.3, gate.set)
    opener.daemon = True
    opener.start()
    ops = [op_upsert(f"S{i}", "x", sid=f"{i:024x}") for i in range(1, 5)]
    report = apply_plan(client, make_plan(*ops), max_workers=8)
    assert report.ok
    assert client.max_active["upsert_version_set"] == 4


def test_a_blocked_endpoint_does_not_hold_every_worker() -> None:
    # Creates are held (as if paced at 20/min); upserts on existing services must
    # still run meanwhile: dispatch is per endpoint, not a queue in plan order.
    existing = [live_service(f"{i:024x}", f"S{i}") for i in range(1, 9)]
    client = FakeClient(existing)
    client.gates["create_service"] = gate = threading.Event()
    creates = [op_create(f"New{i}") for i in range(8)]
    upserts = [op_upsert(f"S{i}", "x", sid=f"{i:024x}") for i in range(1, 9)]
    done_while_held: list[str] = []

    def on_event(result: OperationResult) -> None:
        if result.action is Action.UPSERT_VERSION_SET and not gate.is_set():
            done_while_held.append(result.key)
        if len(done_while_held) == len(upserts):
            gate.set()

    safety = threading.Timer(3, gate.set)  # never hang the suite
    safety.daemon = True
    safety.start()
    report = apply_plan(client, make_plan(*creates, *upserts), on_event=on_event, max_workers=4)
    safety.cancel()
    assert report.ok
    assert len(done_while_held) == len(upserts)
    assert client.max_active["create_service"] <= 2


def test_ready_work_that_unblocks_more_goes_first() -> None:
    client = FakeClient([live_service("1" * 24, "S")])
    plain = op_create("Plain", key="p")
    parent = op_create("Parent", key="q")
    children = [op_upsert("Parent", f"v{i}", service_from="q") for i in range(3)]
    apply_plan(client, make_plan(plain, parent, *children), max_workers=1)
    assert client.writes("create_service")[0][1] == "Parent"


def test_rate_limit_floor_is_the_busiest_endpoint() -> None:
    plan = make_plan(
        *[op_create(f"N{i}") for i in range(10)],
        *[op_upsert("S", f"v{i}", sid="1" * 24) for i in range(30)],
    )
    assert rate_limit_floor(plan) == pytest.approx(60.0)  # 30 upserts at 30/min; 10 creates: 30s


# --- cancel ------------------------------------------------------------------------------


def test_cancel_lets_in_flight_work_finish_and_starts_nothing_new() -> None:
    client = FakeClient()
    cancel = threading.Event()
    client.gates["create_service"] = gate = threading.Event()
    client.started["create_service"] = started = threading.Event()

    def cancel_when_started() -> None:
        started.wait(5)
        cancel.set()
        time.sleep(0.05)
        gate.set()

    threading.Thread(target=cancel_when_started, daemon=True).start()
    plan = make_plan(
        op_create("A", key="a"),
        op_upsert("A", "x", key="ax", service_from="a"),
        op_create("B", key="b", depends_on=("a",)),
    )
    report = apply_plan(client, plan, cancel=cancel)
    assert statuses(report) == {"a": Status.DONE, "ax": Status.NOT_STARTED, "b": Status.NOT_STARTED}
    assert report.cancelled and not report.ok
    assert len(client.writes()) == 1


# --- checks ------------------------------------------------------------------------------


def test_update_holds_compares_only_sent_fields_and_tags_as_a_map() -> None:
    live = live_service("1" * 24, "S", keyterms=["amigo"])
    assert update_holds(live, {"description": "S service", "name": None})
    assert update_holds(live, {"tags": {"managed_by": "amigo_reconciler"}})
    assert not update_holds(live, {"tags": {"managed_by": "amigo_reconciler", "x": "y"}})
    assert not update_holds(live, {"keyterms": ["other"]})
    assert not update_holds(live, {"is_active": False})


def test_remaining_differences_sees_what_did_not_take_effect() -> None:
    sid = "1" * 24
    client = FakeClient([live_service(sid, "S", version_sets={"old": _vs(1)})])
    client.faults[("upsert_version_set", "S", "x")] = [
        BadRequest("upsert-service-version-set", status=400, detail="bad version", service="S")
    ]
    plan = make_plan(
        op_create("New", key="c"),
        op_upsert("S", "x", sid=sid, key="u"),
        op_delete("S", sid, "old", key="d"),
        op_update("S", sid, {"description": "fresh"}, key="m"),
    )
    report = apply_plan(client, plan)
    assert statuses(report)["u"] is Status.FAILED
    assert remaining_differences(client, plan, report) == [
        "create 'S' version set 'x': still differs"
    ]


def test_the_follow_up_look_ups_of_a_lost_inactive_create_end_at_ctrl_c() -> None:
    """An inactive create is looked up again for about 2 x the client timeout (here 2 x 30 s);
    Ctrl-C (cancel) ends that wait at once and leaves the create outcome unknown."""
    from types import SimpleNamespace

    client = FakeClient()
    client.config = SimpleNamespace(timeout=30.0)  # type: ignore[attr-defined]
    client.faults[("create_service", "Alpha", None)] = ["lost_before"]
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    report = apply_plan(client, make_plan(op_create("Alpha", active=False, key="c")), cancel=cancel)
    assert time.monotonic() - started < 5
    (create,) = report.results
    assert create.status is Status.OUTCOME_UNKNOWN
    assert "failed" not in (create.message or "") and "wait" in (create.message or "")
    assert len(client.writes("create_service")) == 1
