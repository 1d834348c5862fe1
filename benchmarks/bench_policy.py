"""Benchmark: the example policies over N services vs. the plan's own CPU time.

The workload is benchmarks/workload.py's (n manifests, 4 version sets each, a fixed
mix of changes). Measured in CPU time of this process, best of N rounds:

- plan: load_manifests + plan_against (offline, live state in memory), as run.py's
  "offline CPU" row;
- policy: the input document (`plan_input_json`: the plan file as JSON text) plus evaluating
  examples/policies (compile, hand the input to the engine, query every rule). Evaluation
  runs in the sandbox's child process: its CPU (RUSAGE_CHILDREN) is counted with this
  process's, and the same evaluation in-process (`evaluate_here`, no child) is shown
  beside it as the sandbox's overhead.

Goal (issue 17): policy under half of the plan's CPU.

    .venv/bin/python benchmarks/bench_policy.py [--count 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import workload  # noqa: E402
from run import _offline_plan, live_snapshot, live_state  # noqa: E402

from reconciler.emulator import Emulator  # noqa: E402
from reconciler.manifests import load_manifests  # noqa: E402
from reconciler.policy import evaluate, evaluate_here, load_modules, plan_input_json  # noqa: E402
from reconciler.policy.engine import engine_version  # noqa: E402

POLICIES = HERE.parent / "examples" / "policies"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = workload.build(args.count)
    live = live_state(live_snapshot(Emulator.from_seed(work.seed)))
    modules = load_modules([str(POLICIES)])

    def clock() -> float:  # this process and its finished children (the sandbox)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    plans, validates, inputs, evaluations, walls, heres = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        work.write(root)
        for _ in range(args.repeat):
            gc.collect()
            started = clock()
            desired = load_manifests([root], env={})
            loaded = clock()
            plan = _offline_plan(desired, live)
            planned = clock()
            document = plan_input_json(plan)
            built = clock()
            wall = time.perf_counter()
            result = evaluate(modules, document)
            done = clock()
            walls.append(time.perf_counter() - wall)
            evaluate_here(modules, document.text, ["main"])
            heres.append(clock() - done)
            validates.append(loaded - started)
            plans.append(planned - loaded)
            inputs.append(built - planned)
            evaluations.append(done - built)
    validate, plan_cpu = min(validates), min(plans)
    document_cpu, evaluation = min(inputs), min(evaluations)
    policy = document_cpu + evaluation
    print(f"machine: {os.cpu_count()} cpus, {platform.machine()}, Python {sys.version.split()[0]}")
    print(f"engine: {engine_version()}; policies: {len(modules)} files in {POLICIES.name}/")
    print(f"services: {args.count}, operations: {len(plan.operations)}, best of {args.repeat}")
    print(f"findings: {len(result.denied)} denied, {len(result.warned)} warnings")
    print(f"validate (load_manifests): {validate * 1000:8.0f} ms CPU")
    print(f"plan (plan_against):       {plan_cpu * 1000:8.0f} ms CPU")
    print(f"policy input document:     {document_cpu * 1000:8.0f} ms CPU")
    print(
        f"policy evaluation:         {evaluation * 1000:8.0f} ms CPU "
        f"({min(walls) * 1000:.0f} ms wall) in the sandbox; "
        f"{min(heres) * 1000:.0f} ms CPU in-process"
    )
    print(
        f"policy / plan: {policy / plan_cpu:.2f}x; policy / (validate + plan): "
        f"{policy / (validate + plan_cpu):.2f}x (goal: under 0.5x of the plan)"
    )


if __name__ == "__main__":
    main()
