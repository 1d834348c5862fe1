"""`reconciler promote`: minimal in-place edits; every byte outside the target set stays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.cli import emulator_client

from reconciler.cli import main
from reconciler.diagnostics import UserError
from reconciler.manifests import load_manifests
from reconciler.promote import NothingToPromote, UnpinnedSource
from reconciler.promote import plan_promotion as _plan_promotion


def plan_promotion(*args: Any, **kwargs: Any) -> Any:
    """The text-editing tests promote unpinned sets too: the refusal is tested on its own."""
    return _plan_promotion(*args, require_pinned=False, **kwargs)


HEAD = """\
# {name}: comments stay
apiVersion: amigo.ai/v1
kind: Service
metadata:
  name: "{name}"   # quoted on purpose
spec:
  description: 'Answers calls'
  agent: Concierge
  service_hierarchical_state_machine: Flow
  tags: {{team: front}}  # flow tags
  version_sets:
"""

CANARIES = {
    "block": "    canary:  # the canary\n      agent_version_number: 4   # new\n"
    "      llm_model_preferences:\n        conversation:\n"
    "          llm_name: 'openai_gpt-5.1-2025-11-13'\n          params: {temperature: 0.2}\n",
    "flow": "    canary: {agent_version_number: 4, service_hierarchical_state_machine_version_number: 2}\n",
    "empty": "    canary: {}\n",
}
RELEASES = {
    "block": "    release:\n      agent_version_number: 3  # stable\n"
    "      service_hierarchical_state_machine_version_number: 1\n"
    "      llm_model_preferences: {}\n",
    "flow": "    release: {agent_version_number: 3}\n",
    "missing": "",
    "nested": "    release:\n      llm_model_preferences:\n        conversation:\n"
    "          llm_name: openai_gpt-4.1-2025-04-14\n          params:\n            temperature: 0.9\n",
}
TAIL = "  keyterms: [front desk]\n# trailing comment\n"


def document(name: str, canary: str, release: str) -> str:
    return HEAD.format(name=name) + canary + release + TAIL


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("canary", sorted(CANARIES))
@pytest.mark.parametrize("release", sorted(RELEASES))
def test_only_the_target_set_changes(
    tmp_path: Path, canary: str, release: str, newline: str
) -> None:
    other = document("Other", CANARIES["block"], RELEASES["block"])
    mine = document("Front", CANARIES[canary], RELEASES[release])
    text = ("---\n".join([other, mine, other.replace("Other", "Third")])).replace("\n", newline)
    path = tmp_path / "services.yaml"
    path.write_bytes(text.encode())
    result = plan_promotion([path], ["Front"], source="canary", target="release")
    [change] = result.changes
    after = change.after
    # Everything outside the Front document's release entry is byte-identical.
    offset = text.index("# Front:")
    canary_text = CANARIES[canary].replace("\n", newline)
    release_text = RELEASES[release].replace("\n", newline)
    entry_start = text.index(canary_text + release_text, offset) + len(canary_text)
    entry_end = entry_start + len(release_text)
    assert after[:entry_start] == text[:entry_start]
    assert after[len(after) - (len(text) - entry_end) :] == text[entry_end:]
    if newline == "\r\n":
        assert "\n" not in after.replace("\r\n", "")
    path.write_bytes(after.encode())
    loaded = {s.name: s for s in load_manifests([path]).services}
    assert loaded["Front"].version_sets["release"] == loaded["Front"].version_sets["canary"]
    assert loaded["Other"].version_sets["release"] != loaded["Other"].version_sets["canary"]


def test_anchors_and_aliases_are_refused_where_unsafe(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        HEAD.format(name="Front")
        + "    canary: &base {agent_version_number: 4}\n    release: *base\n"
        + "    staging: {agent_version_number: 2}\n"
        + TAIL
    )
    with pytest.raises(UserError, match="anchor, alias or merge key"):
        plan_promotion([path], ["Front"], source="staging", target="release")
    with pytest.raises(UserError, match="anchor, alias or merge key"):
        plan_promotion([path], ["Front"], source="canary", target="staging")


def test_anchors_elsewhere_in_the_file_stay_untouched(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    text = (
        HEAD.format(name="Front").replace("tags: {team: front}", "tags: &tags {team: front}")
        + "    canary: {agent_version_number: 4}\n    release: {agent_version_number: 2}\n"
        + TAIL
        + "---\n"
        + HEAD.format(name="B").replace("tags: {team: front}", "tags: {team: b}")
        + "    release: {agent_version_number: 1}\n"
        + TAIL
    )
    path.write_text(text)
    [change] = plan_promotion([path], ["Front"], source="canary", target="release").changes
    assert change.after == text.replace(
        "release: {agent_version_number: 2}", "release: {agent_version_number: 4}"
    )


def test_refusals(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(document("Front", CANARIES["flow"], RELEASES["flow"]))
    with pytest.raises(UserError, match="cannot promote to 'edge'"):
        plan_promotion([path], ["Front"], source="canary", target="edge")
    for cased in ("EDGE", "Edge"):  # review of #18: these created a set beside edge
        with pytest.raises(UserError, match=f"cannot promote to 'edge'.*'{cased}' is not 'edge'"):
            plan_promotion([path], ["Front"], source="canary", target=cased)
    assert "EDGE" not in path.read_text()
    with pytest.raises(UserError, match="did you mean 'Front'"):
        plan_promotion([path], ["Frnt"], source="canary", target="release")
    with pytest.raises(UserError, match=r"declares no version set 'canery'.*did you mean 'canary'"):
        plan_promotion([path], ["Front"], source="canery", target="release")
    same = tmp_path / "same.yaml"
    path.unlink()
    same.write_text(
        document("Front", CANARIES["flow"], CANARIES["flow"].replace("canary", "release"))
    )
    with pytest.raises(NothingToPromote):
        plan_promotion([same], ["Front"], source="canary", target="release")


def test_verify_declarations_are_not_copied(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        document(
            "Front",
            "    canary:\n      agent_version_number: 4\n      verify: {unit_test_sets: [Smoke]}\n",
            "    release:\n      agent_version_number: 3\n",
        )
    )
    [change] = plan_promotion([path], ["Front"], source="canary", target="release").changes
    assert "    release:\n      agent_version_number: 4\n" in change.after
    assert change.after.count("verify:") == 1


@pytest.mark.parametrize(
    "canary",
    [
        "    canary:\n      agent_version_number: 4  # new\n"
        "      verify: {unit_test_sets: [Smoke]}\n      llm_model_preferences: {}\n",
        "    canary: {agent_version_number: 4, verify: {unit_test_sets: [Smoke]}}\n",
    ],
)
def test_a_new_target_set_leaves_out_the_source_verify(tmp_path: Path, canary: str) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(document("Front", canary, "    staging: {}\n"))
    [change] = plan_promotion([path], ["Front"], source="canary", target="release").changes
    assert change.after.count("verify:") == 1
    path.write_text(change.after)
    [front] = load_manifests([path]).services
    assert front.version_sets["release"] == front.version_sets["canary"]
    assert front.verify == {"canary": ("Smoke",)}


def test_cli_diff_write_and_exit_codes(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(document("Front", CANARIES["flow"], RELEASES["flow"]))
    runner = CliRunner()
    args = ["promote", "Front", "--from", "canary", "--to", "release", "--manifests", str(path)]
    dry = runner.invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "-    release: {agent_version_number: 3}" in dry.stdout
    assert path.read_text() == document("Front", CANARIES["flow"], RELEASES["flow"])
    done = runner.invoke(main, args)
    assert done.exit_code == 0, done.output
    again = runner.invoke(main, args)
    assert again.exit_code == 3 and "nothing to promote" in again.stderr
    edge = runner.invoke(main, [*args[:-4], "--to", "edge", "--manifests", str(path)])
    assert edge.exit_code == 1 and "edge" in edge.stderr


@pytest.mark.parametrize(
    ("canary", "unpinned"),
    [
        (CANARIES["block"], "service_hierarchical_state_machine_version_number"),
        (CANARIES["empty"], "agent_version_number and service_hierarchical_state_machine"),
        ("    canary: {agent_version_number: null, "
         "service_hierarchical_state_machine_version_number: 2}\n", "agent_version_number"),
    ],
    ids=["omitted", "empty", "null"],
)  # fmt: skip
def test_an_unpinned_source_is_refused_naming_the_fields(
    tmp_path: Path, canary: str, unpinned: str
) -> None:
    """Review of #18: release would float to 'latest', not serve what was verified."""
    path = tmp_path / "a.yaml"
    text = document("Front", canary, RELEASES["flow"])
    path.write_text(text)
    with pytest.raises(UnpinnedSource) as caught:
        _plan_promotion([path], ["Front"], source="canary", target="release")
    [diagnostic] = caught.value.diagnostics
    assert f"'Front': 'canary' leaves {unpinned}" in diagnostic.message
    assert "pin" in diagnostic.message and diagnostic.pos is not None
    canary_line = text.splitlines().index(canary.splitlines()[0]) + 1
    assert diagnostic.pos.line in (canary_line, canary_line + 1)  # the set (block: its body)
    result = CliRunner().invoke(
        main, ["promote", "Front", "--from", "canary", "--to", "release", "--manifests", str(path)]
    )
    assert result.exit_code == 1 and "unpinned (latest)" in result.stderr
    assert path.read_text() == text


