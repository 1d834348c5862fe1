"""The emulator over real HTTP on 127.0.0.1: same rules, and faults act like a real network."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from support.paths import REPO
from test_emulator_rules import AGENT, SM, Api, by_name, make_emulator

from reconciler.emulator import Fault

pytestmark = pytest.mark.http


def test_sign_in_pagination_and_writes_over_http() -> None:
    emulator = make_emulator()
    for index in range(42):
        emulator.add_service(f"bulk {index:02}", agent="Concierge", state_machine="Onboarding")
    with emulator.serve() as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        api = Api(emulator, server.base_url)
        assert api.sign_in().status_code == 200
        token: int | None = 0
        seen = []
        while token is not None:
            page = api.services(limit=20, continuation_token=token).json()
            seen += page["services"]
            token = page["continuation_token"]
        assert len(seen) == 45
        created = api.create(name="Over the wire", tags={"managed_by": "amigo_reconciler"})
        assert created.status_code == 201
        service_id = created.json()["id"]
        assert api.upsert(service_id, "canary", agent_version_number=2).status_code == 204
        assert api.delete(service_id, "canary").status_code == 204
        assert api.create(name="Over the wire").status_code == 409
        api.http.close()


def test_status_faults_and_dropped_connections_over_http() -> None:
    emulator = make_emulator()
    with emulator.serve() as server:
        api = Api(emulator, server.base_url)
        api.sign_in()
        emulator.inject("get-services", Fault.STATUS_503_RETRY_AFTER)
        response = api.services()
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        emulator.inject("get-services", Fault.STATUS_429)
        assert api.services().status_code == 429
        assert emulator.rate_limited_count == 1
        emulator.inject("create-service", Fault.DROP_BEFORE)
        with pytest.raises(httpx.RemoteProtocolError):
            api.create(name="Lost")
        assert not [s for s in emulator.services() if s["name"] == "Lost"]
        emulator.inject("create-service", Fault.DROP_AFTER)
        with pytest.raises(httpx.RemoteProtocolError):
            api.create(name="Lost")
        assert [s["name"] for s in emulator.services()].count("Lost") == 1
        # The connection pool recovers: the next call is answered normally.
        assert api.services().status_code == 200
        api.http.close()


def test_slow_answer_times_out_a_short_client_timeout_over_http() -> None:
    emulator = make_emulator(slow_seconds=2)
    with emulator.serve() as server:
        api = Api(emulator, server.base_url, timeout=0.2)
        api.sign_in()
        greeter = by_name(emulator, "Greeter")
        emulator.inject("upsert-service-version-set", Fault.SLOW)
        with pytest.raises(httpx.ReadTimeout):
            api.upsert(greeter["id"], "late")
        assert "late" in emulator.service(greeter["id"])["version_sets"]
        api.http.close()


def test_concurrent_creates_of_one_name_give_exactly_one_service() -> None:
    emulator = make_emulator()
    with emulator.serve() as server:
        api = Api(emulator, server.base_url)
        api.sign_in()
        body = {
            "name": "Race",
            "description": "d",
            "is_active": True,
            "agent_id": AGENT,
            "service_hierarchical_state_machine_id": SM,
            "keyterms": [],
            "tags": {},
        }
        with ThreadPoolExecutor(8) as pool:
            statuses = list(
                pool.map(lambda _: api.call("POST", "/service/", json=body).status_code, range(12))
            )
        assert sorted(statuses) == [201] + [409] * 11
        api.http.close()


def test_cli_prints_exports_serves_and_stops_cleanly_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", "0", "--window-seconds", "5"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        exports = dict(
            process.stdout.readline().strip().removeprefix("export ").split("=", 1)
            for _ in range(5)
        )
        assert set(exports) == {
            "AMIGO_BASE_URL",
            "AMIGO_ORGANIZATION_ID",
            "AMIGO_API_KEY",
            "AMIGO_API_KEY_ID",
            "AMIGO_USER_ID",
        }
        assert exports["AMIGO_BASE_URL"].startswith("http://127.0.0.1:")
        response = httpx.post(
            f"{exports['AMIGO_BASE_URL']}/v1/{exports['AMIGO_ORGANIZATION_ID']}"
            "/user/signin_with_api_key",
            headers={
                "x-api-key": exports["AMIGO_API_KEY"],
                "x-api-key-id": exports["AMIGO_API_KEY_ID"],
                "x-user-id": exports["AMIGO_USER_ID"],
            },
        )
        assert response.status_code == 200
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "Traceback" not in stderr and "emulator stopped" in stderr
