"""What the reconciler costs (API calls, time under rate limits, CPU, start-up, memory), as ratios.

    .venv/bin/python benchmarks/run.py                    # sizes 100, 1000, 5000 (a few minutes)
    .venv/bin/python benchmarks/run.py --quick            # tiny sizes, seconds (the smoke test)
    .venv/bin/python benchmarks/run.py --sizes 100,1000 --window 0.5 --markdown

Every figure is a ratio of two things measured side by side in the same run, so
that a noisy machine moves both sides alike:

1. API calls of plan and of apply / the theoretical minimum for the workload
   (plan: 1 sign-in + ceil(live services / 20) list pages + the agents and the
   state-machines lists, which the manifests need to resolve names; apply: one
   write per changed resource). Target 1.00.
2. Apply wall time under rate limits / the rate-limit floor of that plan's
   operations (`floors.py`: a zero-latency client sending, in each fixed window,
   whatever is ready within each endpoint's budget; the apply starts at a window
   boundary, so the floor is (windows - 1) x window). The emulator serves real
   HTTP on 127.0.0.1 with its window scaled down (`--window`, default 1 s: the
   documented per-minute budgets then apply per second). Target <= 1.15 with no
   429 surfaced to the applier.
3. Offline CPU: `load_manifests` + `plan_against` a pre-read live snapshot /
   pyyaml's C loader (yaml.CSafeLoader) parsing the same files (reading them
   included on both sides). Process CPU time, best of `--repeat`, interleaved.
   Target <= 2x.
4. Start-up: `reconciler --version` and `reconciler validate ONE_FILE` / `python -c pass` (best and median of N
   interleaved runs). Target <= 3x.
5. Peak memory (peak RSS, VmHWM, of a fresh process) loading, validating and planning
   the largest size. Target <= 200 MiB.

A naive baseline runs beside it (`naive.py`: list everything, update every
declared service, upsert every declared version set): its calls and its wall
time under the same limits. Its wall time is measured for sizes up to
`--naive-max` (default 100) and estimated above that at its own rate-limit
floor, which flatters the naive script (the estimate is marked "est.").
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import floors  # noqa: E402
import naive  # noqa: E402
import workload  # noqa: E402

from reconciler.api.client import AmigoClient  # noqa: E402
from reconciler.applier import ENDPOINT, Status, apply_plan, dependencies  # noqa: E402
from reconciler.connect import emulator_config  # noqa: E402
from reconciler.emulator import Emulator  # noqa: E402
from reconciler.live import references_from_api, services_from_api  # noqa: E402
from reconciler.manifests import load_manifests  # noqa: E402
from reconciler.model import DesiredState, LiveState  # noqa: E402
from reconciler.plan import Plan  # noqa: E402
from reconciler.planner import plan_against  # noqa: E402
from reconciler.workflow import make_plan  # noqa: E402

RESULTS = HERE / "RESULTS.md"
SECTION_BEGIN = "<!-- performance: begin (benchmarks/run.py --markdown) -->"
SECTION_END = "<!-- performance: end -->"
WRITE_ENDPOINTS = frozenset(ENDPOINT.values())


@dataclass
class Row:
    """One line of the table: a measured figure against its reference."""

    metric: str
    size: str
    measured: str
    reference: str
    ratio: float | None
    target: str
    ok: bool | None
    note: str = ""
    # Missed for a reason no machine noise explains (extra calls, a failed or
    # non-converging apply, a 429 surfaced): `--strict-calls` fails on these.
    hard_failure: bool = False

    @property
    def verdict(self) -> str:
        return "-" if self.ok is None else ("ok" if self.ok else "MISSED")


@dataclass
class SizeRun:
    """What one workload size produced (kept for the naive comparison and the summary)."""

    size: int
    plan_calls: int
    apply_writes: int
    plan_seconds: float
    apply_seconds: float | None


# --- helpers ---------------------------------------------------------------------


def _diff(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    keys = set(after) | set(before)
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in keys if after.get(k, 0) != before.get(k, 0)
    }


def _sleep_to_window_start(window: float) -> None:
    """Sleep until just after the emulator's next window boundary (its windows are epoch-aligned)."""
    now = time.time()
    time.sleep(math.ceil(now / window) * window - now + 0.002)


