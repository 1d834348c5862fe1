"""Live state: normalization to model.py, and reading only what the plan needs."""

from __future__ import annotations

from typing import Any

from reconciler.diagnostics import SourcePos
from reconciler.live import (
    fetch_live,
    fetch_services,
    fetch_unit_tests,
    services_from_api,
    unit_tests_from_api,
)
from reconciler.model import DesiredService, DesiredState, LiveState, LLMConfig, VersionSet
from reconciler.planner import references_needed

API_SERVICE: dict[str, Any] = {
    "id": "a" * 24,
    "name": "Greeter",
    "description": "hi",
    "is_active": True,
    "agent_id": "1" * 24,
    "service_hierarchical_state_machine_id": "2" * 24,
    "tags": [{"key": "managed_by", "value": "amigo_reconciler"}, {"key": "tier", "value": None}],
    "keyterms": ["hello"],
    "version_sets": {
        "edge": {
            "agent_version_number": None,
            "service_hierarchical_state_machine_version_number": None,
            "llm_model_preferences": {},
        },
        "release": {
            "agent_version_number": 2,
            "service_hierarchical_state_machine_version_number": None,
            "llm_model_preferences": {"conversation": {"llm_name": "openai_gpt-5.1-2025-11-13"}},
        },
    },
    "creator": {},
    "updated_by": {},
}


def desired(**fields: Any) -> DesiredState:
    base: dict[str, Any] = {
        "name": "Greeter",
        "description": "hi",
        "source": SourcePos("s.yaml", 1, 1),
        "agent_id": "1" * 24,
        "service_hierarchical_state_machine_id": "2" * 24,
    }
    base.update(fields)
    return DesiredState((DesiredService(**base),), digest="d")


class CountingClient:
    """Records which list calls a fetch makes."""

    def __init__(self, services: list[dict[str, Any]]) -> None:
        self.services = services
        self.calls: list[str] = []

    def list_services(self) -> list[dict[str, Any]]:
        self.calls.append("services")
        return self.services

    def list_agents(self) -> list[dict[str, Any]]:
        self.calls.append("agents")
        return [{"id": "1" * 24, "name": "Concierge", "deprecated": False, "latest_version": 3}]

    def list_state_machines(self) -> list[dict[str, Any]]:
        self.calls.append("state_machines")
        return []

    def list_unit_tests(self, service_ids: list[str]) -> list[dict[str, Any]]:
        self.calls.append(f"unit_tests:{','.join(service_ids)}")
        return [
            {
                "id": "t1",
                "name": "T",
                "service_id": service_ids[0],
                "service_version_set_name": "release",
                "is_deleted": False,
            },
            {
                "id": "t2",
                "name": "Gone",
                "service_id": service_ids[0],
                "service_version_set_name": "release",
                "is_deleted": True,
            },
        ]


def test_services_are_normalized() -> None:
    (service,) = services_from_api([API_SERVICE])
    assert service.tags == {"managed_by": "amigo_reconciler", "tier": None}
    assert service.owned and service.keyterms == ("hello",)
    release = service.version_sets["release"]
    assert release == VersionSet(
        agent_version_number=2,
        llm_model_preferences={"conversation": LLMConfig("openai_gpt-5.1-2025-11-13", {})},
    )


def read_live(client: CountingClient, state: DesiredState) -> LiveState:
    """What the workflow reads for a plan: services, then the references the planner needs."""
    services = fetch_services(client)  # type: ignore[arg-type]
    agents, state_machines = references_needed(state, services)
    return fetch_live(client, services, agents=agents, state_machines=state_machines)  # type: ignore[arg-type]


def test_id_references_on_a_converged_service_read_only_services() -> None:
    client = CountingClient([API_SERVICE])
    live = read_live(client, desired())
    assert client.calls == ["services"]
    assert live.agents is None and live.state_machines is None and live.unit_tests is None


def test_a_named_agent_or_a_version_pin_reads_agents_once() -> None:
    client = CountingClient([API_SERVICE])
    live = read_live(client, desired(agent="Concierge", agent_id=None))
    assert client.calls == ["services", "agents"]
    assert live.agents is not None and live.agents[0].latest_version == 3
    services = services_from_api([API_SERVICE])
    pinned = desired(version_sets={"canary": VersionSet(agent_version_number=2)})
    assert references_needed(pinned, services) == (True, False)


def test_a_create_needs_both_references_checked() -> None:
    assert references_needed(desired(name="Brand New"), services_from_api([API_SERVICE])) == (
        True,
        True,
    )


def test_targets_limit_what_is_read() -> None:
    state = desired(agent="Concierge", agent_id=None)
    services = services_from_api([API_SERVICE])
    assert references_needed(state, services, targets=["Other"]) == (False, False)


def test_unit_tests_in_one_call_and_none_without_ids() -> None:
    client = CountingClient([])
    assert fetch_unit_tests(client, []) == ()  # type: ignore[arg-type]
    assert client.calls == []
    tests = fetch_unit_tests(client, ["b" * 24, "a" * 24, "a" * 24])  # type: ignore[arg-type]
    assert client.calls == [f"unit_tests:{'a' * 24},{'b' * 24}"]
    assert [t.name for t in tests] == ["T"]  # deleted tests block nothing


def test_unit_tests_from_api_skips_deleted() -> None:
    rows = [
        {
            "id": "x",
            "name": "n",
            "service_id": "s",
            "service_version_set_name": "v",
            "is_deleted": True,
        }
    ]
    assert unit_tests_from_api(rows) == ()


def test_references_follow_the_planners_identity_matching() -> None:
    """Which live service a manifest is compared with decides what must be read, so it is
    the planner's own matching: an inactive namesake is a match (no create, nothing to
    check), and a name a pinned rename takes away leaves the other manifest a create."""
    inactive = {**API_SERVICE, "is_active": False}
    assert references_needed(desired(is_active=False), services_from_api([inactive])) == (
        False,
        False,
    )
    renamed = DesiredService(
        name="Hello",
        description="hi",
        source=SourcePos("s.yaml", 9, 1),
        id=API_SERVICE["id"],
        agent_id="1" * 24,
        service_hierarchical_state_machine_id="2" * 24,
    )
    state = DesiredState((*desired().services, renamed), digest="d")
    assert references_needed(state, services_from_api([API_SERVICE])) == (True, True)
