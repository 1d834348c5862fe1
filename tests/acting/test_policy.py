"""Policy checks (issue 17): Rego policies on validate, plan and apply, and `policy test`."""

from __future__ import annotations

import builtins
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from support.cli import cli_runner, emulator_client
from support.paths import REPO, SEED

from reconciler.emulator import Emulator
from reconciler.policy import (
    Level,
    evaluate,
    load_modules,
    plan_input,
    plan_input_json,
    run_tests,
    validate_input,
)
from reconciler.policy.engine import INSTALL_HINT, Engine, Module, PolicyError

SERVICES = REPO / "examples" / "services"
POLICIES = REPO / "examples" / "policies"
WRITES = (
    "create-service",
    "update-service",
    "upsert-service-version-set",
    "delete-service-version-set",
)
LLM_DENIAL = (
    "Meet & Greet: version set release uses LLM openai_gpt-4.1-2025-04-14 for conversation, "
    "which is not on the approved list (azure_gpt-4.1-2025-04-14, openai_gpt-5.1-2025-11-13)"
)


@pytest.fixture
def emulator() -> Emulator:
    return Emulator.from_seed(SEED, window_seconds=1.0)


@pytest.fixture
def run(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.delenv("AMIGO_ORGANIZATION_ID", raising=False)
    return cli_runner(emulator, monkeypatch)


def writes(emulator: Emulator) -> int:
    return sum(emulator.request_counts.get(op, 0) for op in WRITES)


@pytest.fixture
def services(tmp_path: Path) -> Path:
    """A copy of examples/services to edit."""
    return Path(shutil.copytree(SERVICES, tmp_path / "services"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def only(policy: str, tmp_path: Path) -> Path:
    """One example policy (with its tests) in a directory of its own."""
    target = tmp_path / f"policy-{policy}"
    target.mkdir()
    for name in (f"{policy}.rego", f"{policy}_test.rego"):
        shutil.copy(POLICIES / name, target / name)
    return target


# --- the example policies against the example manifests -------------------------------


def test_example_policy_tests_pass(run: Callable[..., Result]) -> None:
    result = run("policy", "test", str(POLICIES))
    assert result.exit_code == 0, result.output
    assert "14 passed, 0 failed" in result.output
    for policy in ("release_pins", "llm_allowlist", "owner_tag", "removals"):
        assert f"{policy}_test.rego" in result.output


def test_llm_allowlist_denies_meet_and_greet_at_its_manifest_line(
    run: Callable[..., Result],
) -> None:
    result = run("validate", str(SERVICES), "--policy", str(POLICIES))
    assert result.exit_code == 1, result.output
    where = f"{SERVICES / 'meet-and-greet.yaml'}:3:1"
    assert f"{where}: error: policy main.deny: {LLM_DENIAL}" in result.output
    assert "Policy checks failed: 1 denied, 0 warnings (4 policy files)." in result.output


def test_llm_allowlist_passes_once_the_model_is_approved(
    run: Callable[..., Result], services: Path
) -> None:
    edit(services / "meet-and-greet.yaml", "openai_gpt-4.1-2025-04-14", "openai_gpt-5.1-2025-11-13")
    result = run("validate", str(services), "--policy", str(POLICIES))
    assert result.exit_code == 0, result.output
    assert "Policy checks passed (4 policy files)." in result.output


def test_release_pins_pass_on_the_examples_and_deny_a_floating_release(
    run: Callable[..., Result], services: Path, tmp_path: Path
) -> None:
    policy = only("release_pins", tmp_path)
    assert run("validate", str(services), "--policy", str(policy)).exit_code == 0
    edit(services / "billing-questions.yaml", "      agent_version_number: 2\n", "")
    result = run("validate", str(services), "--policy", str(policy))
    assert result.exit_code == 1, result.output
    assert (
        f"{services / 'billing-questions.yaml'}:2:1: error: policy main.deny: Billing Questions: "
        "the release version set must pin agent_version_number" in result.output
    )


def test_owner_tag_passes_on_the_examples_and_denies_a_service_without_team(
    run: Callable[..., Result], services: Path, tmp_path: Path
) -> None:
    policy = only("owner_tag", tmp_path)
    assert run("validate", str(services), "--policy", str(policy)).exit_code == 0
    edit(services / "front-desk.yaml", "  tags: {team: operations}\n", "")
    result = run("validate", str(services), "--policy", str(policy))
    assert result.exit_code == 1, result.output
    assert (
        f"{services / 'front-desk.yaml'}:3:1: error: policy main.deny: Front Desk has no owner"
        in result.output
    )
    assert result.output.count("error: policy") == 1


def test_removals_allow_one_deactivation_and_deny_two_unless_targeted(
    run: Callable[..., Result], tmp_path: Path, emulator: Emulator
) -> None:
    policy = only("removals", tmp_path)
    one = run("plan", str(SERVICES), "--policy", str(policy))
    assert one.exit_code == 0, one.output
    assert "warning: policy main.warn: After-hours Line will be deactivated" in one.output
    assert "after-hours-line.yaml:4:1" in one.output

    two = run("plan", str(SERVICES), "--policy", str(policy), "--prune")
    assert two.exit_code == 1, two.output
    assert (
        "error: policy main.deny: this plan removes 2 things (deactivate After-hours Line, "
        "delete version set experiment of Symptom Checker); at most 1 per plan" in two.output
    )

    targeted = run(
        "plan", str(SERVICES), "--policy", str(policy), "--prune",
        "--target", "After-hours Line", "--target", "Symptom Checker",
    )  # fmt: skip
    assert targeted.exit_code == 0, targeted.output
    assert "main.deny" not in targeted.output
    assert writes(emulator) == 0


# --- a deny stops apply before any write ------------------------------------------------


def test_apply_refuses_a_denied_plan_before_any_write(
    run: Callable[..., Result], emulator: Emulator
) -> None:
    result = run("apply", str(SERVICES), "--auto-approve", "--policy", str(POLICIES))
    assert result.exit_code == 1, result.output
    assert "Refusing to apply: a policy denies this plan" in result.output
    assert LLM_DENIAL in result.output
    assert writes(emulator) == 0


def test_apply_of_a_saved_plan_checks_it_and_refuses(
    run: Callable[..., Result], emulator: Emulator, tmp_path: Path
) -> None:
    plan_file = tmp_path / "plan.json"
    saved = run("plan", str(SERVICES), "--out", str(plan_file))
    assert saved.exit_code == 0, saved.output
    result = run("apply", str(plan_file), "--auto-approve", "--policy", str(POLICIES))
    assert result.exit_code == 1, result.output
    assert f"{SERVICES / 'meet-and-greet.yaml'}:3:1: error: policy main.deny" in result.output
    assert writes(emulator) == 0


def test_apply_with_passing_policies_applies(
    run: Callable[..., Result], emulator: Emulator, tmp_path: Path
) -> None:
    result = run(
        "apply", str(SERVICES), "--auto-approve", "--policy", str(only("removals", tmp_path))
    )
    assert result.exit_code == 0, result.output
    assert "After-hours Line will be deactivated" in result.output
    assert writes(emulator) > 0


def test_a_denied_plan_is_not_saved(run: Callable[..., Result], tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    result = run("plan", str(SERVICES), "--policy", str(POLICIES), "--out", str(plan_file))
    assert result.exit_code == 1
    assert not plan_file.exists()
    assert "Plan not saved" in result.output


# --- where people look: markdown, github -----------------------------------------------


def test_markdown_puts_the_policy_section_at_the_top(run: Callable[..., Result]) -> None:
    result = run("plan", str(SERVICES), "--policy", str(POLICIES), "--format", "markdown")
    assert result.exit_code == 1
    assert result.output.startswith("<!-- amigo-reconciler plan-digest: sha256:")
    first, _, rest = result.output.partition("### Amigo reconciler plan")
    assert first.splitlines()[1].startswith("#### Policy checks failed: 1 denied")
    assert '`main.deny` service "Meet &amp; Greet"' in first
    assert "meet-and-greet.yaml:3`" in first
    assert rest


def test_github_annotations_carry_file_and_line(run: Callable[..., Result]) -> None:
    result = run("plan", str(SERVICES), "--policy", str(POLICIES), "--format", "github")
    assert result.exit_code == 1
    assert (
        f"::error file={SERVICES / 'meet-and-greet.yaml'},line=3,col=1::policy main.deny: "
        in result.output
    )
    assert "::notice title=reconciler policy::Policy checks failed" in result.output


def test_json_stdout_stays_the_plan_file(run: Callable[..., Result]) -> None:
    result = run("plan", str(SERVICES), "--policy", str(POLICIES), "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["format_version"] == 1
    assert "policy main.deny" in result.stderr


# --- the input document: one shape in-process and under conftest -------------------------


def _plan(run: Callable[..., Result], *args: str) -> dict[str, Any]:
    result = run("plan", str(SERVICES), "--format", "json", *args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def test_plan_json_is_the_policy_input_and_gives_the_same_findings(
    run: Callable[..., Result], emulator: Emulator
) -> None:
    """conftest reads `plan --format json` output as input: the same document we evaluate."""
    from reconciler.workflow import load_desired, make_plan

    on_disk = _plan(run, "--prune")
    with emulator_client(emulator) as client:
        # load_desired, as plan does: services restricted by metadata.environments are out
        plan = make_plan(client, load_desired([str(SERVICES)]), prune=True, rehearse=True)
    in_process = plan_input(plan)
    ignore = {"created_at", "checksum"}
    assert {k: v for k, v in in_process.items() if k not in ignore} == {
        k: v for k, v in on_disk.items() if k not in ignore
    }
    modules = load_modules([str(POLICIES)])
    findings = evaluate(modules, on_disk).findings
    assert findings and findings == evaluate(modules, in_process).findings
    # The CLI hands the engine the same document as JSON text (serialized once).
    as_text = plan_input_json(plan)
    assert json.loads(as_text.text) == in_process
    assert evaluate(modules, as_text).findings == findings


def test_input_document_has_the_documented_shape(run: Callable[..., Result]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "schemas" / "policy-input.schema.json").read_text("utf-8"))
    from reconciler.manifests import load_manifests

    plan_doc = _plan(run)
    jsonschema.validate(plan_doc, schema)
    validate_doc = validate_input(load_manifests([str(SERVICES)]))
    jsonschema.validate(validate_doc, schema)
    assert set(validate_doc) == {"format_version", "environment", "organization", "services"}
    greet = next(s for s in plan_doc["services"] if s["metadata"]["name"] == "Meet & Greet")
    assert greet["spec"]["version_sets"]["release"]["agent_version_number"] == 4
    assert greet["source"] == {
        "file": str(SERVICES / "meet-and-greet.yaml"),
        "line": 3,
        "column": 1,
    }
    assert plan_doc["environment"] is None
    kinds = {op["kind"] for op in plan_doc["operations"]}
    assert "deactivate" in kinds


def test_the_docs_name_the_conftest_command() -> None:
    doc = (REPO / "docs" / "policy.md").read_text("utf-8")
    assert "conftest test --policy examples/policies --namespace main plan.json" in doc
    assert "reconciler plan services/ --format json > plan.json" in doc


# --- broken policies: a clear error at the policy's line, never a traceback ------------


def test_a_syntax_error_is_reported_at_the_policy_line(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.rego"
    bad.write_text('package main\nimport rego.v1\n\ndeny contains msg if {\n  msg := "x" +\n}\n')
    result = run("validate", str(SERVICES), "--policy", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:5:" in result.output
    assert "error: policy: expecting" in result.output
    assert "Traceback" not in result.output


def test_a_broken_policy_stops_plan_before_any_api_call(
    run: Callable[..., Result], emulator: Emulator, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.rego"
    bad.write_text("package main\n\ndeny contains msg if {\n")
    result = run("plan", str(SERVICES), "--policy", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:" in result.output and "Traceback" not in result.output
    assert sum(emulator.request_counts.values()) == 0


def test_conflicting_rule_values_are_reported_at_the_rule(tmp_path: Path) -> None:
    module = Module(
        str(tmp_path / "conflict.rego"),
        'package main\nimport rego.v1\n\nlimit := 1\nlimit := 2\n\ndeny contains "x" if {\n'
        "  limit > 0\n}\n",
    )
    with pytest.raises(PolicyError) as caught:
        evaluate([module], {"services": []})
    (diag,) = caught.value.diagnostics
    assert diag.pos is not None and (diag.pos.file, diag.pos.line) == (module.path, 5)
    assert "conflicts" in diag.message


def test_a_message_object_without_msg_is_an_error(tmp_path: Path) -> None:
    module = Module(
        str(tmp_path / "p.rego"), 'package main\nimport rego.v1\n\ndeny contains {"m": 1}\n'
    )
    with pytest.raises(PolicyError, match="without a string `msg`"):
        evaluate([module], {})


def test_conftest_style_whole_input_mocks_work(tmp_path: Path) -> None:
    """`with input as {...}` (what conftest/OPA tests use) works with built-ins in the rules."""
    module = Module(
        str(tmp_path / "p_test.rego"),
        "package main\nimport rego.v1\n\n"
        "deny contains upper(s) if { some s in input.names }\n\n"
        'test_x if {\n  deny == {"A"} with input as {"names": ["a"]}\n}\n',
    )
    assert [r.passed for r in run_tests([module])] == [True]


def test_a_runtime_error_is_reported_at_its_line(tmp_path: Path) -> None:
    module = Module(
        str(tmp_path / "zero.rego"),
        "package main\nimport rego.v1\n\ndeny contains msg if {\n  msg := 1 / input.n\n}\n",
    )
    with pytest.raises(PolicyError) as caught:
        evaluate([module], {"n": 0})
    (diag,) = caught.value.diagnostics
    assert diag.pos is not None and (diag.pos.file, diag.pos.line) == (module.path, 5)
    assert "divide by zero" in diag.message and "data.main.deny" in diag.message


def test_hostile_strings_come_back_intact() -> None:
    """Quotes, backslashes and escapes in input strings survive the engine."""
    engine = Engine([Module("p.rego", "package main\nimport rego.v1\n\nx := input.name\n")])
    name = 'a "quoted" \\ name\n\x1b[31m'
    engine.set_input({"name": name})
    assert engine.query("data.main.x") == name
    assert engine.query("data.main.missing") is None


def test_control_characters_in_messages_are_escaped() -> None:
    module = Module("p.rego", "package main\nimport rego.v1\n\ndeny contains input.name\n")
    (finding,) = evaluate([module], {"name": "evil\x1b[2J\nname"}).findings
    assert finding.message == "evil\\x1b[2J\\x0aname"


def test_policy_test_reports_a_failing_test(run: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "p_test.rego").write_text(
        "package main\nimport rego.v1\n\ntest_ok if { 1 == 1 }\n\ntest_bad if { 1 == 2 }\n"
    )
    result = run("policy", "test", str(tmp_path))
    assert result.exit_code == 1
    assert f"FAIL: data.main.test_bad ({tmp_path / 'p_test.rego'}:6)" in result.output
    assert "1 passed, 1 failed" in result.output


def test_test_files_are_not_loaded_for_checks() -> None:
    modules = load_modules([str(POLICIES)])
    assert modules and not any(m.path.endswith("_test.rego") for m in modules)


def test_namespace_selects_the_package(tmp_path: Path) -> None:
    module = Module(
        str(tmp_path / "p.rego"),
        'package team.rules\nimport rego.v1\n\ndeny_x contains "no"\n\nwarn contains "hm"\n',
    )
    assert evaluate([module], {}).findings == ()
    found = evaluate([module], {}, ("team.rules",)).findings
    assert [(f.level, f.rule, f.message) for f in found] == [
        (Level.DENY, "team.rules.deny_x", "no"),
        (Level.WARN, "team.rules.warn", "hm"),
    ]


def test_bad_policy_paths_are_clear_errors(run: Callable[..., Result], tmp_path: Path) -> None:
    missing = run("validate", str(SERVICES), "--policy", str(tmp_path / "nope"))
    assert missing.exit_code == 1
    assert "no such file or directory" in missing.output
    empty = run("validate", str(SERVICES), "--policy", str(tmp_path))
    assert empty.exit_code == 1
    assert "no policy files" in empty.output
    orphan = run("validate", str(SERVICES), "--namespace", "x")
    assert orphan.exit_code == 64  # EX_USAGE
    assert "--namespace needs --policy" in orphan.output


def test_a_missing_engine_says_how_to_install_it(
    run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_engine(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "regorus" or name.startswith("regorus."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_engine)
    result = run("validate", str(SERVICES), "--policy", str(POLICIES))
    assert result.exit_code == 1
    assert "pip install 'amigo-reconciler[policy]'" in result.output
    assert INSTALL_HINT in result.output


def test_the_policy_benchmark_runs() -> None:
    """benchmarks/bench_policy.py (figures in RESULTS.md) keeps working on a tiny workload."""
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_policy.py"),
            "--count",
            "40",
            "--repeat",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "findings: 26 denied, 0 warnings" in done.stdout
    assert "policy / (validate + plan):" in done.stdout


# --- the sandbox: a policy cannot crash, hang or exhaust the reconciler (review of #17) ----

RECURSIVE = 'package main\nimport rego.v1\nf(x) := f(x + 1)\ndeny contains msg if { f(1) > 0; msg := "x" }\n'
MUTUAL = (
    "package main\nimport rego.v1\nf(x) := g(x)\ng(x) := data.main.f(x)\n"
    'deny contains "m" if { f(1) > 0 }\n'
)
HUGE = (
    "package main\nimport rego.v1\ndeny contains msg if {\n"
    '\tsome i in numbers.range(1, 100000000)\n\ti < 0\n\tmsg := "x"\n}\n'
)
SLOW = (
    "package main\nimport rego.v1\nbig := [x | some x in numbers.range(1, 3000)]\n"
    "deny contains msg if {\n\tc := count([1 | some a in big; some b in big; a > b])\n"
    '\tc < 0\n\tmsg := "x"\n}\n'
)


@pytest.mark.parametrize("text", [RECURSIVE, MUTUAL], ids=["self", "mutual"])
@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_a_recursive_function_is_refused_at_its_line_before_any_call(
    run: Callable[..., Result], emulator: Emulator, tmp_path: Path, text: str, command: str
) -> None:
    policy = tmp_path / "rec.rego"
    policy.write_text(text)
    args = ["--auto-approve"] if command == "apply" else []
    result = run(command, str(SERVICES), "--policy", str(policy), *args)
    assert result.exit_code == 1, result.output
    assert f"{policy}:3:1: error: policy: function f calls itself" in result.output
    assert "Traceback" not in result.output
    assert sum(emulator.request_counts.values()) == 0


def test_policy_test_refuses_a_recursive_function(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    (tmp_path / "rec.rego").write_text(RECURSIVE)
    (tmp_path / "rec_test.rego").write_text(
        "package main\nimport rego.v1\ntest_f if { f(1) > 0 }\n"
    )
    result = run("policy", "test", str(tmp_path))
    assert result.exit_code == 1, result.output
    assert "function f calls itself" in result.output and "Traceback" not in result.output


def test_a_runaway_policy_is_stopped_at_the_timeout(
    run: Callable[..., Result], emulator: Emulator, tmp_path: Path
) -> None:
    import time

    policy = tmp_path / "slow.rego"
    policy.write_text(SLOW)
    started = time.monotonic()
    result = run(
        "apply", str(SERVICES), "--auto-approve", "--policy", str(policy), "--policy-timeout", "1"
    )
    assert time.monotonic() - started < 15
    assert result.exit_code == 1, result.output
    assert f"policy evaluation ({policy}) exceeded 1 s" in result.output
    assert writes(emulator) == 0 and "Traceback" not in result.output


def test_policy_test_has_the_timeout_too(run: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "slow.rego").write_text(SLOW)
    (tmp_path / "slow_test.rego").write_text(
        "package main\nimport rego.v1\ntest_slow if { count(deny) == 0 }\n"
    )
    result = run("policy", "test", str(tmp_path), "--policy-timeout", "1")
    assert result.exit_code == 1, result.output
    assert "exceeded 1 s" in result.output


def test_a_policy_that_exhausts_memory_is_stopped(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    policy = tmp_path / "huge.rego"
    policy.write_text(HUGE)
    result = run("validate", str(SERVICES), "--policy", str(policy), "--policy-timeout", "20")
    assert result.exit_code == 1, result.output
    assert f"policy evaluation ({policy}) exceeded its memory limit" in result.output


def test_a_crashed_engine_is_one_clear_error(
    run: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from reconciler.policy import sandbox

    crash = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    monkeypatch.setattr(sandbox, "worker_command", lambda _: [sys.executable, "-c", crash])
    result = run("validate", str(SERVICES), "--policy", str(POLICIES / "owner_tag.rego"))
    assert result.exit_code == 1, result.output
    assert f"policy evaluation ({POLICIES / 'owner_tag.rego'}) crashed with SIGSEGV" in (
        result.output
    )
    assert "Traceback" not in result.output


# --- conftest's rules, not a line-start regex; no calls out of the sandbox -------------


@pytest.mark.parametrize(
    "rule",
    [
        '  deny contains "indented" if { true }',
        'x := 1\n\tdeny_tab contains "indented" if { true }',
    ],
)
def test_an_indented_rule_counts(tmp_path: Path, rule: str) -> None:
    module = Module(str(tmp_path / "i.rego"), f"package main\nimport rego.v1\n{rule}\n")
    result = evaluate([module], {"services": []})
    assert [f.message for f in result.denied] == ["indented"]


@pytest.mark.parametrize(
    ("call", "why"),
    [
        ('http.send({"method": "get", "url": "http://127.0.0.1:1/"})', "HTTP requests"),
        ('net.lookup_ip_addr("example.com")', "DNS queries"),
        ("opa.runtime()", "environment"),
    ],
)
def test_non_hermetic_builtins_are_refused_at_load(
    run: Callable[..., Result], tmp_path: Path, call: str, why: str
) -> None:
    policy = tmp_path / "out.rego"
    policy.write_text(
        f'package main\nimport rego.v1\ndeny contains msg if {{\n  r := {call}\n  msg := "x"\n}}\n'
    )
    result = run("validate", str(SERVICES), "--policy", str(policy))
    assert result.exit_code == 1, result.output
    assert f"{policy}:4:" in result.output
    assert f"{call.split('(')[0]} is not allowed" in result.output and why in result.output


def test_an_environment_sets_the_policy_timeout(
    run: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(SERVICES, tmp_path / "services")
    (tmp_path / "slow.rego").write_text(SLOW)
    (tmp_path / "reconciler.yaml").write_text(
        "environments:\n  staging:\n    organization: org-1\n    paths: [services]\n"
        "    policy: [slow.rego]\n    policy_timeout: 1\n"
        "  production:\n    organization: org-2\n"
    )
    monkeypatch.chdir(tmp_path)
    result = run("validate", "--env", "staging")
    assert result.exit_code == 1, result.output
    assert "exceeded 1 s" in result.output


def test_a_bad_policy_timeout_in_the_project_file_is_refused_at_its_line(tmp_path: Path) -> None:
    from reconciler.diagnostics import UserError
    from reconciler.project import load_project

    path = tmp_path / "reconciler.yaml"
    path.write_text("environments:\n  staging:\n    organization: o\n    policy_timeout: '5'\n")
    with pytest.raises(UserError) as caught:
        load_project(path)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.pos is not None and diagnostic.pos.line == 4
    assert "policy_timeout must be a number of seconds greater than 0" in diagnostic.message