@contextlib.contextmanager
def _client_for(emulator: Emulator, window: float, *, http: bool) -> Iterator[AmigoClient]:
    """A client paced for the scaled window, over real loopback HTTP or in-process."""
    if http:
        with emulator.serve() as server:
            config = dataclasses.replace(
                emulator_config(emulator, server.base_url), rate_window_seconds=window
            )
            with AmigoClient(config) as client:
                yield client
    else:
        config = dataclasses.replace(emulator_config(emulator), rate_window_seconds=window)
        with AmigoClient(config, transport=emulator.transport()) as client:
            yield client


def plan_calls(plan: Plan) -> list[floors.Call]:
    """The plan's operations as dependent calls (for the floor)."""
    index = {op.key: i for i, op in enumerate(plan.operations)}
    return [
        floors.Call(ENDPOINT[op.action], tuple(index[k] for k in dependencies(op)))
        for op in plan.operations
    ]


def live_snapshot(emulator: Emulator) -> dict[str, Any]:
    """What the API returns for the reads a plan makes (ServiceInstance etc.), as plain JSON."""
    return {
        "organization": emulator.organization,
        "services": emulator.services(),
        "agents": emulator.agents(),
        "state_machines": emulator.state_machines(),
    }


def live_state(snapshot: Mapping[str, Any]) -> LiveState:
    return LiveState(
        services=services_from_api(snapshot["services"]),
        agents=references_from_api(snapshot["agents"]),
        state_machines=references_from_api(snapshot["state_machines"]),
    )


def _offline_plan(desired: DesiredState, live: LiveState) -> Plan:
    return plan_against(
        desired, live, organization=workload.ORGANIZATION, base_url="http://localhost"
    )


# --- 1 + 2 + naive: calls and apply time under rate limits ---------------------------


def measure_api(
    work: workload.Workload,
    desired: DesiredState,
    *,
    window: float,
    http: bool,
    run_apply: bool,
    run_naive: bool,
) -> tuple[list[Row], SizeRun]:
    rows: list[Row] = []
    expected = work.expected
    size = str(work.size)
    emulator = Emulator.from_seed(work.seed, window_seconds=window)
    with _client_for(emulator, window, http=http) as client:
        started = time.perf_counter()
        plan = make_plan(client, desired)
        plan_seconds = time.perf_counter() - started
        if plan.errors:
            raise SystemExit(f"size {size}: the plan has errors: {plan.errors[0]}")
        planned = dict(client.request_counts)
        read_calls = sum(planned.values())
        rows.append(
            Row(
                "API calls: plan",
                size,
                str(read_calls),
                f"{expected.plan_calls} min",
                read_calls / expected.plan_calls,
                "1.00",
                read_calls == expected.plan_calls,
                f"sign-in {planned.get('sign-in-with-api-key', 0)}, "
                f"pages {planned.get('get-services', 0)}/{expected.list_pages}, "
                f"agents {planned.get('get-agents', 0)}, "
                f"state machines {planned.get('get-service-hierarchical-state-machines', 0)}",
            )
        )
        writes_planned = len(plan.operations)
        rows.append(
            Row(
                "API calls: plan's writes",
                size,
                str(writes_planned),
                f"{expected.writes} min",
                writes_planned / expected.writes,
                "1.00",
                writes_planned == expected.writes,
                f"{expected.creates} creates, {expected.updates} updates, "
                f"{expected.upserts} upserts",
            )
        )
        apply_seconds: float | None = None
        apply_writes = writes_planned
        if run_apply:
            limited_before = emulator.rate_limited_count
            _sleep_to_window_start(window)
            started = time.perf_counter()
            report = apply_plan(client, plan)
            apply_seconds = time.perf_counter() - started
            used = _diff(client.request_counts, planned)
            apply_writes = sum(used.values())
            answered_429 = emulator.rate_limited_count - limited_before
            failed = report.by_status(Status.FAILED) + report.by_status(Status.SKIPPED)
            surfaced_429 = sum(1 for r in failed if r.api_status == 429)
            converged = not _offline_plan(desired, live_state(live_snapshot(emulator))).operations
            # The emulator's own count of what reached it must agree with the client's.
            received = sum(emulator.request_counts.values())
            sent = sum(client.request_counts.values())
            rows.append(
                Row(
                    "API calls: apply",
                    size,
                    str(apply_writes),
                    f"{expected.writes} min",
                    apply_writes / expected.writes,
                    "1.00",
                    apply_writes == expected.writes
                    and set(used) <= WRITE_ENDPOINTS
                    and received == sent,
                    ", ".join(f"{k} {v}" for k, v in sorted(used.items()))
                    + (
                        ""
                        if received == sent
                        else f"; EMULATOR RECEIVED {received}, CLIENT SENT {sent}"
                    ),
                )
            )
            windows = floors.windows_needed(plan_calls(plan))
            floor = floors.floor_seconds(windows, window)
            ratio = apply_seconds / floor if floor else None
            rows.append(
                Row(
                    "apply time / rate-limit floor",
                    size,
                    f"{apply_seconds:.2f} s",
                    f"{floor:.2f} s ({windows} windows)",
                    ratio,
                    "<= 1.15, no 429 surfaced",
                    (ratio is None or ratio <= 1.15) and surfaced_429 == 0 and report.ok,
                    f"429s answered {answered_429}, surfaced {surfaced_429}; "
                    f"{report.counts['done']}/{len(plan.operations)} done; "
                    f"{'converged' if converged else 'NOT converged'}"
                    + ("" if ratio is not None else "; plan fits in one window: no ratio"),
                )
            )
            if not report.ok or not converged or surfaced_429:
                rows[-1].ok = False
                rows[-1].hard_failure = True
    run = SizeRun(work.size, read_calls, apply_writes, plan_seconds, apply_seconds)
    rows += measure_naive(work, desired, run, window=window, http=http, measure=run_naive)
    return rows, run