def test_after_promotion_the_plan_shows_only_the_release_change(tmp_path: Path) -> None:
    from reconciler.emulator import Emulator
    from reconciler.workflow import make_plan

    emulator = Emulator.from_seed(
        {
            "organization": "acme",
            "credentials": {"api_key": "seed-key-not-secret", "api_key_id": "kid", "user_id": "u1"},
            "agents": [{"name": "Concierge", "latest_version": 5}],
            "state_machines": [{"name": "Flow", "latest_version": 3}],
            "services": [
                {
                    "name": "Front",
                    "description": "Answers calls",
                    "agent": "Concierge",
                    "service_hierarchical_state_machine": "Flow",
                    "tags": {"managed_by": "amigo_reconciler", "team": "front"},
                    "keyterms": ["front desk"],
                    "version_sets": {
                        "canary": {
                            "agent_version_number": 4,
                            "service_hierarchical_state_machine_version_number": 2,
                        },
                        "release": {"agent_version_number": 3},
                    },
                }
            ],
        }
    )
    path = tmp_path / "front.yaml"
    path.write_text(document("Front", CANARIES["flow"], RELEASES["flow"]))
    with emulator_client(emulator) as client:
        assert not make_plan(client, load_manifests([path])).operations
        result = CliRunner().invoke(
            main, ["promote", "Front", "--from", "canary", "--manifests", str(path)]
        )
        assert result.exit_code == 0, result.output
        plan = make_plan(client, load_manifests([path]))
    [op] = plan.operations
    assert (op.action.value, op.service, op.version_set) == (
        "upsert_version_set",
        "Front",
        "release",
    )
    assert op.request == {
        "agent_version_number": 4,
        "service_hierarchical_state_machine_version_number": 2,
        "llm_model_preferences": {},
    }
    assert yaml.safe_load(path.read_text())["spec"]["version_sets"]["release"] == {
        "agent_version_number": 4,
        "service_hierarchical_state_machine_version_number": 2,
    }


