"""Canary credentials through every command, failure and log: the key and tokens never show.

The emulator here runs with `CANARY_API_KEY`; the session-wide guard
(`tests/_secrets_guard.py`, installed by conftest) scans every CliRunner result,
capsys read, log record, plan, report, ApiError and file of the whole suite for
it and for every token any emulator issued. These tests drive the paths where a
secret could slip out and also assert on what they see, so they fail on their
own even without the guard. The guard's own tests prove it can fail.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _reliability import CANARY_API_KEY, realistic_seed, write_manifests
from click.testing import CliRunner, Result
from support.cli import emulator_client

from reconciler import cli
from reconciler.api.client import AmigoClient
from reconciler.api.config import ApiConfig, check_base_url
from reconciler.api.errors import ApiError, ConfigError
from reconciler.connect import emulator_config
from reconciler.emulator import Emulator, EmulatorServer, Fault

pytestmark = pytest.mark.http


@pytest.fixture
def emulator() -> Emulator:
    return Emulator.from_seed(realistic_seed(), window_seconds=1.0)


@pytest.fixture
def server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with emulator.serve() as running:
        yield running


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in ("reconciler", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def issued_tokens(emulator: Emulator) -> list[str]:
    return emulator.issued_tokens  # the emulator's record of every token it issued


def assert_clean(texts: list[str], emulator: Emulator) -> None:
    secrets = [CANARY_API_KEY, *issued_tokens(emulator)]
    assert issued_tokens(emulator), "nothing signed in: the test proves nothing"
    leaked = [(i, s[:8]) for i, text in enumerate(texts) for s in secrets if s in text]
    assert leaked == []


def run(emulator: Emulator, server: EmulatorServer, *args: str) -> Result:
    env = emulator.credentials(server.base_url)
    return CliRunner().invoke(cli.main, list(args), env=env, catch_exceptions=False)


def test_every_command_and_format_over_http_keeps_the_key_and_token_hidden(
    emulator: Emulator, server: EmulatorServer, tmp_path: Path, debug_logs: Any
) -> None:
    manifests = write_manifests(tmp_path / "services")
    plan_file = tmp_path / "plan.json"
    results = [run(emulator, server, "validate", str(manifests))]
    for fmt in ("text", "markdown", "json", "github"):
        results.append(run(emulator, server, "plan", str(manifests), "--prune", "--format", fmt))
    results.append(
        run(emulator, server, "plan", str(manifests), "--prune", "--out", str(plan_file))
    )
    # A fault mid-apply: failure messages and lost-answer notes are rendered too.
    emulator.inject("upsert-service-version-set", Fault.STATUS_500, service_name="Owned 2")
    emulator.inject("create-service", Fault.DROP_AFTER, service_name="New 3")
    results.append(run(emulator, server, "apply", str(plan_file), "--auto-approve"))
    results.append(
        run(
            emulator,
            server,
            "apply",
            str(manifests),
            "--prune",
            "--auto-approve",
            "--format",
            "json",
        )
    )
    results.append(run(emulator, server, "export", "--out", str(tmp_path / "exported")))
    assert [r.exit_code for r in results] == [0, 0, 0, 0, 0, 0, 1, 0, 0], [
        r.output for r in results
    ]
    texts = [r.output for r in results] + [r.stderr for r in results]
    texts += [p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file()]
    texts += [f"{r.getMessage()} {r.args!r}" for r in debug_logs.records]
    assert any(r.name == "httpx" for r in debug_logs.records)  # DEBUG logging was on
    assert_clean(texts, emulator)


def test_wrong_key_revoked_token_and_server_errors_show_no_secret(
    emulator: Emulator, server: EmulatorServer, debug_logs: Any, allow_invalid_requests: None
) -> None:
    wrong = CANARY_API_KEY + "-WRONG"
    env = {**emulator.credentials(server.base_url), "AMIGO_API_KEY": wrong}
    refused = CliRunner().invoke(cli.main, ["export"], env=env, catch_exceptions=False)
    assert refused.exit_code == 1
    assert "sign-in-with-api-key" in refused.stderr and "401" in refused.stderr
    assert wrong not in refused.output and wrong not in refused.stderr

    config = emulator_config(emulator, server.base_url)
    client = AmigoClient(config)
    client.list_services()
    first_token = issued_tokens(emulator)
    emulator.revoke_tokens()  # 401 then a fresh sign-in: both tokens must stay hidden
    client.list_services()
    emulator.inject("create-service", Fault.STATUS_500)
    errors: list[BaseException] = []
    with pytest.raises(ApiError) as info:
        client.create_service({"name": "X"}, service="X")
    errors.append(info.value)
    client.close()
    texts = [str(e) for e in errors] + [repr(e) for e in errors] + [repr(e.args) for e in errors]
    texts += [repr(client), repr(client.config), str(client.config), repr(client._tokens)]
    texts += [f"{r.getMessage()} {r.args!r}" for r in debug_logs.records]
    assert len(first_token) == 1 and first_token != issued_tokens(emulator)  # signed in again
    assert_clean([*texts, repr(emulator)], emulator)
    assert not any(token in text for token in first_token for text in texts)


def test_api_config_repr_and_str_hide_the_key() -> None:
    config = ApiConfig(organization="org", api_key=CANARY_API_KEY, api_key_id="kid", user_id="uid")
    for text in (repr(config), str(config), f"{config}", f"{config!r}"):
        assert CANARY_API_KEY not in text
        assert "kid" in text  # ids are not secrets: shown, so a user can tell configs apart


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://user:{CANARY_API_KEY}@api.example.com",
        f"https://user:{CANARY_API_KEY}@api.example.com:notaport",
        f"http://user:{CANARY_API_KEY}@10.0.0.1",
        f"https://user:{CANARY_API_KEY}@api.example.com",
        f"https://api.example.com/?key={CANARY_API_KEY}",
    ],
)
def test_a_base_url_carrying_a_secret_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_base_url(url)
    assert CANARY_API_KEY not in str(info.value)
    assert "AMIGO_BASE_URL" in str(info.value)


def test_exchange_reprs_hide_credentials() -> None:
    seen: list[Any] = []
    emulator = Emulator.from_seed(realistic_seed(), window_seconds=1.0, observers=[seen.append])
    client = emulator_client(emulator)
    client.list_services()
    client.close()
    assert_clean([repr(exchange) for exchange in seen], emulator)


# --- the guard itself ----------------------------------------------------------------


def test_guard_catches_the_canary_and_issued_tokens_everywhere(
    secrets_guard: Any, emulator: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    client = emulator_client(emulator)
    client.list_services()
    token = issued_tokens(emulator)[0]
    with secrets_guard.expect_leaks() as caught:
        print(f"token={token}")
        capsys.readouterr()
        # The guard is the handler of the reconciler / httpx loggers; one that does not
        # propagate keeps this deliberate leak out of pytest's own capture.
        isolated = logging.getLogger("amigo-secrets-guard-self-test")
        isolated.propagate = False
        isolated.addHandler(secrets_guard)
        isolated.warning("key %s", CANARY_API_KEY)
        isolated.removeHandler(secrets_guard)
        CliRunner().invoke(cli.main, ["validate", f"/nonexistent/{CANARY_API_KEY}.yaml"])
        (tmp_path / "plan.json").write_text(json.dumps({"t": token}), encoding="utf-8")
        secrets_guard.check_tree(tmp_path)
        with pytest.raises(ApiError):
            raise ApiError("get-services", detail=f"echoed {token}")
    (tmp_path / "plan.json").unlink()
    client.close()
    where = " | ".join(caught)
    for source in ("capsys", "log record", "CliRunner", "file", "ApiError"):
        assert source in where, where
    assert token not in where and CANARY_API_KEY not in where  # the report leaks nothing


def test_guard_learned_tokens_from_http_sign_ins(
    secrets_guard: Any, emulator: Emulator, server: EmulatorServer
) -> None:
    with httpx.Client(base_url=server.base_url) as raw:
        answer = raw.post(
            f"/v1/{emulator.organization}/user/signin_with_api_key",
            headers={
                "x-api-key": CANARY_API_KEY,
                "x-api-key-id": emulator.credentials()["AMIGO_API_KEY_ID"],
                "x-user-id": emulator.credentials()["AMIGO_USER_ID"],
            },
        )
    token = answer.json()["id_token"]
    assert secrets_guard.found(f"Bearer {token}")
    assert not secrets_guard.found("Bearer emu.not-a-token-anyone-issued")