def measure_naive(
    work: workload.Workload,
    desired: DesiredState,
    ours: SizeRun,
    *,
    window: float,
    http: bool,
    measure: bool,
) -> list[Row]:
    size = str(work.size)
    emulator = Emulator.from_seed(work.seed, window_seconds=window)
    live_names = naive.names(emulator.services())
    naive_calls = naive.calls(desired, live_names)
    reads = work.expected.plan_calls
    naive_total = reads + len(naive_calls)
    ours_total = ours.plan_calls + ours.apply_writes
    rows = [
        Row(
            "naive calls / ours",
            size,
            f"{naive_total}",
            f"{ours_total} ours",
            naive_total / ours_total,
            "-",
            None,
            f"naive: {reads} reads + {len(naive_calls)} writes (every service, every set)",
        )
    ]
    if ours.apply_seconds is None:
        return rows
    ours_seconds = ours.plan_seconds + ours.apply_seconds
    if measure:
        with _client_for(emulator, window, http=http) as client:
            _sleep_to_window_start(window)
            started = time.perf_counter()
            sent = naive.reconcile(client, desired)
            naive_seconds = time.perf_counter() - started
            if sent != naive.expected_writes(desired):
                raise SystemExit(f"naive baseline sent {sent} writes, expected more")
            measured_calls = sum(client.request_counts.values())
        note = f"measured ({measured_calls} calls sent)"
        shown = f"{naive_seconds:.2f} s"
    else:
        windows = floors.windows_needed(naive_calls)
        naive_seconds = floors.floor_seconds(windows, window)
        note = f"est. at its rate-limit floor ({windows} windows); running it would take as long"
        shown = f"{naive_seconds:.2f} s est."
    rows.append(
        Row(
            "naive time / ours (plan+apply)",
            size,
            shown,
            f"{ours_seconds:.2f} s ours",
            naive_seconds / ours_seconds,
            "-",
            None,
            note,
        )
    )
    return rows


# --- 3: offline CPU ---------------------------------------------------------------------