# --- property: any styles, any contents ------------------------------------------------


_LLMS = ["openai_gpt-4.1-2025-04-14", "azure_gpt-5.1-2025-11-13"]
_version = st.one_of(st.none(), st.integers(1, 9))
_prefs = st.dictionaries(
    st.sampled_from(["conversation", "analysis"]),
    st.fixed_dictionaries(
        {"llm_name": st.sampled_from(_LLMS)},
        optional={
            "params": st.dictionaries(
                st.sampled_from(["temperature", "top_p"]), st.integers(0, 2), max_size=2
            )
        },
    ),
    max_size=2,
)
_set = st.fixed_dictionaries(
    {},
    optional={
        "agent_version_number": _version,
        "service_hierarchical_state_machine_version_number": _version,
        "llm_model_preferences": _prefs,
    },
)


def _scalar(value: object) -> str:
    return "null" if value is None else str(value)


def _flow(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    return _scalar(value)


def _render(name: str, value: dict[str, object], indent: int, styles: st.DataObject) -> str:
    pad = " " * indent
    if not value or styles.draw(st.booleans()):
        return f"{pad}{name}: {_flow(value)}\n"
    comment = "  # note" if styles.draw(st.booleans()) else ""
    out = f"{pad}{name}:{comment}\n"
    for key, item in value.items():
        if isinstance(item, dict):
            out += _render(key, item, indent + 2, styles)
        else:
            out += f"{pad}  {key}: {_scalar(item)}{comment}\n"
    return out


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(canary=_set, release=st.one_of(st.none(), _set), styles=st.data(), crlf=st.booleans())
def test_property_only_the_release_entry_changes(
    tmp_path: Path,
    canary: dict[str, object],
    release: dict[str, object] | None,
    styles: st.DataObject,
    crlf: bool,
) -> None:
    canary_text = _render("canary", canary, 4, styles)
    release_text = "" if release is None else _render("release", release, 4, styles)
    newline = "\r\n" if crlf else "\n"
    text = document("Front", canary_text, release_text).replace("\n", newline)
    path = tmp_path / "p.yaml"
    path.write_bytes(text.encode())
    [before] = load_manifests([path]).services
    if before.version_sets.get("release") == before.version_sets["canary"]:
        with pytest.raises(NothingToPromote):
            plan_promotion([path], ["Front"], source="canary", target="release")
        return
    [change] = plan_promotion([path], ["Front"], source="canary", target="release").changes
    start = text.index(canary_text.replace("\n", newline)) + len(canary_text.replace("\n", newline))
    end = start + len(release_text.replace("\n", newline))
    assert change.after[:start] == text[:start]
    assert change.after[len(change.after) - (len(text) - end) :] == text[end:]
    assert "\n" not in change.after.replace("\r\n", "") or not crlf
    path.write_bytes(change.after.encode())
    [after] = load_manifests([path]).services
    assert (
        after.version_sets["release"]
        == after.version_sets["canary"]
        == before.version_sets["canary"]
    )


def test_a_merge_key_inside_the_target_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        HEAD.format(name="Front")
        + "    canary: &c {agent_version_number: 4}\n"
        + "    staging: {agent_version_number: 2}\n"
        + "    release:\n      <<: *c\n      llm_model_preferences: {}\n"
        + TAIL
    )
    with pytest.raises(UserError, match="'release' version set uses an anchor, alias or merge"):
        plan_promotion([path], ["Front"], source="staging", target="release")
    assert "<<: *c" in path.read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["Front", "--from", "canary", "--to", "canary"], "both 'canary'"),
        (["Front", "--all", "--from", "canary"], "not both"),
        (["--from", "canary"], "or pass --all"),
    ],
    ids=["same-set", "names-and-all", "nothing-named"],
)
def test_contradictory_arguments_are_usage_errors(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    """Review: these exited 1 like a manifest error; a usage error is 64 (cli/shared.py)."""
    path = tmp_path / "a.yaml"
    path.write_text(document("Front", CANARIES["flow"], RELEASES["flow"]))
    result = CliRunner().invoke(main, ["promote", *extra, "--manifests", str(path)])
    assert result.exit_code == 64, result.output
    assert message in result.stderr and "Usage:" in result.stderr
    assert "error: error" not in result.stderr.lower()


PER_ENVIRONMENT = """\
# one service, declared once per environment
apiVersion: amigo.ai/v1
kind: Service
metadata:
  name: Lab Results
  environments: [staging]
spec:
  description: Explains lab results
  agent: Triage Nurse
  service_hierarchical_state_machine: Intake
  version_sets:
    release: {}  # latest
---
apiVersion: amigo.ai/v1
kind: Service
metadata:
  name: Lab Results
  environments: [production]
spec:
  description: Explains lab results
  agent: Triage Nurse
  service_hierarchical_state_machine: Intake
  version_sets:
    release:  # pinned
      agent_version_number: 3
      service_hierarchical_state_machine_version_number: 2
"""
PROJECT = """\
version: 1
environments:
  staging: {organization: org-staging}
  production: {organization: org-prod}
"""


@pytest.mark.parametrize("how", ["found", "config"])
def test_env_promotes_the_document_of_that_environment_only(tmp_path: Path, how: str) -> None:
    """Review: a service declared per environment (README's lab-results.yaml) could not be
    promoted at all ("2 manifests declare a service named ..."); --env selects its document."""
    services = tmp_path / "services"
    services.mkdir()
    path = services / "lab.yaml"
    path.write_text(PER_ENVIRONMENT)
    project = tmp_path / ("reconciler.yaml" if how == "found" else "elsewhere.yaml")
    project.write_text(PROJECT)
    args = ["promote", "Lab Results", "--from", "release", "--to", "canary"]
    args += ["--manifests", str(services)]
    config = ["--config", str(project)] if how == "config" else []
    runner = CliRunner()
    ambiguous = runner.invoke(main, [*args, *config])
    assert ambiguous.exit_code == 1 and "pass --env" in ambiguous.stderr
    done = runner.invoke(main, [*args, *config, "--env", "production"])
    assert done.exit_code == 0, done.output
    pinned = "      service_hierarchical_state_machine_version_number: 2\n"
    added = "    canary:  # pinned\n      agent_version_number: 3\n" + pinned
    assert path.read_text() == PER_ENVIRONMENT + added  # the staging document untouched
    # staging's release floats ("latest"): refused there, nothing written
    staging = runner.invoke(main, [*args, *config, "--env", "staging"])
    assert staging.exit_code == 1 and "unpinned (latest)" in staging.stderr
    assert path.read_text() == PER_ENVIRONMENT + added
    unknown = runner.invoke(main, [*args, *config, "--env", "prod"])
    assert unknown.exit_code != 0 and "production" in unknown.stderr


def test_the_readme_example_promotes_per_environment() -> None:
    """The review's command, on the shipped example tree (dry run: nothing written)."""
    root = Path(__file__).resolve().parents[2] / "examples"
    args = ["promote", "Lab Results", "--from", "release", "--to", "canary", "--dry-run"]
    args += ["--manifests", str(root / "services"), "--env", "production"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "+    canary:" in result.stdout
