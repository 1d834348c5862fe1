"""Plans are executable: applying one on the emulator and planning again yields no changes.

This checks every request body the planner builds against the emulator's rules
(one active service per name, version numbers, ownership tags) and the order it
chose, not just the shape of the plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_planner_scenarios import ID_A, ID_B, OWNED, Scenario, base_seed, manifest, ops, svc

from reconciler.applier import apply_plan


def converge(s: Scenario, *docs: str, prune: bool = False) -> list[tuple[str, str, str | None]]:
    plan = s.plan(*docs, prune=prune)
    assert plan.errors == (), plan.errors
    report = apply_plan(s.client, plan, max_workers=1)
    assert report.ok, [(r.key, r.status, r.message) for r in report.results]
    again = s.plan(*docs, prune=prune)
    assert again.operations == (), ops(again)
    return ops(plan)


def test_swap_agent_change_prune_and_creates_converge(tmp_path: Path) -> None:
    seed: dict[str, Any] = base_seed(
        [
            svc("Greeter", id=ID_A, tags=OWNED, description="v1"),
            svc("Greeter", id=ID_B, is_active=False, tags=OWNED, description="v2"),
            svc("Pinned", tags=OWNED, version_sets={"canary": {"agent_version_number": 4}}),
            svc("Retired Soon", tags=OWNED, version_sets={"old": {}}),
            svc("Hand Made", tags={"team": "ops"}, version_sets={"mine": {}}),
        ]
    )
    s = Scenario(tmp_path, seed)
    done = converge(
        s,
        manifest(
            "Greeter",
            "description: v2\nagent: Concierge\nservice_hierarchical_state_machine: Flow",
            meta=f"id: {ID_B}",
        ),
        manifest(
            "Greeter v1",
            "description: v1\nis_active: false\nagent: Concierge\n"
            "service_hierarchical_state_machine: Flow",
            meta=f"id: {ID_A}",
        ),
        manifest(
            "Pinned",
            """
            description: Pinned service
            agent: Helper
            service_hierarchical_state_machine: Flow Two
            version_sets:
              canary: {agent_version_number: 2, service_hierarchical_state_machine_version_number: 3}
              release:
                agent_version_number: 1
                llm_model_preferences:
                  conversation: {llm_name: openai_gpt-5.1-2025-11-13, params: {temperature: 0.2}}
            """,
        ),
        manifest(
            "Brand New",
            """
            description: New
            agent: Helper
            service_hierarchical_state_machine: Flow
            tags: {team: growth}
            keyterms: [brand new]
            version_sets:
              release: {agent_version_number: 2}
              canary: {}
            """,
        ),
        prune=True,
    )
    assert ("deactivate", "Retired Soon", None) in done
    assert all(service != "Hand Made" for _, service, _ in done)
    hand_made = next(x for x in s.emulator.services() if x["name"] == "Hand Made")
    assert "mine" in hand_made["version_sets"]