def measure_cpu(
    work: workload.Workload, directory: Path, files: Sequence[Path], repeat: int
) -> list[Row]:
    snapshot = live_snapshot(Emulator.from_seed(work.seed))
    live = live_state(snapshot)
    ours: list[tuple[float, float]] = []  # (validate, plan) CPU seconds
    bare: list[float] = []
    operations = 0
    clock = time.process_time  # CPU time of this process: other jobs on the machine count less
    for _ in range(repeat):
        gc.collect()  # garbage of the previous round is not charged to this one
        started = clock()
        for path in files:
            with open(path, "rb") as handle:
                list(yaml.load_all(handle.read(), Loader=yaml.CSafeLoader))
        bare.append(clock() - started)
        gc.collect()
        started = clock()
        desired = load_manifests([directory])
        loaded = clock()
        operations = len(_offline_plan(desired, live).operations)
        ours.append((loaded - started, clock() - loaded))
    if operations != work.expected.writes:
        raise SystemExit(
            f"offline plan has {operations} operations, expected {work.expected.writes}"
        )
    validate, plan = min(ours, key=sum)
    ratio = (validate + plan) / min(bare)
    return [
        Row(
            "offline CPU: validate+plan / CSafeLoader parse",
            str(work.size),
            f"{(validate + plan) * 1000:.0f} ms",
            f"{min(bare) * 1000:.0f} ms",
            ratio,
            "<= 2x",
            ratio <= 2.0,
            f"CPU time, best of {repeat}: validate {validate * 1000:.0f} ms "
            f"({validate / min(bare):.2f}x) + plan {plan * 1000:.0f} ms "
            f"({plan / min(bare):.2f}x)",
        )
    ]


# --- 3b: the rehearsal's CPU against the plan's -----------------------------------------


def measure_rehearsal(work: workload.Workload, directory: Path, repeat: int) -> list[Row]:
    """`plan`'s rehearsal (reconciler/rehearsal.py) / the plan it rehearses, in CPU time.

    The plan: load the manifests, read live state over loopback HTTP and plan
    (`make_plan` without rehearsal), timed as the main thread's CPU (the emulator
    serving it runs in other threads: a remote API's work is not the plan's). The
    rehearsal: `rehearse_plan` on what that plan read, timed as the whole process's
    CPU (it applies through the applier's worker thread; it sends no HTTP). Best of
    `repeat`, interleaved.
    """
    from reconciler.live import fetch_live, fetch_services
    from reconciler.planner import references_needed
    from reconciler.workflow import rehearse_plan

    planned: list[float] = []
    rehearsed: list[float] = []
    outcome = ""
    emulator = Emulator.from_seed(work.seed)
    with (
        emulator.serve() as server,
        AmigoClient(emulator_config(emulator, server.base_url)) as client,
    ):
        for _ in range(repeat):
            gc.collect()
            started = time.thread_time()
            desired = load_manifests([directory])
            plan = make_plan(client, desired)
            planned.append(time.thread_time() - started)
            # The same reads again, outside the timing: what make_plan hands the rehearsal.
            services = fetch_services(client)
            agents, machines = references_needed(desired, services)
            live = fetch_live(client, services, agents=agents, state_machines=machines)
            gc.collect()
            started = time.process_time()
            result = rehearse_plan(plan, desired, live).rehearsal
            rehearsed.append(time.process_time() - started)
            if result is None or not result.converged or result.refused:
                raise SystemExit(f"size {work.size}: the rehearsal did not pass: {result}")
            outcome = f"{result.accepted}/{result.operations} accepted, converged"
    ratio = min(rehearsed) / min(planned)
    return [
        Row(
            "rehearsal CPU / plan CPU",
            str(work.size),
            f"{min(rehearsed) * 1000:.0f} ms",
            f"{min(planned) * 1000:.0f} ms",
            ratio,
            "<= 0.5x",
            ratio <= 0.5,
            f"CPU time, best of {repeat}; {outcome}",
        )
    ]


# --- 4: start-up ---------------------------------------------------------------------------


