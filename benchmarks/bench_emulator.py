"""Benchmark: the emulator's cost per request, in-process vs. over loopback HTTP.

One run, same emulator, same request (a get-services page of 20 out of 500
services, signed in), interleaved best-of-N so machine noise hits every side
alike. Figures that matter are ratios: the request handler alone, through
`httpx.MockTransport` (what fast tests and `--emulator` use), and over real HTTP
on 127.0.0.1 (what `reconciler emulator` serves). With the OpenAPI document at
../shared it also measures the contract hook the test suite adds to every exchange.

    .venv/bin/python benchmarks/bench_emulator.py [--requests 300] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from reconciler.emulator import Emulator, Observer

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO.parent / "shared" / "amigo-openapi.json"


def make_emulator(services: int, observers: Sequence[Observer] = ()) -> Emulator:
    emulator = Emulator.from_seed(
        {
            "organization": "bench",
            "credentials": {"api_key": "k", "api_key_id": "kid", "user_id": "u"},
            "agents": [{"name": "Agent", "latest_version": 3}],
            "state_machines": [{"name": "Flow", "latest_version": 3}],
        },
        window_seconds=1e9,  # measure the handler, not the rate limiter's 429s
        observers=observers,
    )
    for i in range(services):
        emulator.add_service(
            f"Service {i:04d}",
            agent="Agent",
            state_machine="Flow",
            tags={"team": "growth", "managed_by": "amigo_reconciler"},
            keyterms=["alpha beta"],
            version_sets={"canary": {"agent_version_number": 2}},
        )
    return emulator


def signed_in(emulator: Emulator) -> dict[str, str]:
    """Headers of a signed-in user of `emulator`."""
    creds = emulator.credentials()
    sign_in = {
        "x-api-key": creds["AMIGO_API_KEY"],
        "x-api-key-id": creds["AMIGO_API_KEY_ID"],
        "x-user-id": creds["AMIGO_USER_ID"],
    }
    token = emulator.handle(
        "POST", f"/v1/{emulator.organization}/user/signin_with_api_key", (), sign_in
    ).json()["id_token"]
    return {"authorization": f"Bearer {token}"}


def timed(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    emulator = make_emulator(500)
    path = f"/v1/{emulator.organization}/service/"
    auth = signed_in(emulator)
    query = (("limit", "20"), ("continuation_token", "40"))

    in_process = httpx.Client(transport=emulator.transport(), base_url="http://localhost")
    server = emulator.serve()
    over_http = httpx.Client(base_url=server.base_url)

    sides: dict[str, Callable[[], object]] = {
        "handler": lambda: emulator.handle("GET", path, query, auth),
        "in-process transport": lambda: in_process.get(path, params=query, headers=auth),
        "loopback HTTP": lambda: over_http.get(path, params=query, headers=auth),
    }
    if SPEC.is_file():
        sys.path.insert(0, str(REPO / "tests"))
        from contract import ContractRecorder

        recorder = ContractRecorder.from_path(SPEC)
        recorder.begin(allow_invalid_requests=False)

        observed = make_emulator(500, observers=[recorder])
        observed_auth = signed_in(observed)

        def with_contract() -> object:
            # Vary the page: 480 distinct answers, so the memo only partly hides the cost.
            token_value = str(int(time.perf_counter_ns() % 480))
            return observed.handle(
                "GET", path, (("limit", "20"), ("continuation_token", token_value)), observed_auth
            )

        sides["handler + contract check (memoized)"] = with_contract

    best = {name: float("inf") for name in sides}
    for _ in range(args.repeat):
        for name, fn in sides.items():
            best[name] = min(best[name], timed(fn, args.requests))
    server.close()
    if SPEC.is_file():
        problems = recorder.end()
        assert not problems, problems[:3]
        print(f"# contract: {recorder.exchanges_checked} exchanges checked, no violations")

    base = best["handler"]
    print(f"# {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(
        f"# {time.strftime('%Y-%m-%d')}, get-services page of 20 / 500 services, best of {args.repeat}"
    )
    for name, seconds in best.items():
        print(f"{name:40s} {seconds * 1e3:8.3f} ms/request  {seconds / base:6.1f}x handler")
    print(json.dumps({k: round(v * 1e3, 3) for k, v in best.items()}))


if __name__ == "__main__":
    main()
