"""A stale saved plan's refusal names the services that changed since planning."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from support.paths import SEED

from reconciler.diagnostics import UserError
from reconciler.emulator import Emulator
from reconciler.live import services_from_api
from reconciler.plan import Plan, live_snapshot, stale_services
from reconciler.workflow import STALE_SERVICES_SHOWN, check_saved_plan

GENERIC = "live state changed since the plan was made; run plan again"


@dataclass
class _Config:
    organization: str = "acme"
    base_url: str = "https://api.example.test"


class FakeClient:
    """Answers the one read `check_saved_plan` makes with the services given."""

    def __init__(self, services: Sequence[dict[str, Any]]) -> None:
        self.config = _Config()
        self._services = list(services)

    def list_services(self, **_: Any) -> list[dict[str, Any]]:
        return copy.deepcopy(self._services)


@pytest.fixture(scope="module")
def seed_services() -> list[dict[str, Any]]:
    return Emulator.from_seed(SEED).services()


def plan_for(services: Sequence[dict[str, Any]], *, with_live_services: bool = True) -> Plan:
    fingerprint, live_services = live_snapshot(services_from_api(services))
    return Plan(
        organization="acme",
        base_url="https://api.example.test",
        manifests_digest="sha256:x",
        live_fingerprint=fingerprint,
        created_at="2025-01-01T00:00:00+00:00",
        live_services=live_services if with_live_services else None,
    )


def refusal(plan: Plan, services: Sequence[dict[str, Any]]) -> str:
    with pytest.raises(UserError) as caught:
        check_saved_plan(FakeClient(services), plan)  # type: ignore[arg-type]
    return str(caught.value)


def test_unchanged_live_state_is_accepted(seed_services: list[dict[str, Any]]) -> None:
    check_saved_plan(FakeClient(seed_services), plan_for(seed_services))  # type: ignore[arg-type]


def test_a_removed_service_is_named(seed_services: list[dict[str, Any]]) -> None:
    gone, *rest = seed_services
    message = refusal(plan_for(seed_services), rest)
    assert message.startswith(f"error: {GENERIC}")
    assert "1 service(s) differ from when the plan was made:" in message
    assert message.endswith(f'\n  removed: "{gone["name"]}" (id {gone["id"]})')


def test_a_changed_tag_is_named_and_the_rest_are_not(seed_services: list[dict[str, Any]]) -> None:
    now = copy.deepcopy(seed_services)
    now[1]["tags"] = [*now[1]["tags"], {"key": "owner", "value": "someone"}]
    message = refusal(plan_for(seed_services), now)
    assert f'changed: "{now[1]["name"]}" (id {now[1]["id"]})' in message
    assert all(s["id"] not in message for i, s in enumerate(now) if i != 1)


def test_many_changes_list_the_first_ones_then_a_count(
    seed_services: list[dict[str, Any]],
) -> None:
    template = seed_services[0]
    added = [
        {**copy.deepcopy(template), "id": f"{n:024x}", "name": f"Added {n:02d}"}
        for n in range(STALE_SERVICES_SHOWN + 3)
    ]
    message = refusal(plan_for(seed_services), [*seed_services, *added])
    lines = message.splitlines()[1:]
    assert lines[:STALE_SERVICES_SHOWN] == [
        f'  added: "Added {n:02d}" (id {n:024x})' for n in range(STALE_SERVICES_SHOWN)
    ]
    assert lines[STALE_SERVICES_SHOWN:] == ["  and 3 more"]
    assert f"{STALE_SERVICES_SHOWN + 3} service(s) differ" in message


def test_a_plan_without_live_services_gets_the_generic_refusal(
    seed_services: list[dict[str, Any]],
) -> None:
    message = refusal(plan_for(seed_services, with_live_services=False), seed_services[1:])
    assert message == (
        f"error: {GENERIC} (`reconciler plan PATH... --out FILE`) and apply the new plan"
    )


def test_stale_services_orders_changed_added_removed() -> None:
    planned = {"b": ("Beta", "1"), "a": ("Alpha", "1"), "g": ("Gone", "1"), "s": ("Same", "1")}
    current = {"a": ("Alpha", "2"), "b": ("Bravo", "2"), "n": ("New", "1"), "s": ("Same", "1")}
    assert stale_services(planned, current) == [
        'changed: "Alpha" (id a)',
        'changed: "Bravo" (id b), renamed from "Beta"',
        'added: "New" (id n)',
        'removed: "Gone" (id g)',
    ]
