"""The OpenAPI document's one reader: skip when absent, fail when AMIGO_REQUIRE_OPENAPI is set."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import openapi


@pytest.fixture
def absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openapi, "REPO", tmp_path / "repo")  # no ../shared beside it
    monkeypatch.delenv(openapi.ENV_SPEC, raising=False)


@pytest.mark.usefixtures("absent")
def test_a_missing_document_skips_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(openapi.ENV_REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="absent"):
        openapi.require_path()


@pytest.mark.usefixtures("absent")
def test_a_missing_document_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(openapi.ENV_REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match="AMIGO_REQUIRE_OPENAPI"):
        openapi.require_path()


def test_ci_requires_the_document() -> None:
    from support.paths import REPO

    assert 'AMIGO_REQUIRE_OPENAPI="${AMIGO_REQUIRE_OPENAPI:-1}"' in (REPO / ".ci/run").read_text()


def test_the_variable_names_another_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text("{}", encoding="utf-8")
    monkeypatch.setenv(openapi.ENV_SPEC, str(spec))
    assert openapi.require_path() == spec
