"""Benchmark: exporting 2,000 live services vs. pyyaml's pure-Python SafeDumper only dumping them.

`export_manifests` does everything `reconciler export` does after the reads:
normalizes, checks what a manifest can hold, picks names or ids, pins, names files
and dumps YAML with its quoting rules. The baseline dumps the very documents export
produces, as plain dicts, with `yaml.safe_dump` (the same pure-Python emitter:
export keeps to it so that output is byte-identical with or without libyaml). Both sides run in the same
process, interleaved, best of N; the figure that matters is the ratio (target:
export at most 1.5x the bare dump). Writing the files is measured separately.

    .venv/bin/python benchmarks/bench_export.py [--count 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from reconciler.export import export_manifests, write_export
from reconciler.model import Agent, LiveService

AGENTS = [Agent(f"{i:024x}", f"Agent {i}", False, 7) for i in range(50)]
MACHINES = [Agent(f"{i + 1000:024x}", f"State machine {i}", False, 5) for i in range(30)]


def api_service(i: int) -> dict[str, Any]:
    """A realistic ServiceInstance: tags (with the ownership tag), keyterms, three version sets."""
    version_set = {
        "agent_version_number": None,
        "service_hierarchical_state_machine_version_number": None,
        "llm_model_preferences": {},
    }
    return {
        "id": f"{i + 10_000:024x}",
        "name": f"Service {i // 2:05d}",  # pairs share a name: ids get pinned
        "description": f"Generated service number {i} for the team",
        "is_active": i % 2 == 0,
        "agent_id": AGENTS[i % 50].id,
        "service_hierarchical_state_machine_id": MACHINES[i % 30].id,
        "tags": [
            {"key": "team", "value": ("growth", "care", "billing")[i % 3]},
            {"key": "tier", "value": "gold"},
            {"key": "region", "value": None},
            {"key": "managed_by", "value": "amigo_reconciler"},
        ],
        "keyterms": ["amigo", "meet and greet", "follow-up"],
        "version_sets": {
            "edge": version_set,
            "release": {
                "agent_version_number": 1 + i % 7,
                "service_hierarchical_state_machine_version_number": 1 + i % 5,
                "llm_model_preferences": {
                    "conversation": {
                        "llm_name": "openai_gpt-5.1-2025-11-13",
                        "params": {"temperature": 0.2, "max_tokens": 800},
                    },
                    "summary": {"llm_name": "openai_gpt-4.1-mini-2025-04-14", "params": {}},
                },
            },
            "canary": {**version_set, "agent_version_number": 2 + i % 7},
        },
        "creator": {},
        "updated_by": {},
    }


def bare_dump(documents: list[dict[str, Any]]) -> int:
    size = 0
    for document in documents:
        size += len(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    raw = [api_service(i) for i in range(args.count)]
    services = [LiveService.from_api(s) for s in raw]
    documents = [yaml.safe_load(f.body) for f in export_manifests(services, AGENTS, MACHINES).files]
    dump_times, export_times, write_times = [], [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        bare_dump(documents)
        dump_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = export_manifests(services, AGENTS, MACHINES)
        export_times.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            write_export(result.files, Path(tmp) / "services", force=False)
            write_times.append(time.perf_counter() - start)
    assert len(result.files) == args.count
    dump, export, write = min(dump_times), min(export_times), min(write_times)
    print(f"machine: {os.cpu_count()} cpus, {platform.machine()}, Python {sys.version.split()[0]}")
    print(f"services: {args.count}, best of {args.repeat}")
    print(f"yaml.safe_dump only:          {dump:.3f} s")
    print(f"export_manifests:             {export:.3f} s")
    print(f"write_export ({args.count} files): {write:.3f} s")
    print(f"ratio: {export / dump:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
