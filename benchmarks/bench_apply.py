"""Benchmark: apply wall time against the rate-limit floor, concurrent vs. one at a time.

A plan of 60 creates (each followed by a dependent version-set upsert), 60
service updates and 30 more upserts runs against the in-process emulator with a
short rate-limit window W (fixed windows, as the emulator's). Each apply starts
at a window boundary, so an endpoint with n operations at limit L cannot finish
before the start of its ceil(n / L)-th window: the floor is the largest
(ceil(n / L) - 1) * W over endpoints (2 W here, for each of the three). The
figures that matter are ratios measured in the same run: concurrent / floor
(target: close to 1) and serial (one operation at a time) / concurrent.

    .venv/bin/python benchmarks/bench_apply.py [--window 2] [--repeat 1]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from typing import Any

from reconciler.api.client import AmigoClient
from reconciler.applier import apply_plan
from reconciler.connect import emulator_config
from reconciler.emulator import RATE_LIMITS, Emulator
from reconciler.manifests import load_manifests
from reconciler.plan import Action, Plan
from reconciler.workflow import make_plan

NEW = 60
UPDATED = 60
UPSERTED = 30


def seed() -> dict[str, Any]:
    existing = [
        {
            "name": f"Existing {i:03d}",
            "description": "before",
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Onboarding flow",
            "tags": {"managed_by": "amigo_reconciler"},
        }
        for i in range(UPDATED + UPSERTED)
    ]
    return {
        "organization": "bench-org",
        "credentials": {"api_key": "bench-key-000000", "api_key_id": "kid", "user_id": "uid"},
        "agents": [{"name": "Concierge", "latest_version": 4}],
        "state_machines": [{"name": "Onboarding flow", "latest_version": 6}],
        "services": existing,
    }


def manifests(directory: str) -> list[str]:
    docs = []
    for i in range(NEW):
        docs.append(
            f"apiVersion: amigo.ai/v1\nkind: Service\nmetadata:\n  name: New {i:03d}\n"
            "spec:\n  description: new\n  agent: Concierge\n"
            "  service_hierarchical_state_machine: Onboarding flow\n"
            "  version_sets:\n    canary: {agent_version_number: 3}\n"
        )
    for i in range(UPDATED + UPSERTED):
        updated = i < UPDATED
        body = (
            f"apiVersion: amigo.ai/v1\nkind: Service\nmetadata:\n  name: Existing {i:03d}\n"
            f"spec:\n  description: {'after' if updated else 'before'}\n  agent: Concierge\n"
            "  service_hierarchical_state_machine: Onboarding flow\n"
        )
        if not updated:
            body += "  version_sets:\n    canary: {agent_version_number: 2}\n"
        docs.append(body)
    path = os.path.join(directory, "services.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("---\n".join(docs))
    return [path]


def floor_seconds(plan: Plan, window: float) -> tuple[float, float]:
    """(busiest endpoint's floor, sum over endpoints) in seconds."""
    per: dict[str, int] = {}
    endpoint = {
        Action.CREATE_SERVICE: "create-service",
        Action.UPDATE_SERVICE: "update-service",
        Action.UPSERT_VERSION_SET: "upsert-service-version-set",
        Action.DELETE_VERSION_SET: "delete-service-version-set",
    }
    for op in plan.operations:
        per[endpoint[op.action]] = per.get(endpoint[op.action], 0) + 1
    windows = {e: (math.ceil(n / RATE_LIMITS[e]) - 1) * window for e, n in per.items()}
    return max(windows.values()), sum(windows.values())


def run_once(window: float, workers: int, paths: list[str]) -> tuple[float, Plan, int]:
    emulator = Emulator.from_seed(seed(), window_seconds=window)
    with AmigoClient(emulator_config(emulator), transport=emulator.transport()) as client:
        plan = make_plan(client, load_manifests(paths))
        time.sleep(window - time.time() % window + 0.01)  # start at a window boundary
        start = time.monotonic()
        report = apply_plan(client, plan, max_workers=workers)
        elapsed = time.monotonic() - start
    if not report.ok:
        raise SystemExit(f"apply failed: {report.counts}")
    return elapsed, plan, emulator.rate_limited_count


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=2.0, help="rate-limit window, seconds")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        paths = manifests(directory)
        for _ in range(args.repeat):
            concurrent, plan, limited_c = run_once(args.window, 8, paths)
            serial, _, limited_s = run_once(args.window, 1, paths)
            floor, total = floor_seconds(plan, args.window)
            print(
                f"{len(plan.operations)} operations, window {args.window:g}s: "
                f"floor {floor:.1f}s, sum {total:.1f}s; "
                f"concurrent {concurrent:.2f}s ({concurrent / floor:.2f}x floor, "
                f"429s {limited_c}); serial {serial:.2f}s ({serial / floor:.2f}x floor, "
                f"429s {limited_s}); serial/concurrent {serial / concurrent:.2f}"
            )
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