def _reconciler_command() -> list[str]:
    script = Path(sys.executable).with_name("reconciler")
    if script.exists():
        return [str(script), "--version"]
    found = shutil.which("reconciler")
    if found:
        return [found, "--version"]
    return [sys.executable, "-m", "reconciler", "--version"]


def _time_command(command: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _one_manifest() -> Path:
    """The first example manifest: a real command's smallest real input."""
    return min((HERE.parent / "examples" / "services").glob("*.yaml"))


# The libraries validate parses and validates with, imported bare: pydantic's names load
# their submodules lazily, so they are named; importlib.metadata is pydantic's plugin
# look-up, imported with the first model.
VALIDATE_FLOOR = (
    "import click, click.types, yaml, importlib.metadata; "
    "from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints"
)


def measure_startup(runs: int) -> list[Row]:
    """`--version` and `validate` on one file (the targets) and, for honesty, `--help`:
    the click application's own import path, which every real command pays."""
    version_command = _reconciler_command()
    help_command = [*version_command[:-1], "--help"]
    validate_command = [*version_command[:-1], "validate", str(_one_manifest())]
    bare_command = [sys.executable, "-c", "pass"]
    floor_command = [sys.executable, "-c", VALIDATE_FLOOR]  # what validate cannot avoid
    floor: list[float] = []
    version: list[float] = []
    helped: list[float] = []
    validated: list[float] = []
    bare: list[float] = []
    for _ in range(runs):
        bare.append(_time_command(bare_command))
        version.append(_time_command(version_command))
        helped.append(_time_command(help_command))
        validated.append(_time_command(validate_command))
        floor.append(_time_command(floor_command))

    def row(name: str, ours: list[float], target: str, limit: float | None) -> Row:
        best = min(ours) / min(bare)
        median = statistics.median(ours) / statistics.median(bare)
        return Row(
            name,
            "-",
            f"{min(ours) * 1000:.0f} ms",
            f"{min(bare) * 1000:.0f} ms",
            best,
            target,
            None if limit is None else best <= limit,
            f"best of {runs}; medians {statistics.median(ours) * 1000:.0f} / "
            f"{statistics.median(bare) * 1000:.0f} ms = {median:.2f}x",
        )

    return [
        row("start-up: reconciler --version / python -c pass", version, "<= 3x", 3.0),
        row("start-up: reconciler --help / python -c pass", helped, "-", None),
        row("start-up: reconciler validate one file / python -c pass", validated, "<= 5x", 5.0),
        row("start-up: validate's library imports alone / python -c pass", floor, "-", None),
    ]


# --- 5: memory ------------------------------------------------------------------------------


def measure_memory(work: workload.Workload, directory: Path) -> list[Row]:
    snapshot_path = directory.parent / "snapshot.json"
    snapshot_path.write_text(
        json.dumps(live_snapshot(Emulator.from_seed(work.seed))), encoding="utf-8"
    )
    output = subprocess.run(
        [sys.executable, str(HERE / "probe_memory.py"), str(directory), str(snapshot_path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    probe = json.loads(output.strip().splitlines()[-1])
    if probe["operations"] != work.expected.writes:
        raise SystemExit(f"memory probe planned {probe['operations']} operations")
    peak = float(probe["peak_mib"])
    return [
        Row(
            "peak memory planning",
            str(work.size),
            f"{peak:.0f} MiB",
            "200 MiB",
            peak / 200.0,
            "<= 200 MiB",
            peak <= 200.0,
            f"peak RSS (VmHWM) of a fresh process; {probe['after_imports_mib']:.0f} MiB after imports",
        )
    ]


# --- output --------------------------------------------------------------------------------


def render_table(rows: Sequence[Row]) -> str:
    header = ("metric", "size", "measured", "reference", "ratio", "target", "", "note")
    lines = [
        (
            r.metric,
            r.size,
            r.measured,
            r.reference,
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            r.target,
            r.verdict,
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header) - 1)]
    out = []
    for line in [header, *lines]:
        cells = [str(c).ljust(w) for c, w in zip(line[:-1], widths, strict=True)]
        out.append("  ".join([*cells, line[-1]]).rstrip())
    return "\n".join(out)


METHOD = """\
Workloads of N services with 4 version sets each (release, canary, beta, stable),
one manifest file per service, and an emulator seeded with a fixed mix
(`workload.py`): 10 % new (a create carrying `release`, then 3 upserts), 20 % with
a changed description (an update), 20 % with a changed version set and 5 % with a
missing one (an upsert each), 45 % unchanged, plus N/20 hand-made services no
manifest declares. Each figure is a ratio of two things measured in the same run:

- **API calls** against the theoretical minimum: plan = 1 sign-in + ceil(live
  services / 20) list pages + the agents and the state-machines lists (the
  manifests name both; no unit-test read, as nothing is deleted); apply = one
  write per changed resource. Counted by the client and checked by the emulator.
- **Apply time** over real HTTP on 127.0.0.1 with the emulator's window scaled from
  60 s to `--window` seconds (the documented per-minute budgets per window), against
  the rate-limit floor of that plan: a zero-latency client that sends in each fixed
  window whatever is ready (dependencies done) within each endpoint's budget
  (`floors.py`). The apply starts at a window boundary, so the floor is
  (windows - 1) x window. "429s answered" are the emulator's, "surfaced" reached the
  applier as a failure. Convergence is checked by planning again offline.
- **Naive baseline** (`naive.py`): list, then update every declared service (or
  create it) and upsert every declared version set, one call after another through
  the same pacing client. Timed for real up to `--naive-max`; above, estimated at its
  own rate-limit floor, which flatters it.
- **Offline CPU**: `load_manifests` + `plan_against` a pre-read live snapshot, against
  `yaml.load_all(..., Loader=yaml.CSafeLoader)` on the same files; process CPU time,
  best of 5, interleaved.
- **Start-up**: `reconciler --version` and `reconciler validate` on one example
  manifest against `python -c pass`, best of 15 interleaved subprocess runs (medians in
  the note). `--version` is answered before click is imported (`reconciler/launcher.py`);
  each command imports only its own module (`reconciler/cli/group.py`); `reconciler
  --help` is shown beside them, untargeted: it loads every command; so is the import of
  the libraries validate parses and validates with (click, yaml, pydantic and pydantic's
  plugin look-up, `importlib.metadata`), nothing else: the floor under validate. Both sides run in the
  benchmark's interpreter: in a virtualenv with many `.pth` files (an editable install)
  `python -c pass` itself is slower, which lowers both ratios.
- **Peak memory**: a fresh process loads, validates and plans the largest size
  against a JSON snapshot; its peak RSS (VmHWM)."""


def render_markdown(rows: Sequence[Row], settings: str, machine: str) -> str:
    out = [
        SECTION_BEGIN,
        "## Performance: calls, time under rate limits, CPU, start-up, memory (`run.py`)",
        "",
        METHOD,
        "",
        f"Run: `{settings}`, {machine}.",
        "",
        "| metric | size | measured | reference | ratio | target | | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        out.append(
            f"| {r.metric} | {r.size} | {r.measured} | {r.reference} | {ratio} | "
            f"{r.target} | {r.verdict} | {r.note} |"
        )
    out += ["", SECTION_END]
    return "\n".join(out)


def update_results(section: str, path: Path = RESULTS) -> None:
    """Replace this benchmark's section of RESULTS.md (or append it), keeping other sections."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if SECTION_BEGIN in text and SECTION_END in text:
        head, _, rest = text.partition(SECTION_BEGIN)
        _, _, tail = rest.partition(SECTION_END)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{today}, {os.cpu_count()} CPUs ({platform.machine()}, {cpu}), "
        f"Python {platform.python_version()}, {platform.system()}"
    )


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and windows (seconds)")
    parser.add_argument("--sizes", help="comma-separated service counts (default 100,1000,5000)")
    parser.add_argument(
        "--window", type=float, help="emulator rate-limit window in seconds (default 1)"
    )
    parser.add_argument(
        "--apply-max", type=int, help="apply for real only up to this size (default: all)"
    )
    parser.add_argument(
        "--naive-max",
        type=int,
        help="run the naive baseline for real up to this size (default 100); above, estimate it",
    )
    parser.add_argument("--repeat", type=int, help="CPU runs per size, best taken (default 5)")
    parser.add_argument("--startup-runs", type=int, help="start-up runs each (default 15)")
    parser.add_argument(
        "--in-process", action="store_true", help="emulator in-process instead of loopback HTTP"
    )
    parser.add_argument(
        "--markdown", action="store_true", help=f"write the figures into {RESULTS.name}"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    parser.add_argument(
        "--strict-calls",
        action="store_true",
        help="exit 1 when an API-call target is missed or an apply fails (timing-free: for tests)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.sizes = [
        int(s) for s in (args.sizes or ("20,60" if quick else "100,1000,5000")).split(",") if s
    ]
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes takes positive service counts, e.g. --sizes 100,1000")
    args.window = args.window or (0.25 if quick else 1.0)
    if args.window <= 0:
        parser.error("--window must be a positive number of seconds")
    args.apply_max = args.apply_max if args.apply_max is not None else max(args.sizes)
    args.naive_max = args.naive_max if args.naive_max is not None else (20 if quick else 100)
    args.repeat = args.repeat or (1 if quick else 5)
    args.startup_runs = args.startup_runs or (1 if quick else 15)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rows: list[Row] = []
    transport = "in-process" if args.in_process else "HTTP on 127.0.0.1"
    print(
        f"sizes {args.sizes}, window {args.window:g} s ({transport}), "
        f"apply up to {args.apply_max}, naive measured up to {args.naive_max}",
        flush=True,
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="amigo-bench-") as temporary:
        for size in args.sizes:
            work = workload.build(size)
            directory = Path(temporary) / f"size-{size}" / "services"
            files = work.write(directory)
            desired = load_manifests([directory])
            api_rows, _ = measure_api(
                work,
                desired,
                window=args.window,
                http=not args.in_process,
                run_apply=size <= args.apply_max,
                run_naive=size <= args.naive_max,
            )
            rows += api_rows
            rows += measure_cpu(work, directory, files, args.repeat)
            rows += measure_rehearsal(work, directory, args.repeat)
            if size == max(args.sizes):
                rows += measure_memory(work, directory)
            print(f"  size {size} done ({time.perf_counter() - started:.0f} s)", flush=True)
    rows += measure_startup(args.startup_runs)
    rows.sort(key=lambda r: (_metric_order(r.metric), r.size.rjust(8)))
    print(render_table(rows))
    machine = machine_description()
    print(f"\n{machine}; total {time.perf_counter() - started:.0f} s")
    if args.quick:
        print(
            "--quick: a smoke run; its sizes and windows are too small for the timing ratios to mean much"
        )
    if args.markdown:
        settings = "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
        update_results(render_markdown(rows, settings.strip(), machine))
        print(f"wrote {RESULTS}")
    for row in rows:  # call counts do not depend on machine noise
        row.hard_failure = row.hard_failure or (row.metric.startswith("API calls") and not row.ok)
    missed = [r for r in rows if r.ok is False]
    if missed:
        print(f"targets missed: {', '.join(sorted({f'{r.metric} ({r.size})' for r in missed}))}")
    if args.strict and missed:
        return 1
    return 1 if args.strict_calls and any(r.hard_failure for r in rows) else 0


METRICS = (
    "API calls: plan",
    "API calls: plan's writes",
    "API calls: apply",
    "apply time / rate-limit floor",
    "naive calls / ours",
    "naive time / ours (plan+apply)",
    "offline CPU: validate+plan / CSafeLoader parse",
    "rehearsal CPU / plan CPU",
    "start-up: reconciler --version / python -c pass",
    "start-up: reconciler --help / python -c pass",
    "start-up: reconciler validate one file / python -c pass",
    "start-up: validate's library imports alone / python -c pass",
    "peak memory planning",
)


def _metric_order(metric: str) -> int:
    return METRICS.index(metric) if metric in METRICS else len(METRICS)


if __name__ == "__main__":
    sys.exit(main())
