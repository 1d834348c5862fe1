"""The composite action (action.yml): one pinned, hash-locked install, and a run step
that accepts only the exit codes its caller names. requirements.lock must agree with
pyproject.toml; `.github/actions/run.sh` is run for real with a stand-in `reconciler`."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from support.paths import REPO

LOCK = REPO / "requirements.lock"
LOCK_COMMAND = (
    "uv pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 "
    "-o requirements.lock"
)
PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)(?: ; .*)? \\$")


def lock_entries() -> dict[str, dict[str, Any]]:
    """Package -> {version, hashes, via} as the lock file states them."""
    entries: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        match = PINNED.match(line)
        if match:
            current = {"version": match[2], "hashes": [], "via": []}
            entries[canonicalize_name(match[1])] = current
        elif current is not None and "--hash=sha256:" in line:
            current["hashes"].append(line.strip().split("sha256:")[1].rstrip(" \\"))
        elif current is not None and "# via " in line:
            current["via"].append(line.split("# via ", 1)[1].strip())
        elif current is not None and line.strip().startswith("#   "):
            current["via"].append(line.strip("# ").strip())
    return entries


def project_dependencies() -> list[Requirement]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return [Requirement(text) for text in data["project"]["dependencies"]]


def test_the_lock_pins_every_dependency_of_pyproject_within_its_range() -> None:
    entries = lock_entries()
    for requirement in project_dependencies():
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{name} is in pyproject.toml but not in requirements.lock"
        version = entries[name]["version"]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, outside pyproject.toml's "
            f"{requirement.specifier}: regenerate it ({LOCK_COMMAND})"
        )


def test_every_locked_package_is_needed_and_hashed() -> None:
    """A dependency dropped from pyproject.toml must leave the lock too."""
    entries = lock_entries()
    direct = {canonicalize_name(r.name) for r in project_dependencies()}
    for name, entry in entries.items():
        assert entry["hashes"], f"{name} has no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in entry["hashes"]), name
        parents = {canonicalize_name(v.split(" ")[0]) for v in entry["via"]}
        if "amigo-reconciler (pyproject.toml)" in " ".join(entry["via"]):
            assert name in direct, f"{name}: the lock says pyproject.toml wants it; it does not"
        else:
            assert parents & set(entries), f"{name}: nothing in the lock needs it ({entry['via']})"


def test_the_regeneration_command_is_the_documented_one() -> None:
    assert LOCK_COMMAND in LOCK.read_text(encoding="utf-8")
    assert LOCK_COMMAND in (REPO / "docs" / "ci.md").read_text(encoding="utf-8")


def test_the_action_installs_hash_locked_from_its_own_checkout() -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    assert {"command", "args", "plan-file", "ok-exit-codes", "python-version"} <= set(
        action["inputs"]
    )
    assert {"exit-code", "has-changes", "plan-file", "digest"} <= set(action["outputs"])
    install = (REPO / ".github" / "actions" / "install.sh").read_text(encoding="utf-8")
    assert "--require-hashes" in install and '-r "$root/requirements.lock"' in install
    assert "--only-binary=:all:" in install and "--no-deps" in install
    assert 'root="${GITHUB_ACTION_PATH:?}"' in install
    for s in action["runs"]["steps"]:
        if "uses" in s:
            assert re.search(r"@[0-9a-f]{40}$", s["uses"]), s["uses"]
        assert "${{" not in s.get("run", "")


# --- run.sh, for real --------------------------------------------------------------------


def run_action(tmp_path: Path, exit_code: int, command: str, ok: str, **extra: str) -> Any:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "reconciler"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = ci ]; then [ "${PLAN_INFO_EXIT:-0}" = 0 ] || exit "$PLAN_INFO_EXIT"; '
        'echo "digest=sha256:abc" >> "$GITHUB_OUTPUT"; '
        'echo "has-changes=true" >> "$GITHUB_OUTPUT"; exit 0; fi\n'
        'echo "args: $*"\necho "to stderr" >&2\n'
        f"exit {exit_code}\n",
        encoding="utf-8",
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    output = tmp_path / "output"
    output.write_text("", encoding="utf-8")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(output),
        "COMMAND": command,
        "ARGS": "services --detailed-exitcode",
        "PLAN_FILE": "",
        "OK_EXIT_CODES": ok,
        "OUTPUT_FILE": "",
        "ERROR_FILE": "",
        **extra,
    }
    result = subprocess.run(
        ["bash", str(REPO / ".github" / "actions" / "run.sh")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    values = dict(line.split("=", 1) for line in output.read_text("utf-8").splitlines())
    return result, values


@pytest.mark.parametrize(
    ("code", "ok", "passes", "changes"),
    [
        (0, "0 2", True, "false"),
        (2, "0 2", True, "true"),
        (1, "0 2", False, None),
        (64, "0 2", False, None),
        (2, "0", False, "true"),
    ],
)
def test_the_run_step_fails_on_any_code_the_caller_did_not_name(
    tmp_path: Path, code: int, ok: str, passes: bool, changes: str | None
) -> None:
    result, values = run_action(tmp_path, code, "plan", ok)
    assert (result.returncode == 0) is passes, result.stderr
    assert values["exit-code"] == str(code)
    assert values.get("has-changes") == changes
    assert "args: plan services --detailed-exitcode" in result.stdout
    if not passes:
        assert f"::error::reconciler plan exited {code}" in result.stdout


def test_the_run_step_saves_the_plan_and_reads_its_digest(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text("{}", encoding="utf-8")
    result, values = run_action(
        tmp_path,
        2,
        "plan",
        "0 2",
        PLAN_FILE="plan.json",
        OUTPUT_FILE="plan.md",
        ERROR_FILE="plan.err",
    )
    assert result.returncode == 0, result.stderr
    assert values["plan-file"] == "plan.json" and values["digest"] == "sha256:abc"
    assert "--out plan.json" in (tmp_path / "plan.md").read_text(encoding="utf-8")
    assert (tmp_path / "plan.err").read_text(encoding="utf-8") == "to stderr\n"


# --- install.sh, for real: nothing in the working directory is imported ------------------

FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for setup-python's interpreter and the venv's: logs its arguments, makes the
# venv and skips pip (no network), and runs everything else with the real test Python.
echo "$*" >> "$CALLS"
case " $* " in
  *" -m venv "*) mkdir -p "${@: -1}/bin"; cp "$0" "${@: -1}/bin/python"; exit 0 ;;
  *" -m pip "*) exit 0 ;;
  *" -c "*) echo "$SITE"; exit 0 ;;
esac
exec "$REAL_PYTHON" "$@"
"""

