"""The manifest loader and the emulator's seed report YAML problems by one set of rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.diagnostics import UserError, close_matches, did_you_mean
from reconciler.emulator.seed import load_seed
from reconciler.manifests import load_manifests


def test_seed_and_manifest_yaml_errors_never_echo_the_file(tmp_path: Path) -> None:
    text = "organization: acme\ncredentials: *hunter2_alias\n"
    seed, manifest = tmp_path / "seed.yaml", tmp_path / "svc.yaml"
    seed.write_text(text)
    manifest.write_text(text)
    messages = []
    for load, path in ((load_seed, seed), (load_manifests, [manifest])):
        with pytest.raises(UserError) as caught:
            load(path)  # type: ignore[operator]
        messages.append(str(caught.value))
    assert all("hunter2" not in m and "not valid YAML" in m for m in messages), messages
    assert f"{seed}:2:14" in messages[0] and f"{manifest}:2:14" in messages[1]


def test_seed_unknown_key_points_at_the_key_and_missing_at_its_mapping(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "organization: acme\ncredentials:\n  api_key: k\n  api_key_id: i\n  usr_id: u\n"
    )
    with pytest.raises(UserError) as caught:
        load_seed(seed)
    by_field = {d.field: d for d in caught.value.diagnostics}
    assert str(by_field["credentials.usr_id"].pos) == f"{seed}:5:3"
    assert str(by_field["credentials.user_id"].pos) == f"{seed}:3:3"


def test_one_did_you_mean_for_every_caller() -> None:
    assert close_matches("Descripton", ["name", "description"]) == ["description"]
    assert did_you_mean("canery", ["canary", "release"]) == "; did you mean 'canary'?"
    assert did_you_mean("gretter", ["Greeter", "Greeters", "x"], limit=3) == (
        "; did you mean 'Greeter' or 'Greeters'?"
    )
    assert did_you_mean("zzz", ["canary"]) == ""
