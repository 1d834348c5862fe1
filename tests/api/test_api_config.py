"""Settings: flags else AMIGO_* environment, one message for everything missing, safe URLs."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from support.paths import SEED

from reconciler.api.config import ApiConfig
from reconciler.api.errors import ConfigError
from reconciler.cli.shared import ConnectionOptions, connection_options, handle_errors
from reconciler.connect import open_client

FULL_ENV = {
    "AMIGO_API_KEY": "sk-SECRET-123456",
    "AMIGO_API_KEY_ID": "kid",
    "AMIGO_USER_ID": "uid",
    "AMIGO_ORGANIZATION_ID": "acme",
}


def test_environment_supplies_every_setting_and_base_url_defaults() -> None:
    config = ApiConfig.from_env({}, env=FULL_ENV)
    assert (config.organization, config.api_key_id, config.user_id) == ("acme", "kid", "uid")
    assert config.api_key == "sk-SECRET-123456"
    assert config.base_url == "https://api.amigo.ai"


def test_flags_override_environment_and_empty_flags_do_not() -> None:
    config = ApiConfig.from_env(
        {
            "AMIGO_ORGANIZATION_ID": "other",
            "AMIGO_USER_ID": "",
            "AMIGO_BASE_URL": "https://x.test/",
        },
        env=FULL_ENV,
    )
    assert config.organization == "other"
    assert config.user_id == "uid"
    assert config.base_url == "https://x.test"


def test_one_error_lists_every_missing_setting_and_how_to_set_it() -> None:
    with pytest.raises(ConfigError) as info:
        ApiConfig.from_env({}, env={"AMIGO_USER_ID": "uid", "AMIGO_API_KEY_ID": "  "})
    message = str(info.value)
    for name in ("AMIGO_API_KEY", "AMIGO_API_KEY_ID", "AMIGO_ORGANIZATION_ID"):
        assert name in message
    assert "AMIGO_USER_ID:" not in message
    assert "--organization" in message and "--api-key-id" in message
    assert "environment only" in message  # the key is never a flag


@pytest.mark.parametrize(
    "url",
    [
        "https://api.amigo.ai",
        "https://eu.api.amigo.ai:8443/prefix/",
        "http://localhost:8080",
        "http://127.0.0.1:5000",
        "http://127.8.9.10",
        "http://[::1]:9000",
    ],
)
def test_accepted_base_urls(url: str) -> None:
    config = ApiConfig.from_env({"AMIGO_BASE_URL": url}, env=FULL_ENV)
    assert config.base_url == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://api.amigo.ai", "plain http"),
        ("http://10.0.0.5:8080", "plain http"),
        ("http://localhost.evil.test", "plain http"),
        ("ftp://api.amigo.ai", "not an http(s) URL"),
        ("api.amigo.ai", "not an http(s) URL"),
        ("https://", "not an http(s) URL"),
        ("https://user:pw@api.amigo.ai", "must not carry credentials"),
        ("https://api.amigo.ai/?x=1", "query or fragment"),
        ("https://api.amigo.ai:99999", "not a valid URL"),
    ],
)
def test_refused_base_urls_say_why(url: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match="AMIGO_BASE_URL") as info:
        ApiConfig.from_env({"AMIGO_BASE_URL": url}, env=FULL_ENV)
    assert complaint in str(info.value)
    assert "pw" not in str(info.value) or "user:password" in str(info.value)


def test_repr_never_shows_the_api_key() -> None:
    config = ApiConfig.from_env({}, env=FULL_ENV)
    assert "sk-SECRET-123456" not in repr(config)
    assert "sk-SECRET-123456" not in str(config)
    assert "acme" in repr(config)


def test_open_client_reads_settings_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FULL_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AMIGO_BASE_URL", raising=False)
    with open_client({"AMIGO_ORGANIZATION_ID": "flagged"}) as client:
        assert client.config.organization == "flagged"
        assert client.config.base_url == "https://api.amigo.ai"
    monkeypatch.delenv("AMIGO_API_KEY")
    with pytest.raises(ConfigError, match="AMIGO_API_KEY"):
        open_client({})


def test_open_client_with_emulator_needs_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FULL_ENV:
        monkeypatch.delenv(name, raising=False)
    told: list[str] = []
    with open_client({}, emulator_seed=str(SEED), on_wait=told.append) as client:
        assert client.config.organization == "brightside-health"
        assert client.list_services()
        assert client.request_counts["get-services"] >= 1


def _command() -> click.Command:
    seen: list[ConnectionOptions] = []

    @click.command()
    @connection_options
    @handle_errors
    def probe(connection: ConnectionOptions) -> None:
        seen.append(connection)
        with connection.open() as client:
            click.echo(f"{client.config.organization} {len(client.list_services())}")

    probe.seen = seen  # type: ignore[attr-defined]
    return probe


def test_connection_options_flags_and_emulator() -> None:
    command = _command()
    result = CliRunner().invoke(command, ["--emulator", str(SEED), "--organization", "ignored"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("brightside-health ")
    (options,) = command.seen  # type: ignore[attr-defined]
    assert options.organization == "ignored" and options.emulator_seed == str(SEED)
    assert options.settings()["AMIGO_ORGANIZATION_ID"] == "ignored"


def test_connection_options_missing_settings_is_one_clear_error() -> None:
    result = CliRunner().invoke(_command(), ["--user-id", "u"], env=dict.fromkeys(FULL_ENV))
    assert result.exit_code == 1
    assert "error: missing Amigo API settings" in result.output
    assert "AMIGO_USER_ID:" not in result.output
    assert "Traceback" not in result.output


def test_there_is_no_api_key_flag() -> None:
    result = CliRunner().invoke(_command(), ["--api-key", "x"])
    assert result.exit_code == 2
    assert "No such option" in result.output
