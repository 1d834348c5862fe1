"""Benchmark: validating 5,000 service manifests vs. pyyaml's C loader only parsing them.

Both sides read the same files in the same run; the figure that matters is the
ratio (target: load_manifests at most 2x the bare parse). Best of N runs each,
interleaved, so machine noise hits both alike.

    .venv/bin/python benchmarks/bench_validate.py [--count 5000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import yaml

from reconciler.manifests import load_manifests

LLM_NAMES = ("openai_gpt-5.1-2025-11-13", "azure_gpt-4.1-2025-04-14", "google_gemini-2.5-pro")


def manifest_text(i: int) -> str:
    """A realistic manifest: tags, keyterms, release and canary sets, LLM preferences."""
    team = ("growth", "care", "billing", "platform")[i % 4]
    llm = LLM_NAMES[i % len(LLM_NAMES)]
    return f"""\
# yaml-language-server: $schema=../../schemas/service.schema.json
apiVersion: amigo.ai/v1
kind: Service
metadata:
  name: Service {i:05d}
spec:
  description: Generated service number {i} for the {team} team
  is_active: {"true" if i % 10 else "false"}
  agent: Agent {i % 50}
  service_hierarchical_state_machine: State machine {i % 30}
  tags:
    team: {team}
    tier: gold
    region: null
  keyterms: [amigo, meet and greet, follow-up]
  version_sets:
    release:
      agent_version_number: {1 + i % 7}
      service_hierarchical_state_machine_version_number: {1 + i % 5}
      llm_model_preferences:
        conversation:
          llm_name: {llm}
          params: {{temperature: 0.2, max_tokens: 800}}
        summary:
          llm_name: openai_gpt-4.1-mini-2025-04-14
    canary:
      agent_version_number: {2 + i % 7}
      service_hierarchical_state_machine_version_number: null
"""


def generate(directory: Path, count: int) -> list[Path]:
    files = []
    for i in range(count):
        sub = directory / f"team-{i % 20:02d}"
        sub.mkdir(exist_ok=True)
        path = sub / f"service-{i:05d}.yaml"
        path.write_text(manifest_text(i), encoding="utf-8")
        files.append(path)
    return files


def bare_parse(files: list[Path]) -> int:
    documents = 0
    for path in files:
        documents += len(list(yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader)))
    return documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = sorted(generate(root, args.count))
        parse_times, load_times = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            documents = bare_parse(files)
            parse_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            desired = load_manifests([root], env={})
            load_times.append(time.perf_counter() - start)
        assert documents == len(desired.services) == args.count
    parse, load = min(parse_times), min(load_times)
    print(f"machine: {os.cpu_count()} cpus, {platform.machine()}, Python {sys.version.split()[0]}")
    print(f"manifests: {args.count}, best of {args.repeat}")
    print(f"yaml CSafeLoader parse only: {parse:.3f} s")
    print(f"load_manifests (validate):   {load:.3f} s")
    print(f"ratio: {load / parse:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
