"""Load: a plan over 2,000 services and an apply of 500 operations under the rate limits.

The emulator enforces the documented per-endpoint limits with a 1-second window
(the live API's is a minute), so 500 writes span many windows: 100 creates and
100 updates at 20 per window, 200 upserts and 100 deletions at 30 per window.
The apply runs through the command line over real HTTP, as a user runs it:
it must pace itself so that no 429 reaches the user (no failed operation, no
429 in the output), converge, and a second plan must be empty.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from _reliability import CANARY_CREDENTIALS, OWNED, assert_no_duplicates
from click.testing import CliRunner

from reconciler import cli
from reconciler.emulator import Emulator

pytestmark = [pytest.mark.slow, pytest.mark.http]

LIVE_SERVICES = 2000
WINDOW_SECONDS = 1.0


def seed() -> dict[str, Any]:
    services = []
    for i in range(LIVE_SERVICES):
        version_sets: dict[str, Any] = {"release": {"agent_version_number": 2}}
        if 300 <= i < 400:
            version_sets["old"] = {}
        services.append(
            {
                "name": f"Svc {i:04d}",
                "description": f"service {i}",
                "agent": "Concierge",
                "service_hierarchical_state_machine": "Flow",
                "tags": {**OWNED, "team": f"t{i % 7}"},
                "keyterms": ["clinic"],
                "version_sets": version_sets,
            }
        )
    return {
        "organization": "load-org",
        "credentials": dict(CANARY_CREDENTIALS),
        "agents": [{"name": "Concierge", "latest_version": 4}],
        "state_machines": [{"name": "Flow", "latest_version": 6}],
        "services": services,
    }


def manifests(directory: Path) -> Path:
    """2,100 documents: 100 updates, 200 new version sets, 100 prunes, 100 creates."""
    docs = []
    for i in range(LIVE_SERVICES):
        spec: dict[str, Any] = {
            "description": f"service {i}" + (" (updated)" if i < 100 else ""),
            "agent": "Concierge",
            "service_hierarchical_state_machine": "Flow",
            "version_sets": {"release": {"agent_version_number": 2}},
        }
        if 100 <= i < 300:
            spec["version_sets"]["canary"] = {"agent_version_number": 3}
        docs.append({"metadata": {"name": f"Svc {i:04d}"}, "spec": spec})
    for i in range(100):
        docs.append(
            {
                "metadata": {"name": f"New {i:03d}"},
                "spec": {
                    "description": f"new {i}",
                    "agent": "Concierge",
                    "service_hierarchical_state_machine": "Flow",
                },
            }
        )
    directory.mkdir()
    for start in range(0, len(docs), 300):  # several files, as a real tree would be
        chunk = [
            {"apiVersion": "amigo.ai/v1", "kind": "Service", **d} for d in docs[start : start + 300]
        ]
        (directory / f"part-{start // 300:02d}.yaml").write_text(
            yaml.safe_dump_all(chunk, sort_keys=False), encoding="utf-8"
        )
    return directory


def test_plan_2000_services_and_apply_500_operations_without_a_429_reaching_the_user(
    tmp_path: Path,
) -> None:
    emulator = Emulator.from_seed(seed(), window_seconds=WINDOW_SECONDS)
    tree = manifests(tmp_path / "services")
    with emulator.serve() as server:
        env = emulator.credentials(server.base_url)

        def run(*args: str) -> Any:
            return CliRunner().invoke(cli.main, list(args), env=env, catch_exceptions=False)

        started = time.monotonic()
        planned = run("plan", str(tree), "--prune", "--format", "json")
        plan_seconds = time.monotonic() - started
        assert planned.exit_code == 0, planned.stderr[-3000:]
        plan = json.loads(planned.stdout)
        assert plan["errors"] == []
        actions = [op["action"] for op in plan["operations"]]
        assert actions.count("create_service") == 100
        assert actions.count("update_service") == 100
        assert actions.count("upsert_version_set") == 200
        assert actions.count("delete_version_set") == 100
        assert len(plan["operations"]) == 500
        assert plan["api_reads"]["get-services"] == LIVE_SERVICES // 20

        started = time.monotonic()
        applied = run("apply", str(tree), "--prune", "--auto-approve", "--format", "json")
        apply_seconds = time.monotonic() - started
        assert applied.exit_code == 0, applied.stderr[-3000:]
        report = json.loads(applied.stdout)
        statuses = [op["status"] for op in report["operations"]]
        assert len(statuses) == 500 and set(statuses) == {"done"}, set(statuses)
        assert all(op["api_status"] != 429 for op in report["operations"])
        for text in (applied.stdout, applied.stderr):
            assert "HTTP 429" not in text and "rate limit exceeded" not in text.lower()
        assert report["outcome"] == "converged" and report["converged"] is True

        again = run("plan", str(tree), "--prune", "--detailed-exitcode")
        assert again.exit_code == 0, again.stdout[-2000:]
    services = emulator.services()
    assert len(services) == LIVE_SERVICES + 100
    assert_no_duplicates(services, {s["name"]: 1 for s in services})
    # Pacing kept the server's 429s at zero (Retry-After would have been honoured anyway).
    print(
        f"plan {plan_seconds:.1f}s, apply {apply_seconds:.1f}s, "
        f"429s answered {emulator.rate_limited_count}"
    )
    assert emulator.rate_limited_count == 0
    # 200 upserts at 30 per 1-second window cannot take less than 6 windows.
    assert apply_seconds >= 5 * WINDOW_SECONDS
