"""Malformed API answers end in one clear error naming the operation and the field
(issue 12 item 12), over real HTTP on 127.0.0.1 against a scripted fake server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from _api_fake import service_record, unit_test_record
from click.testing import CliRunner

from reconciler import cli
from reconciler.api.client import AmigoClient
from reconciler.api.config import ApiConfig
from reconciler.api.errors import MalformedAnswer, OutcomeUnknown

pytestmark = pytest.mark.http

KEY = "fake-server-key-0123456789"
ORG = "acme"
SID = "5" * 24

# path suffix + method -> answer body; a callable gets the query and returns the body.
Answer = Any | Callable[[dict[str, list[str]]], Any]


class FakeServer:
    """Answers from `answers` (200, 201 for a create); an unscripted sign-in succeeds."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Answer] = {}
        self.requests: list[tuple[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                owner.requests.append((method, parts.path))
                key = next(
                    (k for k in owner.answers if k[0] == method and parts.path.endswith(k[1])),
                    None,
                )
                if key is None and parts.path.endswith("/signin_with_api_key"):
                    status, body = 200, {"id_token": "tok", "expires_at": "2999-01-01T00:00:00Z"}
                else:
                    if key is None:
                        status, body = 404, {"detail": "not scripted"}
                    else:
                        answer = owner.answers[key]
                        body = answer(parse_qs(parts.query)) if callable(answer) else answer
                        status = 201 if method == "POST" and key[1] == "/service/" else 200
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeServer:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def config(self) -> ApiConfig:
        return ApiConfig(
            organization=ORG,
            api_key=KEY,
            api_key_id="kid",
            user_id="uid",
            base_url=self.base_url,
            timeout=5.0,
        )


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


@pytest.fixture
def client(server: FakeServer) -> Iterator[AmigoClient]:
    with AmigoClient(server.config(), sleep=lambda _: None) as c:
        yield c


# A unit test set run with every field verify reads (a malformed one changes one).
RUN: dict[str, Any] = {
    "id": "9" * 24,
    "is_completed": True,
    "failed_metrics": False,
    "errored": False,
    "unit_test_run_specs": [],
    "unit_test_run_results": [],
}


def page(key: str, items: list[Any], *, more: bool = False, token: int | None = None) -> Any:
    return {key: items, "has_more": more, "continuation_token": token}


def test_a_listed_service_without_name_is_one_clear_error(
    server: FakeServer, client: AmigoClient
) -> None:
    broken = service_record(SID, "x")
    del broken["name"]
    server.answers[("GET", "/service/")] = page(
        "services", [service_record("1" * 24, "ok"), broken]
    )
    with pytest.raises(MalformedAnswer) as caught:
        client.list_services()
    message = str(caught.value)
    assert message.startswith("get-services failed: HTTP 200")
    assert "services[1].name: missing" in message


def test_has_more_with_a_null_token_is_an_error_not_a_short_list(
    server: FakeServer, client: AmigoClient
) -> None:
    server.answers[("GET", "/service/")] = page(
        "services", [service_record(SID, "a")], more=True, token=None
    )
    with pytest.raises(MalformedAnswer) as caught:
        client.list_services()
    assert "get-services" in str(caught.value)
    assert "has_more is true but continuation_token is null" in str(caught.value)


def test_pages_after_the_first_are_checked_too(server: FakeServer, client: AmigoClient) -> None:
    def services(query: dict[str, list[str]]) -> Any:
        if "continuation_token" not in query:
            return page("services", [service_record(SID, "a")], more=True, token=20)
        return page("services", [{**service_record("6" * 24, "b"), "is_active": "yes"}])

    server.answers[("GET", "/service/")] = services
    with pytest.raises(MalformedAnswer, match=r"services\[0\]\.is_active"):
        client.list_services()


@pytest.mark.parametrize(
    ("path", "call", "body", "field"),
    [
        (
            "/organization/agent",
            "list_agents",
            page("agents", [{"id": "a" * 24}]),
            "agents[0].name",
        ),
        (
            "/organization/service_hierarchical_state_machine",
            "list_state_machines",
            page("service_hierarchical_state_machines", [{"name": "Flow"}]),
            "service_hierarchical_state_machines[0].id",
        ),
        (
            "/simulation/unit_test/",
            "list_unit_tests",
            page("simulation_unit_tests", [{**unit_test_record("7" * 24, SID), "name": None}]),
            "simulation_unit_tests[0].name",
        ),
        (
            "/organization/agent",
            "list_agents",
            page("agents", [{"id": "a" * 24, "name": "Bot", "latest_version": 2}]),
            "agents[0].deprecated: missing",
        ),
        (
            "/service/",
            "list_services",
            page(
                "services",
                [service_record(SID, "a", version_sets={"release": {"llm_model_preferences": {}}})],
            ),
            "services[0].version_sets.release.agent_version_number: missing",
        ),
        (
            "/service/",
            "list_services",
            page("services", [{k: v for k, v in service_record(SID, "a").items() if k != "tags"}]),
            "services[0].tags: missing",
        ),
        ("/service/", "list_services", {"services": "nope", "has_more": False}, "services"),
        ("/service/", "list_services", {"services": [None], "has_more": False}, "services[0]"),
        ("/service/", "list_services", {"services": []}, "has_more: missing"),
        ("/service/", "list_services", [], "documented shape"),
        (
            "/simulation/unit_test_set/",
            "list_unit_test_sets",
            page("simulation_unit_test_sets", [{"name": "Smoke", "unit_test_runs": []}]),
            "simulation_unit_test_sets[0].id: missing",
        ),
        (
            "/simulation/unit_test_set_run/",
            "list_unit_test_set_runs",
            page("simulation_unit_test_set_runs", [{**RUN, "errored": None}]),
            "simulation_unit_test_set_runs[0].errored",
        ),
        (
            "/simulation/unit_test_set_run/",
            "list_unit_test_set_runs",
            page(
                "simulation_unit_test_set_runs",
                [
                    {
                        **RUN,
                        "unit_test_run_results": [
                            {
                                "unit_test_id": SID,
                                "metric_evaluation_results": [
                                    {"metric_id": "m", "results": [["e1", "yes"]]}
                                ],
                                "run_errors": [],
                            }
                        ],
                    }
                ],
            ),
            "unit_test_run_results[0].metric_evaluation_results[0].results[0][1]",
        ),
    ],
)
def test_every_list_answer_is_checked(
    server: FakeServer, client: AmigoClient, path: str, call: str, body: Any, field: str
) -> None:
    server.answers[("GET", path)] = body
    args = ([SID],) if call in ("list_unit_tests", "list_unit_test_set_runs") else ()
    with pytest.raises(MalformedAnswer) as caught:
        getattr(client, call)(*args)
    assert field in str(caught.value)


def test_a_create_answer_without_id_is_outcome_unknown_naming_the_field(
    server: FakeServer, client: AmigoClient
) -> None:
    server.answers[("POST", "/service/")] = {"identifier": SID}
    with pytest.raises(OutcomeUnknown) as caught:
        client.create_service({"name": "x"}, service="x")
    assert "create-service for service 'x'" in str(caught.value)
    assert "id: missing" in str(caught.value)


def test_a_run_start_answer_without_id_is_outcome_unknown(
    server: FakeServer, client: AmigoClient
) -> None:
    server.answers[("POST", "/simulation/unit_test_set_run/")] = {"run_id": "9" * 24}
    with pytest.raises(OutcomeUnknown, match="simulation_unit_test_set_run_id: missing"):
        client.create_unit_test_set_run("8" * 24)


def test_a_sign_in_answer_without_token_names_the_field(
    server: FakeServer, client: AmigoClient
) -> None:
    server.answers[("POST", "/signin_with_api_key")] = {"id_token": "", "expires_at": None}
    server.answers[("GET", "/service/")] = page("services", [])
    with pytest.raises(MalformedAnswer, match=r"sign-in-with-api-key failed: HTTP 200.*id_token"):
        client.list_services()
    assert ("GET", f"/v1/{ORG}/service/") not in server.requests


def test_plan_cli_says_which_answer_was_malformed_not_internal_error(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = service_record(SID, "x")
    del broken["name"]
    server.answers[("GET", "/service/")] = page("services", [broken])
    manifest = tmp_path / "greeter.yaml"
    manifest.write_text(
        "apiVersion: amigo.ai/v1\nkind: Service\nmetadata:\n  name: Greeter\nspec:\n"
        "  description: hi\n  agent_id: " + "a" * 24 + "\n"
        "  service_hierarchical_state_machine_id: " + "f" * 24 + "\n",
        encoding="utf-8",
    )
    for name, value in {
        "AMIGO_API_KEY": KEY,
        "AMIGO_API_KEY_ID": "kid",
        "AMIGO_USER_ID": "uid",
        "AMIGO_ORGANIZATION_ID": ORG,
        "AMIGO_BASE_URL": server.base_url,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AMIGO_RECONCILER_DEBUG", "")
    result = CliRunner().invoke(cli.main, ["plan", str(manifest)])
    assert result.exit_code != 0
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "internal error" not in output and "KeyError" not in output
    assert "get-services" in output and "services[0].name: missing" in output