HOSTILE = "import pathlib\npathlib.Path({sentinel!r}).write_text('{name} was imported')\n"


def test_install_sh_and_its_wrapper_never_import_from_the_working_directory(
    tmp_path: Path,
) -> None:
    """The working directory is the manifests checkout: a yaml.py there must stay text."""
    import sys

    checkout = tmp_path / "manifests"
    checkout.mkdir()
    sentinel = tmp_path / "pwned"
    for name in ("yaml", "click", "pydantic", "httpx", "sysconfig"):
        (checkout / f"{name}.py").write_text(
            HOSTILE.format(sentinel=str(sentinel), name=name), encoding="utf-8"
        )
    (checkout / "services").mkdir()
    (checkout / "services" / "a.yaml").write_text("name: [\n", encoding="utf-8")
    fake = tmp_path / "setup-python"
    fake.write_text(FAKE_PYTHON, encoding="utf-8")
    fake.chmod(0o755)
    (tmp_path / "site").mkdir()
    env = {
        **os.environ,
        "GITHUB_ACTION_PATH": str(REPO),
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
        "GITHUB_PATH": str(tmp_path / "github-path"),
        "PYTHON": str(fake),
        "REAL_PYTHON": sys.executable,
        "CALLS": str(tmp_path / "calls"),
        "SITE": str(tmp_path / "site"),
    }
    installed = subprocess.run(
        ["bash", str(REPO / ".github" / "actions" / "install.sh")],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    calls = (tmp_path / "calls").read_text(encoding="utf-8").splitlines()
    assert len(calls) >= 4  # venv, pip, purelib, reconciler --version
    assert all(call.startswith("-I ") for call in calls), calls
    wrapper = tmp_path / "runner-temp" / "amigo-reconciler-venv" / "bin" / "reconciler"
    result = subprocess.run(
        [str(wrapper), "validate", "services"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert not sentinel.exists(), sentinel.read_text(encoding="utf-8")
    assert result.returncode == 1 and "services/a.yaml" in result.stderr, result.stderr


# --- the lock is complete: every requirement of every locked package is locked -----------

TARGETS = [
    {
        "python_version": version,
        "python_full_version": f"{version}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": machine,
    }
    for version in ("3.11", "3.12", "3.13")
    for machine in ("x86_64", "aarch64")
]


def applies(requirement: Requirement, extras: set[str]) -> bool:
    """Whether the requirement holds on some supported Linux/Python, with these extras."""
    if requirement.marker is None:
        return True
    return any(
        requirement.marker.evaluate({**target, "extra": extra})
        for target in TARGETS
        for extra in extras | {""}
    )


def test_the_lock_holds_every_requirement_of_every_locked_package() -> None:
    """Walk from pyproject.toml through each locked package's Requires-Dist (its installed
    metadata), with the extras actually requested: each must be locked within range."""
    from importlib import metadata

    entries = lock_entries()
    wanted: dict[str, set[str]] = {}
    queue = [(r, "pyproject.toml") for r in project_dependencies()]
    while queue:
        requirement, parent = queue.pop()
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{parent} requires {requirement}; requirements.lock lacks {name}"
        version = entries[name]["version"]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{parent} requires {requirement}; requirements.lock pins {name}=={version}"
        )
        extras = set(requirement.extras)
        if name in wanted and extras <= wanted[name]:
            continue
        wanted[name] = wanted.get(name, set()) | extras
        installed = metadata.version(name)
        if installed != version:
            pytest.skip(
                f"the test environment has {name}=={installed}, the lock {version}: install "
                "the lock (.ci/run does) to check what that version requires"
            )
        for text in metadata.requires(name) or []:
            child = Requirement(text)
            if applies(child, wanted[name]):
                queue.append((child, f"{name}=={version}"))
    assert {"pydantic-core", "idna", "h11"} <= set(wanted)  # the walk reached the leaves


@pytest.mark.parametrize("code", [0, 2])
@pytest.mark.parametrize("plan_file", ["unreadable", "missing"])
def test_a_plan_whose_file_cannot_be_read_fails_the_step(
    tmp_path: Path, code: int, plan_file: str
) -> None:
    """Without a digest and has-changes, stage 2 would be skipped: nothing applied, silently."""
    if plan_file == "unreadable":
        (tmp_path / "plan.json").write_text("{}", encoding="utf-8")
    result, values = run_action(
        tmp_path, code, "plan", "0 2", PLAN_FILE="plan.json", PLAN_INFO_EXIT="1"
    )
    assert result.returncode == 1
    assert "plan.json cannot be read" in result.stdout
    assert "digest" not in values and "has-changes" not in values
