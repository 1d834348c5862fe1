"""Writing an export: never overwrite without --force, name every file in the way, no half files."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.paths import REPO

from reconciler.diagnostics import UserError
from reconciler.export import ExportedFile, schema_ref_for, write_export


def exported(name: str, text: str = "apiVersion: amigo.ai/v1\n") -> ExportedFile:
    return ExportedFile(name=name, service=name, service_id="0" * 24, body=text, text=text)


def test_writes_every_file_and_creates_the_directory(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    paths = write_export(
        [exported("x.yaml", "one\n"), exported("y.yaml", "two\n")], out, force=False
    )
    assert paths == [out / "x.yaml", out / "y.yaml"]
    assert (out / "x.yaml").read_text(encoding="utf-8") == "one\n"
    assert sorted(p.name for p in out.iterdir()) == ["x.yaml", "y.yaml"]  # no temporaries left


def test_refuses_to_overwrite_naming_every_file_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("mine", encoding="utf-8")
    (tmp_path / "z.yaml").write_text("mine too", encoding="utf-8")
    files = [exported("x.yaml"), exported("y.yaml"), exported("z.yaml")]
    with pytest.raises(UserError) as info:
        write_export(files, tmp_path, force=False)
    messages = [str(d) for d in info.value.diagnostics]
    assert any(str(tmp_path / "x.yaml") in m for m in messages)
    assert any(str(tmp_path / "z.yaml") in m for m in messages)
    assert not any("y.yaml" in m for m in messages)
    assert "--force" in messages[-1] and "nothing was written" in messages[-1]
    assert not (tmp_path / "y.yaml").exists()
    assert (tmp_path / "x.yaml").read_text(encoding="utf-8") == "mine"


def test_force_overwrites(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("old", encoding="utf-8")
    write_export([exported("x.yaml", "new\n")], tmp_path, force=True)
    assert (tmp_path / "x.yaml").read_text(encoding="utf-8") == "new\n"


def test_out_that_is_a_file_or_a_directory_in_the_way_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(UserError, match="is not a directory"):
        write_export([exported("x.yaml")], tmp_path / "file", force=True)
    (tmp_path / "d" / "x.yaml").mkdir(parents=True)
    with pytest.raises(UserError, match="is a directory"):
        write_export([exported("x.yaml")], tmp_path / "d", force=True)


def test_a_directory_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(UserError, match="cannot write") as info:
        write_export([exported("x.yaml")], tmp_path / "file" / "sub", force=False)
    assert "Traceback" not in str(info.value)


def test_newlines_are_lf_on_every_os(tmp_path: Path) -> None:
    write_export([exported("x.yaml", "a\nb\n")], tmp_path, force=False)
    assert (tmp_path / "x.yaml").read_bytes() == b"a\nb\n"


def test_schema_ref_is_relative_inside_a_tree_that_holds_the_schema(tmp_path: Path) -> None:
    assert schema_ref_for(REPO / "examples" / "services") == "../../schemas/service.schema.json"
    assert schema_ref_for(REPO / "not-yet" / "deep") == "../../schemas/service.schema.json"
    assert schema_ref_for(REPO) == "schemas/service.schema.json"
    assert schema_ref_for(tmp_path / "elsewhere") is None  # no schema above: no modeline
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "service.schema.json").write_text("{}", encoding="utf-8")
    assert schema_ref_for(tmp_path / "services") == "../schemas/service.schema.json"
