"""A seed whose emulator runs simulations, and a manifest header for it (verify, apply --verify, promotion)."""

from __future__ import annotations

from typing import Any

HEADER = (
    "apiVersion: amigo.ai/v1\nkind: Service\nmetadata: {name: Front Desk}\nspec:\n"
    "  description: Front\n  agent: Concierge\n  service_hierarchical_state_machine: Flow\n"
    "  version_sets:\n"
    "    # release serves everyone; canary is where changes are tried first\n"
    "    release: {agent_version_number: 3}\n"
)


def seed(canary_agent: int = 4, **test_overrides: Any) -> dict[str, Any]:
    greets: dict[str, Any] = {
        "name": "Greets",
        "service": "Front Desk",
        "version_set": "canary",
        "metrics": ["Greeting", "Politeness"],
        "outcomes": [
            {
                "when": {"agent_version_number": 5},
                "result": "fail",
                "failed_metrics": ["Politeness"],
            },
            {"when": {"agent_version_number": 2}, "result": "error", "error": "persona crashed"},
        ],
    }
    greets.update(test_overrides)
    return {
        "organization": "sim-org",
        "credentials": {"api_key": "seed-key-not-secret", "api_key_id": "kid", "user_id": "u1"},
        "agents": [{"name": "Concierge", "latest_version": 5}],
        "state_machines": [{"name": "Flow", "latest_version": 3}],
        "services": [
            {
                "name": "Front Desk",
                "description": "Front",
                "agent": "Concierge",
                "service_hierarchical_state_machine": "Flow",
                "tags": {"managed_by": "amigo_reconciler"},
                "version_sets": {
                    "release": {"agent_version_number": 3},
                    "canary": {"agent_version_number": canary_agent},
                },
            }
        ],
        "unit_tests": [
            greets,
            {
                "name": "Books",
                "service": "Front Desk",
                "version_set": "canary",
                "metrics": ["Booked"],
            },
            {"name": "Release check", "service": "Front Desk", "version_set": "release"},
        ],
        "unit_test_sets": [
            {"name": "Smoke", "unit_tests": ["Greets", "Books"], "run_count": 2},
            {"name": "Billing regressions", "unit_tests": ["Release check"]},
        ],
    }
