"""The performance benchmark keeps working: a tiny end-to-end run, its floor and its RESULTS section.

The benchmark itself is not a test (timings are not asserted); these only make
sure `benchmarks/run.py --quick` runs end to end and reports the deterministic
figures (API calls at the theoretical minimum) so it cannot rot.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import REPO

BENCHMARKS = REPO / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import floors  # noqa: E402
import run  # noqa: E402
import workload  # noqa: E402


def _rows(output: str, metric: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(metric)]


@pytest.mark.http
@pytest.mark.slow
def test_quick_run_reports_every_figure_with_minimal_calls() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--strict-calls"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for metric in run.METRICS:
        assert _rows(out, metric), f"no {metric!r} row in:\n{out}"
    for metric in ("API calls: plan", "API calls: plan's writes", "API calls: apply"):
        for line in _rows(out, metric):
            assert re.search(r"\s1\.00\s+1\.00\s+ok\s", line), line
    for line in _rows(out, "apply time / rate-limit floor"):
        assert "surfaced 0" in line and "converged" in line and "NOT" not in line, line
    assert "measured (" in out and "est. at its rate-limit floor" in out


def test_floor_counts_windows_with_dependencies() -> None:
    create, upsert, update = "create-service", "upsert-service-version-set", "update-service"
    assert floors.windows_needed([]) == 0
    assert floors.windows_needed([floors.Call(create)] * 20) == 1
    assert floors.windows_needed([floors.Call(create)] * 21) == 2
    # A create and its dependent upsert fit in one window; independent endpoints overlap.
    calls = [floors.Call(create), floors.Call(upsert, (0,)), *[floors.Call(update)] * 20]
    assert floors.windows_needed(calls) == 1
    # 40 creates (2 windows), each with 2 upserts: 80 upserts need 3 windows of 30,
    # but half of them only become ready in window 2.
    chained = [floors.Call(create) for _ in range(40)]
    chained += [floors.Call(upsert, (i,)) for i in range(40) for _ in range(2)]
    assert floors.busiest_endpoint_windows(chained) == 3
    assert floors.windows_needed(chained) == 3
    assert floors.floor_seconds(3, 0.5) == 1.0
    with pytest.raises(ValueError, match="cycle"):
        floors.windows_needed([floors.Call(create, (1,)), floors.Call(create, (0,))])


def test_workload_mix_gives_every_kind_of_write() -> None:
    expected = workload.build(100).expected
    assert (expected.creates, expected.updates, expected.upserts) == (10, 20, 55)
    assert expected.live_services == 95 and expected.list_pages == 5
    assert expected.plan_calls == 1 + 5 + 2


def test_markdown_section_replaced_in_place_keeping_other_sections(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## validate\n\nfigures\n", encoding="utf-8")
    rows = [run.Row("API calls: plan", "100", "8", "8 min", 1.0, "1.00", True)]
    run.update_results(run.render_markdown(rows, "python benchmarks/run.py", "a machine"), results)
    run.update_results(run.render_markdown(rows, "python benchmarks/run.py", "b machine"), results)
    text = results.read_text(encoding="utf-8")
    assert text.count(run.SECTION_BEGIN) == 1 and "b machine" in text and "a machine" not in text
    assert "## validate\n\nfigures" in text
    assert "| API calls: plan | 100 | 8 | 8 min | 1.00 | 1.00 | ok |" in text
