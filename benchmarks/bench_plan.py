"""Benchmark: planning N services vs. only parsing and normalizing the API pages they came in.

Two figures, both measured in one run:

1. Reads. `make_plan` against the in-process emulator, for N services: the
   number of API requests by operation. Target: ceil(N / 20) service pages plus
   at most three more calls (agents, state machines, unit tests), never one
   request per service.
2. Cost. `plan_against` (identity, diff, checks, ordering) on N services where
   half are converged, a quarter changed and a quarter new, against a baseline
   that only decodes the same services from JSON and normalizes them
   (`LiveService.from_api`), the work any plan must do. Interleaved, best of
   `--repeat`; the ratio is what matters, and its growth from N to 4N shows
   whether planning stays linear.

    .venv/bin/python benchmarks/bench_plan.py [--count 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reconciler.api.client import AmigoClient
from reconciler.connect import emulator_config
from reconciler.diagnostics import SourcePos
from reconciler.emulator import Emulator
from reconciler.manifests import load_manifests
from reconciler.model import DesiredService, DesiredState, LiveService, LiveState, VersionSet
from reconciler.planner import plan_against
from reconciler.workflow import make_plan

AGENT = "1" * 24
FLOW = "2" * 24


def api_service(i: int) -> dict[str, Any]:
    vs = {
        "agent_version_number": None,
        "service_hierarchical_state_machine_version_number": None,
        "llm_model_preferences": {},
    }
    return {
        "id": f"{i + 10_000:024x}",
        "name": f"Service {i:05d}",
        "description": f"Generated service {i}",
        "is_active": True,
        "agent_id": AGENT,
        "service_hierarchical_state_machine_id": FLOW,
        "tags": [
            {"key": "team", "value": "growth"},
            {"key": "managed_by", "value": "amigo_reconciler"},
        ],
        "keyterms": ["amigo", "follow-up"],
        "version_sets": {
            "edge": vs,
            "release": {**vs, "agent_version_number": 1 + i % 5},
            "canary": {
                **vs,
                "llm_model_preferences": {
                    "conversation": {"llm_name": "openai_gpt-5.1-2025-11-13", "params": {"t": 0.2}}
                },
            },
        },
        "creator": {},
        "updated_by": {},
    }


def desired_for(i: int, live: LiveService | None) -> DesiredService:
    changed = i % 4 == 1
    return DesiredService(
        name=f"Service {i:05d}",
        description=f"Generated service {i}" + (" (edited)" if changed else ""),
        source=SourcePos(f"services/{i}.yaml", 1, 1),
        agent_id=AGENT,
        service_hierarchical_state_machine_id=FLOW,
        tags={"team": "care" if changed else "growth"},
        keyterms=("amigo", "follow-up"),
        version_sets=dict(live.version_sets) if live else {"release": VersionSet(2)},
    )


def cost(count: int, repeat: int) -> tuple[float, float]:
    """(best plan seconds, best baseline seconds) for `count` services."""
    live_count = count * 3 // 4
    payload = json.dumps([api_service(i) for i in range(live_count)])
    services = tuple(LiveService.from_api(x) for x in json.loads(payload))
    by_name = {s.name: s for s in services}
    desired = DesiredState(
        tuple(desired_for(i, by_name.get(f"Service {i:05d}")) for i in range(count)), "d"
    )
    live = LiveState(services)
    best_plan = best_base = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        tuple(LiveService.from_api(x) for x in json.loads(payload))
        best_base = min(best_base, time.perf_counter() - start)
        start = time.perf_counter()
        plan = plan_against(desired, live, organization="o", base_url="u")
        best_plan = min(best_plan, time.perf_counter() - start)
    assert len(plan.operations) >= count // 3, len(plan.operations)
    return best_plan, best_base


def reads(count: int) -> dict[str, int]:
    seed = {
        "organization": "bench",
        "credentials": {"api_key": "k", "api_key_id": "i", "user_id": "u"},
        "agents": [{"name": "A", "latest_version": 3}],
        "state_machines": [{"name": "S", "latest_version": 3}],
        "services": [
            {
                "name": f"Service {i:05d}",
                "description": "d",
                "agent": "A",
                "service_hierarchical_state_machine": "S",
                "tags": {"managed_by": "amigo_reconciler"},
                "version_sets": {"old": {}},
            }
            for i in range(count)
        ],
    }
    emulator = Emulator.from_seed(seed, window_seconds=0.001)
    client = AmigoClient(emulator_config(emulator), transport=emulator.transport())
    with tempfile.TemporaryDirectory() as tmp:
        docs = [
            f"apiVersion: amigo.ai/v1\nkind: Service\nmetadata: {{name: 'Service {i:05d}'}}\n"
            "spec: {description: e, agent: A, service_hierarchical_state_machine: S}\n"
            for i in range(count)
        ]
        Path(tmp, "s.yaml").write_text("---\n".join(docs))
        plan = make_plan(client, load_manifests([tmp]), prune=True)  # updates + deletions
    assert len(plan.operations) == 2 * count
    return dict(emulator.request_counts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(
        f"# bench_plan on {platform.machine()} {platform.system()}, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}"
    )
    for n in (45, 200, 1000):
        counts = reads(n)
        pages = counts.get("get-services", 0)
        extra = sum(
            v for k, v in counts.items() if k not in ("get-services", "sign-in-with-api-key")
        )
        print(
            f"reads  N={n:5d}: {counts}  (pages {pages} = ceil(N/20) {math.ceil(n / 20)}, "
            f"other reads {extra}; unit tests go 100 ids a call)"
        )
    small, large = args.count, args.count * 4
    p1, b1 = cost(small, args.repeat)
    p4, b4 = cost(large, args.repeat)
    print(
        f"cost   N={small}: plan {p1 * 1e3:.1f} ms, baseline {b1 * 1e3:.1f} ms, ratio {p1 / b1:.2f}"
    )
    print(
        f"cost   N={large}: plan {p4 * 1e3:.1f} ms, baseline {b4 * 1e3:.1f} ms, ratio {p4 / b4:.2f}"
    )
    print(f"growth 4x services: plan x{p4 / p1:.2f}, baseline x{b4 / b1:.2f} (linear is ~4)")


if __name__ == "__main__":
    main()
