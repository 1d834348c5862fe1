"""A generated organization and its manifests, with a known, realistic mix of changes.

`build(n)` describes n declared services, each with 4 version sets (release,
canary, beta, stable), and an emulator seed for the live side. Service i falls
in one group by `i % 20`, so every size has the same mix:

| i % 20  | share | live state                        | minimal writes                    |
| ------- | ----- | --------------------------------- | --------------------------------- |
| 0-1     | 10 %  | absent                            | 1 create (release inside it) + 3 upserts (canary, beta, stable) |
| 2-5     | 20 %  | description differs               | 1 update                          |
| 6-9     | 20 %  | canary pins another agent version | 1 upsert                          |
| 10      | 5 %   | no `stable` version set yet       | 1 upsert (a new set)              |
| 11-19   | 45 %  | as declared                       | none                              |

Besides, n/20 live services no manifest declares (made by hand, unowned) sit
in the organization: they cost list reads and show as drift, never as writes.
`Expected` holds the theoretical minimum the planner should reach.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ORGANIZATION = "bench-org"
CREDENTIALS = {"api_key": "bench-key-not-a-secret", "api_key_id": "bench-kid", "user_id": "bench"}
AGENTS = tuple(f"Agent {i:02d}" for i in range(12))  # one page of get-agents (limit 20)
STATE_MACHINES = tuple(f"Flow {i:02d}" for i in range(8))
AGENT_LATEST = 7
STATE_MACHINE_LATEST = 5
VERSION_SETS = ("release", "canary", "beta", "stable")
TEAMS = ("growth", "care", "billing", "platform")
LLM_NAMES = ("openai_gpt-5.1-2025-11-13", "azure_gpt-4.1-2025-04-14", "google_gemini-2.5-pro")
OWNERSHIP_TAGS = {"managed_by": "amigo_reconciler"}
SERVICES_PAGE = 20  # get-services returns at most 20 per page

NEW, UPDATED, VERSION_SET_CHANGED, VERSION_SET_ADDED = "new", "updated", "vs-changed", "vs-added"
UNCHANGED = "unchanged"


def group(i: int) -> str:
    r = i % 20
    if r < 2:
        return NEW
    if r < 6:
        return UPDATED
    if r < 10:
        return VERSION_SET_CHANGED
    if r == 10:
        return VERSION_SET_ADDED
    return UNCHANGED


@dataclass(frozen=True)
class Expected:
    """The least a reconcile of this workload can do (the planner's target)."""

    live_services: int
    creates: int
    updates: int
    upserts: int

    @property
    def list_pages(self) -> int:
        return max(1, math.ceil(self.live_services / SERVICES_PAGE))

    @property
    def writes(self) -> int:
        return self.creates + self.updates + self.upserts

    # Plan reads counted: 1 sign-in, the service list pages, and the agents and
    # state-machines lists (the manifests name both by name, so both are needed).
    # No unit-test read: nothing is deleted or deactivated.
    @property
    def plan_calls(self) -> int:
        return 1 + self.list_pages + 2


@dataclass(frozen=True)
class Workload:
    size: int
    manifests: tuple[tuple[str, str], ...]  # (relative path, YAML text), one file per service
    seed: dict[str, Any]
    expected: Expected

    def write(self, directory: Path) -> list[Path]:
        """Write the manifests under `directory` (one folder per team); returns the files."""
        files = []
        for relative, text in self.manifests:
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            files.append(path)
        return files


def service_name(i: int) -> str:
    return f"Service {i:05d}"


def _version_sets(i: int) -> dict[str, dict[str, Any]]:
    """The declared (desired) version sets of service i."""
    llm = LLM_NAMES[i % len(LLM_NAMES)]
    return {
        "release": {
            "agent_version_number": 1 + i % AGENT_LATEST,
            "service_hierarchical_state_machine_version_number": 1 + i % STATE_MACHINE_LATEST,
            "llm_model_preferences": {
                "conversation": {"llm_name": llm, "params": {"temperature": 0.2}}
            },
        },
        "canary": {
            "agent_version_number": AGENT_LATEST,
            "service_hierarchical_state_machine_version_number": None,
            "llm_model_preferences": {},
        },
        "beta": {
            "agent_version_number": None,
            "service_hierarchical_state_machine_version_number": None,
            "llm_model_preferences": {"conversation": {"llm_name": llm, "params": {}}},
        },
        "stable": {
            "agent_version_number": 1 + (i + 3) % AGENT_LATEST,
            "service_hierarchical_state_machine_version_number": 1 + (i + 2) % STATE_MACHINE_LATEST,
            "llm_model_preferences": {},
        },
    }


def _yaml_number(value: int | None) -> str:
    return "null" if value is None else str(value)


def manifest_text(i: int) -> str:
    """Service i's manifest, written the way a person would (comments, flow maps, lists)."""
    team = TEAMS[i % len(TEAMS)]
    lines = [
        "# yaml-language-server: $schema=../../schemas/service.schema.json",
        "apiVersion: amigo.ai/v1",
        "kind: Service",
        "metadata:",
        f"  name: {service_name(i)}",
        "spec:",
        f"  description: Conversations of the {team} team, number {i}",
        f"  agent: {AGENTS[i % len(AGENTS)]}",
        f"  service_hierarchical_state_machine: {STATE_MACHINES[i % len(STATE_MACHINES)]}",
        f"  tags: {{team: {team}, tier: gold}}",
        "  keyterms: [amigo, meet and greet, follow-up]",
        "  version_sets:",
    ]
    for name, vs in _version_sets(i).items():
        lines.append(f"    {name}:")
        lines.append(f"      agent_version_number: {_yaml_number(vs['agent_version_number'])}")
        number = vs["service_hierarchical_state_machine_version_number"]
        lines.append(
            f"      service_hierarchical_state_machine_version_number: {_yaml_number(number)}"
        )
        prefs = vs["llm_model_preferences"]
        if prefs:
            lines.append("      llm_model_preferences:")
            for key, cfg in prefs.items():
                params = ", ".join(f"{k}: {v}" for k, v in cfg["params"].items())
                lines.append(
                    f"        {key}: {{llm_name: {cfg['llm_name']}, params: {{{params}}}}}"
                )
    return "\n".join(lines) + "\n"


def _live_service(i: int) -> dict[str, Any]:
    """Service i as the organization holds it before the reconcile (see the module table)."""
    kind = group(i)
    team = TEAMS[i % len(TEAMS)]
    version_sets = _version_sets(i)
    if kind == VERSION_SET_CHANGED:
        version_sets["canary"] = {**version_sets["canary"], "agent_version_number": 1}
    if kind == VERSION_SET_ADDED:
        del version_sets["stable"]
    description = f"Conversations of the {team} team, number {i}"
    if kind == UPDATED:
        description = f"Old description of service {i}"
    return {
        "name": service_name(i),
        "description": description,
        "agent": AGENTS[i % len(AGENTS)],
        "service_hierarchical_state_machine": STATE_MACHINES[i % len(STATE_MACHINES)],
        "tags": {**OWNERSHIP_TAGS, "team": team, "tier": "gold"},
        "keyterms": ["amigo", "meet and greet", "follow-up"],
        "version_sets": version_sets,
    }


def _unmanaged_service(j: int) -> dict[str, Any]:
    return {
        "name": f"Hand-made {j:05d}",
        "description": "Made in the dashboard, not in git",
        "agent": AGENTS[j % len(AGENTS)],
        "service_hierarchical_state_machine": STATE_MACHINES[j % len(STATE_MACHINES)],
        "tags": {"team": "ops"},
        "keyterms": [],
        "version_sets": {},
    }


def build(size: int) -> Workload:
    manifests = tuple(
        (f"{TEAMS[i % len(TEAMS)]}/service-{i:05d}.yaml", manifest_text(i)) for i in range(size)
    )
    live = [_live_service(i) for i in range(size) if group(i) != NEW]
    live += [_unmanaged_service(j) for j in range(size // 20)]
    seed = {
        "organization": ORGANIZATION,
        "credentials": dict(CREDENTIALS),
        "agents": [{"name": a, "latest_version": AGENT_LATEST} for a in AGENTS],
        "state_machines": [
            {"name": s, "latest_version": STATE_MACHINE_LATEST} for s in STATE_MACHINES
        ],
        "services": live,
    }
    counts = {g: sum(1 for i in range(size) if group(i) == g) for g in (NEW, UPDATED)}
    counts[VERSION_SET_CHANGED] = sum(1 for i in range(size) if group(i) == VERSION_SET_CHANGED)
    counts[VERSION_SET_ADDED] = sum(1 for i in range(size) if group(i) == VERSION_SET_ADDED)
    expected = Expected(
        live_services=len(live),
        creates=counts[NEW],
        updates=counts[UPDATED],
        upserts=3 * counts[NEW] + counts[VERSION_SET_CHANGED] + counts[VERSION_SET_ADDED],
    )
    return Workload(size=size, manifests=manifests, seed=seed, expected=expected)


def declared_names(size: int) -> Sequence[str]:
    return [service_name(i) for i in range(size)]
